import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { MetricsLog, metricCurve, parseMetrics, readMetrics } from '../../lib/train/metrics-log.js';

let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'koner-train-test-'));
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('metrics log', () => {
  const now = (): Date => new Date('2025-01-02T03:04:05.000Z');
  const evalEvent = (step: number, f1: number) =>
    ({
      type: 'eval',
      step,
      epoch: 0,
      tokenMacroF1: f1 - 0.01,
      entity: { precision: f1, recall: f1, f1, support: 10 },
      perType: { PER: { precision: 1, recall: f1, f1, support: 4 } },
      seconds: 1.5,
    }) as const;

  it('appends one line per event and reads them back', async () => {
    const dir = path.join(tmp, 'metrics');
    const log = await MetricsLog.open(dir, { now });
    log.append({ type: 'start', step: 0, resumed: false, epoch: 0, totalSteps: 100 });
    const train = {
      type: 'train',
      step: 50,
      epoch: 0,
      loss: 1.25,
      lr: 4e-5,
      sentencesPerSecond: 80,
      elapsedSeconds: 10,
    } as const;
    log.append(train);
    // A line is on disk as soon as append returns.
    expect((await readFile(log.file, 'utf8')).split('\n')).toHaveLength(3);
    log.append(evalEvent(50, 0.8));
    log.append({
      type: 'train',
      step: 60,
      epoch: 0,
      loss: NaN,
      lr: 0,
      sentencesPerSecond: 1,
      elapsedSeconds: 11,
    });
    log.close();
    expect(() => log.append(train)).toThrow(/closed/);
    const { events, skipped } = await readMetrics(dir);
    expect(skipped).toEqual([]);
    expect(events.map((e) => e.type)).toEqual(['start', 'train', 'eval', 'train']);
    expect(events[1]).toEqual({ time: '2025-01-02T03:04:05.000Z', ...train });
    expect(metricCurve(events, 'eval', (e) => e.entity.f1)).toEqual([{ x: 50, y: 0.8 }]);
    // NaN is written as null and becomes a gap in the curve.
    expect(metricCurve(events, 'train', (e) => e.loss)).toEqual([{ x: 50, y: 1.25 }]);
  });

  it('survives a line cut by a crash and drops the events a resume replays', async () => {
    const dir = path.join(tmp, 'metrics-crash');
    const log = await MetricsLog.open(dir, { now, sync: false });
    log.append({ type: 'start', step: 0, resumed: false, epoch: 0, totalSteps: 100 });
    log.append(evalEvent(20, 0.5));
    log.append(evalEvent(30, 0.6));
    log.close();
    await writeFile(path.join(dir, 'metrics.jsonl'), '{"type":"eval","st', { flag: 'a' });
    const again = await MetricsLog.open(dir, { now });
    again.append({ type: 'start', step: 20, resumed: true, epoch: 0, totalSteps: 100 });
    again.append(evalEvent(30, 0.65));
    again.close();
    const { events, skipped } = await readMetrics(path.join(dir, 'metrics.jsonl'));
    expect(skipped).toEqual([{ line: 4, reason: 'not valid JSON (cut short by a crash?)' }]);
    expect(metricCurve(events, 'eval', (e) => e.entity.f1)).toEqual([
      { x: 20, y: 0.5 },
      { x: 30, y: 0.65 },
    ]);
    const raw = await readMetrics(dir, { resolveResumes: false });
    expect(metricCurve(raw.events, 'eval', (e) => e.entity.f1)).toHaveLength(3);
    expect(parseMetrics('{"type":"weird","step":1}\n[1]\n{"type":"end"}\n').skipped).toHaveLength(
      3,
    );
  });
});
