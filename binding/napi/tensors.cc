#include "napi/tensors.h"

#include <cmath>
#include <sstream>

#include "napi/errors.h"

namespace koner::napi {
namespace {

int64_t Numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

template <typename ArrayType>
torch::Tensor CopyArg(const Napi::Value& value, napi_typedarray_type type, const char* typeName,
                      torch::ScalarType dtype, const std::vector<int64_t>& shape,
                      const std::string& what) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != type) {
    throw TypeError(what + ": expected a " + typeName);
  }
  auto array = value.As<ArrayType>();
  const int64_t expected = Numel(shape);
  if (static_cast<int64_t>(array.ElementLength()) != expected) {
    std::ostringstream msg;
    msg << what << ": shape " << ShapeString(shape) << " needs " << expected << " values, got "
        << array.ElementLength();
    throw std::invalid_argument(msg.str());
  }
  return torch::from_blob(array.Data(), shape, torch::TensorOptions().dtype(dtype)).clone();
}

}  // namespace

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::ostringstream out;
  out << '[';
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << ']';
  return out.str();
}

std::vector<int64_t> ShapeArg(const Napi::Value& value, const std::string& what) {
  if (!value.IsArray()) throw TypeError(what + ": expected an array of dimensions");
  auto array = value.As<Napi::Array>();
  std::vector<int64_t> shape;
  for (uint32_t i = 0; i < array.Length(); ++i) {
    Napi::Value d = array.Get(i);
    double x = d.IsNumber() ? d.As<Napi::Number>().DoubleValue() : -1;
    if (!(x >= 0) || std::floor(x) != x || x > 9.0e15) {
      throw TypeError(what + ": dimension " + std::to_string(i) +
                      " must be a non-negative integer");
    }
    shape.push_back(static_cast<int64_t>(x));
  }
  return shape;
}

torch::Tensor FloatTensorArg(const Napi::Value& value, const std::vector<int64_t>& shape,
                             const std::string& what) {
  return CopyArg<Napi::Float32Array>(value, napi_float32_array, "Float32Array", torch::kFloat32,
                                     shape, what);
}

torch::Tensor IntTensorArg(const Napi::Value& value, const std::vector<int64_t>& shape,
                           const std::string& what) {
  return CopyArg<Napi::Int32Array>(value, napi_int32_array, "Int32Array", torch::kInt32, shape,
                                   what);
}

torch::Tensor BoolTensorArg(const Napi::Value& value, const std::vector<int64_t>& shape,
                            const std::string& what) {
  return CopyArg<Napi::Uint8Array>(value, napi_uint8_array, "Uint8Array", torch::kUInt8, shape,
                                   what)
      .to(torch::kBool);
}

Napi::Value TypedArrayOf(Napi::Env env, torch::Tensor tensor) {
  tensor = tensor.detach().to(torch::kCPU);
  napi_typedarray_type type;
  if (tensor.scalar_type() == torch::kFloat32) {
    type = napi_float32_array;
  } else if (tensor.scalar_type() == torch::kFloat64) {
    type = napi_float64_array;
  } else if (tensor.scalar_type() == torch::kUInt8 || tensor.scalar_type() == torch::kBool) {
    tensor = tensor.to(torch::kUInt8);
    type = napi_uint8_array;
  } else if (tensor.is_floating_point()) {
    tensor = tensor.to(torch::kFloat32);
    type = napi_float32_array;
  } else {
    tensor = tensor.to(torch::kInt32);
    type = napi_int32_array;
  }
  tensor = tensor.contiguous();
  const size_t length = static_cast<size_t>(tensor.numel());
  const size_t bytes = length * tensor.element_size();
  // The ArrayBuffer owns a heap copy of the tensor handle, so the storage lives as long as JS
  // holds the array; an empty tensor has no data pointer to share.
  Napi::ArrayBuffer buffer;
  if (bytes == 0) {
    buffer = Napi::ArrayBuffer::New(env, 0);
  } else {
    auto* owner = new torch::Tensor(tensor);
    buffer = Napi::ArrayBuffer::New(
        env, owner->data_ptr(), bytes, [](Napi::Env, void*, torch::Tensor* t) { delete t; }, owner);
  }
  switch (type) {
    case napi_float32_array:
      return Napi::Float32Array::New(env, length, buffer, 0);
    case napi_float64_array:
      return Napi::Float64Array::New(env, length, buffer, 0);
    case napi_uint8_array:
      return Napi::Uint8Array::New(env, length, buffer, 0);
    default:
      return Napi::Int32Array::New(env, length, buffer, 0);
  }
}

}  // namespace koner::napi
