// Row (b) on the GPU, run by scripts/gpu-test.sh (plain node, no npm: compiled into dist-test/ by
// `npm run compile:test`): koner's fused CRF kernels against the PyTorch CRF written the common
// way (a Python loop over time steps), B=32 T=64 K=21, both on CUDA, interleaved, best of N.
// koner's figures include its typed-array API's host↔device copies; Python's tensors stay on the
// device. `--device cpu` runs the same logic anywhere; other options as `npm run bench:crf`.
import { parseBenchArgs } from '../../bench/args.js';
import { formatTable, machineLine } from '../../bench/common.js';
import { crfBench } from '../../bench/crf.js';
import { native } from '../../lib/native.js';

const argv = process.argv.slice(2);
const options = parseBenchArgs(argv.includes('--device') ? argv : ['--device', 'cuda', ...argv]);
if (options.device !== 'cpu' && !native().cudaAvailable()) {
  console.log('crf.bench: CUDA is not available to koner; skipped (pass --device cpu to run here)');
} else {
  const { rows } = await crfBench(options);
  console.log(`CRF kernel vs PyTorch CRF, ${machineLine()}, python ${options.python}`);
  console.log(formatTable(rows));
}
