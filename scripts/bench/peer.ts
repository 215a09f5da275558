/**
 * Row (f) alone: NerModel.predict against onnxruntime-node on the same weights (a KoBERT-size
 * random model and the bundled model), fp32 and bf16, batch 1 and 32, interleaved, best of N.
 *
 *   npm run bench:peer -- [--threads N] [--quick] [--rounds N] [--sentences N]
 *
 * The logic lives in bench/peer.ts (compiled into dist-test/ for the GPU machine).
 */
import { parseBenchArgs } from '../../bench/args.js';
import { formatTable, machineLine } from '../../bench/common.js';
import { peerBench } from '../../bench/peer.js';

const options = parseBenchArgs();
const rows = await peerBench(options);
console.log(`${machineLine()}; ${options.threads} thread(s) on both sides`);
console.log(formatTable(rows));
