/** `koner import <file> <dir>`: a checkpoint (safetensors or torch.save) to a model directory. */
import { parseArgs } from 'node:util';

import { importCheckpoint, type ImportOptions } from '../model/import.js';
import { choiceFlag, integerFlag, UsageError, type CliCommand } from './args.js';

export const importUsage = `usage: koner import <checkpoint> <model-dir> [options]

Writes <model-dir>/config.json, model.safetensors, tokenizer.model and vocab.json from a Hugging
Face BERT state dict (pytorch_model.bin, with or without "bert."), a BertForTokenClassification,
the KoBERT+CRF reference project's checkpoint (model_state_dict, module., position_wise_ff, crf),
or koner's own safetensors. A missing head is initialised.

options:
  --labels <file>          label names: a JSON list, {"0": "O", ...}, {"O": 0, ...} (such as the
                           reference's ner_to_index.json) or a config.json with id2label
                           (default: a config.json beside the checkpoint, else KMOU's 21 labels)
  --heads <n>              attention heads (default: config.json beside it, else hidden / 64)
  --dtype <t>              float32 | float16 | bfloat16 (default: as stored)
  --head <h>               softmax | crf, for a checkpoint without a head (default crf)
  --special-labels <how>   keep | fold the [CLS] [SEP] [PAD] [MASK] labels (default keep)
  --seed <n>               seed for an initialised head
  --tokenizer-model <file> the SentencePiece model the checkpoint was trained with, and
  --tokenizer-vocab <file> its vocabulary JSON (default: tokenizer.model and vocab.json, or
                           KoBERT's files, beside the checkpoint; else KoBERT's own when the
                           vocabulary has 8002 ids)
  --no-tokenizer           copy no tokenizer (an encoder to fine-tune with a train.json's)`;

export const importCommand: CliCommand = {
  name: 'import',
  summary: 'a checkpoint (safetensors or torch.save) to a model directory',
  usage: importUsage,
  run: importCheckpointCommand,
};

async function importCheckpointCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      labels: { type: 'string' },
      heads: { type: 'string' },
      dtype: { type: 'string' },
      head: { type: 'string' },
      'special-labels': { type: 'string' },
      seed: { type: 'string' },
      'tokenizer-model': { type: 'string' },
      'tokenizer-vocab': { type: 'string' },
      'no-tokenizer': { type: 'boolean' },
    },
  });
  if (positionals.length !== 2) throw new UsageError('expected <checkpoint> <model-dir>');
  const options: ImportOptions = {};
  if (values.labels !== undefined) options.labels = values.labels;
  if (values.heads !== undefined)
    options.numAttentionHeads = integerFlag(values.heads, '--heads', 1);
  if (values.dtype !== undefined) {
    options.dtype = choiceFlag(values.dtype, '--dtype', [
      'float32',
      'float16',
      'bfloat16',
    ] as const);
  }
  if (values.head !== undefined) {
    options.head = choiceFlag(values.head, '--head', ['softmax', 'crf'] as const);
  }
  if (values['special-labels'] !== undefined) {
    options.specialLabels = choiceFlag(values['special-labels'], '--special-labels', [
      'keep',
      'fold',
    ] as const);
  }
  if (values.seed !== undefined) options.seed = integerFlag(values.seed, '--seed');
  const model = values['tokenizer-model'];
  const vocab = values['tokenizer-vocab'];
  if ((model === undefined) !== (vocab === undefined)) {
    throw new UsageError('--tokenizer-model and --tokenizer-vocab go together');
  }
  if (values['no-tokenizer']) {
    if (model !== undefined) throw new UsageError('--no-tokenizer excludes --tokenizer-model');
    options.tokenizer = null;
  } else if (model !== undefined && vocab !== undefined) {
    options.tokenizer = { model, vocab };
  }

  const [file, dir] = positionals;
  const result = await importCheckpoint(file, dir, options);
  const c = result.config;
  console.log(`imported ${file} (${result.layout}) into ${dir}`);
  console.log(
    `  BERT: ${c.numHiddenLayers} layers, hidden ${c.hiddenSize}, ${c.numAttentionHeads} heads, ` +
      `intermediate ${c.intermediateSize}, vocab ${c.vocabSize}, positions ${c.maxPositionEmbeddings}`,
  );
  console.log(`  head: ${c.head}, ${c.labels.length} labels (${c.labels.slice(0, 5).join(' ')} …)`);
  console.log(`  wrote ${result.tensors} tensors to ${result.weightsPath}`);
  console.log(
    result.tokenizer
      ? `  tokenizer: ${result.tokenizer.model} and ${result.tokenizer.vocab}`
      : '  tokenizer: none (NerModel.load needs one given)',
  );
  if (result.initialised.length) console.log(`  initialised: ${result.initialised.join(', ')}`);
  if (result.foldedLabels.length) console.log(`  folded labels: ${result.foldedLabels.join(' ')}`);
  if (result.dropped.length) {
    const shown = result.dropped.slice(0, 8).join(', ');
    const more = result.dropped.length > 8 ? `, … (${result.dropped.length} in all)` : '';
    console.log(`  not imported: ${shown}${more}`);
  }
  return 0;
}
