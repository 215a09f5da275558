/**
 * Packs model directories of one tokenizer and label set as an ensemble directory that
 * `NerModel.load` reads as one model, decoding their joint CRF (lib/model/ensemble.ts). With
 * --int8 or --int4 the members' large matrices are stored in fewer bits (scripts/storage-flag.ts),
 * so that two 6 × 384 members fit where one fits in float16, or four. The model card is written
 * by hand.
 *
 *   npx tsx scripts/ensemble-model.ts [--int8 | --int4] <out-dir> <model-dir> <model-dir> ...
 */
import { writeEnsembleDirectory } from '../lib/model/ensemble.js';
import { STORAGE_USAGE, storageFlag } from './storage-flag.js';

const { dtype, label, rest } = storageFlag(process.argv.slice(2));
const [out, ...members] = rest;
if (!out || members.length === 0) {
  console.error(
    `usage: npx tsx scripts/ensemble-model.ts ${STORAGE_USAGE} <out-dir> <model-dir> ...`,
  );
  process.exit(2);
}
const names = await writeEnsembleDirectory(out, members, dtype);
console.log(`${out}: ${names.length} members (${names.join(', ')}), ${label}`);
