#include "model/ner_model.h"

#include <ATen/Parallel.h>
#include <ATen/ThreadLocalState.h>

#include <algorithm>
#include <exception>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/cpu_features.h"

namespace koner::model {

namespace {
const ModelConfig& Validated(const ModelConfig& config) {
  Validate(config);
  return config;
}

// Whether Hidden runs a batch as parts, one per thread at a time: inference on the CPU, two
// sequences or more, two threads or more, not already inside a parallel region.
bool InParts(const torch::Tensor& ids) {
  return !at::GradMode::is_enabled() && ids.device().is_cpu() && ids.size(0) >= 2 &&
         at::get_num_threads() >= 2 && !at::in_parallel_region();
}

// Parts per thread: more parts balance uneven lengths and a thread that the OS holds back.
constexpr int64_t kPartsPerThread = 2;
}  // namespace

NerModelImpl::NerModelImpl(const ModelConfig& config) : config_(Validated(config)) {
  // Registration order is named_parameters() order: encoder first, then the head.
  bert = register_module("bert", BertModel(config_, /*withPooler=*/false));
  if (config_.head != HeadKind::None) head_ = std::make_unique<Head>(*this, config_);
  if (!config_.posLabels.empty()) {
    pos_ = register_module(
        "pos_classifier",
        torch::nn::Linear(config_.hiddenSize, static_cast<int64_t>(config_.posLabels.size())));
  }
  if (config_.mlmHead) mlm_ = RegisterMlmHead(*this, config_);
  if (config_.rtdHead) rtd_ = register_module("discriminator_predictions", RtdHead(config_));
  ResetAuxiliary();
  InitHfWeights(*bert, config_.initializerRange);
  bert->embeddings->ResetSyllables();
  eval();
}

Head& NerModelImpl::head() {
  if (!head_) {
    throw std::invalid_argument(
        "this model has no tagging head (head none: a pretrained encoder); fine-tune it with "
        "`koner train` (model.init) before tagging");
  }
  return *head_;
}

torch::Tensor NerModelImpl::Hidden(const torch::Tensor& ids, const torch::Tensor& mask,
                                   const torch::Tensor& tokenTypeIds,
                                   const torch::Tensor& syllables, AttentionCapture* attentions) {
  // Attention probabilities are the whole batch's, from one forward.
  if (!attentions && InParts(ids)) return HiddenInParts(ids, mask, tokenTypeIds, syllables);
  return bert(ids, mask, tokenTypeIds, syllables, attentions);
}

// The batch's rows cut into parts of consecutive sequences; each thread takes the next part
// (longest first) and runs the whole encoder on it alone, every product on one core. No
// parallel region inside a forward, so no thread waits for another: with threads splitting
// each product instead, every product ends when the slowest thread does, and on a machine
// shared with other work one of them is often not running. Each part is cut to its own
// longest sequence, so shorter parts skip the batch's padding. Positions past each sequence's
// length come back as zeros.
torch::Tensor NerModelImpl::HiddenInParts(const torch::Tensor& ids, const torch::Tensor& mask,
                                          const torch::Tensor& tokenTypeIds,
                                          const torch::Tensor& syllables) {
  const int64_t B = ids.size(0), T = ids.size(1);
  const int threads = at::get_num_threads();
  const int64_t parts = std::min<int64_t>(B, kPartsPerThread * threads);
  const auto lengths = mask.to(torch::kInt64).sum(1).contiguous();
  const int64_t* length = lengths.data_ptr<int64_t>();
  struct Part {
    int64_t begin, end, pieces, tokens;
    torch::Tensor hidden;
  };
  std::vector<Part> cut(parts);
  for (int64_t p = 0; p < parts; ++p) {
    Part& part = cut[p];
    part.begin = B * p / parts;
    part.end = B * (p + 1) / parts;
    part.pieces = std::max<int64_t>(1, *std::max_element(length + part.begin, length + part.end));
    part.tokens = (part.end - part.begin) * part.pieces;
  }
  std::vector<int64_t> order(parts);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return cut[a].tokens > cut[b].tokens; });
  // The workers run under this thread's grad and inference modes.
  const at::ThreadLocalState state;
  std::exception_ptr error;
  std::mutex errorMutex;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (int64_t k = 0; k < parts; ++k) {
    at::ThreadLocalStateGuard guard(state);
    Part& part = cut[order[k]];
    auto rows = [&](const torch::Tensor& t) {
      return t.defined() ? t.slice(0, part.begin, part.end).slice(1, 0, part.pieces) : t;
    };
    try {
      part.hidden = bert(rows(ids), rows(mask), rows(tokenTypeIds), rows(syllables));
    } catch (...) {
      std::lock_guard<std::mutex> lock(errorMutex);
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
  auto hidden = torch::zeros({B, T, cut[0].hidden.size(2)}, cut[0].hidden.options());
  for (const Part& part : cut) {
    hidden.slice(0, part.begin, part.end).slice(1, 0, part.pieces).copy_(part.hidden);
  }
  return hidden;
}

torch::Tensor NerModelImpl::Emissions(const torch::Tensor& ids, const torch::Tensor& mask,
                                      const torch::Tensor& tokenTypeIds,
                                      const torch::Tensor& syllables,
                                      AttentionCapture* attentions) {
  return head().Emissions(Hidden(ids, mask, tokenTypeIds, syllables, attentions), mask);
}

void NerModelImpl::ResetAuxiliary() {
  // HF's init for both: normal(0, range) weights, zero biases, unit LayerNorm.
  if (pos_) InitHfWeights(*pos_, config_.initializerRange);
  if (rtd_) InitHfWeights(*rtd_, config_.initializerRange);
  if (mlm_) {
    InitHfWeights(*mlm_, config_.initializerRange);
    torch::NoGradGuard noGrad;
    mlm_->bias.zero_();
  }
}

void NerModelImpl::ResetParameters() {
  InitHfWeights(*bert, config_.initializerRange);
  bert->embeddings->ResetSyllables();
  if (head_) head_->ResetParameters(config_.initializerRange);
  ResetAuxiliary();
}

void NerModelImpl::Place(const torch::Device& device, torch::ScalarType encoderDtype) {
  const bool int8 = encoderDtype == torch::kQInt8;
  if (int8 && !device.is_cpu()) {
    throw std::invalid_argument("dtype int8 (dynamic quantization) runs on the CPU only");
  }
  Products products = Products::Float32;
  torch::ScalarType storage = encoderDtype;
  if (device.is_cpu() && (int8 || encoderDtype == torch::kBFloat16)) {
    // Emulated products would be slower than float32 and less exact: refuse, saying why.
    std::string missing = int8 ? Int8Unsupported() : Bf16Unsupported();
    if (missing.empty() && !(DnnlBuilt() && OneDnnAllowed())) {
      missing =
          "the encoder runs without oneDNN's primitives (an addon built without "
          "libdnnl-dev, or KONER_ONEDNN=0)";
    }
    if (!missing.empty()) {
      throw std::invalid_argument(std::string("dtype ") + (int8 ? "int8" : "bfloat16") +
                                  " on the CPU: " + missing + "; use float32");
    }
    products = int8 ? Products::Int8 : Products::BFloat16;
    storage = torch::kFloat32;
  }
  bert->to(device, storage);
  bert->SetProducts(products);
  if (head_) head_->To(device);
  // The auxiliary heads compute in float32, like the tagging head.
  if (pos_) pos_->to(device, torch::kFloat32);
  if (mlm_) mlm_->to(device, torch::kFloat32);
  if (rtd_) rtd_->to(device, torch::kFloat32);
  device_ = device;
  encoderDtype_ = encoderDtype;
}

}  // namespace koner::model
