/**
 * `koner explain "문장"`: writes a self-contained HTML file showing what the model saw in a
 * sentence: the tagged sentence, each piece's likeliest tags and a head view of the attention.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { explainHtml } from '../explain/html.js';
import { DEFAULT_TOP_TAGS, explainView } from '../explain/view.js';
import { renderMarkup } from '../labels/markup.js';
import { makeDirectory } from '../output-dir.js';
import { integerFlag, optionalIntegerFlag, UsageError, type CliCommand } from './args.js';
import { loadModel, MODEL_OPTIONS, MODEL_USAGE, modelFlags } from './model-flags.js';

export const explainUsage = `usage: koner explain [--model <dir>] [options] <text …>

Writes one self-contained HTML file (no network needed to open it) showing what the model saw in
<text> ('-' reads it from stdin): the sentence with its entities, every piece's likeliest tags
(CRF marginals), and a head view: lines from each piece to the pieces it attends to, one layer
and head at a time, chosen with a selector. Click a piece or an entity to follow it.

options:
  --out <file>          where to write (default ./explain.html)
  --json                write the view's JSON (what POST /v1/explain answers) instead of HTML
  --layers <list>       layers to include, 0-based, e.g. 0,3 (default: all)
  --heads <list>        heads to include, 0-based (default: all)
  --top <n>             likeliest tags kept per piece (default ${DEFAULT_TOP_TAGS})
  --no-constrained      let the CRF pick any path (default: only valid BIO paths)
${MODEL_USAGE}`;

export const explainCommand: CliCommand = {
  name: 'explain',
  summary: "an HTML file showing a sentence's tag probabilities and attention",
  usage: explainUsage,
  run: explain,
};

function indexListFlag(value: string | undefined, flag: string): number[] | undefined {
  if (value === undefined) return undefined;
  return value.split(',').map((part) => integerFlag(part.trim(), flag));
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

async function explain(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      out: { type: 'string' },
      json: { type: 'boolean' },
      layers: { type: 'string' },
      heads: { type: 'string' },
      top: { type: 'string' },
      constrained: { type: 'boolean' },
      'no-constrained': { type: 'boolean' },
      ...MODEL_OPTIONS,
    },
  });
  if (positionals.length === 0) throw new UsageError('no text given');
  const text =
    positionals.length === 1 && positionals[0] === '-' ? await readStdin() : positionals.join(' ');
  if (text.trim() === '') throw new UsageError('the text is empty');
  const layers = indexListFlag(values.layers, '--layers');
  const heads = indexListFlag(values.heads, '--heads');
  const topTags = optionalIntegerFlag(values.top, '--top', DEFAULT_TOP_TAGS, 1);
  const out = values.out ?? (values.json ? 'explain.json' : 'explain.html');
  const flags = modelFlags(values);

  const model = await loadModel(flags);
  try {
    if (layers?.some((l) => l >= model.config.numHiddenLayers)) {
      throw new UsageError(
        `--layers: the model has ${model.config.numHiddenLayers} layers (0 to ` +
          `${model.config.numHiddenLayers - 1}), got ${values.layers}`,
      );
    }
    if (heads?.some((h) => h >= model.config.numAttentionHeads)) {
      throw new UsageError(
        `--heads: the model has ${model.config.numAttentionHeads} heads (0 to ` +
          `${model.config.numAttentionHeads - 1}), got ${values.heads}`,
      );
    }
    const explanation = await model.explain(text, {
      layers,
      heads,
      constrained: !values['no-constrained'],
    });
    const view = explainView(explanation, { topTags, model: path.basename(model.dir) });
    await makeDirectory(path.dirname(path.resolve(out)));
    await writeFile(out, values.json ? JSON.stringify(view) : explainHtml(view), 'utf8');
    const entities = explanation.entities.map((e) => ({ ...e, label: e.entity }));
    console.log(renderMarkup({ text, entities }));
    console.log(
      `koner explain: wrote ${out} (${explanation.tokens.length} tokens, ` +
        `${explanation.layers.length} layers × ${explanation.heads.length} heads)`,
    );
    return 0;
  } finally {
    await model.dispose();
  }
}
