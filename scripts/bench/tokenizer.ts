/**
 * Row (d) alone: koner's TypeScript tokenizer against SentencePiece's Python binding on every
 * KMOU sentence, interleaved pass by pass, best of N.
 *
 *   npm run bench:tokenizer -- [--rounds N] [--quick]
 *
 * The logic lives in lib/bench/tokenizer.ts (compiled into dist/ for machines without npm).
 */
import { parseBenchArgs } from '../../lib/bench/args.js';
import { formatTable, machineLine } from '../../lib/bench/common.js';
import { tokenizerBench } from '../../lib/bench/tokenizer.js';

const options = parseBenchArgs();
const rows = await tokenizerBench(options);
console.log(machineLine());
console.log(formatTable(rows));
