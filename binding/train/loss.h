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

// One micro-batch as validated from JS, on the CPU. Which objectives it trains follows from which
// targets it carries: tags (the tagging loss), posTags (the auxiliary POS loss), mlmLabels (masked
// LM); a pretraining batch carries mlmLabels only.
struct MicroBatch {
  torch::Tensor ids;        // [B, T] int64
  torch::Tensor mask;       // [B, T] bool, a prefix of each row
  torch::Tensor tags;       // [B, T] int64 within 0..K-1 inside the mask, or undefined
  torch::Tensor posTags;    // [B, T] int64, a POS id or -1 (no target), or undefined
  torch::Tensor mlmLabels;  // [B, T] int64, the original id of a masked piece or -1, or undefined
  torch::Tensor syllables;  // [B, T, S] int64 for a model with a syllable channel, or undefined
  int64_t sentences = 0, pieces = 0;
  int64_t posPieces = 0, maskedPieces = 0;  // targets of the POS and masked-LM losses
};

enum class Normaliser { Sentences, Pieces };
Normaliser NormaliserOf(model::HeadKind head);
inline double CountOf(Normaliser n, double sentences, double pieces) {
  return n == Normaliser::Sentences ? sentences : pieces;
}

// The summed losses of one micro-batch (float32 scalars on the model's device, undefined for an
// objective the batch does not train) and the masked-LM hits, for accuracy.
struct SummedLosses {
  torch::Tensor tagging, pos, mlm;
  torch::Tensor mlmCorrect;  // int64 scalar: masked pieces whose argmax is the original id
};

// The summed losses in the model's current mode. The encoder runs under autocast to `autocast`
// (CUDA; float32 for none); the heads outside it, so that they compute in float32 as in
// inference.
SummedLosses SumLosses(model::NerModelImpl& model, const MicroBatch& batch,
                       torch::ScalarType autocast);

// The tagging loss alone (what `Model.loss` and the tests of the step compare).
torch::Tensor SummedLoss(model::NerModelImpl& model, const MicroBatch& batch,
                         torch::ScalarType autocast);

}  // namespace koner::train
