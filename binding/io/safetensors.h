// model.safetensors, the format of record for weights: read with validation (a truncated or
// corrupt file is an exception naming the file and the problem, never a crash or a hang) and
// written atomically (temporary file, then rename).
#pragma once
#include <torch/torch.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace koner::io {

// Tensors by name (sorted, as safetensors stores them) plus the header's "__metadata__".
struct TensorFile {
  std::map<std::string, torch::Tensor> tensors;
  std::map<std::string, std::string> metadata;
  // With Tiling::Deferred, what is wrong with the layout of the data section (a hole, or bytes
  // after the last tensor), else empty.
  std::string tilingProblem;
};

// The format requires the tensors to tile the data section exactly. Strict: a hole or trailing
// bytes is an error at once. Deferred: reported in TensorFile::tilingProblem, so that a caller
// that knows which tensors it needs can first name a missing one (its dropped header entry is
// what usually leaves the hole).
enum class Tiling { Strict, Deferred };

// Reads every tensor into CPU memory. Throws std::runtime_error("<path>: <problem>").
// Matrices stored in fewer bits (io/quantized_rows.h) are read, and listed, as float32.
TensorFile ReadSafetensors(const std::string& path);

// A tensor's name, dtype and shape, without its data.
struct TensorInfo {
  std::string name;
  torch::ScalarType dtype;
  std::vector<int64_t> shape;
};

// The tensors a file holds, by name, from its header alone (validated as fully as a read is,
// except for the values of BOOL tensors and the tiling of the data section, see Tiling).
std::vector<TensorInfo> InspectSafetensors(const std::string& path);

// Reads only the tensors for which want(name) holds; the whole header is still validated.
TensorFile ReadSafetensors(const std::string& path,
                           const std::function<bool(const std::string&)>& want,
                           Tiling tiling = Tiling::Strict);

// Writes contiguous CPU copies of the tensors (F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL).
void WriteSafetensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace koner::io
