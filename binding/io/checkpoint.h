// Checkpoints as named tensors, whatever wrote them: safetensors, and torch.save files in the zip
// format (torch >= 1.6) or the legacy format before it, detected by content. Nested dicts give
// dotted names ({'model_state_dict': {'a.weight': t}} -> "model_state_dict.a.weight"); leaves
// that are not tensors are listed in `skipped`, never an error. Errors read "<path>: <problem>".
#pragma once
#include <torch/torch.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "io/safetensors.h"

namespace koner::io {

enum class CheckpointFormat { Safetensors, TorchZip, TorchLegacy };

// "safetensors", "torch.save (zip)", "torch.save (legacy)".
const char* FormatName(CheckpointFormat format);

// The format from the first bytes (the .safetensors extension decides only when the content
// matches nothing, so that a corrupt safetensors file gets safetensors' precise errors).
CheckpointFormat DetectCheckpointFormat(const std::string& path);

struct CheckpointListing {
  CheckpointFormat format;
  std::vector<TensorInfo> tensors;   // by name
  std::vector<std::string> skipped;  // "name (what)": leaves that are not tensors
};

// Names, dtypes and shapes without reading tensor data (torch.save storages are not loaded).
CheckpointListing InspectCheckpoint(const std::string& path);

struct Checkpoint {
  CheckpointFormat format;
  std::map<std::string, torch::Tensor> tensors;
  std::map<std::string, std::string> metadata;  // safetensors' __metadata__
  std::vector<std::string> skipped;
};

// Reads the tensors for which want(name) holds (all when want is empty) into CPU memory.
Checkpoint ReadCheckpoint(const std::string& path,
                          const std::function<bool(const std::string&)>& want = nullptr);

}  // namespace koner::io
