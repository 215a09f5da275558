/**
 * `koner tag --model DIR`: entities in sentences. At a terminal it is a prompt (type a sentence,
 * see it in `<text:TAG>` markup with its entities); otherwise it reads lines or JSONL from stdin
 * or files and writes one JSON line (or one markup line) per input line, in input order.
 *
 * Input is read as it arrives and tagged in batches, with at most a few batches of lines held in
 * memory, so a file of any size streams through.
 */
import { constants, createReadStream } from 'node:fs';
import { access } from 'node:fs/promises';
import { once } from 'node:events';
import readline from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { parseArgs } from 'node:util';

import { renderMarkup } from '../labels/markup.js';
import { LIMITS } from '../limits.js';
import { checkUtf8Stream, InvalidUtf8Error, type TextReadOptions } from '../text-file.js';
import type { NerEntity, NerModel, NerPath, PredictOptions } from '../model/ner-model.js';
import { choiceFlag, optionalIntegerFlag, UsageError, type CliCommand } from './args.js';
import { loadModel, MODEL_OPTIONS, MODEL_USAGE, modelFlags } from './model-flags.js';

export const tagUsage = `usage: koner tag [--model <dir>] [options] [file …]

At a terminal (no files, stdin a TTY): a prompt; type a sentence, see its entities.
Otherwise: reads stdin (or the files; '-' is stdin) line by line. A line that starts with '{'
is JSON with a "text" field (other fields are kept in the output); any other line is the text
itself. Writes one line per input line, in input order:
  --format json     {"text": …, "entities": [{"entity", "text", "start", "end", "score"}, …]}
                    (offsets are UTF-16 [start, end) into "text")
  --format markup   the text with <entity:TAG> markup

options:
  --format <f>          json (default) | markup
  --markup              json format: add "markup" to each record
  --n-best <n>          json format: add "paths", the n best tag paths with their scores
  --constrained         only valid BIO paths (default)
  --no-constrained      let the CRF pick any path
  --batch-size <n>      lines per model call (default 32)
${MODEL_USAGE}
  --lenient             skip a malformed JSON line, and read invalid UTF-8 as U+FFFD, with a
                        warning instead of stopping`;

/** What tagging needs of a model (a `NerModel`, or a stand-in in tests). */
export type Tagger = Pick<NerModel, 'predict' | 'predictPaths'>;

/** Options shared by the prompt and the stream mode. */
export interface TagOptions {
  /** Paths considered per text (default 1). */
  nBest?: number;
  /** Only valid BIO paths (default true). */
  constrained?: boolean;
  /** Texts per model call (default 32). */
  batchSize?: number;
}

/** A malformed input line, or input that cannot be read. Exit code 1. */
export class TagInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TagInputError';
  }
}

interface Tagged {
  entities: NerEntity[];
  paths?: NerPath[];
}

/** Tags texts in one model call (none when every text is blank). */
async function tagTexts(model: Tagger, texts: string[], options: TagOptions): Promise<Tagged[]> {
  const out: Tagged[] = texts.map(() => ({ entities: [] }));
  const which = texts.map((t, i) => (t.trim() === '' ? -1 : i)).filter((i) => i >= 0);
  if (which.length === 0) return out;
  const predictOptions: PredictOptions & { withProbabilities?: false } = {
    batchSize: options.batchSize ?? 32,
    constrained: options.constrained ?? true,
  };
  const nBest = options.nBest ?? 1;
  const some = which.map((i) => texts[i]);
  if (nBest === 1) {
    const entities = await model.predict(some, predictOptions);
    which.forEach((i, k) => (out[i] = { entities: entities[k] }));
  } else {
    const paths = await model.predictPaths(some, nBest, predictOptions);
    which.forEach((i, k) => (out[i] = { entities: paths[k][0]?.entities ?? [], paths: paths[k] }));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The prompt.

function entityLines(entities: readonly NerEntity[]): string {
  if (entities.length === 0) return '  (no entities)\n';
  const width = Math.max(...entities.map((e) => e.text.length));
  return entities
    .map(
      (e) =>
        `  ${e.entity.padEnd(4)} ${e.text.padEnd(width)}  [${e.start}, ${e.end})  ` +
        `${e.score.toFixed(3)}\n`,
    )
    .join('');
}

/**
 * The interactive loop: prompts on `output`, tags each line typed on `input`, prints its markup
 * and entities (and the n best paths when `nBest` > 1), until `input` ends (Ctrl-D) or Ctrl-C.
 */
export async function interactiveTag(
  model: Tagger,
  input: Readable,
  output: Writable,
  options: TagOptions & { banner?: string; terminal?: boolean } = {},
): Promise<void> {
  const rl = readline.createInterface({
    input,
    output,
    prompt: '> ',
    terminal: options.terminal ?? Boolean((output as { isTTY?: boolean }).isTTY),
  });
  rl.on('SIGINT', () => rl.close());
  if (options.banner) output.write(options.banner);
  rl.prompt();
  for await (const line of rl) {
    const text = line.trim();
    if (text !== '') {
      try {
        const [tagged] = await tagTexts(model, [text], options);
        if (tagged.paths && tagged.paths.length > 1) {
          tagged.paths.forEach((p, k) => {
            output.write(
              `#${k + 1} (${p.score.toFixed(2)}) ${renderMarkup({ text, entities: p.entities.map(asMarkup) })}\n`,
            );
          });
        } else {
          output.write(`${renderMarkup({ text, entities: tagged.entities.map(asMarkup) })}\n`);
        }
        output.write(entityLines(tagged.entities));
      } catch (error) {
        // A sentence the model cannot take must not end the session.
        output.write(`error: ${(error as Error).message}\n`);
      }
    }
    rl.prompt();
  }
  output.write('\n');
  // Ctrl-D ends the loop; the input must not keep the process alive (a TTY left flowing would).
  input.pause();
}

function asMarkup(e: NerEntity) {
  return { start: e.start, end: e.end, label: e.entity };
}

// ---------------------------------------------------------------------------------------------
// The stream mode.

interface InputLine {
  source: string;
  line: number;
  text: string;
}

/**
 * Lines of a stream as they arrive, taken a batch at a time. Reading pauses while `highWater`
 * lines wait, so memory stays bounded however large the input.
 */
class LineQueue {
  readonly #lines: InputLine[] = [];
  readonly #rl: readline.Interface;
  readonly #highWater: number;
  #ended = false;
  #error: Error | null = null;
  #wake: (() => void) | null = null;

  constructor(stream: Readable, source: string, highWater: number, utf8: TextReadOptions) {
    this.#highWater = highWater;
    // Invalid UTF-8 fails the stream naming its line (or, lenient, is read as U+FFFD with a
    // warning) instead of being replaced without a word.
    const checked = stream.pipe(checkUtf8Stream(source, utf8));
    stream.on('error', (error) => checked.destroy(error));
    this.#rl = readline.createInterface({ input: checked, crlfDelay: Infinity, terminal: false });
    let n = 0;
    this.#rl.on('line', (text) => {
      n++;
      // A byte-order mark is not part of the first sentence.
      this.#lines.push({ source, line: n, text: n === 1 ? text.replace(/^\uFEFF/, '') : text });
      if (this.#lines.length >= this.#highWater) this.#rl.pause();
      this.#notify();
    });
    this.#rl.on('close', () => {
      this.#ended = true;
      this.#notify();
    });
    // readline passes its input's errors on as its own 'error' event.
    this.#rl.on('error', (error) => {
      this.#error ??= new TagInputError(
        error instanceof InvalidUtf8Error ? error.message : `${source}: ${error.message}`,
      );
      this.#ended = true;
      this.#notify();
    });
  }

  /** Up to `max` lines: those already read, or the next to arrive; null at the end. */
  async take(max: number): Promise<InputLine[] | null> {
    while (this.#lines.length === 0 && !this.#ended) {
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
    // The lines read before an error are tagged first, as those before a malformed line are.
    if (this.#lines.length === 0) {
      if (this.#error) throw this.#error;
      return null;
    }
    const out = this.#lines.splice(0, max);
    if (this.#lines.length < this.#highWater && !this.#ended) this.#rl.resume();
    return out;
  }

  close(): void {
    this.#rl.close();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }
}

/** One input line read as a record: its text and the other JSON fields to carry over. */
type ParsedLine =
  | { ok: true; text: string; fields: Record<string, unknown> | null }
  | { ok: false; message: string };

/** A line that starts with `{` is JSON with a string `text`; any other line is the text. */
export function parseTagLine(line: string): ParsedLine {
  if (!line.trimStart().startsWith('{')) return { ok: true, text: line, fields: null };
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (error) {
    return { ok: false, message: `malformed JSON (${(error as Error).message})` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, message: 'expected a JSON object with a "text" string' };
  }
  const fields = value as Record<string, unknown>;
  if (typeof fields.text !== 'string') {
    return { ok: false, message: 'the JSON object has no "text" string' };
  }
  return { ok: true, text: fields.text, fields };
}

/** Options of {@link tagStream}. */
export interface TagStreamOptions extends TagOptions {
  format?: 'json' | 'markup';
  /** json format: add the `markup` field. */
  markup?: boolean;
  /** Skip malformed lines, and read invalid UTF-8 as U+FFFD, with a warning instead of throwing. */
  lenient?: boolean;
  onWarning?: (message: string) => void;
}

/** Writes, waiting for the stream to drain when its buffer is full. */
async function write(out: Writable, text: string): Promise<void> {
  // A closed pipe never drains: fail at once rather than wait for ever.
  if (out.errored || out.destroyed) throw out.errored ?? new Error('the output is closed');
  if (!out.write(text)) await Promise.race([once(out, 'drain'), once(out, 'close')]);
}

/**
 * Tags every line of `input` and writes one output line per input line to `output`, in order.
 *
 * @param source the name used in messages (a file path, or `<stdin>`)
 * @returns the number of lines written
 * @throws {TagInputError} for the first malformed JSON line (after writing the lines before it),
 *   unless `lenient`
 */
export async function tagStream(
  model: Tagger,
  input: Readable,
  output: Writable,
  source: string,
  options: TagStreamOptions = {},
): Promise<number> {
  const batchSize = options.batchSize ?? 32;
  const warn = options.onWarning ?? ((m: string) => console.warn(m));
  const queue = new LineQueue(input, source, batchSize * 4, {
    lenient: options.lenient,
    onWarning: (w) => warn(`koner tag: ${w.message}`),
  });
  let written = 0;
  try {
    for (let lines = await queue.take(batchSize); lines; lines = await queue.take(batchSize)) {
      const records: { text: string; fields: Record<string, unknown> | null }[] = [];
      let failure: string | null = null;
      for (const l of lines) {
        const parsed = parseTagLine(l.text);
        if (parsed.ok) {
          records.push(parsed);
          continue;
        }
        const message = `${l.source}:${l.line}: ${parsed.message}`;
        if (!options.lenient) {
          failure = message;
          break;
        }
        warn(`koner tag: ${message}; line skipped`);
      }
      const tagged = await tagTexts(
        model,
        records.map((r) => r.text),
        options,
      );
      let chunk = '';
      records.forEach((r, i) => {
        const t = tagged[i];
        if (options.format === 'markup') {
          chunk += `${renderMarkup({ text: r.text, entities: t.entities.map(asMarkup) })}\n`;
          return;
        }
        const record: Record<string, unknown> = { text: r.text, ...r.fields, entities: t.entities };
        if (options.markup) {
          record.markup = renderMarkup({ text: r.text, entities: t.entities.map(asMarkup) });
        }
        if (t.paths) record.paths = t.paths;
        chunk += `${JSON.stringify(record)}\n`;
      });
      if (chunk) await write(output, chunk);
      written += records.length;
      if (failure) throw new TagInputError(failure);
    }
  } finally {
    queue.close();
  }
  return written;
}

// ---------------------------------------------------------------------------------------------
// The command.

export const tagCommand: CliCommand = {
  name: 'tag',
  summary: 'find entities in sentences: interactive, or lines / JSONL in, JSONL out',
  usage: tagUsage,
  run: tag,
};

async function tag(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    allowNegative: true,
    options: {
      format: { type: 'string' },
      markup: { type: 'boolean' },
      'n-best': { type: 'string' },
      constrained: { type: 'boolean' },
      'batch-size': { type: 'string' },
      ...MODEL_OPTIONS,
      lenient: { type: 'boolean' },
    },
  });
  const flags = modelFlags(values);
  const format =
    values.format === undefined
      ? 'json'
      : choiceFlag(values.format, '--format', ['json', 'markup']);
  const nBest = optionalIntegerFlag(values['n-best'], '--n-best', 1, 1, LIMITS.maxNBest);
  if (nBest > 1 && format === 'markup') {
    throw new UsageError('--n-best > 1 needs --format json (markup has room for one path)');
  }
  const options: TagStreamOptions = {
    format,
    markup: values.markup ?? false,
    nBest,
    constrained: values.constrained ?? true,
    batchSize: optionalIntegerFlag(values['batch-size'], '--batch-size', 32, 1),
    lenient: values.lenient ?? false,
  };
  // A mistyped file name is better told before the model takes its seconds to load.
  for (const file of positionals) {
    if (file === '-') continue;
    try {
      await access(file, constants.R_OK);
    } catch (error) {
      throw new TagInputError(`${file}: cannot read (${(error as NodeJS.ErrnoException).code})`);
    }
  }
  const model = await loadModel(flags);

  try {
    if (positionals.length === 0 && process.stdin.isTTY) {
      const { device } = model.placement;
      await interactiveTag(model, process.stdin, process.stdout, {
        ...options,
        banner: `koner tag: ${flags.dir} on ${device}. Type a sentence and Enter; Ctrl-D quits.\n`,
      });
      return 0;
    }
    // An output error (EPIPE when `| head` has read enough) surfaces at the next write; this
    // listener only keeps it from being an uncaught 'error' event meanwhile.
    process.stdout.on('error', () => {});
    try {
      for (const file of positionals.length ? positionals : ['-']) {
        const stdin = file === '-';
        const input = stdin ? process.stdin : createReadStream(file);
        await tagStream(model, input, process.stdout, stdin ? '<stdin>' : file, {
          ...options,
          onWarning: (message) => console.error(message),
        });
      }
    } catch (error) {
      // The reader went away: nothing more to do, and nothing failed.
      if ((error as NodeJS.ErrnoException).code === 'EPIPE') return 0;
      throw error;
    }
    return 0;
  } finally {
    void model.dispose();
  }
}
