#include "train/gradients.h"

namespace koner::train {

std::vector<torch::Tensor> DenseGradients(const std::vector<torch::Tensor>& parameters) {
  std::vector<torch::Tensor> out;
  out.reserve(parameters.size());
  for (const auto& p : parameters) {
    auto& grad = p.mutable_grad();
    if (!grad.defined()) grad = torch::zeros_like(p);
    out.push_back(grad);
  }
  return out;
}

void SumOverRanks(dist::Group& group, std::vector<torch::Tensor>& gradients) {
  torch::NoGradGuard noGrad;
  // The group averages; its mean times the rank count is the sum, exactly so for two or four
  // ranks (a power of two), which keeps a data-parallel step bit-close to one big batch.
  group.AllreduceMean(gradients);
  const int world = group.worldSize();
  if (world != 1) {
    for (auto& g : gradients) g.mul_(static_cast<double>(world));
  }
}

void DivideGradients(std::vector<torch::Tensor>& gradients, double divisor) {
  torch::NoGradGuard noGrad;
  if (divisor == 1.0) return;
  for (auto& g : gradients) g.div_(divisor);
}

double ClipGradNorm(const std::vector<torch::Tensor>& parameters, double maxNorm) {
  if (maxNorm > 0) return torch::nn::utils::clip_grad_norm_(parameters, maxNorm);
  torch::NoGradGuard noGrad;
  std::vector<torch::Tensor> norms;
  for (const auto& p : parameters) {
    if (p.grad().defined()) norms.push_back(p.grad().norm(2.0).to(torch::kFloat32));
  }
  if (norms.empty()) return 0.0;
  return torch::stack(norms).norm(2.0).item<double>();
}

void ClearGradients(const std::vector<torch::Tensor>& parameters) {
  for (const auto& p : parameters) p.mutable_grad() = torch::Tensor();
}

}  // namespace koner::train
