#include "model/heads.h"

#include <algorithm>

#include "model/bert.h"

namespace koner::model {

CrfImpl::CrfImpl(int64_t numTags) {
  transitions = register_parameter("transitions", torch::empty({numTags, numTags}));
  startTransitions = register_parameter("start_transitions", torch::empty({numTags}));
  endTransitions = register_parameter("end_transitions", torch::empty({numTags}));
  ResetParameters();
}

void CrfImpl::ResetParameters() {
  torch::NoGradGuard noGrad;
  for (auto* p : {&transitions, &startTransitions, &endTransitions}) p->uniform_(-0.1, 0.1);
}

Head::Head(torch::nn::Module& owner, const ModelConfig& c)
    : kind_(c.head), numTags_(c.numLabels()) {
  dropout_ = owner.register_module("dropout", torch::nn::Dropout(c.hiddenDropoutProb));
  int64_t features = c.hiddenSize;
  if (kind_ == HeadKind::BiLstmCrf) {
    lstm_ = owner.register_module(
        "bilstm", torch::nn::LSTM(torch::nn::LSTMOptions(c.hiddenSize, c.rnnHiddenSize)
                                      .batch_first(true)
                                      .bidirectional(true)));
    features = 2 * c.rnnHiddenSize;
  } else if (kind_ == HeadKind::BiGruCrf) {
    gru_ = owner.register_module("bigru",
                                 torch::nn::GRU(torch::nn::GRUOptions(c.hiddenSize, c.rnnHiddenSize)
                                                    .batch_first(true)
                                                    .bidirectional(true)));
    features = 2 * c.rnnHiddenSize;
  }
  classifier_ = owner.register_module("classifier", torch::nn::Linear(features, numTags_));
  if (HasCrf(kind_)) crf_ = owner.register_module("crf", Crf(numTags_));
  ResetParameters(c.initializerRange);
}

torch::Tensor Head::Emissions(const torch::Tensor& hidden, const torch::Tensor& mask) {
  auto x = dropout_(hidden.to(torch::kFloat32));
  if (lstm_ || gru_) {
    namespace rnn = torch::nn::utils::rnn;
    const int64_t T = x.size(1);
    // Packing wants lengths >= 1 on the CPU; a length-0 row is masked out downstream anyway.
    auto lengths = mask.sum(1).to(torch::kCPU, torch::kInt64).clamp_min(1);
    auto packed = rnn::pack_padded_sequence(x, lengths, /*batch_first=*/true,
                                            /*enforce_sorted=*/false);
    rnn::PackedSequence out = lstm_ ? std::get<0>(lstm_->forward_with_packed_input(packed))
                                    : std::get<0>(gru_->forward_with_packed_input(packed));
    x = std::get<0>(rnn::pad_packed_sequence(out, /*batch_first=*/true, 0.0, T));
  }
  return classifier_(x);
}

torch::Tensor Head::Loss(const torch::Tensor& emissions, const torch::Tensor& tags,
                         const torch::Tensor& mask, std::optional<crf::Reduction> reduction) {
  const auto valid = mask.to(torch::kBool);
  if (crf_) {
    return crf::Nll(emissions, tags, valid, crf_->transitions, crf_->startTransitions,
                    crf_->endTransitions, reduction.value_or(crf::Reduction::Mean));
  }
  // Tags beyond a length may be anything (-1 padding): only valid pieces index the softmax.
  auto safeTags =
      torch::where(valid, tags.to(torch::kInt64), torch::zeros_like(tags, torch::kInt64));
  auto logp = torch::log_softmax(emissions.to(torch::kFloat32), -1);
  auto nll = -logp.gather(2, safeTags.unsqueeze(2)).squeeze(2) * valid.to(torch::kFloat32);
  switch (reduction.value_or(crf::Reduction::TokenMean)) {
    case crf::Reduction::None:
      return nll.sum(1);
    case crf::Reduction::Sum:
      return nll.sum();
    case crf::Reduction::Mean:
      return nll.sum() / static_cast<double>(std::max<int64_t>(1, nll.size(0)));
    case crf::Reduction::TokenMean:
      break;
  }
  return nll.sum() / valid.sum().clamp_min(1).to(torch::kFloat32);
}

std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> Head::Scores(const torch::Tensor& like) {
  if (crf_) return {crf_->transitions, crf_->startTransitions, crf_->endTransitions};
  auto options = like.options().dtype(torch::kFloat32);
  return {torch::zeros({numTags_, numTags_}, options), torch::zeros({numTags_}, options),
          torch::zeros({numTags_}, options)};
}

torch::Tensor Head::DecoderEmissions(const torch::Tensor& emissions) {
  return crf_ ? emissions : torch::log_softmax(emissions.to(torch::kFloat32), -1);
}

crf::Paths Head::Decode(const torch::Tensor& emissions, const torch::Tensor& mask, int64_t nBest,
                        const crf::Constraints& constraints) {
  auto [transitions, start, end] = Scores(emissions);
  return crf::Decode(DecoderEmissions(emissions), mask, transitions, start, end, nBest,
                     constraints);
}

torch::Tensor Head::Marginals(const torch::Tensor& emissions, const torch::Tensor& mask,
                              const crf::Constraints& constraints) {
  const bool constrained = constraints.allowed.defined() || constraints.allowedStart.defined() ||
                           constraints.allowedEnd.defined();
  if (!crf_ && !constrained) {
    return torch::softmax(emissions.to(torch::kFloat32), -1) *
           mask.to(torch::kFloat32).unsqueeze(-1);
  }
  auto [transitions, start, end] = Scores(emissions);
  return crf::Marginals(DecoderEmissions(emissions), mask, transitions, start, end, constraints);
}

void Head::ResetParameters(double initializerRange) {
  InitHfWeights(*classifier_, initializerRange);
  // PyTorch's own uniform(-1/sqrt(h), 1/sqrt(h)): HF's _init_weights leaves RNNs alone.
  if (lstm_) lstm_->reset_parameters();
  if (gru_) gru_->reset_parameters();
  if (crf_) crf_->ResetParameters();
}

void Head::To(const torch::Device& device) {
  classifier_->to(device, torch::kFloat32);
  if (lstm_) lstm_->to(device, torch::kFloat32);
  if (gru_) gru_->to(device, torch::kFloat32);
  if (crf_) crf_->to(device, torch::kFloat32);
}

}  // namespace koner::model
