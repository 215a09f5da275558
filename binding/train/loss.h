// The training objective of one micro-batch, summed (never averaged) so that a step over several
// micro-batches, or over several ranks, divides one global sum by one global count and equals a
// step over all their sentences at once.
//
// The count is the head's natural one: sentences for the CRF heads (pytorch-crf's batch mean of
// the NLL), valid pieces for the softmax head (Hugging Face's token-mean cross entropy, and what
// Model.loss reports), so learning rates and clipping norms mean what they mean in the recipes
// those heads come from.
#pragma once
#include <torch/torch.h>

#include <cstdint>

#include "model/config.h"
#include "model/ner_model.h"

namespace koner::train {

// One micro-batch as validated from JS, on the CPU.
struct MicroBatch {
  torch::Tensor ids;   // [B, T] int64
  torch::Tensor mask;  // [B, T] bool, a prefix of each row
  torch::Tensor tags;  // [B, T] int64, within 0..K-1 inside the mask (anything beyond)
  int64_t sentences = 0, pieces = 0;
};

enum class Normaliser { Sentences, Pieces };
Normaliser NormaliserOf(model::HeadKind head);
inline double CountOf(Normaliser n, double sentences, double pieces) {
  return n == Normaliser::Sentences ? sentences : pieces;
}

// The summed loss (a float32 scalar on the model's device) in the model's current mode. The
// encoder runs under autocast to `autocast` (CUDA; float32 for none); the head outside it, so
// that it computes in float32 as in inference.
torch::Tensor SummedLoss(model::NerModelImpl& model, const MicroBatch& batch,
                         torch::ScalarType autocast);

}  // namespace koner::train
