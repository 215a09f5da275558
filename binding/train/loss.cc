#include "train/loss.h"

#include <stdexcept>

#include "crf/crf.h"
#include "train/amp.h"

namespace koner::train {

Normaliser NormaliserOf(model::HeadKind head) {
  return model::HasCrf(head) ? Normaliser::Sentences : Normaliser::Pieces;
}

SummedLosses SumLosses(model::NerModelImpl& model, const MicroBatch& batch,
                       torch::ScalarType autocast) {
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
  if (batch.tags.defined()) {
    // Padding tags may be anything (-1): zero them so that no kernel ever indexes with them.
    auto tags = torch::where(batch.mask, batch.tags, torch::zeros_like(batch.tags)).to(device);
    auto emissions = model.head().Emissions(hidden, mask);
    out.tagging = model.head().Loss(emissions, tags, mask, crf::Reduction::Sum);
  }
  if (batch.posTags.defined()) {
    auto* pos = model.posClassifier();
    if (!pos) throw std::invalid_argument("posTags: this model has no POS head (posLabels)");
    auto logits = pos->forward(hidden.to(torch::kFloat32));
    // -1 (no target) is cross entropy's ignored index; padding carries -1 too.
    auto targets = torch::where(batch.mask, batch.posTags, torch::full_like(batch.posTags, -1));
    out.pos = torch::nn::functional::cross_entropy(
        logits.flatten(0, 1), targets.to(device).flatten(),
        torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-1).reduction(torch::kSum));
  }
  if (batch.mlmLabels.defined()) {
    auto* mlm = model.mlm();
    if (!mlm) throw std::invalid_argument("mlmLabels: this model has no masked-LM head");
    auto labels = batch.mlmLabels.to(device);
    auto where = labels.ge(0).logical_and(mask).nonzero();  // [M, 2]
    auto selected = hidden.index({where.select(1, 0), where.select(1, 1)}).to(torch::kFloat32);
    auto targets = labels.index({where.select(1, 0), where.select(1, 1)});
    auto logits = mlm->forward(selected, model.bert->embeddings->wordEmbeddings->weight);
    out.mlm = torch::nn::functional::cross_entropy(
        logits, targets, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
    out.mlmCorrect = logits.detach().argmax(1).eq(targets).sum();
  }
  return out;
}

torch::Tensor SummedLoss(model::NerModelImpl& model, const MicroBatch& batch,
                         torch::ScalarType autocast) {
  return SumLosses(model, batch, autocast).tagging;
}

}  // namespace koner::train
