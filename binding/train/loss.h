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

#include <array>
#include <cstdint>

#include "model/config.h"
#include "model/ner_model.h"

namespace koner::train {

// The objectives a batch can train. Each is normalised by its own global count, so that a step
// over micro-batches that train different ones (a labelled batch and an unlabelled one) weighs
// each objective as a step over all of its targets at once would.
enum Objective : int {
  kTagging,  // the head's loss on gold tags; counted in sentences or pieces (above)
  kPos,      // cross entropy of the auxiliary POS head, per POS target
  kMlm,      // masked LM, per masked piece
  kDistill,  // cross entropy against a teacher's tag distribution, per piece that has one
  kRtd,      // ELECTRA's replaced-token detection (binary cross entropy), per piece judged
  kObjectives,
};
using PerObjective = std::array<double, kObjectives>;
const char* ObjectiveName(Objective objective);

// One micro-batch as validated from JS, on the CPU. Which objectives it trains follows from which
// targets it carries; a pretraining batch carries mlmLabels only, an unlabelled distillation
// batch softTargets only.
struct MicroBatch {
  torch::Tensor ids;          // [B, T] int64
  torch::Tensor mask;         // [B, T] bool, a prefix of each row
  torch::Tensor tags;         // [B, T] int64 within 0..K-1 inside the mask, or undefined
  torch::Tensor tagged;       // [B] bool: rows whose tags count (undefined: all), e.g. not the
                              // unlabelled text of distillation
  torch::Tensor posTags;      // [B, T] int64, a POS id or -1 (no target), or undefined
  torch::Tensor mlmLabels;    // [B, T] int64, the original id of a masked piece or -1
  bool sampleMasked = false;  // also draw a piece from the masked LM's distribution at each
                              // masked position (ELECTRA's generator; LibTorch's generator)
  torch::Tensor rtdLabels;    // [B, T] int64: 1 replaced, 0 original, -1 not judged
  torch::Tensor softTargets;  // [B, T, K] float32, a distribution or all 0 (no target)
  torch::Tensor syllables;    // [B, T, S] int64 for a model with a syllable channel
  int64_t sentences = 0, pieces = 0;
  PerObjective targets{};  // how many targets of each objective the batch holds
};

enum class Normaliser { Sentences, Pieces };
Normaliser NormaliserOf(model::HeadKind head);
inline double CountOf(Normaliser n, double sentences, double pieces) {
  return n == Normaliser::Sentences ? sentences : pieces;
}

// Fills batch.targets from its targets (validated) and the head's normaliser.
void CountTargets(MicroBatch& batch, model::HeadKind head);

// The summed losses of one micro-batch (float32 scalars on the model's device, undefined for an
// objective the batch does not train) and the masked-LM hits, for accuracy.
struct SummedLosses {
  std::array<torch::Tensor, kObjectives> sums;
  torch::Tensor mlmCorrect;  // masked pieces whose argmax is the original id
  torch::Tensor mlmSamples;  // [M] int64 when sampleMasked: a draw per masked position, in
                             // row-major order of the positions
  torch::Tensor rtdCorrect;  // judged pieces whose logit has the label's sign
};

// The summed losses in the model's current mode. The encoder runs under autocast to `autocast`
// (CUDA; float32 for none); the heads outside it, so that they compute in float32 as in
// inference. `temperature` softens the student's distribution for kDistill (the sum is scaled
// by temperature², as in Hinton et al., so its gradients keep their size).
SummedLosses SumLosses(model::NerModelImpl& model, const MicroBatch& batch,
                       torch::ScalarType autocast, double temperature = 1.0);

// The tagging loss alone (what `Model.loss` and the tests of the step compare).
torch::Tensor SummedLoss(model::NerModelImpl& model, const MicroBatch& batch,
                         torch::ScalarType autocast);

}  // namespace koner::train
