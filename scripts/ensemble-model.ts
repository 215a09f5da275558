/**
 * Packs model directories of one tokenizer and label set as an ensemble directory that
 * `NerModel.load` reads as one model, decoding their joint CRF (lib/model/ensemble.ts). With
 * --int8 the members' large matrices are stored as int8 rows (see scripts/package-model.ts), so
 * that two 6 × 384 members fit where one fits in float16. The model card is written by hand.
 *
 *   npx tsx scripts/ensemble-model.ts [--int8] <out-dir> <model-dir> <model-dir> ...
 */
import { writeEnsembleDirectory } from '../lib/model/ensemble.js';

const args = process.argv.slice(2);
const int8 = args[0] === '--int8';
const [out, ...members] = int8 ? args.slice(1) : args;
if (!out || members.length === 0) {
  console.error('usage: npx tsx scripts/ensemble-model.ts [--int8] <out-dir> <model-dir> ...');
  process.exit(2);
}
const names = await writeEnsembleDirectory(out, members, int8 ? 'int8' : 'float16');
console.log(
  `${out}: ${names.length} members (${names.join(', ')}), ${int8 ? 'int8 rows' : 'float16'}`,
);
