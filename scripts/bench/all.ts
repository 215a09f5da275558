/**
 * `npm run bench`: every row — (a) inference, (b) CRF, (c) training, (d) tokenizer, (e) encoder
 * vs GEMM peak against Python, (f) inference against onnxruntime-node — in one run, printed as
 * one table.
 *
 *   npm run bench -- [--threads N] [--quick] [--only a,b,c,d,e,f] [--rounds N] [--json out.json]
 *
 * The logic lives in bench/ (compiled into dist-test/ for the GPU machine).
 */
import { formatAll, runAll } from '../../bench/all.js';
import { parseBenchArgs } from '../../bench/args.js';

console.log(formatAll(await runAll(parseBenchArgs())));
