// `Model`: the NER model (binding/model) as a JS class. Arguments are validated on the JS thread
// (a bad argument throws there, naming it); tensor work runs off it and settles a Promise,
// inference under torch::InferenceMode. All models' tensor work runs on one thread of its own
// (TensorThread below), in call order: concurrent calls queue instead of contending for the cores.
//
// Concurrency: each instance guards its module with a reader/writer lock. Inference and
// saveWeights read; loadWeights, to, seed and Trainer steps (napi/train.cc, through napi/model.h,
// on libuv's pool) write (alone, after the readers in flight). loadWeights reads the file before
// taking the lock. All instances share one lock around drawing initial weights, because LibTorch's
// generator is global: seed(n) then re-initialising is atomic, so equal seeds give equal weights
// even under concurrency.
#include "napi/model.h"

#include <c10/core/InferenceMode.h>
#include <torch/torch.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <cmath>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "crf/crf.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "model/cpu_block_cache.h"
#include "model/ner_model.h"
#include "model/weights.h"
#include "napi/args.h"
#include "napi/errors.h"
#include "napi/modules.h"
#include "napi/tensors.h"
#include "napi/threads.h"
#include "napi/worker.h"

namespace koner::napi {
namespace {

using model::ModelConfig;

std::mutex& InitMutex() {
  static std::mutex mutex;
  return mutex;
}

// One thread runs every model's tensor work, in call order; the libuv thread of a call waits for
// it. LibTorch's CPU kernels run on OpenMP (and so do OpenBLAS and oneDNN here), and every thread
// that enters a parallel region gets a team of its own: work spread over libuv's four pool threads
// made four teams, more OpenMP threads than cores, and libgomp then stops spinning between
// parallel regions, so every kernel paid a sleep and a wake-up (a KoBERT forward of one sentence
// took 1.5x as long as on one thread). On one thread, one team stays hot. Concurrent calls were
// contending for the same cores anyway; now they queue. Created on first use, never destroyed (a
// detached thread parked on its queue ends with the process).
class TensorThread {
 public:
  // Runs `work` on the tensor thread and returns its result (or rethrows its exception).
  template <typename F>
  static auto Run(F&& work) -> decltype(work()) {
    std::packaged_task<decltype(work())()> task(std::forward<F>(work));
    auto result = task.get_future();
    Instance().Push([&task] {
      ApplyThreads();
      task();
    });
    return result.get();
  }

 private:
  TensorThread() : thread_([this] { Loop(); }) { thread_.detach(); }

  static TensorThread& Instance() {
    static TensorThread* instance = new TensorThread();
    return *instance;
  }

  void Push(std::function<void()> job) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.push_back(std::move(job));
    }
    ready_.notify_one();
  }

  void Loop() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ready_.wait(lock, [this] { return !queue_.empty(); });
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      job();
    }
  }

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> queue_;
  std::thread thread_;  // last: starts once the queue exists
};

// ---- arguments ------------------------------------------------------------------------------

// config.<field>, required.
Napi::Value Field(const Napi::Object& config, const char* field) {
  Napi::Value v = config.Get(field);
  if (v.IsUndefined()) throw TypeError(std::string("config.") + field + ": missing");
  return v;
}

int64_t IntField(const Napi::Object& config, const char* field, int64_t min) {
  return IntegerArg(Field(config, field), std::string("config.") + field, static_cast<double>(min),
                    9.0e15);
}

double NumberField(const Napi::Object& config, const char* field) {
  return NumberArg(Field(config, field), std::string("config.") + field);
}

std::string StringField(const Napi::Object& config, const char* field) {
  return StringArg(Field(config, field), std::string("config.") + field);
}

// The camel-cased ModelConfig of lib/model/config.ts, checked field by field (types here, ranges
// in model::Validate) so that every error names its field.
ModelConfig ConfigArg(const Napi::Value& value) {
  if (!value.IsObject() || value.IsArray()) {
    throw TypeError("config: expected a ModelConfig object, got " + Describe(value));
  }
  auto o = value.As<Napi::Object>();
  ModelConfig c;
  c.vocabSize = IntField(o, "vocabSize", 1);
  c.hiddenSize = IntField(o, "hiddenSize", 1);
  c.numHiddenLayers = IntField(o, "numHiddenLayers", 1);
  c.numAttentionHeads = IntField(o, "numAttentionHeads", 1);
  c.intermediateSize = IntField(o, "intermediateSize", 1);
  const std::string act = StringField(o, "hiddenAct");
  if (act != "gelu") {
    throw std::invalid_argument("config.hiddenAct: must be \"gelu\", got \"" + act + "\"");
  }
  c.hiddenDropoutProb = NumberField(o, "hiddenDropoutProb");
  c.attentionProbsDropoutProb = NumberField(o, "attentionProbsDropoutProb");
  c.maxPositionEmbeddings = IntField(o, "maxPositionEmbeddings", 1);
  c.typeVocabSize = IntField(o, "typeVocabSize", 1);
  c.layerNormEps = NumberField(o, "layerNormEps");
  c.initializerRange = NumberField(o, "initializerRange");
  c.padTokenId = IntField(o, "padTokenId", 0);
  c.head = model::ParseHeadKind(StringField(o, "head"));
  c.rnnHiddenSize = IntField(o, "rnnHiddenSize", 1);
  c.labels = StringListArg(Field(o, "labels"), "config.labels");
  // The optional parts (absent in a plain BERT config).
  Napi::Value mlm = o.Get("mlmHead");
  if (!mlm.IsUndefined()) c.mlmHead = BooleanArg(mlm, "config.mlmHead");
  Napi::Value rtd = o.Get("rtdHead");
  if (!rtd.IsUndefined()) c.rtdHead = BooleanArg(rtd, "config.rtdHead");
  Napi::Value pos = o.Get("posLabels");
  if (!pos.IsUndefined()) c.posLabels = StringListArg(pos, "config.posLabels");
  if (!o.Get("syllableVocabSize").IsUndefined()) {
    c.syllableVocabSize = IntField(o, "syllableVocabSize", 0);
  }
  model::Validate(c);
  return c;
}

// The encoder's precision for to(): a storage dtype, or 'int8' (dynamic quantization of the
// products on the CPU, which stores nothing in int8).
torch::ScalarType EncoderDtypeArg(const Napi::Value& v) {
  const std::string name = StringArg(v, "dtype");
  if (name == "int8") return torch::kQInt8;
  if (name == "float32" || name == "float16" || name == "bfloat16") return DtypeArg(v, "dtype");
  throw TypeError("dtype: must be 'float32', 'float16', 'bfloat16' or 'int8', got \"" + name +
                  "\"");
}

// lengths [B] as int64, each within 1..T.
torch::Tensor LengthsArg(const Napi::Value& value, int64_t B, int64_t T) {
  auto lengths = IntTensorArg(value, {B}, "lengths").to(torch::kInt64);
  auto bad = (lengths < 1).logical_or(lengths > T);
  if (bad.any().item<bool>()) {
    const int64_t i = bad.nonzero()[0][0].item<int64_t>();
    throw std::invalid_argument("lengths[" + std::to_string(i) +
                                "] = " + std::to_string(lengths[i].item<int64_t>()) +
                                " is outside 1.." + std::to_string(T));
  }
  return lengths;
}

torch::Tensor MaskOf(const torch::Tensor& lengths, int64_t T) {
  return torch::arange(T).unsqueeze(0) < lengths.unsqueeze(1);
}

// A batch of piece ids [B, T] with per-sequence lengths; ids are checked against the vocabulary
// everywhere (padding too), lengths against 1..T.
struct Batch {
  torch::Tensor ids;        // [B, T] int64
  torch::Tensor mask;       // [B, T] bool, a prefix of each row
  torch::Tensor lengths;    // [B] int64
  torch::Tensor syllables;  // [B, T, S] int64 for a model with a syllable channel, else undefined
};

// The optional last argument of the inference calls, `{ syllables: Int32Array [B * T * S],
// syllablesPerPiece: S }`: required by a model with a syllable channel, refused by others.
torch::Tensor SyllablesArg(const Napi::Value& value, int64_t B, int64_t T, const ModelConfig& c) {
  const bool given = !value.IsUndefined();
  if (c.syllableVocabSize == 0) {
    if (given && value.IsObject() && !value.As<Napi::Object>().Get("syllables").IsUndefined()) {
      throw std::invalid_argument("syllables: the model has no syllable channel");
    }
    return {};
  }
  if (!given || !value.IsObject() || value.As<Napi::Object>().Get("syllables").IsUndefined()) {
    throw std::invalid_argument(
        "syllables: the model has a syllable channel (syllable_vocab_size " +
        std::to_string(c.syllableVocabSize) +
        "): pass { syllables, syllablesPerPiece } as the last argument");
  }
  auto o = value.As<Napi::Object>();
  const Napi::Value per = o.Get("syllablesPerPiece");
  const double S = per.IsNumber() ? per.As<Napi::Number>().DoubleValue() : NAN;
  if (!(S >= 1 && S <= 64) || std::floor(S) != S) {
    throw TypeError("syllablesPerPiece: must be an integer in 1..64, got " + Describe(per));
  }
  auto syllables = IntTensorArg(o.Get("syllables"), {B, T, static_cast<int64_t>(S)}, "syllables")
                       .to(torch::kInt64);
  if ((syllables < 0).logical_or(syllables >= c.syllableVocabSize).any().item<bool>()) {
    throw std::invalid_argument("syllables: an id is outside 0.." +
                                std::to_string(c.syllableVocabSize - 1));
  }
  return syllables;
}

Batch BatchArgs(const Napi::CallbackInfo& info, const ModelConfig& c, size_t extraIndex) {
  auto shape = ShapeArg(info[1], "shape");
  if (shape.size() != 2) {
    throw TypeError("shape: expected [batch, pieces], got " + ShapeString(shape));
  }
  const int64_t B = shape[0], T = shape[1];
  if (B == 0) throw std::invalid_argument("empty batch: shape " + ShapeString(shape));
  if (T == 0) throw std::invalid_argument("shape " + ShapeString(shape) + ": no pieces");
  if (T > c.maxPositionEmbeddings) {
    throw std::invalid_argument("shape " + ShapeString(shape) + ": " + std::to_string(T) +
                                " pieces exceed maxPositionEmbeddings (" +
                                std::to_string(c.maxPositionEmbeddings) + ")");
  }
  auto ids = IntTensorArg(info[0], shape, "ids").to(torch::kInt64);
  auto lengths = LengthsArg(info[2], B, T);
  auto badId = (ids < 0).logical_or(ids >= c.vocabSize);
  if (badId.any().item<bool>()) {
    auto at = badId.nonzero()[0];
    const int64_t b = at[0].item<int64_t>(), t = at[1].item<int64_t>();
    throw std::invalid_argument("ids[" + std::to_string(b) + "][" + std::to_string(t) +
                                "] = " + std::to_string(ids[b][t].item<int64_t>()) +
                                " is outside the vocabulary 0.." + std::to_string(c.vocabSize - 1));
  }
  return {ids, MaskOf(lengths, T), lengths, SyllablesArg(info[extraIndex], B, T, c)};
}

// A non-empty array of indices into 0..count-1 (layers or heads), in the caller's order.
std::vector<int64_t> IndexListArg(const Napi::Value& value, int64_t count,
                                  const std::string& what) {
  if (!value.IsArray() || value.As<Napi::Array>().Length() == 0) {
    throw TypeError(what + ": expected a non-empty array of indices, got " + Describe(value));
  }
  auto array = value.As<Napi::Array>();
  std::vector<int64_t> out;
  for (uint32_t i = 0; i < array.Length(); ++i) {
    Napi::Value v = array.Get(i);
    double x = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
    if (!(x >= 0 && x < static_cast<double>(count)) || std::floor(x) != x) {
      throw std::out_of_range(what + "[" + std::to_string(i) + "] = " + Describe(v) +
                              " is not an index from 0 to " + std::to_string(count - 1));
    }
    out.push_back(static_cast<int64_t>(x));
  }
  return out;
}

// Emissions [B, T, K] computed elsewhere (stitched from windows, so T may exceed the positions).
struct EmissionBatch {
  torch::Tensor emissions;  // [B, T, K] float32
  torch::Tensor mask;       // [B, T] bool
};

EmissionBatch EmissionArgs(const Napi::CallbackInfo& info, const ModelConfig& c) {
  auto shape = ShapeArg(info[1], "shape");
  if (shape.size() != 3) {
    throw TypeError("shape: expected [batch, pieces, labels], got " + ShapeString(shape));
  }
  const int64_t B = shape[0], T = shape[1], K = shape[2];
  if (B == 0) throw std::invalid_argument("empty batch: shape " + ShapeString(shape));
  if (T == 0) throw std::invalid_argument("shape " + ShapeString(shape) + ": no pieces");
  if (K != c.numLabels()) {
    throw std::invalid_argument("shape " + ShapeString(shape) + ": the model has " +
                                std::to_string(c.numLabels()) + " labels");
  }
  auto emissions = FloatTensorArg(info[0], shape, "emissions");
  auto lengths = LengthsArg(info[2], B, T);
  auto mask = MaskOf(lengths, T);
  if (!torch::isfinite(emissions).logical_or(mask.logical_not().unsqueeze(-1)).all().item<bool>()) {
    throw std::invalid_argument("emissions: a value within the lengths is not finite");
  }
  return {emissions, mask};
}

struct DecodeOptions {
  int64_t nBest = 1;
  crf::Constraints constraints;
  bool marginals = false;
};

DecodeOptions DecodeOptionsArg(const Napi::Value& value, int64_t K) {
  DecodeOptions options;
  if (value.IsUndefined()) return options;
  if (!value.IsObject()) throw TypeError("options: expected an object, got " + Describe(value));
  auto o = value.As<Napi::Object>();
  Napi::Value nBest = o.Get("nBest");
  if (!nBest.IsUndefined()) {
    options.nBest = IntegerArg(nBest, "options.nBest", 1, 1000);
  }
  Napi::Value constraints = o.Get("constraints");
  if (!constraints.IsUndefined()) {
    if (!constraints.IsObject()) {
      throw TypeError("options.constraints: expected an object, got " + Describe(constraints));
    }
    auto c = constraints.As<Napi::Object>();
    auto part = [&](const char* name, std::vector<int64_t> shape) {
      Napi::Value v = c.Get(name);
      return v.IsUndefined() ? torch::Tensor()
                             : BoolTensorArg(v, shape, std::string("options.constraints.") + name);
    };
    options.constraints.allowed = part("allowed", {K, K});
    options.constraints.allowedStart = part("allowedStart", {K});
    options.constraints.allowedEnd = part("allowedEnd", {K});
  }
  Napi::Value marginals = o.Get("marginals");
  if (!marginals.IsUndefined()) {
    options.marginals = BooleanArg(marginals, "options.marginals");
  }
  return options;
}

// ---- the class ------------------------------------------------------------------------------

using State = ModelState;

// Marks objects made by Model, so SharedModelState can tell them from look-alikes.
constexpr napi_type_tag kModelTag = {0x6b6f6e65722d6d6fULL, 0x64656c2d73746174ULL};

// The batch on the model's device.
struct Placed {
  torch::Tensor ids, mask, syllables;
};

Placed Place(const Batch& batch, const model::NerModelImpl& m) {
  return {batch.ids.to(m.device()), batch.mask.to(m.device()),
          batch.syllables.defined() ? batch.syllables.to(m.device()) : torch::Tensor()};
}

torch::Tensor ValidOnly(const torch::Tensor& x, const torch::Tensor& mask) {
  return x.masked_fill(mask.logical_not().unsqueeze(-1), 0);
}

torch::Tensor ForJs(const torch::Tensor& x, torch::ScalarType dtype) {
  return x.to(torch::kCPU, dtype).contiguous();
}

struct Decoded {
  torch::Tensor tags, scores, marginals;
};

// Emissions and mask on the model's device; the caller holds the model's lock.
Decoded DecodeWith(model::NerModelImpl& m, const torch::Tensor& emissions,
                   const torch::Tensor& mask, const DecodeOptions& options) {
  auto onDevice = [&](const torch::Tensor& t) { return t.defined() ? t.to(m.device()) : t; };
  crf::Constraints constraints{onDevice(options.constraints.allowed),
                               onDevice(options.constraints.allowedStart),
                               onDevice(options.constraints.allowedEnd)};
  auto paths = m.head().Decode(emissions, mask, options.nBest, constraints);
  Decoded out{ForJs(paths.tags, torch::kInt32), ForJs(paths.scores, torch::kFloat32), {}};
  if (options.marginals) {
    out.marginals = ForJs(m.head().Marginals(emissions, mask, constraints), torch::kFloat32);
  }
  return out;
}

Napi::Value DecodedToJs(Napi::Env env, Decoded& d) {
  auto out = Napi::Object::New(env);
  out.Set("tags", TypedArrayOf(env, d.tags));
  out.Set("scores", TypedArrayOf(env, d.scores));
  if (d.marginals.defined()) out.Set("marginals", TypedArrayOf(env, d.marginals));
  return out;
}

// The model behind a state, for work that holds the state's lock.
model::NerModelImpl& Live(State& state) {
  if (state.model.is_empty()) throw std::runtime_error(kDisposedMessage);
  return *state.model;
}

// The one way tensor work reaches a model: on the tensor thread, holding the model's lock.
// Shared: inference and saving, any number at once, under InferenceMode. Exclusive: whatever
// changes the module (loading, moving, seeding, disposing), alone.
template <typename F>
auto Shared(const std::shared_ptr<State>& state, F&& work) {
  return TensorThread::Run([&] {
    std::shared_lock<std::shared_mutex> lock(state->mutex);
    c10::InferenceMode inference;
    return work(Live(*state));
  });
}

template <typename F>
auto Exclusive(const std::shared_ptr<State>& state, F&& work) {
  return TensorThread::Run([&] {
    std::unique_lock<std::shared_mutex> lock(state->mutex);
    return work(Live(*state));
  });
}

Napi::Value TensorToJs(Napi::Env env, torch::Tensor& t) { return TypedArrayOf(env, t); }

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Model",
                       {
                           InstanceMethod<&ModelWrap::LoadWeights>("loadWeights"),
                           InstanceMethod<&ModelWrap::SaveWeights>("saveWeights"),
                           InstanceMethod<&ModelWrap::To>("to"),
                           InstanceMethod<&ModelWrap::Placement>("placement"),
                           InstanceMethod<&ModelWrap::Emissions>("emissions"),
                           InstanceMethod<&ModelWrap::Hidden>("hidden"),
                           InstanceMethod<&ModelWrap::Attentions>("attentions"),
                           InstanceMethod<&ModelWrap::Decode>("decode"),
                           InstanceMethod<&ModelWrap::DecodeEmissions>("decodeEmissions"),
                           InstanceMethod<&ModelWrap::Loss>("loss"),
                           InstanceMethod<&ModelWrap::ParameterInfo>("parameterInfo"),
                           InstanceMethod<&ModelWrap::Seed>("seed"),
                           InstanceMethod<&ModelWrap::Dispose>("dispose"),
                       });
  }

  explicit ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {
    Guard(info.Env(), [&] {
      ModelConfig config = ConfigArg(info[0]);
      // Built (and its initial weights drawn) on the tensor thread too, waiting for it here.
      state_ = TensorThread::Run([&] {
        std::lock_guard<std::mutex> init(InitMutex());
        try {
          return std::make_shared<State>(config);
        } catch (const std::exception& e) {
          throw std::runtime_error("cannot build the model of this config (vocabSize " +
                                   std::to_string(config.vocabSize) + ", hiddenSize " +
                                   std::to_string(config.hiddenSize) + ", numHiddenLayers " +
                                   std::to_string(config.numHiddenLayers) + ", intermediateSize " +
                                   std::to_string(config.intermediateSize) + "): " + MessageOf(e));
        }
      });
      for (const auto& item : state_->model->named_parameters(/*recurse=*/true)) {
        parameters_.emplace_back(item.key(), item.value().sizes().vec());
      }
      info.This().As<Napi::Object>().TypeTag(&kModelTag);
    });
  }

  const std::shared_ptr<State>& state() const { return state_; }

 private:
  const ModelConfig& config() const { return state_->config; }

  // Argument checks that need the model refuse a disposed one before anything else.
  void CheckLive() const {
    if (state_->disposed) throw std::runtime_error(kDisposedMessage);
  }

  // The inference calls' one shape, once their arguments are checked: work(model, the batch on
  // the model's device) on the tensor thread under the shared lock, settling a Promise.
  template <typename R, typename Work, typename ToJs>
  Napi::Value Infer(Napi::Env env, const Batch& batch, Work work, ToJs toJs) {
    auto state = state_;
    return PromiseWorker<R>::Start(
        env,
        [state, batch, work] {
          return Shared(state, [&](model::NerModelImpl& m) { return work(m, Place(batch, m)); });
        },
        toJs);
  }

  // loadWeights(path) -> Promise<{ kind: 'model' | 'encoder', ignored: string[] }>. The file is
  // read (off the tensor thread, without the lock) before the load.
  Napi::Value LoadWeights(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      CheckLive();
      const std::string path = StringArg(info[0], "path");
      auto state = state_;
      return PromiseWorker<model::LoadReport>::Start(
          info.Env(),
          [state, path] {
            auto file = io::ReadSafetensors(path, nullptr, io::Tiling::Deferred);
            auto report = Exclusive(state, [&](model::NerModelImpl& m) {
              return model::LoadWeights(m, file.tensors, path);
            });
            // Every tensor the model needs is there (LoadWeights names any that is missing),
            // so a gap in the data section is damage, not a missing tensor.
            if (!file.tilingProblem.empty()) throw std::runtime_error(file.tilingProblem);
            return report;
          },
          [](Napi::Env env, model::LoadReport& report) -> Napi::Value {
            auto out = Napi::Object::New(env);
            out.Set("kind", report.kind == model::LoadReport::Kind::Encoder ? "encoder" : "model");
            auto ignored = Napi::Array::New(env, report.ignored.size());
            for (uint32_t i = 0; i < report.ignored.size(); ++i) ignored.Set(i, report.ignored[i]);
            out.Set("ignored", ignored);
            return out;
          });
    });
  }

  // saveWeights(path, dtype = 'float32') -> Promise<void>
  Napi::Value SaveWeights(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      CheckLive();
      const std::string path = StringArg(info[0], "path");
      const auto dtype = info[1].IsUndefined() ? torch::kFloat32 : DtypeArg(info[1], "dtype");
      auto state = state_;
      return PromiseWorker<void>::Start(info.Env(), [state, path, dtype] {
        Shared(state, [&](model::NerModelImpl& m) {
          io::WriteSafetensors(path, model::WeightsOf(m, dtype), {{"format", "pt"}});
        });
      });
    });
  }

  // to(device, dtype = 'float32') -> Promise<void>. The dtype is the encoder's; the head stays
  // float32. float16 needs CUDA: LibTorch's CPU kernels have no fp16 matmul. On the CPU,
  // bfloat16 and int8 are the precision of the encoder's products (model/ner_model.h).
  Napi::Value To(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      CheckLive();
      const auto dtype = info[1].IsUndefined() ? torch::kFloat32 : EncoderDtypeArg(info[1]);
      const torch::Device device = DeviceArg(info[0]);
      if (dtype == torch::kFloat16 && device.is_cpu()) {
        throw std::invalid_argument(
            "dtype float16 runs on CUDA only (LibTorch has no fp16 matmul on the CPU); use "
            "bfloat16 on the CPU");
      }
      auto state = state_;
      return PromiseWorker<void>::Start(info.Env(), [state, device, dtype] {
        Exclusive(state, [&](model::NerModelImpl& m) {
          m.Place(device, dtype);
          std::lock_guard<std::mutex> names(state->placementMutex);
          state->deviceName = device.str();
          state->dtypeName = DtypeName(dtype);
        });
      });
    });
  }

  // placement() -> { device, dtype }: where the encoder's parameters are and their dtype.
  Napi::Value Placement(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      CheckLive();
      std::lock_guard<std::mutex> names(state_->placementMutex);
      auto out = Napi::Object::New(info.Env());
      out.Set("device", state_->deviceName);
      out.Set("dtype", state_->dtypeName);
      return out;
    });
  }

  // emissions(ids, shape, lengths, inputs?) -> Promise<Float32Array [B, T, K]>, 0 beyond each
  // length. `inputs` (every inference call's last argument) carries the syllables.
  Napi::Value Emissions(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      CheckLive();
      return Infer<torch::Tensor>(
          info.Env(), BatchArgs(info, config(), 3),
          [](model::NerModelImpl& m, const Placed& in) {
            return ForJs(ValidOnly(m.Emissions(in.ids, in.mask, {}, in.syllables), in.mask),
                         torch::kFloat32);
          },
          TensorToJs);
    });
  }

  // hidden(ids, shape, lengths, inputs?) -> Promise<Float32Array [B, T, H]>: the encoder's last
  // hidden states (as float32), 0 beyond each length.
  Napi::Value Hidden(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      CheckLive();
      return Infer<torch::Tensor>(
          info.Env(), BatchArgs(info, config(), 3),
          [](model::NerModelImpl& m, const Placed& in) {
            auto h = m.Hidden(in.ids, in.mask, {}, in.syllables);
            return ForJs(ValidOnly(h.to(torch::kFloat32), in.mask), torch::kFloat32);
          },
          TensorToJs);
    });
  }

  // attentions(ids, shape, lengths, layers: number[], heads: number[], inputs?) -> Promise<{
  // emissions: Float32Array [B, T, K], attentions: Float32Array [B, layers, heads, T, T] }>: one
  // forward that keeps the listed layers' attention probabilities (as float32) for the listed
  // heads, in the order given; 0 beyond each length (emission rows, attention query rows).
  Napi::Value Attentions(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      CheckLive();
      auto batch = BatchArgs(info, config(), 5);
      auto layers = IndexListArg(info[3], config().numHiddenLayers, "layers");
      auto heads = IndexListArg(info[4], config().numAttentionHeads, "heads");
      return Infer<std::pair<torch::Tensor, torch::Tensor>>(
          info.Env(), batch,
          [layers, heads](model::NerModelImpl& m, const Placed& in) {
            model::AttentionCapture capture;
            capture.layers = layers;
            auto e = m.Emissions(in.ids, in.mask, {}, in.syllables, &capture);
            auto headIndex = torch::tensor(heads, torch::kInt64).to(m.device());
            std::vector<torch::Tensor> picked;
            for (const auto& p : capture.probs) picked.push_back(p.index_select(1, headIndex));
            const int64_t B = in.mask.size(0), T = in.mask.size(1);
            auto queries = in.mask.view({B, 1, 1, T, 1});
            auto probs = torch::stack(picked, 1).to(torch::kFloat32) * queries;
            return std::make_pair(ForJs(ValidOnly(e, in.mask), torch::kFloat32),
                                  ForJs(probs, torch::kFloat32));
          },
          [](Napi::Env env, std::pair<torch::Tensor, torch::Tensor>& out) -> Napi::Value {
            auto result = Napi::Object::New(env);
            result.Set("emissions", TypedArrayOf(env, out.first));
            result.Set("attentions", TypedArrayOf(env, out.second));
            return result;
          });
    });
  }

  // decode(ids, shape, lengths, { nBest, constraints, marginals }, inputs?) -> Promise<{ tags:
  // Int32Array [B, N, T] (-1 beyond each length and for missing paths), scores: Float32Array [B, N]
  // (-inf for missing paths), marginals?: Float32Array [B, T, K] }>: encoder, head and decoder in
  // one.
  Napi::Value Decode(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      CheckLive();
      auto batch = BatchArgs(info, config(), 4);
      auto options = DecodeOptionsArg(info[3], config().numLabels());
      return Infer<Decoded>(
          info.Env(), batch,
          [options](model::NerModelImpl& m, const Placed& in) {
            return DecodeWith(m, m.Emissions(in.ids, in.mask, {}, in.syllables), in.mask, options);
          },
          DecodedToJs);
    });
  }

  // decodeEmissions(emissions: Float32Array [B, T, K], shape, lengths, options) -> Promise<as
  // decode>: the head's decoder alone, for emissions stitched from windows of a long text (so T
  // is not bounded by the positions).
  Napi::Value DecodeEmissions(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      CheckLive();
      auto batch = EmissionArgs(info, config());
      auto options = DecodeOptionsArg(info[3], config().numLabels());
      auto state = state_;
      return PromiseWorker<Decoded>::Start(
          info.Env(),
          [state, batch, options] {
            return Shared(state, [&](model::NerModelImpl& m) {
              return DecodeWith(m, batch.emissions.to(m.device()), batch.mask.to(m.device()),
                                options);
            });
          },
          DecodedToJs);
    });
  }

  // loss(ids, shape, lengths, tags: Int32Array [B, T], inputs?) -> Promise<number>: the head's
  // training loss in eval mode (mean token cross entropy for softmax, batch-mean CRF NLL
  // otherwise).
  Napi::Value Loss(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      CheckLive();
      auto batch = BatchArgs(info, config(), 4);
      auto tags = IntTensorArg(info[3], batch.ids.sizes().vec(), "tags").to(torch::kInt64);
      const int64_t K = config().numLabels();
      auto badTag = batch.mask.logical_and((tags < 0).logical_or(tags >= K));
      if (badTag.any().item<bool>()) {
        auto at = badTag.nonzero()[0];
        const int64_t b = at[0].item<int64_t>(), t = at[1].item<int64_t>();
        throw std::invalid_argument("tags[" + std::to_string(b) + "][" + std::to_string(t) +
                                    "] = " + std::to_string(tags[b][t].item<int64_t>()) +
                                    " is outside 0.." + std::to_string(K - 1));
      }
      return Infer<double>(
          info.Env(), batch,
          [tags](model::NerModelImpl& m, const Placed& in) {
            auto e = m.Emissions(in.ids, in.mask, {}, in.syllables);
            return m.head().Loss(e, tags.to(m.device()), in.mask).item<double>();
          },
          [](Napi::Env env, double& x) { return Napi::Number::New(env, x); });
    });
  }

  // parameterInfo() -> [{ name, shape }] in registration order (names are checkpoint keys).
  Napi::Value ParameterInfo(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      Napi::Env env = info.Env();
      auto out = Napi::Array::New(env, parameters_.size());
      for (uint32_t i = 0; i < parameters_.size(); ++i) {
        auto entry = Napi::Object::New(env);
        entry.Set("name", parameters_[i].first);
        auto shape = Napi::Array::New(env, parameters_[i].second.size());
        for (uint32_t d = 0; d < parameters_[i].second.size(); ++d) {
          shape.Set(d, static_cast<double>(parameters_[i].second[d]));
        }
        entry.Set("shape", shape);
        out.Set(i, entry);
      }
      return out;
    });
  }

  // seed(n) -> Promise<void>: seeds LibTorch's generator with n and re-draws every parameter
  // from it, so models of one config seeded alike are identical.
  Napi::Value Seed(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      CheckLive();
      const auto seed = static_cast<uint64_t>(IntegerArg(info[0], "seed", 0, 9007199254740991.0));
      auto state = state_;
      return PromiseWorker<void>::Start(info.Env(), [state, seed] {
        Exclusive(state, [&](model::NerModelImpl& m) {
          std::lock_guard<std::mutex> init(InitMutex());
          torch::manual_seed(seed);
          m.ResetParameters();
        });
      });
    });
  }

  // dispose() -> Promise<void>: frees the module's memory once the calls in flight are done (it
  // takes the lock alone); every later call fails saying the model was disposed. A second
  // dispose does nothing.
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      state_->disposed = true;
      auto state = state_;
      return PromiseWorker<void>::Start(info.Env(), [state] {
        TensorThread::Run([&] {
          std::unique_lock<std::shared_mutex> lock(state->mutex);
          state->model = nullptr;
#if defined(__GLIBC__)
          // Hand the free pages back to the system, so that dispose lowers the process's memory
          // at once: glibc's (small tensors, and everything not a tensor) and the block cache's.
          malloc_trim(0);
#endif
          model::EmptyCpuBlockCache();
        });
      });
    });
  }

  std::shared_ptr<State> state_;
  // Names and shapes never change after construction: read without the lock.
  std::vector<std::pair<std::string, std::vector<int64_t>>> parameters_;
};

}  // namespace

std::shared_ptr<ModelState> SharedModelState(Napi::Value value, const std::string& what) {
  if (!value.IsObject() || !value.As<Napi::Object>().CheckTypeTag(&kModelTag)) {
    throw TypeError(what + ": expected a Model (new Model(config))");
  }
  return ModelWrap::Unwrap(value.As<Napi::Object>())->state();
}

void InitModel(Napi::Env env, Napi::Object exports) {
  exports.Set("Model", ModelWrap::Define(env));
}

}  // namespace koner::napi
