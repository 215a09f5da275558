// A restricted unpickler for torch.save files. LibTorch's own (torch::pickle_load) turns
// collections.OrderedDict into None, so a saved state_dict() cannot be read with it. This one
// builds plain values from the opcodes of pickle protocols 2 to 5 and never runs code: the
// globals torch.save emits for tensors and dicts are understood, any other class or function
// becomes an opaque value that readers report and skip.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace koner::io::pickle {

// A storage named by a persistent id: ('storage', torch.<T>Storage, key, location, numel[, view]).
struct StorageRef {
  std::string key;
  std::string typeName;                                    // e.g. "torch.FloatStorage"
  torch::ScalarType dtype = torch::ScalarType::Undefined;  // Undefined when unsupported
  std::string location;
  int64_t elementOffset = 0;  // into the stored record (legacy storage views)
  int64_t numel = 0;
};

// A tensor as torch._utils._rebuild_tensor_v2 describes it: a strided view of a storage.
struct TensorRef {
  StorageRef storage;
  int64_t offset = 0;
  std::vector<int64_t> sizes, strides;
};

struct Object {
  enum class Kind {
    None,
    Bool,
    Int,
    BigInt,
    Float,
    String,
    Bytes,
    Tuple,
    List,
    Dict,
    Set,
    Global,
    Storage,
    Tensor,
    Opaque
  };
  Kind kind = Kind::None;
  bool boolean = false;
  int64_t integer = 0;
  double real = 0;
  // String and Bytes values; a BigInt's little-endian two's complement bytes; a Global's
  // "module.name"; what an Opaque value was.
  std::string text;
  // Tuple, List and Set items; Dict keys (values in `values`, in insertion order).
  std::vector<Object*> items, values;
  StorageRef storage;  // Storage
  TensorRef tensor;    // Tensor

  // "int", "dict", "tensor", "object collections.Counter", ...: for reports.
  std::string Describe() const;
};

// The unpickled value; the arena owns every object, so cycles and deep nesting are harmless.
struct Pickle {
  std::vector<std::unique_ptr<Object>> arena;
  Object* root = nullptr;
  size_t consumed = 0;  // bytes up to and including STOP
};

// Unpickles one pickle that starts at data[0] (bytes after its STOP are left alone).
// Throws std::runtime_error("pickle: <problem> at byte N").
Pickle Unpickle(const uint8_t* data, size_t size);

}  // namespace koner::io::pickle
