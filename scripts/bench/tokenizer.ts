/**
 * Row (d) alone: koner's TypeScript tokenizer against SentencePiece's Python binding on every
 * KMOU sentence, interleaved pass by pass, best of N.
 *
 *   npm run bench:tokenizer -- [--rounds N] [--quick]
 *
 * The logic lives in bench/tokenizer.ts (compiled into dist-test/ for the GPU machine).
 */
import { parseBenchArgs } from '../../bench/args.js';
import { formatTable, machineLine } from '../../bench/common.js';
import { tokenizerBench } from '../../bench/tokenizer.js';

const options = parseBenchArgs();
const rows = await tokenizerBench(options);
console.log(machineLine());
console.log(formatTable(rows));
