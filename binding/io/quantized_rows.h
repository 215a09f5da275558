// Weight matrices stored in fewer bits: a model directory whose encoder is too big for its size
// budget in float16 keeps each large matrix as small integers with float scales in the tensor
// "<name>_scale" beside it. The matrix's dtype tells the two layouts apart:
//  - int8 rows: I8 [rows, cols], scale F32 [rows, 1]; row = int8 · scale, symmetric with
//    scale = max |row| / 127, so a weight's rounding error is at most half its row's scale.
//  - int4 groups: U8 [rows, cols / 2], two values a byte (the even column in the low nibble),
//    each an integer v in −8..7 stored as v + 8; scale F16 [rows, cols / group]; a weight is
//    v · the scale of its group of `group` consecutive values of a row. At 4 bits clipping a
//    group's few largest values pays: its scale is the one of max |group| / 7 · f, f in
//    kInt4ClipFactors, that gives the group's values the least squared error.
// Readers see the float32 matrix: ReadSafetensors (and so every weight reader above it)
// dequantizes, InspectSafetensors lists the pair as one float32 tensor of the matrix's shape.
#pragma once
#include <torch/torch.h>

#include <array>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "io/safetensors.h"

namespace koner::io {

// Floating matrices smaller than this stay as they are: biases, LayerNorms, the token-type
// embeddings, the classifier and the CRF's transitions are a rounding error of the file's size
// and carry the most weight per value.
constexpr int64_t kQuantizedRowsMinElements = 16384;

// Values of a row that share one int4 scale. 128 divides the widths of every BERT matrix here
// (hidden 256, 384, 768; FFN four times that); a matrix whose rows it does not divide is stored
// as int8 rows instead. Float16 scales add 16 / 128 bits a value: 4.125 bits in all.
constexpr int64_t kInt4Group = 128;

// The clipping factors tried for each int4 group (see above); 1 is plain max |group| / 7.
constexpr std::array<double, 9> kInt4ClipFactors{1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6};

enum class RowBits { Int8, Int4 };

// Replaces each floating 2-D tensor of at least kQuantizedRowsMinElements by its int8 rows or
// int4 groups and adds its scales; the other floating tensors become `others`.
void QuantizeRows(std::map<std::string, torch::Tensor>& tensors, RowBits bits,
                  torch::ScalarType others);

// Replaces each int8 or uint8 tensor that has scales by its float32 values and drops the scales.
// Throws std::runtime_error("<where>: <problem>") when scales do not fit their matrix.
void DequantizeRows(std::map<std::string, torch::Tensor>& tensors, const std::string& where);

// A listing as readers see it: each quantized matrix as float32 of its own shape, the scales not
// listed.
std::vector<TensorInfo> ListQuantizedRowsAsFloat(std::vector<TensorInfo> tensors);

// `want`, widened to the scales of every wanted tensor (null stays null: everything is read).
std::function<bool(const std::string&)> WithRowScales(
    const std::function<bool(const std::string&)>& want);

}  // namespace koner::io
