// Weight matrices stored as int8 rows: a model directory whose encoder is too big for its size
// budget in float16 keeps each large matrix as int8 values with one float32 scale per row
// (symmetric: row = int8 · scale, scale = max |row| / 127), in the tensor "<name>_scale" of
// shape [rows, 1] beside it. Readers see the float32 matrix: ReadSafetensors (and so every
// weight reader above it) dequantizes, InspectSafetensors lists the pair as one float32 tensor.
// The rounding error of a weight is at most half its row's scale.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "io/safetensors.h"

namespace koner::io {

// Floating matrices smaller than this stay as they are: biases, LayerNorms, the token-type
// embeddings, the classifier and the CRF's transitions are a rounding error of the file's size
// and carry the most weight per value.
constexpr int64_t kInt8RowsMinElements = 16384;

// Replaces each floating 2-D tensor of at least kInt8RowsMinElements by its int8 rows and adds
// its scales; the other floating tensors become `others`.
void QuantizeInt8Rows(std::map<std::string, torch::Tensor>& tensors, torch::ScalarType others);

// Replaces each int8 tensor that has scales by its float32 values and drops the scales. Throws
// std::runtime_error("<where>: <problem>") when scales do not fit their matrix.
void DequantizeInt8Rows(std::map<std::string, torch::Tensor>& tensors, const std::string& where);

// A listing as readers see it: each int8 matrix with scales as float32, the scales not listed.
std::vector<TensorInfo> ListInt8RowsAsFloat(std::vector<TensorInfo> tensors);

// `want`, widened to the scales of every wanted tensor (null stays null: everything is read).
std::function<bool(const std::string&)> WithInt8Scales(
    const std::function<bool(const std::string&)>& want);

}  // namespace koner::io
