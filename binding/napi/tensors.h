// Typed arrays <-> tensors. Inputs are copied (a tensor may outlive the JS call on a worker
// thread); outputs hand the tensor's own storage to JS without a copy.
#pragma once
#include <napi.h>
#include <torch/torch.h>

#include <string>
#include <vector>

namespace koner::napi {

// The shape argument of a call: an array of non-negative integers. `what` names it in errors.
std::vector<int64_t> ShapeArg(const Napi::Value& value, const std::string& what);

// A copy of a Float32Array / Int32Array / Uint8Array as a tensor of `shape`; the element count
// must match the shape (the error names `what`, the shape and both counts).
torch::Tensor FloatTensorArg(const Napi::Value& value, const std::vector<int64_t>& shape,
                             const std::string& what);
torch::Tensor IntTensorArg(const Napi::Value& value, const std::vector<int64_t>& shape,
                           const std::string& what);
torch::Tensor BoolTensorArg(const Napi::Value& value, const std::vector<int64_t>& shape,
                            const std::string& what);

// A CPU tensor as a typed array of its dtype (float32 -> Float32Array, int64 -> BigInt64Array is
// avoided: integer tensors come back as Int32Array), sharing the tensor's memory.
Napi::Value TypedArrayOf(Napi::Env env, torch::Tensor tensor);

std::string ShapeString(const std::vector<int64_t>& shape);

}  // namespace koner::napi
