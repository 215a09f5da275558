/**
 * Loads the native addon: `prebuilds/<platform>-<arch>/` first when `build/` is absent
 * (node-gyp-build's order: build/Release, build/Debug, prebuilds). The typed surface below is
 * the whole contract between `lib/` and `binding/`. An addon that does not load is an error
 * saying what to install (lib/install/).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { explainLoadFailure } from './install/index.js';
import { libtorchHelp, PREBUILT_LIBTORCH } from './install/libtorch.js';
import type { ModelConfig } from './model/config.js';
import type { TensorMemory } from './runtime.js';

/** Dtypes of stored parameters; the head (classifier, RNN, CRF) always computes in float32. */
export type NativeDtype = 'float32' | 'float16' | 'bfloat16';

/**
 * The encoder's precision at inference: a stored dtype, or `int8` (dynamic quantization of the
 * encoder's products on a CPU with AVX512_VNNI or AMX-INT8; the parameters stay float32).
 */
export type EncoderDtype = NativeDtype | 'int8';

/** Every EncoderDtype, for parsing flags. */
export const ENCODER_DTYPES: readonly EncoderDtype[] = ['float32', 'float16', 'bfloat16', 'int8'];

/** Allowed transitions as 0/1 bytes: `allowed[i * K + j]` permits tag i followed by tag j. */
export interface NativeConstraints {
  allowed?: Uint8Array;
  allowedStart?: Uint8Array;
  allowedEnd?: Uint8Array;
}

export interface NativeDecodeOptions {
  /** Paths per sequence, best first (default 1, at most 1000). */
  nBest?: number;
  constraints?: NativeConstraints;
  /** Also return posterior marginals P(tag | pieces). */
  marginals?: boolean;
}

export interface NativeDecoded {
  /** [B, N, T] tag ids; -1 beyond each length and for missing paths. */
  tags: Int32Array;
  /** [B, N] path scores (log-probabilities for the softmax head); -Infinity for missing paths. */
  scores: Float32Array;
  /** [B, T, K], 0 beyond each length; present when asked for. */
  marginals?: Float32Array;
}

/**
 * The last argument of every inference call of {@link NativeModel}: each piece's syllable ids,
 * `[B, T, syllablesPerPiece]` row-major (0: none), which a model with a syllable channel requires
 * (and any other refuses).
 */
export interface NativeInputs {
  syllables: Int32Array;
  syllablesPerPiece: number;
}

/**
 * The native NER model (binding/napi/model.cc): BERT encoder plus head, built from a validated
 * config and initialised as Hugging Face does. Batches are `ids` [B, T] row-major with
 * `lengths` [B] (each 1..T; T ≤ maxPositionEmbeddings). Argument errors throw synchronously;
 * tensor work runs off the event loop and settles the Promise. Concurrent calls are safe:
 * inference runs in parallel, loadWeights/to/seed wait for it and run alone.
 */
export interface NativeModel {
  /** Strict load of model.safetensors: every missing/unexpected/mis-shaped key is listed. */
  loadWeights(path: string): Promise<{ kind: 'model' | 'encoder'; ignored: string[] }>;
  /** Writes every parameter (default float32) with metadata `{ format: 'pt' }`. */
  saveWeights(path: string, dtype?: NativeDtype): Promise<void>;
  /**
   * Moves the model; `dtype` is the encoder's (float16 needs CUDA; on the CPU, bfloat16 and int8
   * are the precision of its products and throw, naming the missing feature, where the CPU lacks
   * it).
   */
  to(device: string, dtype?: EncoderDtype): Promise<void>;
  placement(): { device: string; dtype: EncoderDtype };
  /** Emissions [B, T, K], 0 beyond each length. */
  emissions(
    ids: Int32Array,
    shape: number[],
    lengths: Int32Array,
    inputs?: NativeInputs,
  ): Promise<Float32Array>;
  /** The encoder's last hidden states [B, T, H] as float32, 0 beyond each length. */
  hidden(
    ids: Int32Array,
    shape: number[],
    lengths: Int32Array,
    inputs?: NativeInputs,
  ): Promise<Float32Array>;
  /**
   * One forward that also keeps attention probabilities (Hugging Face's `output_attentions`):
   * emissions [B, T, K] and, for the listed layers and heads in the order given, attentions
   * [B, layers, heads, T, T] as float32; both 0 beyond each length (attention: query rows).
   */
  attentions(
    ids: Int32Array,
    shape: number[],
    lengths: Int32Array,
    layers: number[],
    heads: number[],
    inputs?: NativeInputs,
  ): Promise<{ emissions: Float32Array; attentions: Float32Array }>;
  decode(
    ids: Int32Array,
    shape: number[],
    lengths: Int32Array,
    options?: NativeDecodeOptions,
    inputs?: NativeInputs,
  ): Promise<NativeDecoded>;
  /**
   * The head's decoder alone on emissions [B, T, K] (e.g. stitched from windows of a long text,
   * so T may exceed maxPositionEmbeddings): the same result as `decode` for the same emissions.
   */
  decodeEmissions(
    emissions: Float32Array,
    shape: number[],
    lengths: Int32Array,
    options?: NativeDecodeOptions,
  ): Promise<NativeDecoded>;
  /** The head's loss for tags [B, T] (mean token cross entropy, or batch-mean CRF NLL). */
  loss(
    ids: Int32Array,
    shape: number[],
    lengths: Int32Array,
    tags: Int32Array,
    inputs?: NativeInputs,
  ): Promise<number>;
  /** Parameter names (checkpoint keys) and shapes, in registration order. */
  parameterInfo(): { name: string; shape: number[] }[];
  /** Seeds LibTorch's generator and re-draws every parameter from it. */
  seed(n: number): Promise<void>;
  /**
   * Frees the module's memory once the calls in flight are done; every later call throws
   * (`… has been disposed`). A second call does nothing.
   */
  dispose(): Promise<void>;
}

/** A tensor of a checkpoint, as binding/napi/io.cc lists it. */
export interface CheckpointTensor {
  name: string;
  shape: number[];
  dtype:
    | 'float32'
    | 'float16'
    | 'bfloat16'
    | 'float64'
    | 'int64'
    | 'int32'
    | 'int16'
    | 'int8'
    | 'uint8'
    | 'bool';
}

/** A tensor's little-endian bytes (`data` shares the native tensor's memory). */
export interface RawTensor {
  shape: number[];
  dtype: CheckpointTensor['dtype'];
  data: Uint8Array;
}

/**
 * A tensor convertCheckpoint creates: drawn (normal: `std`, default 0.02; uniform: ±`bound`,
 * default 0.1), constant, or given.
 */
export interface CheckpointExtra {
  name: string;
  shape: number[];
  init: 'normal' | 'uniform' | 'zeros' | 'ones' | 'values';
  std?: number;
  bound?: number;
  /** Row-major values for init 'values'. */
  values?: Float32Array;
}

export interface ConvertOptions {
  /**
   * Converts floating tensors (extra tensors are float32 unless given). `int8` and `int4`:
   * matrices of 16,384 or more values are stored as int8 rows with a float32 scale per row, or as
   * int4 values packed two a byte with a float16 scale per 128 values of a row (`<name>_scale`),
   * the other floating tensors as float16; every reader of this addon sees them as float32 again
   * (binding/io/quantized_rows.h).
   */
  dtype?: 'float32' | 'float16' | 'bfloat16' | 'int8' | 'int4';
  extra?: CheckpointExtra[];
  /** Seed for the drawn extra tensors (default: LibTorch's generator). */
  seed?: number;
  /** Header metadata; `format: 'pt'` unless given, as Hugging Face's loaders expect. */
  metadata?: Record<string, string>;
}

/** Options of `DistGroup.connect` (binding/napi/dist.cc); errors name the field. */
export interface DistGroupOptions {
  /** This process's global rank, 0 … worldSize − 1; rank 0 hosts the rendezvous store. */
  rank: number;
  worldSize: number;
  /** Where rank 0 listens (all ranks pass the same); a loopback address keeps traffic local. */
  masterAddr: string;
  /** 1 … 65535. */
  masterPort: number;
  /** `gloo` (default; CPU) or `nccl` (CUDA builds with NCCL). */
  backend?: 'gloo' | 'nccl';
  /** Bound on the rendezvous and on every collective (default 30 minutes). */
  timeoutMs?: number;
  /** NCCL: this rank's CUDA device (default rank % device count). */
  cudaDevice?: number;
}

/**
 * A connected data-parallel group (binding/dist over c10d). Every rank must call the same
 * collectives in the same order with arrays of the same lengths; calls start in the order they
 * were made, even without awaiting each. A collective fails (never hangs past `timeoutMs`) when a
 * peer died or went silent, and the group is unusable after that.
 */
export interface NativeDistGroup {
  readonly rank: number;
  readonly worldSize: number;
  readonly backend: 'gloo' | 'nccl';
  /** Where the flat buffers live: `cpu` (Gloo) or `cuda:N` (NCCL). */
  readonly device: string;
  /** The element-wise mean over ranks, sent in flat buckets of about `bucketBytes` (25 MiB). */
  allreduceMean(arrays: Float32Array[], bucketBytes?: number): Promise<Float32Array[]>;
  /** `root`'s (default 0) arrays, on every rank. */
  broadcast(arrays: Float32Array[], root?: number): Promise<Float32Array[]>;
  /** Settles when every rank has called it. */
  barrier(): Promise<void>;
  /** Element-wise sums over ranks (float64). */
  allreduceSum(values: number[]): Promise<number[]>;
  /** Element-wise maxima over ranks (float64). */
  allreduceMax(values: number[]): Promise<number[]>;
  /** Closes the connections after the calls in flight; later calls throw. Does not wait for peers. */
  destroy(): Promise<void>;
}

/** One micro-batch of a training step: ids [B, T] with lengths, and gold tag ids [B, T]. */
export interface NativeTrainBatch {
  ids: Int32Array;
  shape: [number, number];
  lengths: Int32Array;
  /**
   * The objectives a batch trains follow from the targets it carries (at least one):
   * `tags` (B × T label ids, the tagging loss; not for a model with head `none`), `posTags`
   * (B × T POS ids or -1, the auxiliary POS loss; the model needs `posLabels`), `mlmLabels`
   * (B × T: the original id of a masked piece, -1 elsewhere; the model needs `mlmHead`),
   * `rtdLabels` (B × T: 1 replaced, 0 original, -1 not judged; ELECTRA's replaced-token
   * detection; the model needs `rtdHead`).
   */
  tags?: Int32Array;
  /** B flags (1: the row's tags count): without it every row's do. Rows of unlabelled text. */
  tagged?: Uint8Array;
  posTags?: Int32Array;
  mlmLabels?: Int32Array;
  /**
   * With `mlmLabels`: also draw a piece from the masked LM's distribution at every masked
   * position (LibTorch's generator, so `setRngState` replays it); the step's `mlmSamples`.
   */
  sampleMasked?: boolean;
  rtdLabels?: Int32Array;
  /**
   * B × T × K: a teacher's distribution over the tags per piece (all zeros: none), the
   * distillation loss's targets (cross entropy against the model's own per-piece softmax).
   */
  softTargets?: Float32Array;
  /** B × T × syllablesPerPiece syllable ids (0: none), required by a model with a syllable channel. */
  syllables?: Int32Array;
  syllablesPerPiece?: number;
}

/** AdamW and clipping settings of a Trainer (binding/napi/train.cc); errors name the field. */
export interface NativeTrainerOptions {
  /** AdamW weight decay, applied to every parameter except biases and LayerNorm weights. */
  weightDecay: number;
  betas: [number, number];
  eps: number;
  /**
   * Layer-wise learning-rate decay in (0, 1] (default 1: off). Encoder layer i of L steps at
   * lr · layerDecay^(L − i), the embeddings at lr · layerDecay^(L + 1), every other parameter
   * (pooler, heads, CRF) at lr.
   */
  layerDecay?: number;
  /** Max global gradient norm (0: no clipping; the norm is still reported). */
  clipNorm: number;
  /**
   * Autocast dtype for the encoder (default 'float32': none); the head, CRF included, stays
   * fp32. float16 needs a CUDA model and adds dynamic loss scaling (as
   * torch.cuda.amp.GradScaler); bfloat16 runs on CUDA, and on a CPU with AVX512_BF16 or AMX-BF16.
   * The constructor and `step` throw where the model's device cannot run it.
   */
  autocast?: NativeDtype;
  /** Weight of the auxiliary POS loss beside the tagging loss (default 1). */
  posWeight?: number;
  /** Weight of the distillation loss (default 1). */
  distillWeight?: number;
  /** Temperature of the model's softmax in the distillation loss (default 1). */
  distillTemperature?: number;
}

/** What one optimizer step reports. */
export interface NativeStepResult {
  /**
   * The step's objective: the loss summed over its sentences (every micro-batch, and every rank
   * with a group) divided by the head's count: sentences for CRF heads (mean NLL per sentence),
   * valid pieces for the softmax head (mean token cross entropy, as `NativeModel.loss`); plus
   * `posWeight × posLoss` and `mlmLoss` when the batches train those.
   */
  loss: number;
  /** Each objective alone (0 when not trained): per its own count of targets. */
  taggingLoss: number;
  /** Mean cross entropy per POS target. */
  posLoss: number;
  /** Mean cross entropy per masked piece. */
  mlmLoss: number;
  /** Mean cross entropy against the teacher per piece with a soft target (× temperature²). */
  distillLoss: number;
  /** Masked pieces whose most likely id is the original one, over masked pieces. */
  mlmAccuracy: number;
  /** Mean binary cross entropy per judged piece of replaced-token detection. */
  rtdLoss: number;
  /** Judged pieces called right (replaced or original), over judged pieces. */
  rtdAccuracy: number;
  /**
   * The draws of the batches with `sampleMasked` (this rank's): each batch's masked positions in
   * row-major order, batch after batch. Absent when no batch asked.
   */
  mlmSamples?: Int32Array;
  /** Global gradient norm before clipping (non-finite when the step was skipped). */
  gradNorm: number;
  /** Sentences in the step (over all ranks with a group). */
  sentences: number;
  /** Valid pieces (the sum of the lengths) in the step (over all ranks with a group). */
  pieces: number;
  /**
   * True when the gradients were not finite: the weights and AdamW's state are unchanged (and
   * with float16, the loss scale was halved). Every rank of a group decides alike.
   */
  skipped: boolean;
}

/**
 * Trains a NativeModel: one `step` call is forward, summed loss, backward over every micro-batch
 * (gradient accumulation), the sum over the group's ranks when given, one division by the global
 * count (see NativeStepResult.loss), clipping and one AdamW update at learning rate `lr`. So a
 * step equals one step over all its sentences at once, however they are split into micro-batches
 * and ranks. Runs off the event loop and holds the model alone from the first forward to the
 * update (inference waits, and never sees half-updated weights); dropout is on during a step
 * and off after it. Argument errors throw synchronously and name the batch and field
 * (`batches[1].tags[0][3] = 9 is outside 0..6`).
 */
export interface NativeTrainer {
  /**
   * `batches` may be empty only with a group (a rank whose data ran out still joins the sums);
   * every rank of a group must call `step` the same number of times, in the same order as its
   * other collectives.
   */
  step(batches: NativeTrainBatch[], lr: number, group?: NativeDistGroup): Promise<NativeStepResult>;
  /** The losses `step` would report, without a step: no dropout, no update, this rank only. */
  evaluate(batches: NativeTrainBatch[]): Promise<NativeStepResult>;
  /** Copies `root`'s (default 0) parameters to every rank of the group. */
  broadcastParameters(group: NativeDistGroup, root?: number): Promise<void>;
  /**
   * AdamW's state as safetensors, written atomically: `exp_avg.<parameter>`,
   * `exp_avg_sq.<parameter>` and `step.<parameter>` (int64 scalar) for every parameter, metadata
   * `{ format: 'koner-adamw', version: '1', … }` (with the float16 loss scale).
   */
  saveState(path: string): Promise<void>;
  /** All or nothing: an entry that is missing, unexpected or mis-shaped is an error naming it. */
  loadState(path: string): Promise<void>;
}

/** The host CPU's reduced-precision features (cpuid and the OS's saved state, at run time). */
export interface NativeCpuFeatures {
  avx512: boolean;
  /** bfloat16 dot products: with `amxBf16`, what `dtype: 'bfloat16'` on the CPU needs. */
  avx512Bf16: boolean;
  amxBf16: boolean;
  /** int8 dot products. */
  avx512Vnni: boolean;
  amxInt8: boolean;
  /** Whether the addon was built with oneDNN's headers (the encoder's fused inference path). */
  onednnPrimitives: boolean;
}

/** The functions binding/napi exports. Shapes are arrays of dimensions; data is row-major. */
export interface NativeAddon {
  version(): string;
  cudaAvailable(): boolean;
  cudaDeviceCount(): number;
  compiledWithCuda(): boolean;
  /** What the CPU computes natively (read at run time) and whether oneDNN's primitives are built. */
  cpuFeatures(): NativeCpuFeatures;
  getNumThreads(): number;
  setNumThreads(n: number): void;
  /** glibc: allocations of at least `bytes` get their own mapping from now on (false: not glibc). */
  releaseLargeAllocations(bytes: number): boolean;
  /** The CPU tensor block cache (binding/model/cpu_block_cache.h). */
  tensorMemory(): TensorMemory;
  setTensorCacheLimit(bytes: number): void;
  /** Entry points for the tests alone: not part of koner's contract, may change at any time. */
  testing: NativeTesting;
  Model: new (config: ModelConfig) => NativeModel;
  Trainer: new (model: NativeModel, options: NativeTrainerOptions) => NativeTrainer;
  /**
   * LibTorch's default CPU generator state (base64 of its state bytes), for resumable runs: CPU
   * dropout masks and initial weights come from it. The CUDA generators are not included.
   */
  getRngState(): string;
  /** Restores a getRngState() string; throws on anything this LibTorch did not produce. */
  setRngState(state: string): void;
  /** The tensors of a checkpoint (safetensors or torch.save, by content), by name; reads no data. */
  inspectCheckpoint(path: string): Promise<CheckpointTensor[]>;
  /** Some (or, with null, all) tensors of a checkpoint; asFloat32 converts floating ones. */
  readTensors(
    path: string,
    names: string[] | null,
    asFloat32?: boolean,
  ): Promise<Record<string, RawTensor>>;
  /** Writes dst (safetensors) from src's renamed tensors `[from, to]` plus the extra ones. */
  convertCheckpoint(
    src: string,
    dst: string,
    renames: [string, string][],
    options?: ConvertOptions,
  ): Promise<void>;
  /** Rendezvous with the other ranks; settles once all have joined (or rejects at the timeout). */
  DistGroup: { connect(options: DistGroupOptions): Promise<NativeDistGroup> };
  /** CRF loss and its gradients on typed arrays (binding/napi/crf.cc; synchronous). */
  crfNll(
    emissions: Float32Array,
    shape: number[],
    tags: Int32Array,
    lengths: Int32Array,
    transitions: Float32Array,
    start: Float32Array,
    end: Float32Array,
    reduction: NativeCrfReduction,
    options?: NativeCrfOptions,
  ): NativeCrfNll;
  /** n-best Viterbi: tags [B * N * T] (-1 beyond lengths / missing), scores [B * N]. */
  crfDecode(
    emissions: Float32Array,
    shape: number[],
    lengths: Int32Array,
    transitions: Float32Array,
    start: Float32Array,
    end: Float32Array,
    options?: NativeCrfDecodeOptions,
  ): { tags: Int32Array; scores: Float32Array };
  /** Posterior marginals [B * T * K], 0 beyond lengths. */
  crfMarginals(
    emissions: Float32Array,
    shape: number[],
    lengths: Int32Array,
    transitions: Float32Array,
    start: Float32Array,
    end: Float32Array,
    options?: NativeCrfConstrainedOptions,
  ): Float32Array;
}

/** The addon's test-only entry points (`native().testing`). */
export interface NativeTesting {
  /** The thread count seen by tensor work on a worker thread. */
  workerThreads(): Promise<number>;
  /** A tensor product, synchronous and on a worker: LibTorch's errors reach JS from both. */
  matmul(a: Float32Array, aShape: number[], b: Float32Array, bShape: number[]): Float32Array;
  /** Allocates, fills and frees a tensor of `bytes` bytes; returns where its data was. */
  allocate(bytes: number): bigint;
  matmulAsync(
    a: Float32Array,
    aShape: number[],
    b: Float32Array,
    bShape: number[],
  ): Promise<Float32Array>;
  /** Analytic vs finite-difference CRF gradients in float64 on a random problem. */
  crfGradcheck(options: {
    batch?: number;
    time?: number;
    tags?: number;
    seed?: number;
    reduction?: NativeCrfReduction;
  }): {
    analytic: Float64Array;
    numeric: Float64Array;
    gradDtypes: { float16: string; bfloat16: string };
  };
}

/** CRF reductions: pytorch-crf's (`mean` over the batch) plus `none` for per-sequence losses. */
export type NativeCrfReduction = 'sum' | 'mean' | 'none' | 'token_mean';

/** Where and in which dtype the CRF reads its emissions (it accumulates in float32). */
export interface NativeCrfOptions {
  /** 'cpu' (default), 'cuda' or 'cuda:N'. */
  device?: string;
  /** The emissions' dtype on the device (default float32; float64 accumulates in float64). */
  dtype?: 'float32' | 'float64' | 'float16' | 'bfloat16';
}

/** Allowed transitions as 0/1 bytes: `allowed[i * K + j]` permits tag i followed by tag j. */
export interface NativeCrfConstrainedOptions extends NativeCrfOptions {
  allowed?: Uint8Array;
  allowedStart?: Uint8Array;
  allowedEnd?: Uint8Array;
}

export interface NativeCrfDecodeOptions extends NativeCrfConstrainedOptions {
  /** Paths per sequence, best first (default 1). */
  nBest?: number;
}

/** The reduced loss (1 value, or B for `none`) and the gradients of its sum. */
export interface NativeCrfNll {
  nll: Float32Array;
  gradEmissions: Float32Array;
  gradTransitions: Float32Array;
  gradStart: Float32Array;
  gradEnd: Float32Array;
}

/**
 * The package root: the nearest directory above this module holding a package.json. That is one
 * level above `lib/` (sources) and `dist/` (compiled), and two above `dist-test/lib/` (the copy
 * compiled with the benchmarks and test support for the GPU machine).
 */
export const packageRoot = nearestPackageDir(path.dirname(fileURLToPath(import.meta.url)));

function nearestPackageDir(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) return path.resolve(start, '..');
  }
}

let addon: NativeAddon | undefined;

/**
 * @internal What to do about an addon that does not load from `root`, given node-gyp-build's
 * error: build it (in a source checkout), or get a LibTorch.
 */
export function addonLoadError(root: string, message: string): string {
  const reason = explainLoadFailure(message.split('\n')[0]);
  const start = `koner: the native addon could not be loaded from ${root}: ${reason}.`;
  if (existsSync(path.join(root, 'lib', 'index.ts'))) {
    return `${start} In a source checkout \`npm run setup\` builds it.`;
  }
  return (
    `${start}\nThe prebuilt addon needs ${PREBUILT_LIBTORCH}; \`npm rebuild koner\` builds one ` +
    `against another LibTorch.\n${libtorchHelp()}`
  );
}

/** The addon, loaded on first use, with LibTorch's thread count set to the available cores. */
/**
 * Runs `load` with OMP_WAIT_POLICY=passive in the environment, unless OMP_WAIT_POLICY or
 * GOMP_SPINCOUNT is set already: libgomp reads it once, when the addon brings it in, and it is
 * removed again after, so that child processes see the caller's environment. Why: an OpenMP
 * thread that spins between parallel regions keeps its core; on a machine shared with other
 * work, the thread it waits for is then often queued behind it and every region waits a time
 * slice (a KoBERT-size forward of one sentence ran 5× slower at load 6 on 2 cores). Asleep, a
 * waiting thread costs one wake-up per region (µs). OMP_WAIT_POLICY=active restores spinning.
 */
function withPassiveOpenMp<T>(load: () => T): T {
  const env = process.env;
  if (env.OMP_WAIT_POLICY !== undefined || env.GOMP_SPINCOUNT !== undefined) return load();
  env.OMP_WAIT_POLICY = 'passive';
  try {
    return load();
  } finally {
    delete env.OMP_WAIT_POLICY;
  }
}

export function native(): NativeAddon {
  if (!addon) {
    const require = createRequire(import.meta.url);
    const load = require('node-gyp-build') as (dir: string) => NativeAddon;
    try {
      addon = withPassiveOpenMp(() => load(packageRoot));
    } catch (error) {
      throw new Error(addonLoadError(packageRoot, (error as Error).message));
    }
    addon.setNumThreads(os.availableParallelism());
  }
  return addon;
}
