// Row (e) on the GPU, run by scripts/gpu-test.sh (plain node, no npm: compiled into dist-test/ by
// `npm run compile:test`): a KoBERT-size encoder forward (256 × 128 pieces, weights placed in
// bfloat16) in koner against PyTorch's bfloat16 autocast forward of the same weights, in
// TFLOP/s, next to the card's bfloat16 GEMM peak measured in the same run (torch.matmul 8192³).
// `--device cpu` runs the same logic anywhere (float32, 32 × 64, GFLOP/s against the CPU's
// OpenBLAS and oneDNN peaks).
import { parseBenchArgs } from '../../bench/args.js';
import { formatTable, machineLine } from '../../bench/common.js';
import { encoderBench } from '../../bench/encoder.js';
import { native } from '../../lib/native.js';

const argv = process.argv.slice(2);
const options = parseBenchArgs(argv.includes('--device') ? argv : ['--device', 'cuda', ...argv]);
if (options.device !== 'cpu' && !native().cudaAvailable()) {
  console.log(
    'encoder.bench: CUDA is not available to koner; skipped (pass --device cpu to run here)',
  );
} else {
  const rows = await encoderBench(options);
  console.log(`Encoder vs GEMM peak, ${machineLine()}, python ${options.python}`);
  console.log(formatTable(rows));
}
