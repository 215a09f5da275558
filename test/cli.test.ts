import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { interactiveTag, parseTagLine, tagStream, type Tagger } from '../lib/cli/tag.js';
import { formatConll, readKmouCorpus } from '../lib/corpus/index.js';
import { LABELS, parseMarkup, renderMarkup } from '../lib/labels/index.js';
import { readModelConfig } from '../lib/model/config.js';
import { defaultModelDir } from '../lib/model/default-model.js';
import type { NerEntity } from '../lib/model/ner-model.js';
import { packageRoot } from '../lib/native.js';
import { makeModelDir } from './fixtures/model-dir.js';

const shared = path.resolve(packageRoot, '..', 'shared');
const tokenizerDir = path.join(shared, 'data', 'kobert-tokenizer');
const valDir = path.join(shared, 'data', 'kmou-ner', 'val');
const haveShared = existsSync(tokenizerDir) && existsSync(valDir);
if (!haveShared) console.warn(`cli tests skipped: ${shared}/data is absent`);
const SCRIPT = '/usr/bin/script';
const MAIN = path.join(packageRoot, 'lib', 'cli', 'main.ts');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `koner <args>` from the sources (tsx), feeding `input` to its stdin. Model commands get
 * `--threads 1`: a training run may be using the other cores of this machine.
 */
function koner(args: string[], input = '', killAfterMs = 0): Promise<Run> {
  const [command, ...rest] = args;
  const full = ['tag', 'eval', 'serve', 'explain'].includes(command)
    ? [command, '--threads', '1', ...rest]
    : args;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...full], {
      cwd: packageRoot,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    // A command that hangs is killed, so that its test fails rather than the run.
    const timer = killAfterMs > 0 ? setTimeout(() => child.kill('SIGKILL'), killAfterMs) : null;
    child.on('error', reject);
    child.on('close', (code) => {
      if (timer) clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => {}); // a command that exits early closes its stdin
    child.stdin.end(input);
  });
}

function jsonLines(
  stdout: string,
): { text: string; entities: NerEntity[]; [k: string]: unknown }[] {
  return stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { text: string; entities: NerEntity[] });
}

function expectValidEntities(text: string, entities: NerEntity[]): void {
  for (const e of entities) {
    expect(e.entity).toBe('PER');
    expect(0 <= e.start && e.start < e.end && e.end <= text.length).toBe(true);
    expect(text.slice(e.start, e.end)).toBe(e.text);
  }
}

/** A small random model whose classifier always prefers B-PER: every piece is a PER entity. */
function perModelDir(tmp: string): Promise<string> {
  return makeModelDir(tmp, { tokenizerDir, name: 'per', label: 'B-PER', maxPositions: 64 });
}

/** A stand-in model: every whitespace-separated word is a PER entity; "boom" throws. */
const fakeTagger: Tagger = {
  predict: (async (texts: string[]) =>
    texts.map((text) => {
      if (text.includes('boom')) throw new Error('the model failed');
      return [...text.matchAll(/\S+/g)].map((m) => ({
        entity: 'PER',
        text: m[0],
        start: m.index,
        end: m.index + m[0].length,
        score: 0.9,
      }));
    })) as Tagger['predict'],
  predictPaths: (async (texts: string[], nBest: number) =>
    texts.map((text) =>
      Array.from({ length: nBest }, (_, k) => ({
        score: 10 - k,
        entities: k === 0 ? [{ entity: 'LOC', text, start: 0, end: text.length, score: 1 }] : [],
      })),
    )) as Tagger['predictPaths'],
};

describe('tag: lines and JSONL through injected streams', () => {
  it('reads a line as JSON only when it starts with {', () => {
    expect(parseTagLine('서울')).toEqual({ ok: true, text: '서울', fields: null });
    expect(parseTagLine('  {"text": "a", "id": 1}')).toEqual({
      ok: true,
      text: 'a',
      fields: { text: 'a', id: 1 },
    });
    expect(parseTagLine('{"text": 1}')).toMatchObject({ ok: false });
    expect(parseTagLine('{"text": "a"')).toMatchObject({ ok: false });
    expect(parseTagLine('[1]')).toEqual({ ok: true, text: '[1]', fields: null });
  });

  it('streams many lines in order with bounded batches', async () => {
    const lines = Array.from({ length: 1000 }, (_, i) => `문장 ${i}`);
    const input = PassThrough.from([lines.join('\n') + '\n']);
    const output = new PassThrough();
    let out = '';
    output.setEncoding('utf8').on('data', (d: string) => (out += d));
    const sizes: number[] = [];
    const counting: Tagger = {
      ...fakeTagger,
      predict: ((texts: string[], o: object) => {
        sizes.push(texts.length);
        return fakeTagger.predict(texts, o);
      }) as Tagger['predict'],
    };
    const written = await tagStream(counting, input, output, '<test>', { batchSize: 16 });
    expect(written).toBe(1000);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(16);
    expect(jsonLines(out).map((r) => r.text)).toEqual(lines);
  });
});

describe('tag: input that is not UTF-8', () => {
  // '부산' split inside its first character across chunks, then a line with a Latin-1 byte.
  const chunks = () => {
    const good = Buffer.from('서울\n부산\n');
    return [good.subarray(0, 8), good.subarray(8), Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a])];
  };

  it('is refused naming its line, after the lines before it', async () => {
    const output = new PassThrough();
    let out = '';
    output.setEncoding('utf8').on('data', (d: string) => (out += d));
    await expect(
      tagStream(fakeTagger, PassThrough.from(chunks()), output, '<stdin>', { batchSize: 1 }),
    ).rejects.toThrow(/^<stdin>:3: invalid UTF-8 at byte 17/);
    expect(jsonLines(out).map((r) => r.text)).toEqual(['서울', '부산']);
  });

  it('is read as U+FFFD with a warning when lenient', async () => {
    const output = new PassThrough();
    let out = '';
    output.setEncoding('utf8').on('data', (d: string) => (out += d));
    const warnings: string[] = [];
    const written = await tagStream(fakeTagger, PassThrough.from(chunks()), output, 'in.txt', {
      lenient: true,
      onWarning: (m) => warnings.push(m),
    });
    expect(written).toBe(3);
    expect(jsonLines(out).map((r) => r.text)).toEqual(['서울', '부산', 'caf\uFFFD']);
    expect(warnings).toEqual([expect.stringMatching(/^koner tag: in\.txt:3: invalid UTF-8/)]);
  });
});

describe('tag: the interactive loop with injected streams', () => {
  it('prints markup and entities per sentence, ignores blank lines, survives a model error', async () => {
    const input = new PassThrough();
    const output = new PassThrough();
    let out = '';
    output.setEncoding('utf8').on('data', (d: string) => (out += d));
    const done = interactiveTag(fakeTagger, input, output, { banner: 'hello\n', terminal: false });
    input.write('이순신 장군\n\n');
    input.write('boom\n');
    input.end('부산\n');
    await done;
    expect(out).toContain('hello\n');
    expect(out).toContain('<이순신:PER> <장군:PER>\n');
    expect(out).toMatch(/ {2}PER {2}이순신 {2}\[0, 3\) {2}0\.900/);
    expect(out).toContain('error: the model failed');
    expect(out).toContain('<부산:PER>\n');
    expect(out.endsWith('> \n')).toBe(true); // the last prompt, and a newline at the end
  });

  it('shows the n best paths when asked', async () => {
    const input = PassThrough.from(['서울\n']);
    const output = new PassThrough();
    let out = '';
    output.setEncoding('utf8').on('data', (d: string) => (out += d));
    await interactiveTag(fakeTagger, input, output, { nBest: 2, terminal: false });
    expect(out).toContain('#1 (10.00) <서울:LOC>');
    expect(out).toContain('#2 (9.00) 서울');
  });
});

describe.skipIf(!haveShared)('koner tag, eval and serve as commands', () => {
  let tmp: string;
  let modelDir: string;

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'koner-cli-'));
    modelDir = await perModelDir(tmp);
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('tags piped plain lines as JSONL, one record per input line', async () => {
    const lines = ['이순신은 한성에서 태어났다.', '', '서울  부산 😀'];
    const run = await koner(['tag', '--model', modelDir], lines.join('\n') + '\n');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const records = jsonLines(run.stdout);
    expect(records.map((r) => r.text)).toEqual(lines);
    records.forEach((r) => expectValidEntities(r.text, r.entities));
    expect(records[0].entities.length).toBeGreaterThan(2);
    expect(records[1].entities).toEqual([]);
    expect(Object.keys(records[0])).toEqual(['text', 'entities']);
  });

  it('tags JSONL lines, keeps their other fields, adds markup on request', async () => {
    const input = [
      JSON.stringify({ id: 'a', text: '세종대왕' }),
      '평문 줄도 된다',
      JSON.stringify({ text: '한글', meta: { n: 1 } }),
    ].join('\n');
    const run = await koner(['tag', '--model', modelDir, '--markup', '--batch-size', '2'], input);
    expect(run.code).toBe(0);
    const records = jsonLines(run.stdout);
    expect(records.map((r) => r.text)).toEqual(['세종대왕', '평문 줄도 된다', '한글']);
    expect(records[0].id).toBe('a');
    expect(records[2].meta).toEqual({ n: 1 });
    for (const r of records) {
      const markup = r.markup as string;
      expect(markup).toBe(
        renderMarkup({
          text: r.text,
          entities: r.entities.map((e) => ({ start: e.start, end: e.end, label: e.entity })),
        }),
      );
      expect(parseMarkup(r.text, markup).length).toBe(r.entities.length);
    }
  });

  it('writes markup lines with --format markup, and the n best paths with --n-best', async () => {
    const markup = await koner(['tag', '--model', modelDir, '--format', 'markup'], '서울 부산\n');
    expect(markup.code).toBe(0);
    expect(markup.stdout).toBe('<서울:PER> <부산:PER>\n');
    const nBest = await koner(['tag', '--model', modelDir, '--n-best', '3'], '부산\n');
    expect(nBest.code).toBe(0);
    const [record] = jsonLines(nBest.stdout);
    const paths = record.paths as { score: number; entities: NerEntity[] }[];
    expect(paths.length).toBe(3);
    expect(record.entities).toEqual(paths[0].entities);
    const loose = await koner(['tag', '--model', modelDir, '--no-constrained'], '부산\n');
    expect(loose.code).toBe(0);
  });

  it('reads files in the order given', async () => {
    const a = path.join(tmp, 'a.txt');
    const b = path.join(tmp, 'b.jsonl');
    writeFileSync(a, '\uFEFF첫째\n둘째\n');
    writeFileSync(b, '{"text": "셋째"}\n');
    const run = await koner(['tag', '--model', modelDir, a, b]);
    expect(run.code).toBe(0);
    expect(jsonLines(run.stdout).map((r) => r.text)).toEqual(['첫째', '둘째', '셋째']);
  });

  it('stops at a malformed JSONL line, naming its line number; --lenient skips it', async () => {
    const input = ['{"text": "하나"}', '둘', '{"text": "셋"', '{"text": "넷"}'].join('\n');
    const strict = await koner(['tag', '--model', modelDir], input);
    expect(strict.code).toBe(1);
    expect(strict.stderr).toMatch(/^koner tag: <stdin>:3: malformed JSON/);
    expect(jsonLines(strict.stdout).map((r) => r.text)).toEqual(['하나', '둘']);
    const lenient = await koner(['tag', '--model', modelDir, '--lenient'], input);
    expect(lenient.code).toBe(0);
    expect(lenient.stderr).toMatch(/<stdin>:3: malformed JSON .*; line skipped/);
    expect(jsonLines(lenient.stdout).map((r) => r.text)).toEqual(['하나', '둘', '넷']);
    const noText = await koner(['tag', '--model', modelDir], '{"txt": "a"}\n');
    expect(noText.code).toBe(1);
    expect(noText.stderr).toMatch(/<stdin>:1: the JSON object has no "text" string/);
  });

  it.skipIf(!existsSync(SCRIPT))('is a prompt at a terminal (through script(1))', async () => {
    const command = `'${process.execPath}' --import tsx '${MAIN}' tag --threads 1 --model '${modelDir}'`;
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(SCRIPT, ['-qfc', command, '/dev/null'], {
        cwd: packageRoot,
        env: { ...process.env, TERM: 'dumb' },
      });
      let text = '';
      let typed = false;
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        text += d;
        // Typed once the prompt is up: the terminal is then in raw mode, where Ctrl-D (\x04)
        // reaches readline. Ended before, script(1) turned the end of input into a NUL there.
        if (!typed && text.includes('Ctrl-D quits.')) {
          typed = true;
          child.stdin.write('이순신 장군\n부산\n\x04');
        }
      });
      child.on('error', reject);
      child.on('close', () => resolve(text));
    });
    // eslint-disable-next-line no-control-regex
    const screen = out.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '');
    expect(screen).toContain('Type a sentence and Enter; Ctrl-D quits.');
    // The terminal echoes the typed lines as they arrive, so a result may follow a prompt.
    expect(screen).toMatch(/^(> )?<이:PER><순:PER><신:PER> <장:PER><군:PER>$/m);
    expect(screen).toMatch(/^(> )?<부산:PER>$/m);
    expect(screen).toMatch(/ {2}PER {2}부산 {2}\[0, 2\) {2}1\.000/);
    expect(screen).toContain('> ');
  });

  it('evaluates on a few KMOU sentences: reports, numbers, an SVG', async () => {
    const svg = path.join(tmp, 'out', 'confusion.svg');
    const run = await koner([
      'eval',
      '--model',
      modelDir,
      '--data',
      valDir,
      '--limit',
      '12',
      '--confusion',
      svg,
    ]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/token-level \(pieces, B-\/I- labels; macro F1 \d+\.\d\d\)/);
    expect(run.stdout).toMatch(/^ +B-PER +\d\.\d{4} +\d\.\d{4} +\d\.\d{4} +\d+$/m);
    expect(run.stdout).toMatch(/^ +macro avg +\d\.\d{4}/m);
    expect(run.stdout).toContain('entity-level (exact character span and type):');
    expect(run.stdout).toContain('gold \\ pred');
    expect(run.stdout).toMatch(
      /token macro F1 \d+\.\d\d · entity P [\d.]+ R [\d.]+ F1 [\d.]+ \(12 sentences/,
    );
    const image = readFileSync(svg, 'utf8');
    expect(image).toMatch(/<svg[\s>]/);
    expect(image).toContain('B-PER');
  });

  it('evaluates CoNLL files with --json and without an SVG', async () => {
    const sentences = (await readKmouCorpus(valDir)).slice(0, 8);
    const conll = path.join(tmp, 'val.conll');
    writeFileSync(conll, formatConll(sentences).content);
    const run = await koner([
      'eval',
      '--model',
      modelDir,
      '--data',
      conll,
      '--format',
      'conll',
      '--json',
      '--no-confusion',
    ]);
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout) as {
      sentences: number;
      tokenMacroF1: number;
      entity: { precision: number; recall: number; f1: number; support: number };
      perType: Record<string, { support: number }>;
      confusion: { labels: string[]; counts: number[][] };
      confusionSvg: string | null;
    };
    expect(result.sentences).toBe(8);
    expect(result.tokenMacroF1).toBeGreaterThanOrEqual(0);
    expect(result.tokenMacroF1).toBeLessThanOrEqual(1);
    expect(result.entity.support).toBeGreaterThan(0);
    // Every piece is predicted B-PER: PER's recall is the share of PER entities of one piece.
    expect(result.perType.PER).toBeDefined();
    expect(result.confusion.labels).toEqual(LABELS);
    expect(result.confusionSvg).toBeNull();
  });

  it('answers a bad command line with the usage and exit code 2', async () => {
    const cases: [string[], RegExp][] = [
      [['tag', '--model', modelDir, '--format', 'yaml'], /--format expects one of json, markup/],
      [['tag', '--model', modelDir, '--bogus'], /Unknown option '--bogus'/],
      [['tag', '--model', modelDir, '--batch-size', '0'], /--batch-size expects an integer ≥ 1/],
      [['tag', '--model', modelDir, '--dtype', 'int4'], /--dtype expects one of float32, float16/],
      [['tag', '--model', modelDir, '--format', 'markup', '--n-best', '2'], /needs --format json/],
      [['eval', '--model', modelDir], /--data <path> is required/],
      [['eval', '--data', valDir, '--model', modelDir, '--format', 'csv'], /--format expects/],
      [['serve', '--model', modelDir, '--port', 'http'], /--port expects an integer from 0/],
      [['serve', '--model', modelDir, 'extra'], /unexpected argument 'extra'/],
      [['serve', '--port', '99999'], /--port expects an integer from 0/],
      [['import', 'a.bin'], /expected <checkpoint> <model-dir>/],
      [['import', 'a.bin', 'out', '--heads', 'x'], /--heads expects an integer ≥ 1/],
      [['import', 'a.bin', 'out', '--dtype', 'int8'], /--dtype expects one of float32/],
      [['train'], /--config <file> is required/],
      [['train', '--config', 'x.json', '--stop-after', '0'], /--stop-after expects an integer ≥ 1/],
      [['train', '--config', 'x.json', '--nnodes', '2'], /--nnodes need --nproc/],
      [['pretrain', '--config', 'x.json', '--max-steps', 'many'], /--max-steps expects an integer/],
      [['pretrain', '--bogus'], /Unknown option '--bogus'/],
      [['demo', 'extra'], /unexpected argument 'extra'/],
      [['explain', '--model', modelDir], /no text given/],
      [['explain', '--model', modelDir, '--top', '0', '부산'], /--top expects an integer ≥ 1/],
      [['explain', '--model', modelDir, '--layers', '0,x', '부산'], /--layers expects an integer/],
      [
        ['explain', '--model', modelDir, '--layers', '2', '부산'],
        /--layers: the model has 2 layers/,
      ],
      [['explain', '--model', modelDir, '--heads', '4', '부산'], /--heads: the model has 4 heads/],
      [['nonsense'], /unknown command 'nonsense'/],
    ];
    const runs = await Promise.all(cases.map(([args]) => koner(args)));
    runs.forEach((run, i) => {
      expect(run.code, cases[i][0].join(' ')).toBe(2);
      expect(run.stderr).toMatch(cases[i][1]);
      expect(run.stderr).toMatch(/usage: koner/);
      expect(run.stdout).toBe('');
    });
    // Every command prints its usage for --help, and the table lists them all.
    const names = ['demo', 'import', 'pretrain', 'train', 'tag', 'eval', 'serve'];
    const helps = await Promise.all(names.map((name) => koner([name, '--help'])));
    helps.forEach((run, i) => {
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(new RegExp(`^usage: koner ${names[i]}`));
    });
    const overview = await koner(['help']);
    for (const name of names) expect(overview.stdout).toMatch(new RegExp(`^  ${name} +\\S`, 'm'));
  });

  it('says at once that it cannot write under /proc (train before reading its data)', async () => {
    const config = path.join(tmp, 'proc-train.json');
    writeFileSync(
      config,
      JSON.stringify({
        corpus: { format: 'kmou', train: valDir, validation: valDir },
        model: {
          init: 'scratch',
          size: {
            hiddenSize: 32,
            numHiddenLayers: 1,
            numAttentionHeads: 2,
            intermediateSize: 32,
            maxPositionEmbeddings: 64,
          },
        },
        maxLength: 64,
        output: '/proc/1/koner-run',
      }),
    );
    const runs = await Promise.all([
      koner(
        ['import', path.join(modelDir, 'model.safetensors'), '/proc/1/koner-model'],
        '',
        60_000,
      ),
      koner(
        [
          'eval',
          '--model',
          modelDir,
          '--data',
          valDir,
          '--limit',
          '2',
          '--confusion',
          '/proc/1/x/c.svg',
        ],
        '',
        60_000,
      ),
      koner(['train', '--config', config, '--output', '/proc/1/koner-run'], '', 60_000),
    ]);
    for (const run of runs) {
      expect(run.code, run.stderr).toBe(1);
      expect(run.stderr).toMatch(/cannot create \/proc\/1\/(koner-model|x|koner-run)/);
    }
    // train stopped before reading its corpus.
    expect(runs[2].stderr).not.toMatch(/sentences/);
  }, 90_000);

  it('tags with the bundled model when --model is not given', async () => {
    const run = await koner(['tag', '--threads', '1'], '한국해양대학교는 부산에 있다.\n');
    expect(run.code).toBe(0);
    const [line] = run.stdout.trim().split('\n');
    const result = JSON.parse(line) as {
      text: string;
      entities: { entity: string; text: string }[];
    };
    expect(result.entities.map((e) => [e.entity, e.text])).toContainEqual(['LOC', '부산']);
  });

  it('explains a sentence with the bundled model: a self-contained HTML file', async () => {
    const out = path.join(tmp, 'explain', 'view.html');
    const run = await koner(['explain', '--out', out, '한국해양대학교는 부산에 있다.']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/<부산:LOC>/);
    const bundled = await readModelConfig(defaultModelDir());
    expect(run.stdout).toMatch(
      new RegExp(
        `wrote .*view\\.html \\(\\d+ tokens, ${bundled.numHiddenLayers} layers × ` +
          `${bundled.numAttentionHeads} heads\\)`,
      ),
    );
    const html = readFileSync(out, 'utf8');
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain('konerView.render');
    const view = JSON.parse(
      /<script type="application\/json" id="koner-view">(.*?)<\/script>/s.exec(html)![1],
    ) as { model: string; text: string; layers: number[]; tokens: unknown[] };
    expect(view.model).toBe('kmou-small');
    expect(view.text).toBe('한국해양대학교는 부산에 있다.');
    // --json writes the view itself, here for some layers and heads only.
    const json = path.join(tmp, 'explain', 'view.json');
    const some = await koner(
      ['explain', '--json', '--out', json, '--layers', '3', '--heads', '0,2', '--top', '2', '-'],
      '부산\n',
    );
    expect(some.code).toBe(0);
    const small = JSON.parse(readFileSync(json, 'utf8')) as {
      text: string;
      layers: number[];
      heads: number[];
      tokens: { top: unknown[] }[];
    };
    expect([small.text, small.layers, small.heads]).toEqual(['부산', [3], [0, 2]]);
    expect(small.tokens.every((t) => t.top.length === 2)).toBe(true);
  });

  it('reports a missing model directory as an error, exit code 1', async () => {
    const run = await koner(['tag', '--model', path.join(tmp, 'absent')], 'a\n');
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^koner tag: .*config\.json: cannot read the model config/);
  });

  it('serves until SIGTERM, then stops cleanly', async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', MAIN, 'serve', '--threads', '1', '--model', modelDir, '--port', '0'],
      { cwd: packageRoot },
    );
    let stdout = '';
    child.stdout.setEncoding('utf8');
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (d: string) => {
        stdout += d;
        const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout);
        if (m) resolve(m[1]);
      });
      child.on('exit', () => reject(new Error(`exited early: ${stdout}`)));
    });
    const response = await fetch(`${url}/v1/ner`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: '서울' }),
    });
    expect(((await response.json()) as { entities: NerEntity[] }).entities[0].text).toBe('서울');
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stdout).toContain('koner serve: stopped');
  });
});
