// `DistGroup`: a koner::dist::Group as a JS class. `DistGroup.connect(options)` validates on the
// JS thread (errors name the field) and rendezvouses on libuv's pool; every collective returns a
// Promise. Collectives start in the order JS called them, whichever pool thread runs them: each
// call reserves its turn on the JS thread (Group::ReserveTurn), so every rank issues the same
// sequence even when JS does not await one call before making the next.
#include "napi/dist.h"

#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "napi/args.h"
#include "napi/errors.h"
#include "napi/modules.h"
#include "napi/tensors.h"
#include "napi/worker.h"

namespace koner::napi {
namespace {

// Marks objects made by DistGroup, so UnwrapGroup can tell them from look-alikes.
constexpr napi_type_tag kDistGroupTag = {0x6b6f6e65722d6469ULL, 0x73742d67726f7570ULL};

dist::GroupOptions OptionsArg(const Napi::Value& value) {
  if (!value.IsObject() || value.IsArray()) {
    throw TypeError(
        "options: expected { rank, worldSize, masterAddr, masterPort, backend?, "
        "timeoutMs?, cudaDevice? }");
  }
  const auto object = value.As<Napi::Object>();
  OnlyKnownKeys(
      object, "options",
      {"rank", "worldSize", "masterAddr", "masterPort", "backend", "timeoutMs", "cudaDevice"});
  auto required = [&](const char* field) {
    Napi::Value v = object.Get(field);
    if (v.IsUndefined()) throw TypeError(std::string("options.") + field + ": missing");
    return v;
  };
  dist::GroupOptions o;
  o.worldSize = static_cast<int>(IntegerArg(required("worldSize"), "options.worldSize", 1, 65535));
  o.rank = static_cast<int>(IntegerArg(required("rank"), "options.rank", 0, 65535));
  const Napi::Value addr = required("masterAddr");
  if (!addr.IsString() || addr.As<Napi::String>().Utf8Value().empty()) {
    throw TypeError("options.masterAddr: must be a non-empty string, got " + Describe(addr));
  }
  o.masterAddr = addr.As<Napi::String>().Utf8Value();
  o.masterPort =
      static_cast<int>(IntegerArg(required("masterPort"), "options.masterPort", 1, 65535));
  const Napi::Value backend = object.Get("backend");
  if (!backend.IsUndefined()) {
    if (!backend.IsString()) {
      throw TypeError("options.backend: must be 'gloo' or 'nccl', got " + Describe(backend));
    }
    o.backend = backend.As<Napi::String>().Utf8Value();
  }
  const Napi::Value timeout = object.Get("timeoutMs");
  if (!timeout.IsUndefined()) {
    o.timeout = std::chrono::milliseconds(
        IntegerArg(timeout, "options.timeoutMs", 1, 7 * 24 * 3600 * 1000.0));
  }
  const Napi::Value device = object.Get("cudaDevice");
  if (!device.IsUndefined()) {
    o.cudaDevice = static_cast<int>(IntegerArg(device, "options.cudaDevice", 0, 1023));
  }
  try {
    dist::Group::Validate(o);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("options.") + e.what());
  }
  return o;
}

// Copies of the arrays (the work outlives the call), as 1-D float32 tensors.
std::vector<torch::Tensor> ArraysArg(const Napi::Value& value, const std::string& what) {
  return ListArg(value, what, [](const Napi::Value& item, const std::string& name) {
    if (!item.IsTypedArray() ||
        item.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
      throw TypeError(name + ": expected a Float32Array");
    }
    const auto length = static_cast<int64_t>(item.As<Napi::Float32Array>().ElementLength());
    return FloatTensorArg(item, {length}, name);
  });
}

std::vector<double> NumbersArg(const Napi::Value& value, const std::string& what) {
  return ListArg(value, what, NumberArg);
}

Napi::Value ArraysOf(Napi::Env env, std::vector<torch::Tensor>& tensors) {
  auto out = Napi::Array::New(env, tensors.size());
  for (uint32_t i = 0; i < tensors.size(); ++i) out.Set(i, TypedArrayOf(env, tensors[i]));
  return out;
}

Napi::Value NumbersOf(Napi::Env env, std::vector<double>& values) {
  auto out = Napi::Array::New(env, values.size());
  for (uint32_t i = 0; i < values.size(); ++i) out.Set(i, Napi::Number::New(env, values[i]));
  return out;
}

// The class's constructor, for connect() to instantiate; lives as long as the environment.
struct ClassData {
  Napi::FunctionReference constructor;
};

class DistGroupWrap : public Napi::ObjectWrap<DistGroupWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    auto* data = new ClassData();
    env.AddCleanupHook([data] { delete data; });
    Napi::Function cls =
        DefineClass(env, "DistGroup",
                    {
                        StaticMethod<&DistGroupWrap::Connect>("connect", napi_default, data),
                        InstanceAccessor<&DistGroupWrap::Rank>("rank"),
                        InstanceAccessor<&DistGroupWrap::WorldSize>("worldSize"),
                        InstanceAccessor<&DistGroupWrap::Backend>("backend"),
                        InstanceAccessor<&DistGroupWrap::Device>("device"),
                        InstanceMethod<&DistGroupWrap::AllreduceMean>("allreduceMean"),
                        InstanceMethod<&DistGroupWrap::Broadcast>("broadcast"),
                        InstanceMethod<&DistGroupWrap::Barrier>("barrier"),
                        InstanceMethod<&DistGroupWrap::AllreduceSum>("allreduceSum"),
                        InstanceMethod<&DistGroupWrap::AllreduceMax>("allreduceMax"),
                        InstanceMethod<&DistGroupWrap::Destroy>("destroy"),
                    });
    data->constructor = Napi::Persistent(cls);
    return cls;
  }

  // Only connect() constructs (with the connected group as an External): a group that exists
  // has finished its rendezvous.
  explicit DistGroupWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DistGroupWrap>(info) {
    Guard(info.Env(), [&] {
      if (info.Length() != 1 || !info[0].IsExternal()) {
        throw TypeError("DistGroup: use `await DistGroup.connect(options)`");
      }
      group_ = *info[0].As<Napi::External<std::shared_ptr<dist::Group>>>().Data();
      info.This().As<Napi::Object>().TypeTag(&kDistGroupTag);
    });
  }

  std::shared_ptr<dist::Group> group(const std::string& what) const {
    if (destroyed_) throw std::invalid_argument(what + ": the DistGroup was destroyed");
    return group_;
  }

 private:
  // connect(options) -> Promise<DistGroup>, settled once every rank has joined.
  static Napi::Value Connect(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      const dist::GroupOptions options = OptionsArg(info[0]);
      auto* data = static_cast<ClassData*>(info.Data());
      return PromiseWorker<std::shared_ptr<dist::Group>>::Start(
          info.Env(), [options] { return std::make_shared<dist::Group>(options); },
          [data](Napi::Env env, std::shared_ptr<dist::Group>& group) -> Napi::Value {
            auto holder = std::make_unique<std::shared_ptr<dist::Group>>(group);
            auto external = Napi::External<std::shared_ptr<dist::Group>>::New(
                env, holder.release(),
                [](Napi::Env, std::shared_ptr<dist::Group>* p) { delete p; });
            return data->constructor.New({external});
          });
    });
  }

  Napi::Value Rank(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), group_->rank());
  }
  Napi::Value WorldSize(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), group_->worldSize());
  }
  Napi::Value Backend(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), group_->backend());
  }
  Napi::Value Device(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), group_->device().str());
  }

  // allreduceMean(arrays, bucketBytes = 25 MiB) -> Promise<Float32Array[]>: the element-wise
  // mean over ranks of each array (every rank must pass arrays of the same lengths).
  Napi::Value AllreduceMean(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      auto group = this->group("allreduceMean");
      auto tensors = ArraysArg(info[0], "arrays");
      const int64_t bucket = info[1].IsUndefined()
                                 ? dist::Group::kDefaultBucketBytes
                                 : IntegerArg(info[1], "bucketBytes", 1, 9007199254740991.0);
      const uint64_t turn = group->ReserveTurn();
      return PromiseWorker<std::vector<torch::Tensor>>::Start(
          info.Env(),
          [group, tensors, bucket, turn]() mutable {
            group->InTurn(turn, [&] { group->AllreduceMean(tensors, bucket); });
            return tensors;
          },
          ArraysOf);
    });
  }

  // broadcast(arrays, root = 0) -> Promise<Float32Array[]>: root's arrays, on every rank.
  Napi::Value Broadcast(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      auto group = this->group("broadcast");
      auto tensors = ArraysArg(info[0], "arrays");
      const int root =
          info[1].IsUndefined()
              ? 0
              : static_cast<int>(IntegerArg(info[1], "root", 0, group->worldSize() - 1));
      const uint64_t turn = group->ReserveTurn();
      return PromiseWorker<std::vector<torch::Tensor>>::Start(
          info.Env(),
          [group, tensors, root, turn]() mutable {
            group->InTurn(turn, [&] { group->Broadcast(tensors, root); });
            return tensors;
          },
          ArraysOf);
    });
  }

  // barrier() -> Promise<void>, settled when every rank has called it.
  Napi::Value Barrier(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      auto group = this->group("barrier");
      const uint64_t turn = group->ReserveTurn();
      return PromiseWorker<void>::Start(
          info.Env(), [group, turn] { group->InTurn(turn, [&] { group->Barrier(); }); });
    });
  }

  Napi::Value Reduce(const Napi::CallbackInfo& info, const char* what, dist::ReduceOp op) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      auto group = this->group(what);
      auto values = NumbersArg(info[0], "values");
      const uint64_t turn = group->ReserveTurn();
      return PromiseWorker<std::vector<double>>::Start(
          info.Env(),
          [group, values, turn, op] {
            return group->InTurn(turn, [&] { return group->AllreduceScalars(values, op); });
          },
          NumbersOf);
    });
  }

  // allreduceSum(values) / allreduceMax(values) -> Promise<number[]> (float64 on the wire).
  Napi::Value AllreduceSum(const Napi::CallbackInfo& info) {
    return Reduce(info, "allreduceSum", dist::ReduceOp::kSum);
  }
  Napi::Value AllreduceMax(const Napi::CallbackInfo& info) {
    return Reduce(info, "allreduceMax", dist::ReduceOp::kMax);
  }

  // destroy() -> Promise<void>: after the collectives already called, closes the connections.
  // Later calls throw. Local: it does not wait for the other ranks (barrier() first for that).
  Napi::Value Destroy(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      auto group = this->group("destroy");
      destroyed_ = true;
      return PromiseWorker<void>::Start(info.Env(), [group] { group->Destroy(); });
    });
  }

  std::shared_ptr<dist::Group> group_;
  bool destroyed_ = false;  // read and written on the JS thread only
};

DistGroupWrap* UnwrapWrap(const Napi::Value& value, const std::string& what) {
  if (!value.IsObject() || !value.As<Napi::Object>().CheckTypeTag(&kDistGroupTag)) {
    throw TypeError(what + ": expected a DistGroup (from DistGroup.connect)");
  }
  return DistGroupWrap::Unwrap(value.As<Napi::Object>());
}

}  // namespace

dist::Group* UnwrapGroup(Napi::Value value, const std::string& what) {
  return UnwrapWrap(value, what)->group(what).get();
}

std::shared_ptr<dist::Group> SharedGroup(Napi::Value value, const std::string& what) {
  return UnwrapWrap(value, what)->group(what);
}

void InitDist(Napi::Env env, Napi::Object exports) {
  exports.Set("DistGroup", DistGroupWrap::Define(env));
}

}  // namespace koner::napi
