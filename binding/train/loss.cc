#include "train/loss.h"

#include <stdexcept>

#include "crf/crf.h"
#include "train/amp.h"

namespace koner::train {

Normaliser NormaliserOf(model::HeadKind head) {
  return model::HasCrf(head) ? Normaliser::Sentences : Normaliser::Pieces;
}

const char* ObjectiveName(Objective objective) {
  switch (objective) {
    case kTagging:
      return "tagging";
    case kPos:
      return "pos";
    case kMlm:
      return "mlm";
    case kDistill:
      return "distill";
    case kRtd:
      return "rtd";
    case kObjectives:
      break;
  }
  return "?";
}

void CountTargets(MicroBatch& batch, model::HeadKind head) {
  batch.targets = {};
  if (batch.tags.defined()) {
    if (batch.tagged.defined()) {
      const auto rows = batch.tagged.to(torch::kFloat64);
      batch.targets[kTagging] =
          CountOf(NormaliserOf(head), rows.sum().item<double>(),
                  (batch.mask.sum(1).to(torch::kFloat64) * rows).sum().item<double>());
    } else {
      batch.targets[kTagging] = CountOf(NormaliserOf(head), static_cast<double>(batch.sentences),
                                        static_cast<double>(batch.pieces));
    }
  }
  if (batch.posTags.defined()) {
    batch.targets[kPos] = batch.posTags.ge(0).logical_and(batch.mask).sum().item<double>();
  }
  if (batch.mlmLabels.defined()) {
    batch.targets[kMlm] = batch.mlmLabels.ge(0).logical_and(batch.mask).sum().item<double>();
  }
  if (batch.rtdLabels.defined()) {
    batch.targets[kRtd] = batch.rtdLabels.ge(0).logical_and(batch.mask).sum().item<double>();
  }
  if (batch.softTargets.defined()) {
    auto present = batch.softTargets.sum(-1).gt(0).logical_and(batch.mask);
    batch.targets[kDistill] = present.sum().item<double>();
  }
}

SummedLosses SumLosses(model::NerModelImpl& model, const MicroBatch& batch,
                       torch::ScalarType autocast, double temperature) {
  namespace F = torch::nn::functional;
  const auto device = model.device();
  auto ids = batch.ids.to(device);
  auto mask = batch.mask.to(device);
  torch::Tensor hidden;
  {
    AutocastScope autocastScope(device, autocast);
    hidden = model.Hidden(ids, mask, {},
                          batch.syllables.defined() ? batch.syllables.to(device) : torch::Tensor());
  }
  SummedLosses out;
  torch::Tensor emissions;
  if (batch.tags.defined() || batch.softTargets.defined()) {
    emissions = model.head().Emissions(hidden, mask);
  }
  if (batch.tags.defined()) {
    // Padding tags may be anything (-1): zero them so that no kernel ever indexes with them.
    auto tags = torch::where(batch.mask, batch.tags, torch::zeros_like(batch.tags)).to(device);
    if (batch.tagged.defined()) {
      // Per sentence, then only the tagged rows.
      auto perRow = model.head().Loss(emissions, tags, mask, crf::Reduction::None);
      out.sums[kTagging] = (perRow * batch.tagged.to(device, perRow.scalar_type())).sum();
    } else {
      out.sums[kTagging] = model.head().Loss(emissions, tags, mask, crf::Reduction::Sum);
    }
  }
  if (batch.softTargets.defined()) {
    // Cross entropy of the student's per-piece distribution against the teacher's; rows of
    // padding and pieces without a target hold zeros and add nothing.
    auto targets = batch.softTargets.to(device) * mask.unsqueeze(-1).to(torch::kFloat32);
    auto logp = torch::log_softmax(emissions / temperature, -1);
    out.sums[kDistill] = -(targets * logp).sum() * (temperature * temperature);
  }
  if (batch.posTags.defined()) {
    auto* pos = model.posClassifier();
    if (!pos) throw std::invalid_argument("posTags: this model has no POS head (posLabels)");
    auto logits = pos->forward(hidden.to(torch::kFloat32));
    // -1 (no target) is cross entropy's ignored index; padding carries -1 too.
    auto targets = torch::where(batch.mask, batch.posTags, torch::full_like(batch.posTags, -1));
    out.sums[kPos] =
        F::cross_entropy(logits.flatten(0, 1), targets.to(device).flatten(),
                         F::CrossEntropyFuncOptions().ignore_index(-1).reduction(torch::kSum));
  }
  if (batch.mlmLabels.defined()) {
    auto* mlm = model.mlm();
    if (!mlm) throw std::invalid_argument("mlmLabels: this model has no masked-LM head");
    auto labels = batch.mlmLabels.to(device);
    auto where = labels.ge(0).logical_and(mask).nonzero();  // [M, 2]
    auto rows = where.select(1, 0), cols = where.select(1, 1);
    auto selected = hidden.index({rows, cols}).to(torch::kFloat32);
    auto targets = labels.index({rows, cols});
    auto logits = mlm->forward(selected, model.bert->embeddings->wordEmbeddings->weight);
    out.sums[kMlm] =
        F::cross_entropy(logits, targets, F::CrossEntropyFuncOptions().reduction(torch::kSum));
    out.mlmCorrect = logits.detach().argmax(1).eq(targets).sum();
    if (batch.sampleMasked) {
      // Sampled, not argmax: ELECTRA's discriminator must see the generator's plausible
      // mistakes, and its own sample of them at every step.
      out.mlmSamples = torch::multinomial(torch::softmax(logits.detach(), 1), 1).squeeze(1).cpu();
    }
  }
  if (batch.rtdLabels.defined()) {
    auto* rtd = model.rtd();
    if (!rtd) throw std::invalid_argument("rtdLabels: this model has no replaced-token head");
    auto labels = batch.rtdLabels.to(device);
    auto judged = labels.ge(0).logical_and(mask);
    auto logits = rtd->forward(hidden).masked_select(judged);
    auto targets = labels.masked_select(judged).to(torch::kFloat32);
    out.sums[kRtd] = F::binary_cross_entropy_with_logits(
        logits, targets, F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kSum));
    out.rtdCorrect = logits.detach().gt(0).eq(targets.gt(0.5)).sum();
  }
  return out;
}

torch::Tensor SummedLoss(model::NerModelImpl& model, const MicroBatch& batch,
                         torch::ScalarType autocast) {
  return SumLosses(model, batch, autocast).sums[kTagging];
}

}  // namespace koner::train
