/**
 * config.json against the header of model.safetensors, before the model is built: a size in the
 * config that its weights contradict (`num_hidden_layers: 1000` beside a 4-layer file) fails at
 * once, naming the field, instead of allocating the model it describes first.
 */
import type { CheckpointTensor } from '../native.js';
import type { ModelConfig } from './config.js';

/** A config.json field and the size its weights say it has. */
export interface ConfigMismatch {
  field: string;
  config: number;
  weights: number;
  /** The tensor (or tensors) the size was read from. */
  evidence: string;
}

/**
 * The sizes in `config` that the tensors of its weights file contradict. Only what the header
 * shows for certain is compared; a tensor that is absent is left to the loader, which names it.
 */
export function configMismatches(
  config: ModelConfig,
  tensors: readonly CheckpointTensor[],
): ConfigMismatch[] {
  const byName = new Map(tensors.map((t) => [t.name, t.shape]));
  // A full model's keys start with `bert.`; a plain BERT encoder's do not.
  const p = byName.has('bert.embeddings.word_embeddings.weight') ? 'bert.' : '';
  const out: ConfigMismatch[] = [];
  const dim = (name: string, axis: number, field: string, value: number) => {
    const shape = byName.get(name);
    if (shape === undefined || shape.length <= axis || shape[axis] === value) return;
    out.push({
      field,
      config: value,
      weights: shape[axis],
      evidence: `${name} [${shape.join(', ')}]`,
    });
  };
  dim(`${p}embeddings.word_embeddings.weight`, 0, 'vocab_size', config.vocabSize);
  dim(`${p}embeddings.word_embeddings.weight`, 1, 'hidden_size', config.hiddenSize);
  dim(
    `${p}embeddings.position_embeddings.weight`,
    0,
    'max_position_embeddings',
    config.maxPositionEmbeddings,
  );
  dim(`${p}embeddings.token_type_embeddings.weight`, 0, 'type_vocab_size', config.typeVocabSize);
  dim(
    `${p}encoder.layer.0.intermediate.dense.weight`,
    0,
    'intermediate_size',
    config.intermediateSize,
  );
  const layer = new RegExp(`^${p.replace('.', '\\.')}encoder\\.layer\\.(\\d+)\\.`);
  let layers = 0;
  for (const t of tensors) {
    const m = layer.exec(t.name);
    if (m) layers = Math.max(layers, Number(m[1]) + 1);
  }
  if (layers > 0 && layers !== config.numHiddenLayers) {
    out.push({
      field: 'num_hidden_layers',
      config: config.numHiddenLayers,
      weights: layers,
      evidence: `${p}encoder.layer.0 … ${p}encoder.layer.${layers - 1}`,
    });
  }
  if (p === 'bert.') {
    dim('classifier.weight', 0, 'id2label (the number of labels)', config.labels.length);
    dim('crf.transitions', 0, 'id2label (the number of labels)', config.labels.length);
  }
  return out;
}

/** @throws Error naming every field of `configFile` that the weights in `weightsFile` contradict */
export function checkConfigFitsWeights(
  config: ModelConfig,
  tensors: readonly CheckpointTensor[],
  configFile: string,
  weightsFile: string,
): void {
  const mismatches = configMismatches(config, tensors);
  if (mismatches.length === 0) return;
  const lines = mismatches.map(
    (m) => `  field "${m.field}" is ${m.config}, but the weights have ${m.weights} (${m.evidence})`,
  );
  throw new Error(
    `${configFile} does not describe the weights in ${weightsFile}:\n${lines.join('\n')}`,
  );
}
