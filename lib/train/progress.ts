/**
 * Training progress for people: on a terminal, one status line rewritten in place (epoch, step,
 * bar, smoothed loss, learning rate, sentences/s, ETA); anywhere else (a log file, CI), a plain
 * line every `logEvery` steps, since carriage returns make a mess of files.
 *
 * @packageDocumentation
 */

/** Where progress goes: `process.stderr` or anything with `write` (tests pass a fake). */
export interface ProgressStream {
  write(text: string): unknown;
  /** True on a terminal: then the status line is rewritten in place. */
  isTTY?: boolean;
  /** Terminal width; the status line is cut to fit (default 80). */
  columns?: number;
}

/** Options of {@link ProgressReporter}. */
export interface ProgressOptions {
  /** Optimizer steps of the whole run. */
  totalSteps: number;
  /**
   * Epochs of the run (for display: `epoch 2/4`). `null` for a run scheduled in steps alone, such
   * as pretraining, whose stream goes pass after pass over its text: then the line shows `pass 2`.
   */
  epochs: number | null;
  /** Default `process.stderr`. */
  stream?: ProgressStream;
  /** Milliseconds from any fixed origin (default `performance.now`). */
  clock?: () => number;
  /** Plain mode: a line every this many steps (default 50), and always at the last step. */
  logEvery?: number;
  /** Force terminal (true) or plain (false) mode instead of asking `stream.isTTY`. */
  tty?: boolean;
  /** Weight of the past in the smoothed loss, in [0, 1) (default 0.98, i.e. ~50 steps). */
  smoothing?: number;
  /** Terminal mode: redraw at most this often, in ms (default 100), plus at the last step. */
  redrawMs?: number;
  /** Steps the rate and ETA are measured over (default 50). */
  rateWindow?: number;
}

/** One optimizer step's numbers. */
export interface ProgressUpdate {
  /** Optimizer steps taken, including this one (1-based; continues after a resume). */
  step: number;
  /** 0-based epoch; with `epochs: null`, the 0-based pass over the text. */
  epoch: number;
  /** This step's training loss. */
  loss: number;
  /** Sentences in this step (over all micro-batches and workers). */
  sentences: number;
  /** Learning rate this step used. */
  lr?: number;
}

/**
 * `1h02m`, `3m07s`, `42s`; `?` for an unknown or infinite duration.
 */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (h > 0) return `${h}h${String(m).padStart(2, '0')}m`;
  if (m > 0) return `${m}m${String(sec).padStart(2, '0')}s`;
  return `${sec}s`;
}

function formatLoss(loss: number): string {
  return Number.isFinite(loss) ? loss.toFixed(4) : String(loss);
}

const CLEAR_LINE = '\x1b[K';

/**
 * Reports training progress; one instance per run (or per resumed run). Call {@link update} after
 * every optimizer step, {@link log} for any other message, {@link finish} at the end.
 */
export class ProgressReporter {
  private readonly stream: ProgressStream;
  private readonly clock: () => number;
  private readonly tty: boolean;
  private readonly logEvery: number;
  private readonly smoothing: number;
  private readonly redrawMs: number;
  private readonly rateWindow: number;
  private ema = 0;
  private emaSteps = 0;
  private intervalLoss = 0;
  private intervalSteps = 0;
  // Recent (time, cumulative sentences, step) samples; rate and ETA come from the window, so a
  // pause for evaluation stops distorting them once it has slid out.
  private samples: { t: number; sentences: number; step: number }[] = [];
  private sentencesTotal = 0;
  private lastDraw = -Infinity;
  private lastLine = '';
  private last: ProgressUpdate | undefined;
  private startTime: number | undefined;

  /** @throws RangeError on invalid options. */
  constructor(private readonly options: ProgressOptions) {
    if (!Number.isInteger(options.totalSteps) || options.totalSteps < 0) {
      throw new RangeError(`totalSteps must be an integer ≥ 0, got ${options.totalSteps}`);
    }
    this.stream = options.stream ?? process.stderr;
    this.clock = options.clock ?? (() => performance.now());
    this.tty = options.tty ?? this.stream.isTTY === true;
    this.logEvery = options.logEvery ?? 50;
    this.smoothing = options.smoothing ?? 0.98;
    this.redrawMs = options.redrawMs ?? 100;
    this.rateWindow = options.rateWindow ?? 50;
    if (!Number.isInteger(this.logEvery) || this.logEvery < 1) {
      throw new RangeError(`logEvery must be an integer ≥ 1, got ${this.logEvery}`);
    }
    if (!(this.smoothing >= 0 && this.smoothing < 1)) {
      throw new RangeError(`smoothing must be in [0, 1), got ${this.smoothing}`);
    }
    if (!Number.isInteger(this.rateWindow) || this.rateWindow < 1) {
      throw new RangeError(`rateWindow must be an integer ≥ 1, got ${this.rateWindow}`);
    }
  }

  /** Whether output is the rewritten status line (terminal) or plain lines. */
  get isTTY(): boolean {
    return this.tty;
  }

  /**
   * The exponential moving average of the loss with bias correction (as Adam corrects its
   * moments), so the first steps are not dragged towards 0. NaN before the first update.
   */
  get smoothedLoss(): number {
    if (this.emaSteps === 0) return NaN;
    return this.ema / (1 - Math.pow(this.smoothing, this.emaSteps));
  }

  /** Sentences per second over the recent window; NaN until two steps have been seen. */
  get sentencesPerSecond(): number {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || first === last || last.t <= first.t) return NaN;
    return ((last.sentences - first.sentences) * 1000) / (last.t - first.t);
  }

  /** Seconds left at the recent pace; NaN until two steps have been seen. */
  get etaSeconds(): number {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || first === last || last.step <= first.step) return NaN;
    const perStep = (last.t - first.t) / 1000 / (last.step - first.step);
    return Math.max(0, this.options.totalSteps - last.step) * perStep;
  }

  /** Records one optimizer step and writes progress when due. */
  update(u: ProgressUpdate): void {
    const now = this.clock();
    // The first sample is the moment before the first step, so that step's own duration counts.
    if (this.samples.length === 0) {
      this.samples.push({ t: this.startTime ?? now, sentences: 0, step: u.step - 1 });
    }
    this.sentencesTotal += u.sentences;
    this.samples.push({ t: now, sentences: this.sentencesTotal, step: u.step });
    if (this.samples.length > this.rateWindow + 1) this.samples.shift();
    if (Number.isFinite(u.loss)) {
      this.ema = this.smoothing * this.ema + (1 - this.smoothing) * u.loss;
      this.emaSteps++;
    }
    this.intervalLoss += u.loss;
    this.intervalSteps++;
    this.last = u;
    const final = u.step >= this.options.totalSteps;
    if (this.tty) {
      if (final || now - this.lastDraw >= this.redrawMs) {
        this.lastDraw = now;
        this.draw();
      }
    } else if (u.step % this.logEvery === 0 || final) {
      this.stream.write(this.plainLine(u) + '\n');
      this.intervalLoss = 0;
      this.intervalSteps = 0;
    }
  }

  /**
   * Marks when training (re)starts, so the first step's duration counts towards the rate. Without
   * it the rate is measured from the first update on.
   */
  start(): void {
    this.startTime = this.clock();
  }

  /** Writes a message on its own line without breaking the status line. */
  log(message: string): void {
    if (this.tty && this.lastLine !== '') {
      this.stream.write(`\r${CLEAR_LINE}${message}\n`);
      this.stream.write(this.lastLine);
    } else {
      this.stream.write(message + '\n');
    }
  }

  /** Ends the status line (terminal mode) so later output starts on a fresh line. */
  finish(): void {
    if (this.tty && this.last) {
      this.draw();
      this.stream.write('\n');
      this.lastLine = '';
    }
  }

  private rateText(): string {
    const rate = this.sentencesPerSecond;
    return Number.isFinite(rate) ? `${rate.toFixed(1)} sent/s` : '? sent/s';
  }

  private position(u: ProgressUpdate): string {
    const { epochs } = this.options;
    return epochs === null ? `pass ${u.epoch + 1}` : `epoch ${u.epoch + 1}/${epochs}`;
  }

  // Plain mode prints the mean loss since the previous line: every step is accounted for once,
  // which a smoothed value read at intervals would not do.
  private plainLine(u: ProgressUpdate): string {
    const { totalSteps } = this.options;
    const parts = [
      this.position(u),
      `step ${u.step}/${totalSteps}`,
      `loss ${formatLoss(this.intervalLoss / this.intervalSteps)}`,
    ];
    if (u.lr !== undefined) parts.push(`lr ${u.lr.toExponential(2)}`);
    parts.push(this.rateText(), `ETA ${formatDuration(this.etaSeconds)}`);
    return parts.join(' ');
  }

  private draw(): void {
    const u = this.last;
    if (!u) return;
    const { totalSteps } = this.options;
    const head = this.position(u);
    const counts = `${u.step}/${totalSteps}`;
    const tail = [
      `loss ${formatLoss(this.smoothedLoss)}`,
      ...(u.lr !== undefined ? [`lr ${u.lr.toExponential(2)}`] : []),
      this.rateText(),
      `ETA ${formatDuration(this.etaSeconds)}`,
    ].join(' · ');
    const columns = Math.max(20, this.stream.columns ?? 80);
    // One column short of the width: writing the last column makes some terminals wrap, and a
    // wrapped line can no longer be rewritten with \r.
    const room = columns - 1 - (head.length + counts.length + tail.length + 5);
    let line: string;
    if (room >= 10) {
      const width = Math.min(30, room);
      const filled =
        totalSteps > 0 ? Math.round((Math.min(u.step, totalSteps) / totalSteps) * width) : width;
      const bar =
        '='.repeat(Math.max(0, filled - 1)) + (filled > 0 ? (filled === width ? '=' : '>') : '');
      line = `${head} [${bar.padEnd(width)}] ${counts} ${tail}`;
    } else {
      line = `${head} ${counts} ${tail}`.slice(0, columns - 1);
    }
    this.lastLine = `\r${line}${CLEAR_LINE}`;
    this.stream.write(this.lastLine);
  }
}
