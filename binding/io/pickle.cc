#include "io/pickle.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <unordered_map>

namespace koner::io::pickle {
namespace {

using Kind = Object::Kind;

struct StorageType {
  const char* name;
  torch::ScalarType dtype;
};

// The storage classes persistent ids name; torch >= 2 still writes these legacy names.
const StorageType kStorageTypes[] = {
    {"DoubleStorage", torch::kFloat64}, {"FloatStorage", torch::kFloat32},
    {"HalfStorage", torch::kFloat16},   {"BFloat16Storage", torch::kBFloat16},
    {"LongStorage", torch::kInt64},     {"IntStorage", torch::kInt32},
    {"ShortStorage", torch::kInt16},    {"CharStorage", torch::kInt8},
    {"ByteStorage", torch::kUInt8},     {"BoolStorage", torch::kBool},
    {"UntypedStorage", torch::kUInt8},
};

class Unpickler {
 public:
  // What a pickle may build is bounded by its size: every object and every reference copied into
  // a container (`list(x)` copies x's items) costs a cell, and a pickle that spends more cells
  // than a few per byte is a bomb (a megabyte of `list(L)` over a large L asks for gigabytes).
  Unpickler(const uint8_t* data, size_t size)
      : data_(data), size_(size), budget_(kBaseCells + kCellsPerByte * size) {}

  Pickle Run() {
    for (;;) {
      op_ = pos_;
      const uint8_t op = U8();
      if (op == '.') break;
      Step(op);
    }
    if (stack_.size() != 1 || !marks_.empty()) Fail("the pickle does not end with one value");
    Pickle out;
    out.root = stack_.back();
    out.arena = std::move(arena_);
    out.consumed = pos_;
    return out;
  }

 private:
  [[noreturn]] void Fail(const std::string& problem) const {
    throw std::runtime_error("pickle: " + problem + " at byte " + std::to_string(op_));
  }

  // ---- input -------------------------------------------------------------------------------
  const uint8_t* Take(uint64_t n) {
    if (n > size_ - pos_) Fail("unexpected end of data");
    const uint8_t* p = data_ + pos_;
    pos_ += n;
    return p;
  }
  uint8_t U8() { return *Take(1); }
  uint64_t Uint(int bytes) {
    const uint8_t* p = Take(bytes);
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
    return v;
  }
  std::string Text(uint64_t n) {
    const uint8_t* p = Take(n);
    return std::string(reinterpret_cast<const char*>(p), n);
  }
  std::string Line() {
    const void* nl = std::memchr(data_ + pos_, '\n', size_ - pos_);
    if (!nl) Fail("unterminated text argument");
    const size_t n = static_cast<const uint8_t*>(nl) - (data_ + pos_);
    std::string s = Text(n);
    ++pos_;
    return s;
  }

  // ---- values ------------------------------------------------------------------------------
  void Spend(uint64_t cells) {
    spent_ += cells;
    if (spent_ > budget_) {
      Fail("the pickle builds more than " + std::to_string(budget_) +
           " objects and references from " + std::to_string(size_) +
           " bytes: refused as a pickle bomb");
    }
  }

  Object* New(Kind kind) {
    Spend(1);
    arena_.push_back(std::make_unique<Object>());
    arena_.back()->kind = kind;
    return arena_.back().get();
  }
  Object* NewInt(int64_t v) {
    Object* o = New(Kind::Int);
    o->integer = v;
    return o;
  }
  Object* NewText(Kind kind, std::string text) {
    Object* o = New(kind);
    o->text = std::move(text);
    return o;
  }
  Object* Opaque(const std::string& what) { return NewText(Kind::Opaque, what); }

  void Push(Object* o) { stack_.push_back(o); }
  Object* Pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() == marks_.back())) {
      Fail("stack underflow");
    }
    Object* o = stack_.back();
    stack_.pop_back();
    return o;
  }
  Object* Top() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() == marks_.back())) {
      Fail("stack underflow");
    }
    return stack_.back();
  }
  std::vector<Object*> PopMark() {
    if (marks_.empty()) Fail("no mark on the stack");
    const size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<Object*> items(stack_.begin() + mark, stack_.end());
    stack_.resize(mark);
    return items;
  }

  Object* Tuple(std::vector<Object*> items) {
    Object* o = New(Kind::Tuple);
    o->items = std::move(items);
    return o;
  }

  void Memo(uint64_t index) { memo_[index] = Top(); }
  Object* Recall(uint64_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end()) Fail("memo entry " + std::to_string(index) + " is missing");
    return it->second;
  }

  static int64_t SignExtend(const uint8_t* p, size_t n) {
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;) v = (v << 8) | p[i];
    if (n > 0 && n < 8 && (p[n - 1] & 0x80)) v |= ~uint64_t{0} << (8 * n);
    return static_cast<int64_t>(v);
  }

  Object* Long(uint64_t n) {
    const uint8_t* p = Take(n);
    if (n <= 8) return NewInt(SignExtend(p, n));
    return NewText(Kind::BigInt, std::string(reinterpret_cast<const char*>(p), n));
  }

  static bool ParseInt(const std::string& s, int64_t* out) {
    std::string t = s;
    if (!t.empty() && t.back() == 'L') t.pop_back();
    if (t.empty()) return false;
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(t.c_str(), &end, 10);
    if (errno != 0 || *end != '\0') return false;
    *out = v;
    return true;
  }

  // Maps Python 2 module names to Python 3 ones, as pickle's fix_imports does.
  static std::string GlobalName(std::string module, const std::string& name) {
    if (module == "__builtin__") module = "builtins";
    return module + "." + name;
  }

  void AddPairs(Object* dict, const std::vector<Object*>& flat) {
    if (flat.size() % 2 != 0) Fail("odd number of items for a dict");
    if (dict->kind == Kind::Opaque) return;  // the items of an unknown mapping are ignored
    if (dict->kind != Kind::Dict) Fail("setting items on a " + dict->Describe());
    Spend(flat.size());
    for (size_t i = 0; i < flat.size(); i += 2) {
      dict->items.push_back(flat[i]);
      dict->values.push_back(flat[i + 1]);
    }
  }

  void AddItems(Object* list, const std::vector<Object*>& items) {
    if (list->kind == Kind::Opaque) return;
    if (list->kind != Kind::List && list->kind != Kind::Set) {
      Fail("appending to a " + list->Describe());
    }
    Spend(items.size());
    list->items.insert(list->items.end(), items.begin(), items.end());
  }

  // ---- tensors and other known callables ---------------------------------------------------
  Object* Storage(Object* pid) {
    if (pid->kind != Kind::Tuple || pid->items.empty() || pid->items[0]->kind != Kind::String ||
        pid->items[0]->text != "storage") {
      return Opaque("persistent object");
    }
    const auto& f = pid->items;
    if (f.size() < 5 || f[1]->kind != Kind::Global || f[4]->kind != Kind::Int ||
        f[4]->integer < 0 || (f[2]->kind != Kind::String && f[2]->kind != Kind::Int)) {
      Fail("malformed storage id");
    }
    Object* o = New(Kind::Storage);
    StorageRef& s = o->storage;
    s.typeName = f[1]->text;
    s.key = f[2]->kind == Kind::String ? f[2]->text : std::to_string(f[2]->integer);
    s.location = f[3]->kind == Kind::String ? f[3]->text : "";
    s.numel = f[4]->integer;
    const std::string prefix = "torch.";
    const std::string cls = s.typeName.compare(0, prefix.size(), prefix) == 0
                                ? s.typeName.substr(prefix.size())
                                : std::string();
    for (const auto& t : kStorageTypes) {
      if (cls == t.name || "storage." + std::string(t.name) == cls) s.dtype = t.dtype;
    }
    // Legacy files name views of a storage: (view_key, element offset, view numel).
    if (f.size() >= 6 && f[5]->kind == Kind::Tuple) {
      const auto& v = f[5]->items;
      if (v.size() != 3 || v[1]->kind != Kind::Int || v[2]->kind != Kind::Int ||
          v[1]->integer < 0 || v[2]->integer < 0) {
        Fail("malformed storage view");
      }
      s.elementOffset = v[1]->integer;
      s.numel = v[2]->integer;
    }
    return o;
  }

  static bool IntTuple(const Object* o, std::vector<int64_t>* out) {
    if (o->kind != Kind::Tuple && o->kind != Kind::List) return false;
    if (o->items.size() > 64) return false;
    for (const Object* d : o->items) {
      if (d->kind != Kind::Int || d->integer < 0) return false;
      out->push_back(d->integer);
    }
    return true;
  }

  Object* RebuildTensor(const std::vector<Object*>& args, const std::string& fn) {
    if (args.size() < 4) Fail(fn + " with " + std::to_string(args.size()) + " arguments");
    if (args[0]->kind != Kind::Storage) return Opaque("tensor without a storage");
    if (args[0]->storage.dtype == torch::ScalarType::Undefined) {
      return Opaque("tensor of " + args[0]->storage.typeName);
    }
    Object* o = New(Kind::Tensor);
    TensorRef& t = o->tensor;
    t.storage = args[0]->storage;
    if (args[1]->kind != Kind::Int || args[1]->integer < 0 || !IntTuple(args[2], &t.sizes) ||
        !IntTuple(args[3], &t.strides) || t.sizes.size() != t.strides.size()) {
      Fail("malformed tensor (" + fn + ")");
    }
    t.offset = args[1]->integer;
    return o;
  }

  Object* Call(Object* callable, Object* args) {
    if (callable->kind != Kind::Global)
      return Opaque("result of calling a " + callable->Describe());
    if (args->kind != Kind::Tuple) Fail("call arguments are not a tuple");
    const std::string& fn = callable->text;
    const auto& a = args->items;
    if (fn == "collections.OrderedDict" || fn == "builtins.dict" ||
        fn == "collections.defaultdict") {
      Object* d = New(Kind::Dict);
      if (fn != "collections.defaultdict" && !a.empty()) {
        // OrderedDict([(k, v), ...]) or dict(mapping)
        if (a[0]->kind == Kind::Dict) {
          Spend(2 * a[0]->items.size());
          d->items = a[0]->items;
          d->values = a[0]->values;
        } else if (a[0]->kind == Kind::List || a[0]->kind == Kind::Tuple) {
          Spend(2 * a[0]->items.size());
          for (Object* pair : a[0]->items) {
            if (pair->kind != Kind::Tuple || pair->items.size() != 2) Fail("malformed dict items");
            d->items.push_back(pair->items[0]);
            d->values.push_back(pair->items[1]);
          }
        }
      }
      return d;
    }
    if (fn == "torch._utils._rebuild_tensor_v2" || fn == "torch._utils._rebuild_tensor") {
      return RebuildTensor(a, fn);
    }
    if (fn == "torch._utils._rebuild_parameter" ||
        fn == "torch._utils._rebuild_parameter_with_state") {
      if (a.empty()) Fail(fn + " without arguments");
      return a[0];
    }
    if (fn == "torch._tensor._rebuild_from_type_v2" || fn == "torch._tensor._rebuild_from_type") {
      // (function, tensor subclass, arguments, state): the plain tensor is what we want.
      if (a.size() < 3) Fail(fn + " with too few arguments");
      return Call(a[0], a[2]);
    }
    if (fn == "torch.Size" || fn == "builtins.tuple" || fn == "builtins.list" ||
        fn == "builtins.set" || fn == "builtins.frozenset") {
      Object* o = New(fn == "builtins.list"                 ? Kind::List
                      : fn.find("set") != std::string::npos ? Kind::Set
                                                            : Kind::Tuple);
      if (!a.empty()) {
        Spend(a[0]->items.size());
        o->items = a[0]->items;
      }
      return o;
    }
    if (fn == "torch.device") {
      if (!a.empty() && a[0]->kind == Kind::String) return NewText(Kind::String, a[0]->text);
    }
    if (fn == "_codecs.encode") {
      if (!a.empty() && a[0]->kind == Kind::String) return NewText(Kind::Bytes, a[0]->text);
    }
    return Opaque("object " + fn);
  }

  // ---- the opcodes ---------------------------------------------------------------------------
  void Step(uint8_t op) {
    switch (op) {
      case 0x80: {  // PROTO
        const uint8_t v = U8();
        if (v > 5) Fail("pickle protocol " + std::to_string(v) + " is not supported");
        break;
      }
      case 0x95:  // FRAME: a length hint only
        Take(8);
        break;
      case '(':  // MARK
        marks_.push_back(stack_.size());
        break;
      case '0':  // POP
        if (!marks_.empty() && stack_.size() == marks_.back()) {
          marks_.pop_back();
        } else {
          Pop();
        }
        break;
      case '1':  // POP_MARK
        PopMark();
        break;
      case '2':  // DUP
        Push(Top());
        break;
      case 'N':
        Push(New(Kind::None));
        break;
      case 0x88:
      case 0x89: {  // NEWTRUE, NEWFALSE
        Object* o = New(Kind::Bool);
        o->boolean = op == 0x88;
        Push(o);
        break;
      }
      case 'I': {  // INT (text; "00"/"01" are booleans)
        const std::string s = Line();
        int64_t v;
        if (s == "00" || s == "01") {
          Object* o = New(Kind::Bool);
          o->boolean = s == "01";
          Push(o);
        } else if (ParseInt(s, &v)) {
          Push(NewInt(v));
        } else {
          Fail("bad INT");
        }
        break;
      }
      case 'L': {  // LONG (text)
        int64_t v;
        if (!ParseInt(Line(), &v)) Fail("bad LONG or one past 64 bits");
        Push(NewInt(v));
        break;
      }
      case 'J':
        Push(NewInt(static_cast<int32_t>(Uint(4))));
        break;
      case 'K':
        Push(NewInt(U8()));
        break;
      case 'M':
        Push(NewInt(static_cast<int64_t>(Uint(2))));
        break;
      case 0x8a:  // LONG1
        Push(Long(U8()));
        break;
      case 0x8b: {  // LONG4
        const auto n = static_cast<int32_t>(Uint(4));
        if (n < 0) Fail("negative length");
        Push(Long(static_cast<uint64_t>(n)));
        break;
      }
      case 'F': {  // FLOAT (text)
        const std::string s = Line();
        Object* o = New(Kind::Float);
        o->real = std::strtod(s.c_str(), nullptr);
        Push(o);
        break;
      }
      case 'G': {  // BINFLOAT, big-endian
        const uint8_t* p = Take(8);
        uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = (bits << 8) | p[i];
        Object* o = New(Kind::Float);
        std::memcpy(&o->real, &bits, 8);
        Push(o);
        break;
      }
      case 'T': {  // BINSTRING (Python 2 str)
        const auto n = static_cast<int32_t>(Uint(4));
        if (n < 0) Fail("negative length");
        Push(NewText(Kind::String, Text(static_cast<uint64_t>(n))));
        break;
      }
      case 'U':  // SHORT_BINSTRING
        Push(NewText(Kind::String, Text(U8())));
        break;
      case 'X':  // BINUNICODE
        Push(NewText(Kind::String, Text(Uint(4))));
        break;
      case 0x8c:  // SHORT_BINUNICODE
        Push(NewText(Kind::String, Text(U8())));
        break;
      case 0x8d:  // BINUNICODE8
        Push(NewText(Kind::String, Text(Uint(8))));
        break;
      case 'V':  // UNICODE (raw-unicode-escape text); kept as written
        Push(NewText(Kind::String, Line()));
        break;
      case 'B':  // BINBYTES
        Push(NewText(Kind::Bytes, Text(Uint(4))));
        break;
      case 'C':  // SHORT_BINBYTES
        Push(NewText(Kind::Bytes, Text(U8())));
        break;
      case 0x8e:  // BINBYTES8
      case 0x96:  // BYTEARRAY8
        Push(NewText(Kind::Bytes, Text(Uint(8))));
        break;
      case ')':
        Push(Tuple({}));
        break;
      case 't':
        Push(Tuple(PopMark()));
        break;
      case 0x85:
      case 0x86:
      case 0x87: {  // TUPLE1..3
        std::vector<Object*> items(op - 0x84);
        for (size_t i = items.size(); i-- > 0;) items[i] = Pop();
        Push(Tuple(std::move(items)));
        break;
      }
      case ']':
        Push(New(Kind::List));
        break;
      case 'l': {
        Object* o = New(Kind::List);
        o->items = PopMark();
        Push(o);
        break;
      }
      case 'a': {  // APPEND
        Object* v = Pop();
        AddItems(Top(), {v});
        break;
      }
      case 'e': {  // APPENDS
        auto items = PopMark();
        AddItems(Top(), items);
        break;
      }
      case '}':
        Push(New(Kind::Dict));
        break;
      case 'd': {
        auto flat = PopMark();
        Object* o = New(Kind::Dict);
        AddPairs(o, flat);
        Push(o);
        break;
      }
      case 's': {  // SETITEM
        Object* v = Pop();
        Object* k = Pop();
        AddPairs(Top(), {k, v});
        break;
      }
      case 'u': {  // SETITEMS
        auto flat = PopMark();
        AddPairs(Top(), flat);
        break;
      }
      case 0x8f:
        Push(New(Kind::Set));
        break;
      case 0x90: {  // ADDITEMS
        auto items = PopMark();
        AddItems(Top(), items);
        break;
      }
      case 0x91: {  // FROZENSET
        Object* o = New(Kind::Set);
        o->items = PopMark();
        Push(o);
        break;
      }
      case 'c': {  // GLOBAL
        std::string module = Line();
        std::string name = Line();
        Push(NewText(Kind::Global, GlobalName(module, name)));
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        Object* name = Pop();
        Object* module = Pop();
        if (name->kind != Kind::String || module->kind != Kind::String) {
          Fail("STACK_GLOBAL needs two strings");
        }
        Push(NewText(Kind::Global, GlobalName(module->text, name->text)));
        break;
      }
      case 'R': {  // REDUCE
        Object* args = Pop();
        Object* callable = Pop();
        Push(Call(callable, args));
        break;
      }
      case 0x81: {  // NEWOBJ: cls.__new__(cls, *args); only dicts are understood
        Pop();
        Object* cls = Pop();
        const bool dict = cls->kind == Kind::Global &&
                          (cls->text == "collections.OrderedDict" || cls->text == "builtins.dict");
        Push(dict ? New(Kind::Dict) : Opaque("object " + cls->text));
        break;
      }
      case 0x92: {  // NEWOBJ_EX
        Pop();
        Pop();
        Object* cls = Pop();
        Push(Opaque("object " + cls->text));
        break;
      }
      case 'b':  // BUILD: object state (an OrderedDict's _metadata, ...) is not needed
        Pop();
        Top();
        break;
      case 'p': {  // PUT (text)
        int64_t i;
        if (!ParseInt(Line(), &i) || i < 0) Fail("bad PUT");
        Memo(static_cast<uint64_t>(i));
        break;
      }
      case 'q':
        Memo(U8());
        break;
      case 'r':
        Memo(Uint(4));
        break;
      case 0x94:  // MEMOIZE
        Memo(memo_.size());
        break;
      case 'g': {  // GET (text)
        int64_t i;
        if (!ParseInt(Line(), &i) || i < 0) Fail("bad GET");
        Push(Recall(static_cast<uint64_t>(i)));
        break;
      }
      case 'h':
        Push(Recall(U8()));
        break;
      case 'j':
        Push(Recall(Uint(4)));
        break;
      case 'Q':  // BINPERSID
        Push(Storage(Pop()));
        break;
      case 'P':  // PERSID (text)
        Push(Opaque("persistent object " + Line()));
        break;
      default: {
        static const char* hex = "0123456789abcdef";
        Fail(std::string("unsupported opcode 0x") + hex[op >> 4] + hex[op & 15]);
      }
    }
  }

  static constexpr uint64_t kBaseCells = 1 << 20;
  static constexpr uint64_t kCellsPerByte = 8;

  const uint8_t* data_;
  size_t size_;
  uint64_t budget_;
  uint64_t spent_ = 0;
  size_t pos_ = 0;
  size_t op_ = 0;
  std::vector<Object*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Object*> memo_;
  std::vector<std::unique_ptr<Object>> arena_;
};

}  // namespace

std::string Object::Describe() const {
  switch (kind) {
    case Kind::None:
      return "None";
    case Kind::Bool:
      return "bool";
    case Kind::Int:
    case Kind::BigInt:
      return "int";
    case Kind::Float:
      return "float";
    case Kind::String:
      return "str";
    case Kind::Bytes:
      return "bytes";
    case Kind::Tuple:
      return "tuple";
    case Kind::List:
      return "list";
    case Kind::Dict:
      return "dict";
    case Kind::Set:
      return "set";
    case Kind::Global:
      return "global " + text;
    case Kind::Storage:
      return "storage";
    case Kind::Tensor:
      return "tensor";
    case Kind::Opaque:
      return text;
  }
  return "value";
}

Pickle Unpickle(const uint8_t* data, size_t size) { return Unpickler(data, size).Run(); }

}  // namespace koner::io::pickle
