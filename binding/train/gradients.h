// Gradients between backward and the optimizer: making them dense, summing them over the ranks of
// a data-parallel group, scaling, measuring and clipping them.
#pragma once
#include <torch/torch.h>

#include <vector>

#include "dist/group.h"

namespace koner::train {

// Every parameter's gradient, zeros where backward left none (a rank with no sentences this step,
// or a parameter the batch never reached): collectives need equal tensors on every rank.
std::vector<torch::Tensor> DenseGradients(const std::vector<torch::Tensor>& parameters);

// Replaces each gradient with its sum over the group's ranks, in flat buckets (one collective
// per ~25 MiB, not one per tensor).
void SumOverRanks(dist::Group& group, std::vector<torch::Tensor>& gradients);

// Multiplies every gradient by 1 / divisor.
void DivideGradients(std::vector<torch::Tensor>& gradients, double divisor);

// The global L2 norm of the gradients, then, when maxNorm > 0, scales them down to at most
// maxNorm as torch.nn.utils.clip_grad_norm_ does (same formula, same 1e-6).
double ClipGradNorm(const std::vector<torch::Tensor>& parameters, double maxNorm);

// Drops the gradients (as zero_grad(set_to_none=True)): the next step starts from none, and
// inference does not carry their memory.
void ClearGradients(const std::vector<torch::Tensor>& parameters);

}  // namespace koner::train
