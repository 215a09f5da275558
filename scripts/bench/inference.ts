/**
 * Row (a) alone: NerModel.predict on the KMOU validation sentences (KoBERT-size random model)
 * at batch 1 and 32 against the reference project's inference in Python, interleaved, best of N.
 *
 *   npm run bench:inference -- [--threads N] [--quick] [--rounds N] [--sentences N]
 *
 * The logic lives in bench/inference.ts (compiled into dist-test/ for the GPU machine).
 */
import { parseBenchArgs } from '../../bench/args.js';
import { formatTable, machineLine } from '../../bench/common.js';
import { inferenceBench } from '../../bench/inference.js';

const options = parseBenchArgs();
const rows = await inferenceBench(options);
console.log(`${machineLine()}; ${options.threads} thread(s) on both sides`);
console.log(formatTable(rows));
