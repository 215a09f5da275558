// The model's parameters as a checkpoint's tensors: strict loading (all or nothing, every
// problem listed) and the tensors to save. Keys are the parameter names.
#pragma once
#include <torch/torch.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "model/ner_model.h"

namespace koner::model {

struct LoadReport {
  // Model: a koner / HF token-classification checkpoint (bert.* and the head). Encoder: a plain
  // BERT checkpoint (keys without "bert.", no head): the head keeps its initialisation.
  enum class Kind { Model, Encoder } kind = Kind::Model;
  // Keys present in the file but deliberately unused: HF's embeddings.position_ids buffer and
  // the pooler, which token classification never runs.
  std::vector<std::string> ignored;
};

// Checks `tensors` against the model's parameters and copies them in (converting dtype and
// device), or throws std::runtime_error("<where>: …") listing every missing key, unexpected key
// and shape mismatch, having changed nothing. The caller holds the model exclusively.
LoadReport LoadWeights(NerModelImpl& model, const std::map<std::string, torch::Tensor>& tensors,
                       const std::string& where);

// CPU tensors of every parameter by name, floating ones converted to `dtype` when given.
std::map<std::string, torch::Tensor> WeightsOf(NerModelImpl& model,
                                               std::optional<torch::ScalarType> dtype);

}  // namespace koner::model
