/**
 * What every benchmark shares: one table row type, interleaved best-of-N timing, the machine's
 * facts (CPU, threads, load average) and the table itself.
 */
import os from 'node:os';

import { Rng } from '../lib/train/rng.js';

/**
 * One line of the table: koner's figure, the peer's (the Python/PyTorch implementation, or
 * onnxruntime-node for the (f) rows; the note says which), and which way is better.
 */
export interface BenchRow {
  /** e.g. `(a) predict, batch 32`. */
  row: string;
  koner: number | null;
  peer: number | null;
  /** e.g. `sentences/s`, `ms/call`, `GFLOP/s`. */
  unit: string;
  /** Times: smaller is better, and the ratio is peer / koner. Rates: koner / peer. */
  lowerIsBetter?: boolean;
  /** What the peer's figure is, or why a figure is missing. */
  note?: string;
}

/** koner's speed-up over the peer (> 1: koner faster), or null when a figure is missing. */
export function speedUp(row: BenchRow): number | null {
  if (row.koner === null || row.peer === null || row.koner <= 0 || row.peer <= 0) return null;
  return row.lowerIsBetter ? row.peer / row.koner : row.koner / row.peer;
}

function formatNumber(x: number | null): string {
  if (x === null) return '—';
  if (x >= 1000) return Math.round(x).toLocaleString('en-US');
  if (x >= 100) return x.toFixed(0);
  if (x >= 10) return x.toFixed(1);
  if (x >= 1) return x.toFixed(2);
  return x.toPrecision(3);
}

/** The rows as a fixed-width table: row, koner, peer, ratio, unit, note. */
export function formatTable(rows: readonly BenchRow[]): string {
  const cells = rows.map((r) => {
    const ratio = speedUp(r);
    return [
      r.row,
      formatNumber(r.koner),
      formatNumber(r.peer),
      ratio === null ? '—' : `${ratio.toFixed(2)}×`,
      r.unit,
      r.note ?? '',
    ];
  });
  const header = ['row', 'koner', 'peer', 'koner/peer', 'unit', 'peer / note'];
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const right = [false, true, true, true, false, false];
  const line = (c: string[]) =>
    c
      .map((x, i) =>
        i === c.length - 1 ? x : right[i] ? x.padStart(widths[i]) : x.padEnd(widths[i]),
      )
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

/** Seconds since `start` (from process.hrtime.bigint()). */
export function secondsSince(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/** Seconds one call of `run` takes. */
export async function timeOnce(run: () => unknown): Promise<number> {
  const start = process.hrtime.bigint();
  await run();
  return secondsSince(start);
}

/**
 * Interleaved best-of-N: round after round, each side once in turn (A B C A B C ...), so that a
 * change in the machine's load hits every side alike. Each side returns the seconds it measured
 * (its own clock, e.g. Python's perf_counter). Returns every side's samples, sorted ascending.
 */
export async function interleaved(
  rounds: number,
  sides: readonly (() => Promise<number>)[],
  onRound?: (round: number, samples: number[]) => void,
): Promise<number[][]> {
  const samples: number[][] = sides.map(() => []);
  for (let r = 0; r < rounds; r++) {
    const now: number[] = [];
    for (let s = 0; s < sides.length; s++) {
      const seconds = await sides[s]();
      samples[s].push(seconds);
      now.push(seconds);
    }
    onRound?.(r, now);
  }
  return samples.map((xs) => xs.sort((a, b) => a - b));
}

/** The load average over 1, 5 and 15 minutes, e.g. `1.92 2.10 2.40`. */
export function loadAverage(): string {
  return os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
}

/** One line about the machine: CPU model, cores, load average. */
export function machineLine(): string {
  const cpus = os.cpus();
  return `${cpus[0]?.model.trim() ?? 'CPU'} × ${cpus.length}, load average ${loadAverage()}`;
}

/** Seeded floats in [0, 1) (lib/train/rng.ts's generator). */
export function seededRandom(seed: number): () => number {
  const rng = Rng.fromSeed(seed);
  return () => rng.nextFloat();
}

/** Logs to stderr so that stdout carries only results. */
export function progress(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

/** Shared options of the benchmarks. */
export interface BenchOptions {
  /** LibTorch/PyTorch intra-op threads on both sides (default: the available cores). */
  threads: number;
  /** Fewer sentences and rounds: a smoke run. */
  quick: boolean;
  /** The Python interpreter (see defaultPython). */
  python: string;
  /** 'cpu' (default) or 'cuda'. */
  device: string;
}
