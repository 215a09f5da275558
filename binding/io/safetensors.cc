#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <set>
#include <sstream>

#include "io/file.h"
#include "io/json.h"
#include "io/quantized_rows.h"

// safetensors stores little-endian data, which is copied to and from tensor memory as is.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "koner assumes a little-endian host");

namespace koner::io {
namespace {

// The reference implementation's limit: a larger header is corruption, not a model.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct Dtype {
  const char* name;
  torch::ScalarType type;
  uint64_t size;
};

const Dtype kDtypes[] = {
    {"F64", torch::kFloat64, 8},   {"F32", torch::kFloat32, 4}, {"F16", torch::kFloat16, 2},
    {"BF16", torch::kBFloat16, 2}, {"I64", torch::kInt64, 8},   {"I32", torch::kInt32, 4},
    {"I16", torch::kInt16, 2},     {"I8", torch::kInt8, 1},     {"U8", torch::kUInt8, 1},
    {"BOOL", torch::kBool, 1},
};

// Valid safetensors dtypes that LibTorch 1.13 has no tensor type for.
const char* const kUnsupported[] = {"U16",     "U32",     "U64",     "F8_E4M3", "F8_E5M2",
                                    "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4",      "C64"};

const Dtype* DtypeByName(const std::string& name) {
  for (const auto& d : kDtypes) {
    if (name == d.name) return &d;
  }
  return nullptr;
}

const Dtype* DtypeByType(torch::ScalarType type) {
  for (const auto& d : kDtypes) {
    if (type == d.type) return &d;
  }
  return nullptr;
}

std::string Quoted(const std::string& s) {
  std::string out;
  AppendJsonString(out, s);
  return out;
}

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::ostringstream out;
  out << '[';
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << ']';
  return out.str();
}

struct Entry {
  std::string name;
  const Dtype* dtype;
  std::vector<int64_t> shape;
  uint64_t begin, end;  // within the data section
};

struct Header {
  std::vector<Entry> entries;  // by name
  std::map<std::string, std::string> metadata;
  uint64_t dataStart = 0, dataSize = 0;
  std::string tilingProblem;  // Tiling::Deferred only
};

Entry ParseEntry(const std::string& path, const std::string& name, const Json& v,
                 uint64_t dataSize) {
  const std::string what = "tensor " + Quoted(name);
  if (v.type != Json::Type::Object) FileError(path, what + ": header entry is not an object");
  const Json *dtype = nullptr, *shape = nullptr, *offsets = nullptr;
  for (size_t i = 0; i < v.keys.size(); ++i) {
    const Json** slot = v.keys[i] == "dtype"          ? &dtype
                        : v.keys[i] == "shape"        ? &shape
                        : v.keys[i] == "data_offsets" ? &offsets
                                                      : nullptr;
    if (!slot) continue;  // unknown fields are tolerated, as the reference reader does
    if (*slot) FileError(path, what + ": field \"" + v.keys[i] + "\" appears twice");
    *slot = &v.items[i];
  }
  if (!dtype || !shape || !offsets) {
    FileError(path, what + ": header entry lacks " +
                        (!dtype   ? "\"dtype\""
                         : !shape ? "\"shape\""
                                  : "\"data_offsets\""));
  }
  Entry e;
  e.name = name;
  if (dtype->type != Json::Type::String) FileError(path, what + ": dtype is not a string");
  e.dtype = DtypeByName(dtype->text);
  if (!e.dtype) {
    for (const char* u : kUnsupported) {
      if (dtype->text == u) {
        FileError(path, what + ": dtype " + u + " is not supported by this LibTorch");
      }
    }
    FileError(path, what + ": unknown dtype " + Quoted(dtype->text));
  }
  if (shape->type != Json::Type::Array) {
    FileError(path, what + ": shape is not a list of non-negative integers");
  }
  // The byte size is bounded by the file, so a product this large is already corrupt; the bound
  // keeps numel * element size within uint64.
  constexpr uint64_t kMaxNumel = uint64_t{1} << 59;
  uint64_t numel = 1;
  bool zero = false, huge = false;
  for (const Json& d : shape->items) {
    auto n = d.AsIndex();
    if (!n) FileError(path, what + ": shape is not a list of non-negative integers");
    e.shape.push_back(*n);
    const auto dim = static_cast<uint64_t>(*n);
    if (dim == 0) {
      zero = true;
    } else if (!huge && numel > kMaxNumel / dim) {
      huge = true;
    } else if (!huge) {
      numel *= dim;
    }
  }
  if (zero) numel = 0;
  if (huge && !zero) {
    FileError(path, what + ": shape " + ShapeText(e.shape) + " is impossibly large");
  }
  if (offsets->type != Json::Type::Array || offsets->items.size() != 2 ||
      !offsets->items[0].AsIndex() || !offsets->items[1].AsIndex()) {
    FileError(path, what + ": data_offsets is not [begin, end] of non-negative integers");
  }
  e.begin = static_cast<uint64_t>(*offsets->items[0].AsIndex());
  e.end = static_cast<uint64_t>(*offsets->items[1].AsIndex());
  const std::string range = "[" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "]";
  if (e.begin > e.end) FileError(path, what + ": data_offsets " + range + " end before they begin");
  if (e.end > dataSize) {
    FileError(path, what + ": data_offsets " + range + " run past the end of the data section (" +
                        std::to_string(dataSize) + " bytes): the file is truncated or corrupt");
  }
  const uint64_t bytes = numel * e.dtype->size;
  if (e.end - e.begin != bytes) {
    FileError(path, what + ": dtype " + e.dtype->name + " and shape " + ShapeText(e.shape) +
                        " need " + std::to_string(bytes) + " bytes, but data_offsets " + range +
                        " hold " + std::to_string(e.end - e.begin));
  }
  return e;
}

std::map<std::string, std::string> ParseMetadata(const std::string& path, const Json& v) {
  if (v.type != Json::Type::Object) FileError(path, "__metadata__ is not an object");
  std::map<std::string, std::string> out;
  for (size_t i = 0; i < v.keys.size(); ++i) {
    if (v.items[i].type != Json::Type::String) {
      FileError(path, "__metadata__ value for " + Quoted(v.keys[i]) + " is not a string");
    }
    if (!out.emplace(v.keys[i], v.items[i].text).second) {
      FileError(path, "__metadata__ repeats the key " + Quoted(v.keys[i]));
    }
  }
  return out;
}

Header ReadHeader(const InputFile& file, Tiling tiling = Tiling::Strict) {
  const std::string& path = file.path();
  if (file.size() < 8) {
    FileError(path, "not a safetensors file: " + std::to_string(file.size()) +
                        " bytes, shorter than the 8-byte header length");
  }
  uint8_t prefix[8];
  file.ReadAt(0, prefix, 8);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | prefix[i];
  if (n > kMaxHeaderBytes) {
    FileError(path, "header length " + std::to_string(n) + " exceeds " +
                        std::to_string(kMaxHeaderBytes) +
                        " bytes: not a safetensors file, or a corrupt one");
  }
  if (n > file.size() - 8) {
    FileError(path, "header length " + std::to_string(n) + " runs past the end of the file (" +
                        std::to_string(file.size()) + " bytes): the file is truncated or corrupt");
  }
  if (n < 2) FileError(path, "header length " + std::to_string(n) + " is too short for a header");
  std::string text(n, '\0');
  file.ReadAt(8, text.data(), n);
  if (text[0] != '{') FileError(path, "header does not begin with '{': not a safetensors file");
  if (!IsValidUtf8(text)) FileError(path, "header is not valid UTF-8");
  Json root;
  try {
    root = ParseJson(text);
  } catch (const std::exception& e) {
    FileError(path, std::string("header is not valid JSON (") + e.what() + ")");
  }
  if (root.type != Json::Type::Object) FileError(path, "header is not a JSON object");

  Header h;
  h.dataStart = 8 + n;
  h.dataSize = file.size() - h.dataStart;
  std::set<std::string> seen;
  for (size_t i = 0; i < root.keys.size(); ++i) {
    const std::string& key = root.keys[i];
    if (!seen.insert(key).second) FileError(path, "header names " + Quoted(key) + " twice");
    if (key == "__metadata__") {
      h.metadata = ParseMetadata(path, root.items[i]);
    } else {
      h.entries.push_back(ParseEntry(path, key, root.items[i], h.dataSize));
    }
  }

  // As the format requires, the tensors tile the data section exactly: no overlap, no hole.
  std::vector<const Entry*> order;
  for (const auto& e : h.entries) order.push_back(&e);
  std::sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  auto layout = [&](const std::string& problem) {
    if (tiling == Tiling::Strict) FileError(path, problem);
    if (h.tilingProblem.empty()) h.tilingProblem = path + ": " + problem;
  };
  uint64_t cursor = 0;
  const Entry* previous = nullptr;
  for (const Entry* e : order) {
    if (e->begin < cursor) {
      FileError(path, "tensor " + Quoted(e->name) + " overlaps tensor " + Quoted(previous->name) +
                          " (bytes " + std::to_string(e->begin) + " < " + std::to_string(cursor) +
                          ")");
    }
    if (e->begin > cursor) {
      layout("a hole of " + std::to_string(e->begin - cursor) + " bytes precedes tensor " +
             Quoted(e->name) + ": data_offsets must tile the data section");
    }
    cursor = e->end;
    previous = e;
  }
  if (cursor != h.dataSize) {
    layout(std::to_string(h.dataSize - cursor) +
           " bytes follow the last tensor: the data section is " + std::to_string(h.dataSize) +
           " bytes, the tensors cover " + std::to_string(cursor));
  }
  std::sort(h.entries.begin(), h.entries.end(),
            [](const Entry& a, const Entry& b) { return a.name < b.name; });
  return h;
}

TensorFile Read(const std::string& path, const std::function<bool(const std::string&)>& want,
                Tiling tiling) {
  InputFile file(path);
  Header h = ReadHeader(file, tiling);
  TensorFile out;
  out.metadata = std::move(h.metadata);
  out.tilingProblem = std::move(h.tilingProblem);
  // In file order, so that the reads are sequential; each lands in its tensor's own memory.
  std::vector<const Entry*> order;
  for (const auto& e : h.entries) {
    if (!want || want(e.name)) order.push_back(&e);
  }
  std::sort(order.begin(), order.end(),
            [](const Entry* a, const Entry* b) { return a->begin < b->begin; });
  for (const Entry* e : order) {
    torch::Tensor t = torch::empty(e->shape, torch::TensorOptions().dtype(e->dtype->type));
    const uint64_t bytes = e->end - e->begin;
    if (bytes > 0) file.ReadAt(h.dataStart + e->begin, t.data_ptr(), bytes);
    if (e->dtype->type == torch::kBool) {
      // Any byte but 0 or 1 in a bool tensor is undefined behaviour in LibTorch's kernels.
      const auto* p = static_cast<const uint8_t*>(t.data_ptr());
      if (std::any_of(p, p + bytes, [](uint8_t b) { return b > 1; })) {
        FileError(path, "tensor " + Quoted(e->name) + ": BOOL data holds a byte other than 0 or 1");
      }
    }
    out.tensors.emplace(e->name, std::move(t));
  }
  return out;
}

}  // namespace

TensorFile ReadSafetensors(const std::string& path) { return ReadSafetensors(path, nullptr); }

TensorFile ReadSafetensors(const std::string& path,
                           const std::function<bool(const std::string&)>& want, Tiling tiling) {
  TensorFile file = Read(path, WithRowScales(want), tiling);
  DequantizeRows(file.tensors, path);
  // The scales of wanted matrices were read too; a tensor that only shares their names goes.
  for (auto it = file.tensors.begin(); want && it != file.tensors.end();) {
    it = want(it->first) ? std::next(it) : file.tensors.erase(it);
  }
  return file;
}

std::vector<TensorInfo> InspectSafetensors(const std::string& path) {
  InputFile file(path);
  // No data is read, so the tiling waits for a read; the listing can then name what is missing.
  Header h = ReadHeader(file, Tiling::Deferred);
  std::vector<TensorInfo> out;
  for (auto& e : h.entries) out.push_back({e.name, e.dtype->type, e.shape});
  return ListQuantizedRowsAsFloat(std::move(out));
}

void WriteSafetensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  struct Item {
    const std::string* name;
    torch::Tensor tensor;
    const Dtype* dtype;
  };
  std::vector<Item> items;
  for (const auto& [name, tensor] : tensors) {
    const std::string what = "tensor " + Quoted(name);
    if (name.empty() || name == "__metadata__")
      FileError(path, "invalid tensor name " + Quoted(name));
    if (!IsValidUtf8(name)) FileError(path, "tensor name is not valid UTF-8: " + Quoted(name));
    if (!tensor.defined()) FileError(path, what + " is undefined");
    if (tensor.layout() != torch::kStrided) FileError(path, what + " is not a dense tensor");
    const Dtype* dtype = DtypeByType(tensor.scalar_type());
    if (!dtype) {
      FileError(path, what + " has dtype " + std::string(c10::toString(tensor.scalar_type())) +
                          ", which safetensors cannot store here");
    }
    items.push_back({&name, tensor.detach().to(torch::kCPU).contiguous(), dtype});
  }
  for (const auto& [key, value] : metadata) {
    if (!IsValidUtf8(key) || !IsValidUtf8(value)) {
      FileError(path, "metadata " + Quoted(key) + " is not valid UTF-8");
    }
  }
  // Larger elements first, as the reference writer does: with the 8-byte aligned data start,
  // every tensor then begins at a multiple of its element size, so readers may map it in place.
  std::stable_sort(items.begin(), items.end(),
                   [](const Item& a, const Item& b) { return a.dtype->size > b.dtype->size; });

  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [key, value] : metadata) {
      if (!first) header += ',';
      first = false;
      AppendJsonString(header, key);
      header += ':';
      AppendJsonString(header, value);
    }
    header += '}';
  }
  uint64_t offset = 0;
  for (const Item& item : items) {
    const uint64_t bytes = static_cast<uint64_t>(item.tensor.numel()) * item.dtype->size;
    if (header.size() > 1) header += ',';
    AppendJsonString(header, *item.name);
    header += ":{\"dtype\":\"";
    header += item.dtype->name;
    header += "\",\"shape\":[";
    for (int64_t d = 0; d < item.tensor.dim(); ++d) {
      if (d) header += ',';
      header += std::to_string(item.tensor.size(d));
    }
    header += "],\"data_offsets\":[" + std::to_string(offset) + "," +
              std::to_string(offset + bytes) + "]}";
    offset += bytes;
  }
  header += '}';
  while ((8 + header.size()) % 8 != 0) header += ' ';
  if (header.size() > kMaxHeaderBytes) FileError(path, "too many tensors for one header");

  uint8_t prefix[8];
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) prefix[i] = static_cast<uint8_t>(n >> (8 * i));
  AtomicOutputFile out(path);
  out.Write(prefix, 8);
  out.Write(header.data(), header.size());
  for (const Item& item : items) {
    out.Write(item.tensor.data_ptr(), static_cast<size_t>(item.tensor.numel()) * item.dtype->size);
  }
  out.Commit();
}

}  // namespace koner::io
