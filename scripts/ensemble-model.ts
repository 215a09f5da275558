/**
 * Packs model directories of one tokenizer and label set as an ensemble directory that
 * `NerModel.load` reads as one model, decoding their joint CRF (lib/model/ensemble.ts). With
 * --int8 or --int4 the members' large matrices are stored in fewer bits (scripts/storage-flag.ts),
 * so that two 6 × 384 members fit where one fits in float16, or four. `--inference-dtype
 * bfloat16` writes config.json's `inference_dtype` (lib/model/config.ts), for an ensemble whose
 * scores were measured the same in bfloat16. The model card is written by hand.
 *
 *   npx tsx scripts/ensemble-model.ts [--int8 | --int4] [--inference-dtype <t>] <out-dir> <model-dir> ...
 */
import { INFERENCE_DTYPES, type InferenceDtype } from '../lib/model/config.js';
import { writeEnsembleDirectory } from '../lib/model/ensemble.js';
import { STORAGE_USAGE, storageFlag } from './storage-flag.js';

const USAGE = `usage: npx tsx scripts/ensemble-model.ts ${STORAGE_USAGE} [--inference-dtype <t>] <out-dir> <model-dir> ...`;
const { dtype, label, rest } = storageFlag(process.argv.slice(2));
let inferenceDtype: InferenceDtype | undefined;
if (rest[0] === '--inference-dtype') {
  if (!INFERENCE_DTYPES.includes(rest[1] as InferenceDtype)) {
    console.error(`--inference-dtype expects one of ${INFERENCE_DTYPES.join(', ')}\n${USAGE}`);
    process.exit(2);
  }
  inferenceDtype = rest[1] as InferenceDtype;
  rest.splice(0, 2);
}
const [out, ...members] = rest;
if (!out || members.length === 0) {
  console.error(USAGE);
  process.exit(2);
}
const names = await writeEnsembleDirectory(out, members, dtype, inferenceDtype);
console.log(
  `${out}: ${names.length} members (${names.join(', ')}), ${label}` +
    (inferenceDtype ? `, inference_dtype ${inferenceDtype}` : ''),
);
