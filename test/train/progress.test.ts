import { describe, expect, it } from 'vitest';

import { formatDuration, ProgressReporter, type ProgressStream } from '../../lib/train/progress.js';

class FakeStream implements ProgressStream {
  chunks: string[] = [];
  constructor(
    readonly isTTY: boolean,
    readonly columns = 100,
  ) {}
  write(text: string): boolean {
    this.chunks.push(text);
    return true;
  }
  get text(): string {
    return this.chunks.join('');
  }
}

function fakeClock(stepMs: number): { clock: () => number; tick: () => void } {
  let t = 0;
  return { clock: () => t, tick: () => void (t += stepMs) };
}

describe('progress', () => {
  it('writes plain lines every logEvery steps when not on a terminal', () => {
    const stream = new FakeStream(false);
    const { clock, tick } = fakeClock(100);
    const p = new ProgressReporter({ totalSteps: 25, epochs: 2, stream, clock, logEvery: 10 });
    expect(p.isTTY).toBe(false);
    p.start();
    for (let step = 1; step <= 25; step++) {
      tick();
      p.update({
        step,
        epoch: step > 12 ? 1 : 0,
        loss: step <= 10 ? 2 : 1,
        sentences: 8,
        lr: 5e-5,
      });
    }
    const lines = stream.text.split('\n').filter(Boolean);
    expect(lines).toEqual([
      'epoch 1/2 step 10/25 loss 2.0000 lr 5.00e-5 80.0 sent/s ETA 2s',
      'epoch 2/2 step 20/25 loss 1.0000 lr 5.00e-5 80.0 sent/s ETA 1s',
      'epoch 2/2 step 25/25 loss 1.0000 lr 5.00e-5 80.0 sent/s ETA 0s',
    ]);
    expect(stream.text).not.toContain('\r');
    p.log('evaluating');
    expect(stream.chunks.at(-1)).toBe('evaluating\n');
  });

  it('rewrites one status line on a terminal, throttled, within the width', () => {
    const stream = new FakeStream(true, 90);
    const { clock, tick } = fakeClock(10);
    const p = new ProgressReporter({ totalSteps: 100, epochs: 3, stream, clock, redrawMs: 100 });
    p.start();
    for (let step = 1; step <= 50; step++) {
      tick();
      p.update({ step, epoch: 0, loss: 0.5, sentences: 4 });
    }
    // One draw per 100 ms of fake time: steps 1, 11, 21, 31, 41.
    expect(stream.chunks.length).toBe(5);
    const last = stream.chunks.at(-1)!;
    expect(last.startsWith('\r')).toBe(true);
    expect(last).not.toContain('\n');
    const visible = last.slice(1).replace('\x1b[K', '');
    expect(visible.length).toBeLessThan(90);
    expect(visible).toMatch(
      /^epoch 1\/3 \[=+>? *\] 41\/100 loss 0\.5000 · 400\.0 sent\/s · ETA 1s$/,
    );
    p.log('checkpoint saved');
    expect(stream.chunks.at(-2)).toBe('\r\x1b[Kcheckpoint saved\n');
    expect(stream.chunks.at(-1)).toBe(last);
    for (let step = 51; step <= 100; step++) {
      tick();
      p.update({ step, epoch: 2, loss: 0.5, sentences: 4 });
    }
    // The final step always draws.
    expect(stream.chunks.at(-1)).toContain(' 100/100 ');
    expect(stream.chunks.at(-1)).toContain('[' + '='.repeat(30) + ']');
    p.finish();
    expect(stream.chunks.at(-1)).toBe('\n');
    // A narrow terminal drops the bar rather than wrap.
    const narrow = new FakeStream(true, 40);
    const q = new ProgressReporter({ totalSteps: 10, epochs: 1, stream: narrow, clock });
    q.update({ step: 1, epoch: 0, loss: 1, sentences: 1 });
    expect(narrow.chunks[0].replace('\r', '').replace('\x1b[K', '').length).toBeLessThan(40);
  });

  it('labels a run scheduled in steps alone by its pass over the text, not "epoch 2/1"', () => {
    const stream = new FakeStream(false);
    const p = new ProgressReporter({ totalSteps: 4, epochs: null, stream, logEvery: 2 });
    p.update({ step: 1, epoch: 0, loss: 1, sentences: 32 });
    p.update({ step: 2, epoch: 0, loss: 1, sentences: 32 });
    p.update({ step: 3, epoch: 1, loss: 1, sentences: 32 });
    p.update({ step: 4, epoch: 1, loss: 1, sentences: 32 });
    expect(stream.chunks[0]).toMatch(/^pass 1 step 2\/4 /);
    expect(stream.chunks[1]).toMatch(/^pass 2 step 4\/4 /);
    expect(stream.chunks.join('')).not.toContain('epoch');
    const tty = new FakeStream(true, 120);
    const q = new ProgressReporter({ totalSteps: 4, epochs: null, stream: tty });
    q.update({ step: 3, epoch: 1, loss: 1, sentences: 32 });
    expect(tty.chunks[0]).toMatch(/^\rpass 2 /);
  });

  it('smooths the loss without a start-up bias', () => {
    const p = new ProgressReporter({ totalSteps: 10, epochs: 1, stream: new FakeStream(false) });
    expect(p.smoothedLoss).toBeNaN();
    p.update({ step: 1, epoch: 0, loss: 3, sentences: 1 });
    expect(p.smoothedLoss).toBeCloseTo(3, 12);
    p.update({ step: 2, epoch: 0, loss: 3, sentences: 1 });
    expect(p.smoothedLoss).toBeCloseTo(3, 12);
    p.update({ step: 3, epoch: 0, loss: NaN, sentences: 1 });
    expect(p.smoothedLoss).toBeCloseTo(3, 12);
  });

  it('formats durations', () => {
    expect(formatDuration(42.4)).toBe('42s');
    expect(formatDuration(187)).toBe('3m07s');
    expect(formatDuration(3725)).toBe('1h02m');
    expect(formatDuration(NaN)).toBe('?');
  });
});
