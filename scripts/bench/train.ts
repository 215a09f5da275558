/**
 * Row (c) alone: training throughput of the default small model, koner's native Trainer against
 * a PyTorch training loop written the common way, interleaved, best of N.
 *
 *   npm run bench:train -- [--threads N] [--quick] [--rounds N] [--steps N]
 *
 * The logic lives in bench/train.ts (compiled into dist-test/ for the GPU machine).
 */
import { parseBenchArgs } from '../../bench/args.js';
import { formatTable, machineLine } from '../../bench/common.js';
import { trainBench } from '../../bench/train.js';

const options = parseBenchArgs();
const rows = await trainBench(options);
console.log(`${machineLine()}; ${options.threads} thread(s) on both sides`);
console.log(formatTable(rows));
