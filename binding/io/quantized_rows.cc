#include "io/quantized_rows.h"

#include <set>
#include <sstream>
#include <stdexcept>

namespace koner::io {
namespace {

const std::string kSuffix = "_scale";

bool IsScaleName(const std::string& name) {
  return name.size() > kSuffix.size() &&
         name.compare(name.size() - kSuffix.size(), kSuffix.size(), kSuffix) == 0;
}

std::string MatrixOf(const std::string& scaleName) {
  return scaleName.substr(0, scaleName.size() - kSuffix.size());
}

bool IsQuantized(torch::ScalarType t) { return t == torch::kInt8 || t == torch::kUInt8; }

// {int8 values, float32 scales [rows, 1]}.
std::pair<torch::Tensor, torch::Tensor> Int8Rows(const torch::Tensor& rows) {
  // An all-zero row keeps scale 1 so that dequantizing never divides or multiplies by 0/0.
  torch::Tensor scale = rows.abs().amax(1, /*keepdim=*/true) / 127.0;
  scale = torch::where(scale > 0, scale, torch::ones_like(scale));
  return {torch::round(rows / scale).clamp(-127, 127).to(torch::kInt8), scale.contiguous()};
}

// {packed uint8 values [rows, cols / 2], float16 scales [rows, cols / kInt4Group]}.
std::pair<torch::Tensor, torch::Tensor> Int4Groups(const torch::Tensor& rows) {
  const int64_t n = rows.size(0), cols = rows.size(1);
  const torch::Tensor groups = rows.reshape({n, cols / kInt4Group, kInt4Group});
  const torch::Tensor max = groups.abs().amax(2, /*keepdim=*/true);
  torch::Tensor bestScale, bestError;
  for (double f : kInt4ClipFactors) {
    // Rounded to float16 first, so the error measured is the one a reader will see.
    torch::Tensor scale = (max * (f / 7.0)).to(torch::kFloat16).to(torch::kFloat32);
    // An all-zero group (or one whose scale float16 flushes to 0) keeps scale 1: its values
    // round to 0, within float16's smallest step of what they were.
    scale = torch::where(scale > 0, scale, torch::ones_like(scale));
    const torch::Tensor error =
        (torch::round(groups / scale).clamp(-8, 7) * scale - groups).square().sum(2, true);
    if (!bestError.defined()) {
      bestScale = scale, bestError = error;
    } else {
      const torch::Tensor better = error < bestError;
      bestScale = torch::where(better, scale, bestScale);
      bestError = torch::where(better, error, bestError);
    }
  }
  const torch::Tensor codes =
      (torch::round(groups / bestScale).clamp(-8, 7) + 8).to(torch::kUInt8).reshape({n, cols});
  const torch::Tensor low = codes.slice(1, 0, cols, 2), high = codes.slice(1, 1, cols, 2);
  return {torch::bitwise_or(low, torch::bitwise_left_shift(high, 4)).contiguous(),
          bestScale.reshape({n, cols / kInt4Group}).to(torch::kFloat16).contiguous()};
}

[[noreturn]] void ScalesDoNotFit(const std::string& where, const std::string& name,
                                 const torch::Tensor& scale, const torch::Tensor& matrix,
                                 const char* what) {
  std::ostringstream msg;
  msg << where << ": \"" << name << "\" (" << c10::toString(scale.scalar_type()) << " "
      << scale.sizes() << ") is not " << what << " \"" << MatrixOf(name) << "\" " << matrix.sizes();
  throw std::runtime_error(msg.str());
}

torch::Tensor FromInt8Rows(const std::string& where, const std::string& name,
                           const torch::Tensor& matrix, const torch::Tensor& scale) {
  if (matrix.dim() != 2 || !scale.is_floating_point() || scale.dim() != 2 ||
      scale.size(0) != matrix.size(0) || scale.size(1) != 1) {
    ScalesDoNotFit(where, name, scale, matrix, "one scale per row of the int8 matrix");
  }
  return matrix.to(torch::kFloat32) * scale.to(torch::kFloat32);
}

torch::Tensor FromInt4Groups(const std::string& where, const std::string& name,
                             const torch::Tensor& packed, const torch::Tensor& scale) {
  if (packed.dim() != 2 || !scale.is_floating_point() || scale.dim() != 2 ||
      scale.size(0) != packed.size(0) || scale.size(1) < 1 ||
      (2 * packed.size(1)) % scale.size(1) != 0) {
    ScalesDoNotFit(where, name, scale, packed,
                   "a scale per group of equal parts of each row of the packed int4 matrix");
  }
  const int64_t n = packed.size(0), cols = 2 * packed.size(1), groups = scale.size(1);
  const torch::Tensor low = torch::bitwise_and(packed, 15);
  const torch::Tensor high = torch::bitwise_right_shift(packed, 4);
  const torch::Tensor values = torch::stack({low, high}, 2).to(torch::kFloat32) - 8;
  return (values.reshape({n, groups, cols / groups}) * scale.to(torch::kFloat32).unsqueeze(2))
      .reshape({n, cols});
}

}  // namespace

void QuantizeRows(std::map<std::string, torch::Tensor>& tensors, RowBits bits,
                  torch::ScalarType others) {
  std::map<std::string, torch::Tensor> scales;
  for (auto& [name, t] : tensors) {
    if (!t.is_floating_point()) continue;
    if (t.dim() != 2 || t.numel() < kQuantizedRowsMinElements) {
      t = t.to(others);
      continue;
    }
    const torch::Tensor rows = t.to(torch::kFloat32);
    auto [values, scale] =
        bits == RowBits::Int4 && rows.size(1) % kInt4Group == 0 ? Int4Groups(rows) : Int8Rows(rows);
    t = values;
    scales.emplace(name + kSuffix, scale);
  }
  for (auto& [name, scale] : scales) {
    if (tensors.count(name)) {
      throw std::runtime_error("quantized rows: \"" + name + "\" is already a tensor of the model");
    }
    tensors.emplace(name, std::move(scale));
  }
}

void DequantizeRows(std::map<std::string, torch::Tensor>& tensors, const std::string& where) {
  std::vector<std::string> scaleNames;
  for (const auto& [name, t] : tensors) {
    if (!IsScaleName(name)) continue;
    auto matrix = tensors.find(MatrixOf(name));
    if (matrix != tensors.end() && IsQuantized(matrix->second.scalar_type())) {
      scaleNames.push_back(name);
    }
  }
  for (const std::string& name : scaleNames) {
    const torch::Tensor& scale = tensors.at(name);
    torch::Tensor& matrix = tensors.at(MatrixOf(name));
    matrix = matrix.scalar_type() == torch::kInt8 ? FromInt8Rows(where, name, matrix, scale)
                                                  : FromInt4Groups(where, name, matrix, scale);
  }
  for (const std::string& name : scaleNames) tensors.erase(name);
}

std::vector<TensorInfo> ListQuantizedRowsAsFloat(std::vector<TensorInfo> tensors) {
  std::set<std::string> quantized;
  for (const TensorInfo& t : tensors) {
    if (IsQuantized(t.dtype)) quantized.insert(t.name);
  }
  std::set<std::string> scaled;
  std::vector<TensorInfo> out;
  for (const TensorInfo& t : tensors) {
    if (IsScaleName(t.name) && quantized.count(MatrixOf(t.name))) {
      scaled.insert(MatrixOf(t.name));
      continue;
    }
    out.push_back(t);
  }
  for (TensorInfo& t : out) {
    if (!scaled.count(t.name)) continue;
    // Two int4 values a byte: the matrix readers see is twice as wide.
    if (t.dtype == torch::kUInt8 && t.shape.size() == 2) t.shape[1] *= 2;
    t.dtype = torch::kFloat32;
  }
  return out;
}

std::function<bool(const std::string&)> WithRowScales(
    const std::function<bool(const std::string&)>& want) {
  if (!want) return want;
  return [want](const std::string& name) {
    return want(name) || (IsScaleName(name) && want(MatrixOf(name)));
  };
}

}  // namespace koner::io
