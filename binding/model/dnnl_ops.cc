#include "model/dnnl_ops.h"

#include <cstdlib>
#include <cstring>
#include <list>
#include <unordered_map>
#include <utility>
#include <vector>

#if KONER_WITH_DNNL
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace koner::model {

bool OneDnnAllowed() {
  // Read once, at the first forward: getenv must not race with a setenv from JS later.
  static const bool allowed = [] {
    const char* env = std::getenv("KONER_ONEDNN");
    return !(env && std::strcmp(env, "0") == 0);
  }();
  return allowed;
}

#if KONER_WITH_DNNL

namespace {

using DataType = dnnl::memory::data_type;
using Tag = dnnl::memory::format_tag;

dnnl::engine& Engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

DataType DnnlType(torch::ScalarType t) {
  return t == torch::kBFloat16 ? DataType::bf16 : DataType::f32;
}

// One product's shape and what is fused into it: the primitive's identity.
struct Shape {
  int64_t rows, in, out;
  torch::ScalarType dtype;
  Epilogue epilogue;
  bool bias, residual;

  bool operator==(const Shape& o) const {
    return rows == o.rows && in == o.in && out == o.out && dtype == o.dtype &&
           epilogue == o.epilogue && bias == o.bias && residual == o.residual;
  }
};

struct ShapeHash {
  size_t operator()(const Shape& s) const {
    size_t h = std::hash<int64_t>()(s.rows);
    for (int64_t x : {s.in, s.out, static_cast<int64_t>(s.dtype), static_cast<int64_t>(s.epilogue),
                      static_cast<int64_t>(s.bias), static_cast<int64_t>(s.residual)}) {
      h = h * 1000003u ^ std::hash<int64_t>()(x);
    }
    return h;
  }
};

dnnl::matmul::primitive_desc Describe(const Shape& s) {
  const DataType t = DnnlType(s.dtype);
  const dnnl::memory::desc src({s.rows, s.in}, t, Tag::ab);
  const dnnl::memory::desc weights({s.in, s.out}, t, Tag::any);  // the primitive's own layout
  const dnnl::memory::desc dst({s.rows, s.out}, t, Tag::ab);
  dnnl::post_ops ops;
  if (s.epilogue == Epilogue::Gelu) {
    ops.append_eltwise(1.f, dnnl::algorithm::eltwise_gelu_erf, 0.f, 0.f);
  }
  if (s.residual) ops.append_binary(dnnl::algorithm::binary_add, dst);
  dnnl::primitive_attr attr;
  attr.set_post_ops(ops);
  // Scratch memory comes with each call, so that one primitive may run on several threads.
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (s.bias) {
    const dnnl::memory::desc bias({1, s.out}, DataType::f32, Tag::ab);
    return {dnnl::matmul::desc(src, weights, bias, dst), attr, Engine()};
  }
  return {dnnl::matmul::desc(src, weights, dst), attr, Engine()};
}

struct Primitive {
  dnnl::matmul::primitive_desc pd;
  dnnl::matmul matmul;
};

// The primitives of the shapes seen lately (one per product shape and row count), the most
// recent first. Creating one costs ~20 µs, and its first creation (JIT) ~0.4 ms, where running
// it on a short sentence takes tens of µs; bounded, so that a server fed every length keeps a
// fixed footprint.
class PrimitiveCache {
 public:
  std::shared_ptr<const Primitive> Get(const Shape& shape) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = index_.find(shape);
      if (it != index_.end()) {
        order_.splice(order_.begin(), order_, it->second);
        return it->second->second;
      }
    }
    auto pd = Describe(shape);
    auto made = std::make_shared<const Primitive>(Primitive{pd, dnnl::matmul(pd)});
    std::lock_guard<std::mutex> lock(mutex_);
    if (index_.count(shape)) return index_[shape]->second;
    order_.emplace_front(shape, made);
    index_[shape] = order_.begin();
    if (order_.size() > kCapacity) {
      index_.erase(order_.back().first);
      order_.pop_back();
    }
    return made;
  }

 private:
  static constexpr size_t kCapacity = 1024;
  using Item = std::pair<Shape, std::shared_ptr<const Primitive>>;
  std::mutex mutex_;
  std::list<Item> order_;
  std::unordered_map<Shape, std::list<Item>::iterator, ShapeHash> index_;
};

PrimitiveCache& Primitives() {
  static PrimitiveCache* cache = new PrimitiveCache();  // never destroyed: used until exit
  return *cache;
}

// What a packed tensor was made from: its storage (held, so that the address cannot be reused
// while compared), offset, shape, dtype and version counter.
struct Source {
  c10::Storage storage;
  int64_t offset = 0, version = -1;
  std::vector<int64_t> sizes;
  torch::ScalarType dtype = torch::kFloat32;

  static Source Of(const torch::Tensor& t) {
    if (!t.defined()) return {};
    return {t.storage(), t.storage_offset(), t._version(), t.sizes().vec(), t.scalar_type()};
  }
  bool Matches(const torch::Tensor& t) const {
    if (!t.defined()) return !storage;
    return storage && storage.is_alias_of(t.storage()) && offset == t.storage_offset() &&
           version == t._version() && sizes == t.sizes().vec() && dtype == t.scalar_type();
  }
};

void Execute(const Primitive& p, const std::unordered_map<int, dnnl::memory>& args) {
  const size_t scratch = p.pd.scratchpad_desc().get_size();
  torch::Tensor scratchpad;
  auto all = args;
  if (scratch > 0) {
    scratchpad = torch::empty({static_cast<int64_t>(scratch)}, torch::kUInt8);
    all[DNNL_ARG_SCRATCHPAD] =
        dnnl::memory(p.pd.scratchpad_desc(), Engine(), scratchpad.data_ptr());
  }
  dnnl::stream stream(Engine());
  p.matmul.execute(stream, all);
  stream.wait();
}

}  // namespace

struct DnnlLinear::Packed {
  std::vector<Source> sources;  // each layer's weight, then each layer's bias
  torch::ScalarType dtype;
  int64_t in = 0, out = 0;
  dnnl::memory::desc desc;  // the primitive's layout of the stacked weight [in, out]
  torch::Tensor weights;    // its bytes
  torch::Tensor bias;       // [out] float32, or undefined
};

bool DnnlInference(const torch::Tensor& x, const torch::Tensor& weight) {
  const auto t = x.scalar_type();
  return OneDnnAllowed() && !at::GradMode::is_enabled() && x.device().is_cpu() &&
         weight.device().is_cpu() && weight.layout() == torch::kStrided && x.dim() >= 2 &&
         (t == torch::kFloat32 || t == torch::kBFloat16) && weight.scalar_type() == t;
}

torch::Tensor DnnlLayerNorm(torch::Tensor x, torch::nn::LayerNormImpl& norm) {
  const int64_t features = x.size(-1), rows = x.numel() / features;
  TORCH_CHECK(
      x.is_contiguous() && norm.options.normalized_shape().size() == 1 &&
          norm.options.normalized_shape()[0] == features && norm.options.elementwise_affine(),
      "DnnlLayerNorm: expected a contiguous [..., ", features, "] and an affine LayerNorm over it");
  if (rows == 0) return x;
  const dnnl::memory::desc data({rows, features}, DnnlType(x.scalar_type()), Tag::ab);
  const auto flags = dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;
  const auto eps = static_cast<float>(norm.options.eps());
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  dnnl::layer_normalization_forward::primitive_desc pd(
      {dnnl::prop_kind::forward_inference, data, eps, flags}, attr, Engine());
  // The parameters' float32 values (a copy when the module is in bfloat16: H floats).
  const auto scale = norm.weight.detach().to(torch::kFloat32).contiguous();
  const auto shift = norm.bias.detach().to(torch::kFloat32).contiguous();
  const dnnl::memory::desc vector({features}, DataType::f32, Tag::a);
  const dnnl::memory memory(data, Engine(), x.data_ptr());
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, memory},
      {DNNL_ARG_DST, memory},
      {DNNL_ARG_SCALE, dnnl::memory(vector, Engine(), scale.data_ptr())},
      {DNNL_ARG_SHIFT, dnnl::memory(vector, Engine(), shift.data_ptr())}};
  torch::Tensor scratchpad;
  if (const size_t bytes = pd.scratchpad_desc().get_size()) {
    scratchpad = torch::empty({static_cast<int64_t>(bytes)}, torch::kUInt8);
    args[DNNL_ARG_SCRATCHPAD] = dnnl::memory(pd.scratchpad_desc(), Engine(), scratchpad.data_ptr());
  }
  dnnl::stream stream(Engine());
  dnnl::layer_normalization_forward(pd).execute(stream, args);
  stream.wait();
  return x;
}

DnnlLinear::DnnlLinear() = default;
DnnlLinear::~DnnlLinear() = default;

torch::Tensor DnnlLinear::Forward(std::initializer_list<torch::nn::LinearImpl*> layers,
                                  const torch::Tensor& x, Epilogue epilogue,
                                  const torch::Tensor& residual) {
  std::shared_ptr<const Packed> packed;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    bool fresh = packed_ && packed_->sources.size() == 2 * layers.size();
    size_t i = 0;
    for (auto* layer : layers) {
      fresh = fresh && packed_->sources[i].Matches(layer->weight) &&
              packed_->sources[layers.size() + i].Matches(layer->bias);
      ++i;
    }
    if (!fresh) {
      auto p = std::make_shared<Packed>();
      std::vector<torch::Tensor> weights, biases;
      for (auto* layer : layers) p->sources.push_back(Source::Of(layer->weight));
      for (auto* layer : layers) p->sources.push_back(Source::Of(layer->bias));
      for (auto* layer : layers) {
        weights.push_back(layer->weight.detach());
        if (layer->bias.defined()) biases.push_back(layer->bias.detach().to(torch::kFloat32));
      }
      TORCH_CHECK(biases.empty() || biases.size() == weights.size(),
                  "DnnlLinear: either every stacked layer has a bias or none has");
      auto stacked = torch::cat(weights, 0).contiguous();  // [out, in]
      p->dtype = stacked.scalar_type();
      p->out = stacked.size(0);
      p->in = stacked.size(1);
      if (!biases.empty()) p->bias = torch::cat(biases, 0).contiguous();
      // The layout the primitive picks for these shapes (the same for every row count).
      p->desc =
          Describe({32, p->in, p->out, p->dtype, Epilogue::None, false, false}).weights_desc();
      p->weights = torch::empty({static_cast<int64_t>(p->desc.get_size())}, torch::kUInt8);
      // [out, in] row-major is the [in, out] matrix in column-major order (tag ba).
      dnnl::memory plain({{p->in, p->out}, DnnlType(p->dtype), Tag::ba}, Engine(),
                         stacked.data_ptr());
      dnnl::memory blocked(p->desc, Engine(), p->weights.data_ptr());
      dnnl::stream stream(Engine());
      dnnl::reorder(plain, blocked).execute(stream, plain, blocked);
      stream.wait();
      packed_ = std::move(p);
    }
    packed = packed_;
  }

  TORCH_CHECK(x.size(-1) == packed->in, "DnnlLinear: input has ", x.size(-1),
              " features, the weights take ", packed->in);
  auto sizes = x.sizes().vec();
  const int64_t rows = x.numel() / packed->in;
  sizes.back() = packed->out;
  auto y = torch::empty(sizes, x.options());
  if (rows == 0) return y;
  const DataType t = DnnlType(packed->dtype);
  auto src = x.reshape({rows, packed->in}).contiguous();
  const Shape shape{rows,
                    packed->in,
                    packed->out,
                    packed->dtype,
                    epilogue,
                    packed->bias.defined(),
                    residual.defined()};
  auto primitive = Primitives().Get(shape);
  std::unordered_map<int, dnnl::memory> args;
  args[DNNL_ARG_SRC] = dnnl::memory({{rows, packed->in}, t, Tag::ab}, Engine(), src.data_ptr());
  args[DNNL_ARG_DST] = dnnl::memory({{rows, packed->out}, t, Tag::ab}, Engine(), y.data_ptr());
  dnnl::memory weights(packed->desc, Engine(), packed->weights.data_ptr());
  torch::Tensor relaid;
  if (primitive->pd.weights_desc() != packed->desc) {
    // Not seen on any shape so far; correct, at the cost of a layout change per call.
    relaid = torch::empty({static_cast<int64_t>(primitive->pd.weights_desc().get_size())},
                          torch::kUInt8);
    dnnl::memory other(primitive->pd.weights_desc(), Engine(), relaid.data_ptr());
    dnnl::stream stream(Engine());
    dnnl::reorder(weights, other).execute(stream, weights, other);
    stream.wait();
    weights = other;
  }
  args[DNNL_ARG_WEIGHTS] = weights;
  if (packed->bias.defined()) {
    args[DNNL_ARG_BIAS] =
        dnnl::memory({{1, packed->out}, DataType::f32, Tag::ab}, Engine(), packed->bias.data_ptr());
  }
  torch::Tensor added;
  if (residual.defined()) {
    TORCH_CHECK(residual.numel() == rows * packed->out && residual.scalar_type() == x.scalar_type(),
                "DnnlLinear: residual must be [..., ", packed->out, "] in ", x.scalar_type());
    added = residual.reshape({rows, packed->out}).contiguous();
    const int index = epilogue == Epilogue::None ? 0 : 1;  // the binary op follows the epilogue
    args[DNNL_ARG_ATTR_MULTIPLE_POST_OP(index) | DNNL_ARG_SRC_1] =
        dnnl::memory({{rows, packed->out}, t, Tag::ab}, Engine(), added.data_ptr());
  }
  Execute(*primitive, args);
  return y;
}

#else  // without oneDNN's headers: LibTorch's own ops run instead

struct DnnlLinear::Packed {};

bool DnnlInference(const torch::Tensor&, const torch::Tensor&) { return false; }

torch::Tensor DnnlLayerNorm(torch::Tensor, torch::nn::LayerNormImpl&) {
  TORCH_CHECK(false, "DnnlLayerNorm: this addon was built without oneDNN's headers");
}

DnnlLinear::DnnlLinear() = default;
DnnlLinear::~DnnlLinear() = default;

torch::Tensor DnnlLinear::Forward(std::initializer_list<torch::nn::LinearImpl*>,
                                  const torch::Tensor&, Epilogue, const torch::Tensor&) {
  TORCH_CHECK(false, "DnnlLinear: this addon was built without oneDNN's headers");
}

#endif

}  // namespace koner::model
