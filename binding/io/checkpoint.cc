#include "io/checkpoint.h"

#include <caffe2/serialize/inline_container.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <set>
#include <stdexcept>

#include "io/file.h"
#include "io/pickle.h"
#include "io/zip_directory.h"

namespace koner::io {
namespace {

using pickle::Object;
using Kind = Object::Kind;

// ---- flattening nested dicts into dotted names ---------------------------------------------

struct Leaf {
  std::string name;
  const pickle::TensorRef* tensor;
};

struct Flat {
  std::vector<Leaf> tensors;
  std::vector<std::string> skipped;
};

constexpr int kMaxDepth = 32;

void Walk(const std::string& path, const Object* dict, const std::string& prefix, int depth,
          std::set<const Object*>& open, std::set<std::string>& names, Flat& out) {
  open.insert(dict);
  for (size_t i = 0; i < dict->items.size(); ++i) {
    const Object* key = dict->items[i];
    const Object* value = dict->values[i];
    std::string part;
    if (key->kind == Kind::String) {
      part = key->text;
    } else if (key->kind == Kind::Int) {
      part = std::to_string(key->integer);  // optimizer state is keyed by parameter index
    } else {
      out.skipped.push_back((prefix.empty() ? "" : prefix + ".") + "<" + key->Describe() +
                            " key> (" + value->Describe() + ")");
      continue;
    }
    const std::string name = prefix.empty() ? part : prefix + "." + part;
    if (value->kind == Kind::Dict) {
      if (open.count(value) || depth >= kMaxDepth) {
        out.skipped.push_back(name + " (dict nested too deeply)");
      } else {
        Walk(path, value, name, depth + 1, open, names, out);
      }
    } else if (value->kind == Kind::Tensor) {
      if (name.empty()) {
        out.skipped.push_back("<empty name> (tensor)");
      } else if (!names.insert(name).second) {
        FileError(path, "two entries flatten to the name \"" + name + "\"");
      } else {
        out.tensors.push_back({name, &value->tensor});
      }
    } else {
      out.skipped.push_back(name + " (" + value->Describe() + ")");
    }
  }
  open.erase(dict);
}

Flat Flatten(const std::string& path, const Object* root) {
  if (root->kind == Kind::Tensor) {
    FileError(path, "holds a single tensor, not a dict of named tensors");
  }
  if (root->kind != Kind::Dict) {
    FileError(path, "holds a " + root->Describe() + ", not a dict of named tensors");
  }
  Flat out;
  std::set<const Object*> open;
  std::set<std::string> names;
  Walk(path, root, "", 0, open, names, out);
  return out;
}

// ---- torch.save files ------------------------------------------------------------------------

// A torch.save file: its unpickled object, and the bytes of each storage on demand.
class TorchFile {
 public:
  virtual ~TorchFile() = default;
  const Object* root() const { return pickle_.root; }
  // The storage record `key` (every view of it shares the returned storage).
  virtual c10::Storage Storage(const pickle::StorageRef& ref) = 0;

 protected:
  pickle::Pickle pickle_;
  std::map<std::string, c10::Storage> cache_;
};

std::string Problem(const std::exception& e) {
  if (auto* c10 = dynamic_cast<const c10::Error*>(&e)) return c10->what_without_backtrace();
  return e.what();
}

class ZipTorchFile : public TorchFile {
 public:
  explicit ZipTorchFile(const std::string& path) : path_(path) {
    InputFile file(path);  // a readable regular file, or a clear error
    try {
      reader_ = std::make_unique<caffe2::serialize::PyTorchStreamReader>(path);
      // The reader names records without the archive's top folder ("archive/data.pkl").
      for (auto& [name, record] : ReadZipDirectory(file)) {
        const size_t slash = name.find('/');
        if (slash != std::string::npos) records_[name.substr(slash + 1)] = record;
      }
    } catch (const std::exception& e) {
      FileError(path, "not a valid torch.save zip archive (" + Problem(e) + ")");
    }
    archiveBytes_ = file.size();
    if (!reader_->hasRecord("data.pkl")) {
      FileError(path,
                "zip archive without data.pkl: not a torch.save file (a TorchScript module?)");
    }
    if (reader_->hasRecord("byteorder")) {
      auto [bytes, size] = Record("byteorder");
      if (std::string(static_cast<const char*>(bytes.get()), size) != "little") {
        FileError(path, "big-endian tensors are not supported");
      }
    }
    auto [data, size] = Record("data.pkl");
    try {
      pickle_ = pickle::Unpickle(static_cast<const uint8_t*>(data.get()), size);
    } catch (const std::exception& e) {
      FileError(path, std::string("data.pkl: ") + e.what());
    }
  }

  c10::Storage Storage(const pickle::StorageRef& ref) override {
    auto it = cache_.find(ref.key);
    if (it != cache_.end()) return it->second;
    const std::string name = "data/" + ref.key;
    if (!reader_->hasRecord(name)) FileError(path_, "storage record " + name + " is missing");
    auto [bytes, size] = Record(name);
    c10::Storage storage(c10::Storage::use_byte_size_t(), size, std::move(bytes), nullptr, false);
    cache_.emplace(ref.key, storage);
    return storage;
  }

 private:
  std::tuple<at::DataPtr, size_t> Record(const std::string& name) {
    // torch.save stores its records uncompressed, so none is larger than the archive; a record
    // that would inflate to several times the archive is a zip bomb, refused before it is read.
    auto it = records_.find(name);
    if (it != records_.end() && it->second.uncompressedSize > kMaxInflation * archiveBytes_) {
      FileError(path_, name + " would inflate to " + std::to_string(it->second.uncompressedSize) +
                           " bytes from an archive of " + std::to_string(archiveBytes_) +
                           " (more than " + std::to_string(kMaxInflation) +
                           "x): refused as a zip bomb");
    }
    try {
      return reader_->getRecord(name);
    } catch (const std::exception& e) {
      FileError(path_, "cannot read " + name + " from the zip archive (" + Problem(e) + ")");
    }
  }

  static constexpr uint64_t kMaxInflation = 4;
  std::string path_;
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> reader_;
  std::map<std::string, ZipRecord> records_;
  uint64_t archiveBytes_ = 0;
};

// Element sizes of storage types the legacy reader must step over even when it cannot load them.
int64_t LegacyElementSize(const pickle::StorageRef& s) {
  if (s.dtype != torch::ScalarType::Undefined)
    return static_cast<int64_t>(c10::elementSize(s.dtype));
  if (s.typeName == "torch.ComplexFloatStorage") return 8;
  if (s.typeName == "torch.ComplexDoubleStorage") return 16;
  if (s.typeName == "torch.QInt8Storage" || s.typeName == "torch.QUInt8Storage") return 1;
  if (s.typeName == "torch.QInt32Storage") return 4;
  return 0;
}

// torch.save's format before 1.6: five pickles (magic number, protocol version, system info,
// the object, the storage keys), then each storage as an int64 element count and its bytes.
class LegacyTorchFile : public TorchFile {
 public:
  explicit LegacyTorchFile(const std::string& path) : path_(path), map_(path) {
    const uint8_t* p = map_.data();
    const uint64_t size = map_.size();
    uint64_t pos = 0;
    auto next = [&](const char* what) {
      try {
        pickle::Pickle out = pickle::Unpickle(p + pos, size - pos);
        pos += out.consumed;
        return out;
      } catch (const std::exception& e) {
        FileError(path, std::string("not a torch.save file (") + what + ": " + e.what() + ")");
      }
    };
    // 0x1950a86a20f9469cfc6c, little-endian, as LONG1 stores it.
    static const char kMagic[] = "\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";
    pickle::Pickle magic = next("magic number");
    if (magic.root->kind != Kind::BigInt || magic.root->text != std::string(kMagic, 10)) {
      FileError(path, "a pickle, but not a torch.save file (no torch magic number)");
    }
    pickle::Pickle version = next("protocol version");
    if (version.root->kind != Kind::Int || version.root->integer != 1001) {
      FileError(path, "unsupported legacy torch.save protocol version");
    }
    pickle::Pickle info = next("system info");
    const Object* sys = info.root;
    for (size_t i = 0; sys->kind == Kind::Dict && i < sys->items.size(); ++i) {
      if (sys->items[i]->text == "little_endian" && sys->values[i]->kind == Kind::Bool &&
          !sys->values[i]->boolean) {
        FileError(path, "big-endian tensors are not supported");
      }
    }
    pickle_ = next("the saved object");
    pickle::Pickle keys = next("storage keys");
    if (keys.root->kind != Kind::List) FileError(path, "storage key list is malformed");

    std::map<std::string, const pickle::StorageRef*> types;
    for (const auto& o : pickle_.arena) {
      if (o->kind == Kind::Storage) types.emplace(o->storage.key, &o->storage);
    }
    for (const Object* key : keys.root->items) {
      if (key->kind != Kind::String) FileError(path, "storage key list is malformed");
      auto type = types.find(key->text);
      const int64_t element = type == types.end() ? 0 : LegacyElementSize(*type->second);
      if (element == 0) FileError(path, "storage " + key->text + " has an unknown element size");
      if (size - pos < 8) Truncated();
      int64_t numel;
      std::memcpy(&numel, p + pos, 8);
      pos += 8;
      if (numel < 0 || static_cast<uint64_t>(numel) > (size - pos) / element) Truncated();
      records_[key->text] = {pos, static_cast<uint64_t>(numel) * element};
      pos += static_cast<uint64_t>(numel) * element;
    }
  }

  c10::Storage Storage(const pickle::StorageRef& ref) override {
    auto it = cache_.find(ref.key);
    if (it != cache_.end()) return it->second;
    auto rec = records_.find(ref.key);
    if (rec == records_.end()) FileError(path_, "storage " + ref.key + " is missing");
    // A copy: the tensors must outlive the mapping.
    auto bytes = torch::empty({static_cast<int64_t>(rec->second.second)}, torch::kUInt8);
    if (rec->second.second > 0) {
      std::memcpy(bytes.data_ptr(), map_.data() + rec->second.first, rec->second.second);
    }
    c10::Storage storage = bytes.storage();
    cache_.emplace(ref.key, storage);
    return storage;
  }

 private:
  [[noreturn]] void Truncated() const {
    FileError(path_, "storage data runs past the end of the file: the file is truncated");
  }

  std::string path_;
  MappedFile map_;
  std::map<std::string, std::pair<uint64_t, uint64_t>> records_;  // key -> (offset, bytes)
};

std::unique_ptr<TorchFile> OpenTorch(const std::string& path, CheckpointFormat format) {
  if (format == CheckpointFormat::TorchZip) return std::make_unique<ZipTorchFile>(path);
  return std::make_unique<LegacyTorchFile>(path);
}

// The tensor a TensorRef describes, sharing its storage's memory; bounds checked first, since
// set_ would otherwise try to grow the storage.
torch::Tensor Materialize(const std::string& path, const std::string& name, TorchFile& file,
                          const pickle::TensorRef& t) {
  const std::string what = "tensor \"" + name + "\"";
  c10::Storage storage = file.Storage(t.storage);
  const auto element = static_cast<int64_t>(c10::elementSize(t.storage.dtype));
  const auto stored = static_cast<int64_t>(storage.nbytes()) / element;
  if (t.storage.elementOffset > stored || t.storage.numel > stored - t.storage.elementOffset) {
    FileError(path, what + ": its storage " + t.storage.key + " holds " + std::to_string(stored) +
                        " elements, fewer than declared: the file is truncated or corrupt");
  }
  int64_t extent = 1;  // one past the last element the view touches
  bool empty = false;
  for (size_t d = 0; d < t.sizes.size(); ++d) {
    if (t.sizes[d] == 0) empty = true;
  }
  if (!empty) {
    extent = t.offset + 1;
    for (size_t d = 0; d < t.sizes.size(); ++d) {
      int64_t span;
      if (__builtin_mul_overflow(t.sizes[d] - 1, t.strides[d], &span) ||
          __builtin_add_overflow(extent, span, &extent)) {
        FileError(path, what + ": shape and strides overflow");
      }
    }
    if (extent > t.storage.numel) {
      FileError(path, what + " reaches element " + std::to_string(extent) + " of storage " +
                          t.storage.key + ", which has " + std::to_string(t.storage.numel));
    }
  }
  torch::Tensor out = torch::empty({0}, torch::TensorOptions().dtype(t.storage.dtype));
  out.set_(storage, empty ? 0 : t.storage.elementOffset + t.offset, t.sizes, t.strides);
  return out;
}

CheckpointListing InspectTorch(const std::string& path, CheckpointFormat format) {
  auto file = OpenTorch(path, format);
  Flat flat = Flatten(path, file->root());
  CheckpointListing out{format, {}, std::move(flat.skipped)};
  for (const Leaf& leaf : flat.tensors) {
    out.tensors.push_back({leaf.name, leaf.tensor->storage.dtype, leaf.tensor->sizes});
  }
  std::sort(out.tensors.begin(), out.tensors.end(),
            [](const TensorInfo& a, const TensorInfo& b) { return a.name < b.name; });
  return out;
}

}  // namespace

const char* FormatName(CheckpointFormat format) {
  switch (format) {
    case CheckpointFormat::Safetensors:
      return "safetensors";
    case CheckpointFormat::TorchZip:
      return "torch.save (zip)";
    case CheckpointFormat::TorchLegacy:
      return "torch.save (legacy)";
  }
  return "unknown";
}

CheckpointFormat DetectCheckpointFormat(const std::string& path) {
  InputFile file(path);
  uint8_t head[16] = {0};
  const size_t n = file.ReadSome(0, head, sizeof head);
  const std::string ext = ".safetensors";
  const bool named =
      path.size() >= ext.size() && path.compare(path.size() - ext.size(), ext.size(), ext) == 0;
  if (n >= 4 && head[0] == 'P' && head[1] == 'K' &&
      ((head[2] == 3 && head[3] == 4) || (head[2] == 5 && head[3] == 6))) {
    return CheckpointFormat::TorchZip;
  }
  if (n >= 2 && head[0] == 0x80 && head[1] >= 2 && head[1] <= 5) {
    return CheckpointFormat::TorchLegacy;
  }
  if ((n >= 9 && head[8] == '{') || named) return CheckpointFormat::Safetensors;
  if (n == 0) FileError(path, "empty file, not a checkpoint");
  FileError(path,
            "not a checkpoint: neither safetensors nor a torch.save file (zip or legacy pickle)");
}

CheckpointListing InspectCheckpoint(const std::string& path) {
  const CheckpointFormat format = DetectCheckpointFormat(path);
  if (format == CheckpointFormat::Safetensors) return {format, InspectSafetensors(path), {}};
  return InspectTorch(path, format);
}

Checkpoint ReadCheckpoint(const std::string& path,
                          const std::function<bool(const std::string&)>& want) {
  const CheckpointFormat format = DetectCheckpointFormat(path);
  Checkpoint out{format, {}, {}, {}};
  if (format == CheckpointFormat::Safetensors) {
    TensorFile file = want ? ReadSafetensors(path, want) : ReadSafetensors(path);
    out.tensors = std::move(file.tensors);
    out.metadata = std::move(file.metadata);
    return out;
  }
  auto file = OpenTorch(path, format);
  Flat flat = Flatten(path, file->root());
  out.skipped = std::move(flat.skipped);
  for (const Leaf& leaf : flat.tensors) {
    if (want && !want(leaf.name)) continue;
    out.tensors.emplace(leaf.name, Materialize(path, leaf.name, *file, *leaf.tensor));
  }
  return out;
}

}  // namespace koner::io
