#include "io/int8_rows.h"

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

}  // namespace

void QuantizeInt8Rows(std::map<std::string, torch::Tensor>& tensors, torch::ScalarType others) {
  std::map<std::string, torch::Tensor> scales;
  for (auto& [name, t] : tensors) {
    if (!t.is_floating_point()) continue;
    if (t.dim() != 2 || t.numel() < kInt8RowsMinElements) {
      t = t.to(others);
      continue;
    }
    const torch::Tensor rows = t.to(torch::kFloat32);
    // An all-zero row keeps scale 1 so that dequantizing never divides or multiplies by 0/0.
    torch::Tensor scale = rows.abs().amax(1, /*keepdim=*/true) / 127.0;
    scale = torch::where(scale > 0, scale, torch::ones_like(scale));
    t = torch::round(rows / scale).clamp(-127, 127).to(torch::kInt8);
    scales.emplace(name + kSuffix, scale.contiguous());
  }
  for (auto& [name, scale] : scales) {
    if (tensors.count(name)) {
      throw std::runtime_error("int8 rows: \"" + name + "\" is already a tensor of the model");
    }
    tensors.emplace(name, std::move(scale));
  }
}

void DequantizeInt8Rows(std::map<std::string, torch::Tensor>& tensors, const std::string& where) {
  std::vector<std::string> scaleNames;
  for (const auto& [name, t] : tensors) {
    if (!IsScaleName(name)) continue;
    auto matrix = tensors.find(MatrixOf(name));
    if (matrix != tensors.end() && matrix->second.scalar_type() == torch::kInt8) {
      scaleNames.push_back(name);
    }
  }
  for (const std::string& name : scaleNames) {
    const torch::Tensor& scale = tensors.at(name);
    torch::Tensor& matrix = tensors.at(MatrixOf(name));
    if (matrix.dim() != 2 || !scale.is_floating_point() || scale.dim() != 2 ||
        scale.size(0) != matrix.size(0) || scale.size(1) != 1) {
      std::ostringstream msg;
      msg << where << ": \"" << name << "\" (" << c10::toString(scale.scalar_type()) << " "
          << scale.sizes() << ") is not one scale per row of the int8 matrix \"" << MatrixOf(name)
          << "\" " << matrix.sizes();
      throw std::runtime_error(msg.str());
    }
    matrix = matrix.to(torch::kFloat32) * scale.to(torch::kFloat32);
  }
  for (const std::string& name : scaleNames) tensors.erase(name);
}

std::vector<TensorInfo> ListInt8RowsAsFloat(std::vector<TensorInfo> tensors) {
  std::set<std::string> int8;
  for (const TensorInfo& t : tensors) {
    if (t.dtype == torch::kInt8) int8.insert(t.name);
  }
  std::set<std::string> scaled;
  std::vector<TensorInfo> out;
  for (const TensorInfo& t : tensors) {
    if (IsScaleName(t.name) && int8.count(MatrixOf(t.name))) {
      scaled.insert(MatrixOf(t.name));
      continue;
    }
    out.push_back(t);
  }
  for (TensorInfo& t : out) {
    if (scaled.count(t.name)) t.dtype = torch::kFloat32;
  }
  return out;
}

std::function<bool(const std::string&)> WithInt8Scales(
    const std::function<bool(const std::string&)>& want) {
  if (!want) return want;
  return [want](const std::string& name) {
    return want(name) || (IsScaleName(name) && want(MatrixOf(name)));
  };
}

}  // namespace koner::io
