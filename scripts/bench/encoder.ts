/**
 * Row (e) alone: the encoder's achieved GFLOP/s (KoBERT size, 32 × 64 pieces, float32) against
 * the same forward in PyTorch, next to the GEMM peak measured in the same run.
 *
 *   npm run bench:encoder -- [--threads N] [--rounds N] [--quick] [--device cpu|cuda]
 *
 * The logic lives in bench/encoder.ts (compiled into dist-test/ for the GPU machine).
 */
import { parseBenchArgs } from '../../bench/args.js';
import { formatTable, machineLine } from '../../bench/common.js';
import { encoderBench } from '../../bench/encoder.js';

const options = parseBenchArgs();
const rows = await encoderBench(options);
console.log(`${machineLine()}; ${options.threads} thread(s) on both sides`);
console.log(formatTable(rows));
