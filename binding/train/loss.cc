#include "train/loss.h"

#include "crf/crf.h"
#include "train/amp.h"

namespace koner::train {

Normaliser NormaliserOf(model::HeadKind head) {
  return model::HasCrf(head) ? Normaliser::Sentences : Normaliser::Pieces;
}

torch::Tensor SummedLoss(model::NerModelImpl& model, const MicroBatch& batch,
                         torch::ScalarType autocast) {
  const auto device = model.device();
  auto ids = batch.ids.to(device);
  auto mask = batch.mask.to(device);
  // Padding tags may be anything (-1): zero them so that no kernel ever indexes with them.
  auto tags = torch::where(batch.mask, batch.tags, torch::zeros_like(batch.tags)).to(device);
  torch::Tensor hidden;
  {
    AutocastScope autocastScope(device, autocast);
    hidden = model.Hidden(ids, mask);
  }
  auto emissions = model.head().Emissions(hidden, mask);
  return model.head().Loss(emissions, tags, mask, crf::Reduction::Sum);
}

}  // namespace koner::train
