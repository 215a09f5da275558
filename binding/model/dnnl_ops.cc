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
using Args = std::unordered_map<int, dnnl::memory>;

dnnl::engine& Engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// Runs a primitive on the calling thread, with scratch memory of this call's own (so that one
// primitive may run on several threads at once).
void Execute(const dnnl::primitive& primitive, const dnnl::memory::desc& scratch, Args args) {
  torch::Tensor scratchpad;
  if (const size_t bytes = scratch.get_size()) {
    scratchpad = torch::empty({static_cast<int64_t>(bytes)}, torch::kUInt8);
    args[DNNL_ARG_SCRATCHPAD] = dnnl::memory(scratch, Engine(), scratchpad.data_ptr());
  }
  dnnl::stream stream(Engine());
  primitive.execute(stream, args);
  stream.wait();
}

dnnl::primitive_attr UserScratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

// The operand types of a product in each precision: input, weights.
DataType InputType(Products p) {
  return p == Products::BFloat16 ? DataType::bf16
                                 : (p == Products::Int8 ? DataType::s8 : DataType::f32);
}

// One product's shape, precision and what is fused into it: the primitive's identity.
struct Shape {
  int64_t rows, in, out;
  Products products;
  DataType src, dst;
  Epilogue epilogue;
  bool bias, residual;

  bool operator==(const Shape& o) const {
    return rows == o.rows && in == o.in && out == o.out && products == o.products && src == o.src &&
           dst == o.dst && epilogue == o.epilogue && bias == o.bias && residual == o.residual;
  }
};

struct ShapeHash {
  size_t operator()(const Shape& s) const {
    size_t h = std::hash<int64_t>()(s.rows);
    for (int64_t x : {s.in, s.out, static_cast<int64_t>(s.products), static_cast<int64_t>(s.src),
                      static_cast<int64_t>(s.dst), static_cast<int64_t>(s.epilogue),
                      static_cast<int64_t>(s.bias), static_cast<int64_t>(s.residual)}) {
      h = h * 1000003u ^ std::hash<int64_t>()(x);
    }
    return h;
  }
};

// Post-op positions: the int8 product adds its bias after scaling, as a post-op; then the
// epilogue; then the residual.
struct PostOps {
  int bias = -1, residual = -1;
};

PostOps PostOpsOf(const Shape& s) {
  PostOps at;
  int next = 0;
  if (s.bias && s.products == Products::Int8) at.bias = next++;
  if (s.epilogue != Epilogue::None) ++next;
  if (s.residual) at.residual = next++;
  return at;
}

dnnl::matmul::primitive_desc Describe(const Shape& s) {
  const dnnl::memory::desc src({s.rows, s.in}, s.src, Tag::ab);
  // `any`: the primitive's own blocked layout, which the packed weights are reordered into.
  const dnnl::memory::desc weights({s.in, s.out}, InputType(s.products), Tag::any);
  const dnnl::memory::desc dst({s.rows, s.out}, s.dst, Tag::ab);
  const dnnl::memory::desc bias({1, s.out}, DataType::f32, Tag::ab);
  dnnl::post_ops ops;
  auto attr = UserScratchpad();
  const bool int8 = s.products == Products::Int8;
  if (int8) {
    // The sums' scale per output: the input's scale times the output's weight scale, given
    // with each call. oneDNN adds a matmul bias before scaling, so the bias is a post-op.
    attr.set_output_scales(1 << 1, {DNNL_RUNTIME_F32_VAL});
    if (s.bias) ops.append_binary(dnnl::algorithm::binary_add, bias);
  }
  if (s.epilogue == Epilogue::Gelu) {
    ops.append_eltwise(1.f, dnnl::algorithm::eltwise_gelu_erf, 0.f, 0.f);
  }
  if (s.residual) {
    ops.append_binary(dnnl::algorithm::binary_add, {{s.rows, s.out}, DataType::f32, Tag::ab});
  }
  attr.set_post_ops(ops);
  if (s.bias && !int8) return {dnnl::matmul::desc(src, weights, bias, dst), attr, Engine()};
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

// x [rows, in] float32 as int8 with one scale (largest magnitude / 127, so that nothing clips):
// the values, and the scale.
std::pair<torch::Tensor, float> Quantize(const torch::Tensor& x) {
  auto [low, high] = torch::aminmax(x);
  const float largest = std::max(-low.item<float>(), high.item<float>());
  const float scale = largest > 0 ? largest / 127.f : 1.f;
  auto q = torch::empty(x.sizes(), x.options().dtype(torch::kInt8));
  const dnnl::memory::desc from({x.size(0), x.size(1)}, DataType::f32, Tag::ab);
  const dnnl::memory::desc to({x.size(0), x.size(1)}, DataType::s8, Tag::ab);
  auto attr = UserScratchpad();
  attr.set_output_scales(0, {DNNL_RUNTIME_F32_VAL});
  const dnnl::reorder::primitive_desc pd(Engine(), from, Engine(), to, attr);
  float inverse = 1.f / scale;
  Execute(dnnl::reorder(pd), pd.scratchpad_desc(),
          {{DNNL_ARG_FROM, dnnl::memory(from, Engine(), x.data_ptr())},
           {DNNL_ARG_TO, dnnl::memory(to, Engine(), q.data_ptr())},
           {DNNL_ARG_ATTR_OUTPUT_SCALES,
            dnnl::memory({{1}, DataType::f32, Tag::a}, Engine(), &inverse)}});
  return {q, scale};
}

}  // namespace

bool DnnlBuilt() { return true; }

struct DnnlLinear::Packed {
  std::vector<Source> sources;  // each layer's weight, then each layer's bias
  Products products = Products::Float32;
  int64_t in = 0, out = 0;
  dnnl::memory::desc desc;     // the primitive's layout of the stacked weight [in, out]
  torch::Tensor weights;       // its bytes
  torch::Tensor bias;          // [out] float32, or undefined
  torch::Tensor weightScales;  // [out] float32 (int8 only)
};

bool DnnlInference(const torch::Tensor& x, const torch::Tensor& weight) {
  const auto t = x.scalar_type();
  return OneDnnAllowed() && !at::GradMode::is_enabled() && x.device().is_cpu() &&
         weight.device().is_cpu() && weight.layout() == torch::kStrided &&
         weight.scalar_type() == torch::kFloat32 && x.dim() >= 2 &&
         (t == torch::kFloat32 || t == torch::kBFloat16);
}

torch::Tensor DnnlLayerNorm(torch::Tensor x, torch::nn::LayerNormImpl& norm) {
  const int64_t features = x.size(-1), rows = x.numel() / features;
  TORCH_CHECK(x.is_contiguous() && x.scalar_type() == torch::kFloat32 &&
                  norm.options.normalized_shape().size() == 1 &&
                  norm.options.normalized_shape()[0] == features &&
                  norm.options.elementwise_affine(),
              "DnnlLayerNorm: expected a contiguous float32 [..., ", features,
              "] and an affine LayerNorm over it");
  if (rows == 0) return x;
  const dnnl::memory::desc data({rows, features}, DataType::f32, Tag::ab);
  const auto flags = dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;
  const auto eps = static_cast<float>(norm.options.eps());
  const dnnl::layer_normalization_forward::primitive_desc pd(
      {dnnl::prop_kind::forward_inference, data, eps, flags}, UserScratchpad(), Engine());
  const dnnl::memory::desc vector({features}, DataType::f32, Tag::a);
  const dnnl::memory memory(data, Engine(), x.data_ptr());
  Execute(dnnl::layer_normalization_forward(pd), pd.scratchpad_desc(),
          {{DNNL_ARG_SRC, memory},
           {DNNL_ARG_DST, memory},
           {DNNL_ARG_SCALE, dnnl::memory(vector, Engine(), norm.weight.data_ptr())},
           {DNNL_ARG_SHIFT, dnnl::memory(vector, Engine(), norm.bias.data_ptr())}});
  return x;
}

DnnlLinear::DnnlLinear() = default;
DnnlLinear::~DnnlLinear() = default;

torch::Tensor DnnlLinear::Forward(std::initializer_list<torch::nn::LinearImpl*> layers,
                                  const torch::Tensor& x, Epilogue epilogue,
                                  const torch::Tensor& residual, bool feedsProduct) {
  const Products products = products_.load();
  std::shared_ptr<const Packed> packed;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    bool fresh =
        packed_ && packed_->products == products && packed_->sources.size() == 2 * layers.size();
    size_t i = 0;
    for (auto* layer : layers) {
      fresh = fresh && packed_->sources[i].Matches(layer->weight) &&
              packed_->sources[layers.size() + i].Matches(layer->bias);
      ++i;
    }
    if (!fresh) {
      auto p = std::make_shared<Packed>();
      p->products = products;
      std::vector<torch::Tensor> weights, biases;
      for (auto* layer : layers) p->sources.push_back(Source::Of(layer->weight));
      for (auto* layer : layers) p->sources.push_back(Source::Of(layer->bias));
      for (auto* layer : layers) {
        weights.push_back(layer->weight.detach());
        if (layer->bias.defined()) biases.push_back(layer->bias.detach());
      }
      TORCH_CHECK(biases.empty() || biases.size() == weights.size(),
                  "DnnlLinear: either every stacked layer has a bias or none has");
      auto stacked = torch::cat(weights, 0).contiguous();  // [out, in] float32
      p->out = stacked.size(0);
      p->in = stacked.size(1);
      if (!biases.empty()) p->bias = torch::cat(biases, 0).contiguous();
      if (products == Products::BFloat16) stacked = stacked.to(torch::kBFloat16);
      if (products == Products::Int8) {
        // Symmetric, one scale per output: its largest weight magnitude / 127.
        auto largest = stacked.abs().amax(1);
        p->weightScales = torch::where(largest > 0, largest / 127, torch::ones_like(largest));
        stacked = torch::round(stacked / p->weightScales.unsqueeze(1)).to(torch::kInt8);
      }
      // The layout the primitive picks for these shapes (the same for every row count).
      p->desc = Describe({32, p->in, p->out, products, InputType(products), DataType::f32,
                          Epilogue::None, false, false})
                    .weights_desc();
      p->weights = torch::empty({static_cast<int64_t>(p->desc.get_size())}, torch::kUInt8);
      // [out, in] row-major is the [in, out] matrix in column-major order (tag ba).
      dnnl::memory plain({{p->in, p->out}, InputType(products), Tag::ba}, Engine(),
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
  const bool bf16 = products == Products::BFloat16;
  auto y = torch::empty(
      sizes, x.options().dtype(bf16 && feedsProduct ? torch::kBFloat16 : torch::kFloat32));
  if (rows == 0) return y;

  // The input in the products' type.
  auto src = x.reshape({rows, packed->in});
  float inputScale = 1.f;
  if (products == Products::Int8) {
    std::tie(src, inputScale) = Quantize(src.to(torch::kFloat32).contiguous());
  } else {
    src = src.to(bf16 ? torch::kBFloat16 : torch::kFloat32).contiguous();
  }
  const Shape shape{rows,
                    packed->in,
                    packed->out,
                    products,
                    InputType(products),
                    y.scalar_type() == torch::kBFloat16 ? DataType::bf16 : DataType::f32,
                    epilogue,
                    packed->bias.defined(),
                    residual.defined()};
  auto primitive = Primitives().Get(shape);
  const PostOps at = PostOpsOf(shape);
  Args args;
  args[DNNL_ARG_SRC] =
      dnnl::memory({{rows, packed->in}, shape.src, Tag::ab}, Engine(), src.data_ptr());
  args[DNNL_ARG_DST] =
      dnnl::memory({{rows, packed->out}, shape.dst, Tag::ab}, Engine(), y.data_ptr());
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
  const dnnl::memory::desc row({1, packed->out}, DataType::f32, Tag::ab);
  torch::Tensor scales;
  if (products == Products::Int8) {
    scales = packed->weightScales * inputScale;
    args[DNNL_ARG_ATTR_OUTPUT_SCALES] =
        dnnl::memory({{packed->out}, DataType::f32, Tag::a}, Engine(), scales.data_ptr());
    if (at.bias >= 0) {
      args[DNNL_ARG_ATTR_MULTIPLE_POST_OP(at.bias) | DNNL_ARG_SRC_1] =
          dnnl::memory(row, Engine(), packed->bias.data_ptr());
    }
  } else if (packed->bias.defined()) {
    args[DNNL_ARG_BIAS] = dnnl::memory(row, Engine(), packed->bias.data_ptr());
  }
  torch::Tensor added;
  if (residual.defined()) {
    TORCH_CHECK(residual.numel() == rows * packed->out, "DnnlLinear: residual must be [..., ",
                packed->out, "]");
    added = residual.reshape({rows, packed->out}).to(torch::kFloat32).contiguous();
    args[DNNL_ARG_ATTR_MULTIPLE_POST_OP(at.residual) | DNNL_ARG_SRC_1] =
        dnnl::memory({{rows, packed->out}, DataType::f32, Tag::ab}, Engine(), added.data_ptr());
  }
  Execute(primitive->matmul, primitive->pd.scratchpad_desc(), std::move(args));
  return y;
}

#else  // without oneDNN's headers: LibTorch's own ops run instead

struct DnnlLinear::Packed {};

bool DnnlBuilt() { return false; }

bool DnnlInference(const torch::Tensor&, const torch::Tensor&) { return false; }

torch::Tensor DnnlLayerNorm(torch::Tensor, torch::nn::LayerNormImpl&) {
  TORCH_CHECK(false, "DnnlLayerNorm: this addon was built without oneDNN's headers");
}

DnnlLinear::DnnlLinear() = default;
DnnlLinear::~DnnlLinear() = default;

torch::Tensor DnnlLinear::Forward(std::initializer_list<torch::nn::LinearImpl*>,
                                  const torch::Tensor&, Epilogue, const torch::Tensor&, bool) {
  TORCH_CHECK(false, "DnnlLinear: this addon was built without oneDNN's headers");
}

#endif

}  // namespace koner::model
