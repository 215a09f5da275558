// `Trainer`: binding/train's training step over a JS Model, plus LibTorch's CPU generator state
// (getRngState/setRngState) for resumable runs. Arguments are validated on the JS thread (errors
// name the batch and field); steps run on libuv's pool.
//
// Locking: a step holds the model's write lock from its first forward to its optimizer update,
// so inference never sees half-updated weights; saveState reads under the shared lock. With a
// group, the call reserves its turn on the JS thread (collectives start in call order on every
// rank) and the work takes the turn before the model's lock: the one order every locked
// collective follows, so a step and a broadcastParameters queued together cannot deadlock.
#include <torch/torch.h>

#include <cmath>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

#include "napi/args.h"
#include "napi/dist.h"
#include "napi/errors.h"
#include "napi/model.h"
#include "napi/modules.h"
#include "napi/tensors.h"
#include "napi/worker.h"
#include "train/loss.h"
#include "train/options.h"
#include "train/rng.h"
#include "train/trainer.h"

namespace koner::napi {
namespace {

// NativeTrainerOptions; every error names its field.
train::TrainerOptions OptionsArg(const Napi::Value& value) {
  if (!value.IsObject() || value.IsArray()) {
    throw TypeError("options: expected { weightDecay, betas, eps, clipNorm, autocast? }, got " +
                    Describe(value));
  }
  auto o = value.As<Napi::Object>();
  OnlyKnownKeys(o, "options",
                {"weightDecay", "betas", "eps", "clipNorm", "autocast", "layerDecay", "posWeight",
                 "distillWeight", "distillTemperature"});
  auto required = [&](const char* field) {
    Napi::Value v = o.Get(field);
    if (v.IsUndefined()) throw TypeError(std::string("options.") + field + ": missing");
    return v;
  };
  train::TrainerOptions options;
  options.weightDecay = NumberArg(required("weightDecay"), "options.weightDecay");
  Napi::Value betas = required("betas");
  if (!betas.IsArray() || betas.As<Napi::Array>().Length() != 2) {
    throw TypeError("options.betas: must be [beta1, beta2], got " + Describe(betas));
  }
  options.beta1 = NumberArg(betas.As<Napi::Array>().Get(0u), "options.betas[0]");
  options.beta2 = NumberArg(betas.As<Napi::Array>().Get(1u), "options.betas[1]");
  options.eps = NumberArg(required("eps"), "options.eps");
  options.clipNorm = NumberArg(required("clipNorm"), "options.clipNorm");
  auto optional = [&](const char* field, double& into) {
    if (!o.Get(field).IsUndefined())
      into = NumberArg(o.Get(field), std::string("options.") + field);
  };
  optional("layerDecay", options.layerDecay);
  optional("posWeight", options.posWeight);
  optional("distillWeight", options.distillWeight);
  optional("distillTemperature", options.distillTemperature);
  Napi::Value autocast = o.Get("autocast");
  if (!autocast.IsUndefined()) {
    const std::string name = StringArg(autocast, "options.autocast");
    if (name == "float32") {
      options.autocast = torch::kFloat32;
    } else if (name == "bfloat16") {
      options.autocast = torch::kBFloat16;
    } else if (name == "float16") {
      options.autocast = torch::kFloat16;
    } else {
      throw TypeError("options.autocast: must be 'float32', 'bfloat16' or 'float16', got \"" +
                      name + "\"");
    }
  }
  train::Validate(options);
  return options;
}

// The first flagged position of a [B, T] bool tensor, as "[b][t]".
std::pair<int64_t, int64_t> FirstOf(const torch::Tensor& flags) {
  auto at = flags.nonzero()[0];
  return {at[0].item<int64_t>(), at[1].item<int64_t>()};
}

// batches[index] as a MicroBatch: shape [B, T] within the positions, ids in the vocabulary
// (padding too), lengths 1..T, tags 0..K-1 within each length (anything beyond).
train::MicroBatch BatchArg(const Napi::Value& value, uint32_t index,
                           const model::ModelConfig& config) {
  const std::string what = "batches[" + std::to_string(index) + "]";
  if (!value.IsObject() || value.IsArray()) {
    throw TypeError(what + ": expected { ids, shape, lengths, tags }, got " + Describe(value));
  }
  auto o = value.As<Napi::Object>();
  auto shape = ShapeArg(o.Get("shape"), what + ".shape");
  if (shape.size() != 2) {
    throw TypeError(what + ".shape: expected [batch, pieces], got " + ShapeString(shape));
  }
  const int64_t B = shape[0], T = shape[1];
  if (B == 0 || T == 0) {
    throw std::invalid_argument(what + ".shape " + ShapeString(shape) + ": empty");
  }
  if (T > config.maxPositionEmbeddings) {
    throw std::invalid_argument(what + ".shape " + ShapeString(shape) + ": " + std::to_string(T) +
                                " pieces exceed maxPositionEmbeddings (" +
                                std::to_string(config.maxPositionEmbeddings) + ")");
  }
  train::MicroBatch batch;
  batch.ids = IntTensorArg(o.Get("ids"), shape, what + ".ids").to(torch::kInt64);
  auto lengths = IntTensorArg(o.Get("lengths"), {B}, what + ".lengths").to(torch::kInt64);

  auto badLength = (lengths < 1).logical_or(lengths > T);
  if (badLength.any().item<bool>()) {
    const int64_t b = badLength.nonzero()[0][0].item<int64_t>();
    throw std::invalid_argument(what + ".lengths[" + std::to_string(b) +
                                "] = " + std::to_string(lengths[b].item<int64_t>()) +
                                " is outside 1.." + std::to_string(T));
  }
  batch.mask = torch::arange(T).unsqueeze(0) < lengths.unsqueeze(1);
  // Ids in range everywhere (padding too); targets in [low, count) inside the mask only.
  auto checkRange = [&](const torch::Tensor& values, const std::string& field, int64_t low,
                        int64_t count, const std::string& range, bool everywhere) {
    auto bad = (values < low).logical_or(values >= count);
    if (!everywhere) bad = bad.logical_and(batch.mask);
    if (!bad.any().item<bool>()) return;
    auto [b, t] = FirstOf(bad);
    throw std::invalid_argument(
        what + "." + field + "[" + std::to_string(b) + "][" + std::to_string(t) +
        "] = " + std::to_string(values[b][t].item<int64_t>()) + " is outside " + range);
  };
  checkRange(batch.ids, "ids", 0, config.vocabSize,
             "the vocabulary 0.." + std::to_string(config.vocabSize - 1), true);

  const bool hasTags = !o.Get("tags").IsUndefined();
  if (hasTags) {
    if (config.head == model::HeadKind::None) {
      throw std::invalid_argument(what + ".tags: the model has no tagging head (head none)");
    }
    batch.tags = IntTensorArg(o.Get("tags"), shape, what + ".tags").to(torch::kInt64);
    const int64_t K = config.numLabels();
    const Napi::Value tagged = o.Get("tagged");
    if (!tagged.IsUndefined()) batch.tagged = BoolTensorArg(tagged, {B}, what + ".tagged");
    // Rows whose tags do not count may hold anything.
    auto rows =
        batch.tagged.defined() ? batch.tagged.unsqueeze(1) : torch::ones({B, 1}, torch::kBool);
    auto bad =
        rows.logical_and(batch.mask).logical_and((batch.tags < 0).logical_or(batch.tags >= K));
    if (bad.any().item<bool>()) {
      auto [b, t] = FirstOf(bad);
      throw std::invalid_argument(what + ".tags[" + std::to_string(b) + "][" + std::to_string(t) +
                                  "] = " + std::to_string(batch.tags[b][t].item<int64_t>()) +
                                  " is outside 0.." + std::to_string(K - 1) + " (" +
                                  std::to_string(K) + " labels)");
    }
    if (batch.tagged.defined()) {
      batch.tags =
          torch::where(rows.logical_and(batch.mask), batch.tags, torch::zeros_like(batch.tags));
    }
  }
  if (!o.Get("posTags").IsUndefined()) {
    const int64_t P = static_cast<int64_t>(config.posLabels.size());
    if (P == 0) throw std::invalid_argument(what + ".posTags: the model has no POS head");
    batch.posTags = IntTensorArg(o.Get("posTags"), shape, what + ".posTags").to(torch::kInt64);
    checkRange(batch.posTags, "posTags", -1, P, "-1.." + std::to_string(P - 1) + " (-1: no target)",
               false);
  }
  if (!o.Get("mlmLabels").IsUndefined()) {
    if (!config.mlmHead)
      throw std::invalid_argument(what + ".mlmLabels: the model has no MLM head");
    batch.mlmLabels =
        IntTensorArg(o.Get("mlmLabels"), shape, what + ".mlmLabels").to(torch::kInt64);
    checkRange(batch.mlmLabels, "mlmLabels", -1, config.vocabSize,
               "-1.." + std::to_string(config.vocabSize - 1) + " (-1: not masked)", false);
  }
  if (!o.Get("sampleMasked").IsUndefined()) {
    batch.sampleMasked = BooleanArg(o.Get("sampleMasked"), what + ".sampleMasked");
    if (batch.sampleMasked && !batch.mlmLabels.defined()) {
      throw std::invalid_argument(what + ".sampleMasked: needs mlmLabels (the masked positions)");
    }
  }
  if (!o.Get("rtdLabels").IsUndefined()) {
    if (!config.rtdHead) {
      throw std::invalid_argument(what + ".rtdLabels: the model has no replaced-token head");
    }
    batch.rtdLabels =
        IntTensorArg(o.Get("rtdLabels"), shape, what + ".rtdLabels").to(torch::kInt64);
    checkRange(batch.rtdLabels, "rtdLabels", -1, 2,
               "-1..1 (1: replaced, 0: original, -1: not judged)", false);
  }
  if (!o.Get("softTargets").IsUndefined()) {
    if (config.head == model::HeadKind::None) {
      throw std::invalid_argument(what + ".softTargets: the model has no tagging head (head none)");
    }
    const int64_t K = config.numLabels();
    batch.softTargets = FloatTensorArg(o.Get("softTargets"), {B, T, K}, what + ".softTargets");
    // Each target row is a distribution (sums to 1) or all zeros (no target); padding is free.
    auto rows = batch.softTargets.sum(-1);
    auto bad =
        batch.mask.logical_and(batch.softTargets.lt(0)
                                   .any(-1)
                                   .logical_or(batch.softTargets.isnan().any(-1))
                                   .logical_or(rows.gt(0).logical_and((rows - 1).abs().gt(1e-3))));
    if (bad.any().item<bool>()) {
      auto [b, t] = FirstOf(bad);
      throw std::invalid_argument(
          what + ".softTargets[" + std::to_string(b) + "][" + std::to_string(t) +
          "]: must be a distribution over the labels (values >= 0 " + "summing to 1) or all zeros");
    }
  }
  if (!hasTags && !batch.posTags.defined() && !batch.mlmLabels.defined() &&
      !batch.softTargets.defined() && !batch.rtdLabels.defined()) {
    throw std::invalid_argument(
        what + ": no targets (tags, posTags, mlmLabels, rtdLabels or softTargets)");
  }
  Napi::Value syllables = o.Get("syllables");
  if (config.syllableVocabSize > 0) {
    const Napi::Value per = o.Get("syllablesPerPiece");
    if (syllables.IsUndefined() || !per.IsNumber()) {
      throw std::invalid_argument(what + ".syllables: the model has a syllable channel: give " +
                                  "syllables (Int32Array [B * T * S]) and syllablesPerPiece (S)");
    }
    const double S = per.As<Napi::Number>().DoubleValue();
    if (!(S >= 1 && S <= 64) || S != std::floor(S)) {
      throw std::invalid_argument(what + ".syllablesPerPiece: must be an integer in 1..64, got " +
                                  Describe(per));
    }
    batch.syllables = IntTensorArg(syllables, {B, T, static_cast<int64_t>(S)}, what + ".syllables")
                          .to(torch::kInt64);
    auto bad = (batch.syllables < 0).logical_or(batch.syllables >= config.syllableVocabSize);
    if (bad.any().item<bool>()) {
      throw std::invalid_argument(what + ".syllables: an id is outside 0.." +
                                  std::to_string(config.syllableVocabSize - 1));
    }
  } else if (!syllables.IsUndefined()) {
    throw std::invalid_argument(what + ".syllables: the model has no syllable channel");
  }
  batch.sentences = B;
  batch.pieces = lengths.sum().item<int64_t>();
  train::CountTargets(batch, config.head);
  return batch;
}

std::vector<train::MicroBatch> BatchesArg(const Napi::Value& value,
                                          const model::ModelConfig& config, bool grouped) {
  if (!value.IsArray()) {
    throw TypeError("batches: expected an array of { ids, shape, lengths, tags }, got " +
                    Describe(value));
  }
  auto array = value.As<Napi::Array>();
  if (array.Length() == 0 && !grouped) throw std::invalid_argument("batches: empty");
  std::vector<train::MicroBatch> out;
  for (uint32_t i = 0; i < array.Length(); ++i) out.push_back(BatchArg(array.Get(i), i, config));
  return out;
}

Napi::Value StepResultToJs(Napi::Env env, train::StepResult& r) {
  auto out = Napi::Object::New(env);
  out.Set("loss", r.loss);
  out.Set("taggingLoss", r.losses[train::kTagging]);
  out.Set("posLoss", r.losses[train::kPos]);
  out.Set("mlmLoss", r.losses[train::kMlm]);
  out.Set("distillLoss", r.losses[train::kDistill]);
  out.Set("mlmAccuracy", r.mlmAccuracy);
  out.Set("rtdLoss", r.losses[train::kRtd]);
  out.Set("rtdAccuracy", r.rtdAccuracy);
  if (!r.mlmSamples.empty()) {
    auto samples = torch::tensor(r.mlmSamples, torch::kInt64).to(torch::kInt32);
    out.Set("mlmSamples", TypedArrayOf(env, samples));
  }
  out.Set("gradNorm", r.gradNorm);
  out.Set("sentences", static_cast<double>(r.sentences));
  out.Set("pieces", static_cast<double>(r.pieces));
  out.Set("skipped", r.skipped);
  return out;
}

class TrainerWrap : public Napi::ObjectWrap<TrainerWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Trainer",
                       {
                           InstanceMethod<&TrainerWrap::Step>("step"),
                           InstanceMethod<&TrainerWrap::Evaluate>("evaluate"),
                           InstanceMethod<&TrainerWrap::BroadcastParameters>("broadcastParameters"),
                           InstanceMethod<&TrainerWrap::SaveState>("saveState"),
                           InstanceMethod<&TrainerWrap::LoadState>("loadState"),
                       });
  }

  // new Trainer(model, options). No lock: the Trainer only collects the parameters' handles and
  // names, which never change after the Model's construction (moves and loads are in place).
  explicit TrainerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TrainerWrap>(info) {
    Guard(info.Env(), [&] {
      model_ = SharedModelState(info[0], "model");
      if (model_->disposed) throw std::runtime_error(kDisposedMessage);
      const auto options = OptionsArg(info[1]);
      trainer_ = std::make_shared<train::Trainer>(model_->model, options);
    });
  }

 private:
  // step(batches, lr, group?) -> Promise<{ loss, gradNorm, sentences, pieces, skipped }>
  Napi::Value Step(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      std::shared_ptr<dist::Group> group;
      if (!info[2].IsUndefined() && !info[2].IsNull()) group = SharedGroup(info[2], "group");
      if (model_->disposed) throw std::runtime_error(kDisposedMessage);
      auto batches = BatchesArg(info[0], model_->config, group != nullptr);
      const double lr = NumberArg(info[1], "lr");
      if (!std::isfinite(lr) || lr < 0) {
        throw TypeError("lr: must be a finite number >= 0, got " + Describe(info[1]));
      }
      CheckAutocastPlacement();
      auto model = model_;
      auto trainer = trainer_;
      const uint64_t turn = group ? group->ReserveTurn() : 0;
      return PromiseWorker<train::StepResult>::Start(
          info.Env(),
          [model, trainer, group, batches, lr, turn] {
            auto run = [&] {
              std::unique_lock<std::shared_mutex> lock(model->mutex);
              if (model->model.is_empty()) throw std::runtime_error(kDisposedMessage);
              return trainer->Step(batches, lr, group.get());
            };
            return group ? group->InTurn(turn, run) : run();
          },
          StepResultToJs);
    });
  }

  // evaluate(batches) -> Promise<{ loss, …, mlmAccuracy }>: the step's losses without the step.
  Napi::Value Evaluate(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      if (model_->disposed) throw std::runtime_error(kDisposedMessage);
      auto batches = BatchesArg(info[0], model_->config, false);
      auto model = model_;
      auto trainer = trainer_;
      return PromiseWorker<train::StepResult>::Start(
          info.Env(),
          [model, trainer, batches] {
            std::shared_lock<std::shared_mutex> lock(model->mutex);
            if (model->model.is_empty()) throw std::runtime_error(kDisposedMessage);
            return trainer->Evaluate(batches);
          },
          StepResultToJs);
    });
  }

  // broadcastParameters(group, root = 0) -> Promise<void>
  Napi::Value BroadcastParameters(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      auto group = SharedGroup(info[0], "group");
      int root = 0;
      if (!info[1].IsUndefined()) {
        const double x = info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : -1;
        if (!(x >= 0 && x < group->worldSize()) || std::floor(x) != x) {
          throw TypeError("root: must be an integer from 0 to " +
                          std::to_string(group->worldSize() - 1) + ", got " + Describe(info[1]));
        }
        root = static_cast<int>(x);
      }
      auto model = model_;
      auto trainer = trainer_;
      const uint64_t turn = group->ReserveTurn();
      return PromiseWorker<void>::Start(info.Env(), [model, trainer, group, root, turn] {
        group->InTurn(turn, [&] {
          std::unique_lock<std::shared_mutex> lock(model->mutex);
          trainer->BroadcastParameters(*group, root);
          return true;
        });
      });
    });
  }

  // saveState(path) -> Promise<void>: AdamW's state as safetensors
  // (binding/train/optimizer_state.h).
  Napi::Value SaveState(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      const std::string path = StringArg(info[0], "path");
      auto model = model_;
      auto trainer = trainer_;
      return PromiseWorker<void>::Start(info.Env(), [model, trainer, path] {
        std::shared_lock<std::shared_mutex> lock(model->mutex);
        trainer->WriteState(path);
      });
    });
  }

  // loadState(path) -> Promise<void>: all or nothing; the file is read and checked first.
  Napi::Value LoadState(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      const std::string path = StringArg(info[0], "path");
      auto model = model_;
      auto trainer = trainer_;
      return PromiseWorker<void>::Start(info.Env(), [model, trainer, path] {
        auto state = trainer->ReadState(path);
        std::unique_lock<std::shared_mutex> lock(model->mutex);
        trainer->ApplyState(std::move(state));
      });
    });
  }

  // Early, on the JS thread, for the common mistake; Step checks the model's actual device again.
  void CheckAutocastPlacement() {
    const auto autocast = trainer_->options().autocast;
    if (autocast == torch::kFloat32) return;
    std::lock_guard<std::mutex> names(model_->placementMutex);
    train::CheckAutocast(torch::Device(model_->deviceName), autocast);
  }

  std::shared_ptr<ModelState> model_;
  std::shared_ptr<train::Trainer> trainer_;
};

// getRngState() -> string: base64 of LibTorch's CPU generator state.
Napi::Value GetRngState(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    return Napi::String::New(info.Env(), train::CpuRngState());
  });
}

// setRngState(state): restores a state from getRngState (validated first).
Napi::Value SetRngState(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    train::SetCpuRngState(StringArg(info[0], "state"));
    return info.Env().Undefined();
  });
}

}  // namespace

void InitTrain(Napi::Env env, Napi::Object exports) {
  exports.Set("Trainer", TrainerWrap::Define(env));
  exports.Set("getRngState", Napi::Function::New(env, GetRngState, "getRngState"));
  exports.Set("setRngState", Napi::Function::New(env, SetRngState, "setRngState"));
}

}  // namespace koner::napi
