// c10d behind koner::dist::Group. Compiled with USE_C10D_GLOO (and USE_C10D_NCCL on CUDA builds
// that found NCCL) when CMake's check of the headers passed: KONER_WITH_GLOO / KONER_WITH_NCCL.
#include "dist/group.h"

#include <c10/core/DeviceGuard.h>
#include <c10/util/Exception.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/Types.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>

#ifdef KONER_WITH_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef KONER_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <cstdlib>
#include <iomanip>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "dist/route.h"

// The one place where c10d's versions differ for us: from PyTorch 2.0 on, Gloo and NCCL are
// Backends behind a dispatching ProcessGroup; in 1.13 they are ProcessGroups themselves. Both
// offer the same allreduce/broadcast(tensors, opts) -> Work, which is all this file calls.
#if TORCH_VERSION_MAJOR >= 2
#include <torch/csrc/distributed/c10d/Backend.hpp>
using Comm = c10d::Backend;
#else
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
using Comm = c10d::ProcessGroup;
#endif
// NCCL's blocking wait makes Work::wait throw at the timeout (the alternative is a watchdog that
// kills the process); renamed in 2.2.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 2)
constexpr const char* kNcclBlockingWait = "TORCH_NCCL_BLOCKING_WAIT";
#else
constexpr const char* kNcclBlockingWait = "NCCL_BLOCKING_WAIT";
#endif

namespace koner::dist {
namespace {

std::string MessageOf(const std::exception& e) {
  if (auto* c10 = dynamic_cast<const c10::Error*>(&e)) return c10->what_without_backtrace();
  return e.what();
}

std::string Seconds(std::chrono::steady_clock::duration d) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(1)
      << std::chrono::duration_cast<std::chrono::duration<double>>(d).count() << " s";
  return out.str();
}

std::string Seconds(std::chrono::milliseconds d) {
  return Seconds(std::chrono::duration_cast<std::chrono::steady_clock::duration>(d));
}

bool LooksLikeTimeout(const std::string& message) {
  for (const char* needle : {"imed out", "imeout", "timed-out"}) {
    if (message.find(needle) != std::string::npos) return true;
  }
  return false;
}

c10d::ReduceOp ToC10d(ReduceOp op) {
  switch (op) {
    case ReduceOp::kMax:
      return c10d::ReduceOp::MAX;
    case ReduceOp::kMin:
      return c10d::ReduceOp::MIN;
    default:
      return c10d::ReduceOp::SUM;
  }
}

#ifdef KONER_WITH_GLOO
// Gloo listens on one local address, which peers must reach: loopback for a one-machine job
// (nothing leaves the host), otherwise the address on the route to the master (the hostname may
// resolve to 127.0.1.1). GLOO_SOCKET_IFNAME still wins, as in torch.distributed.
std::shared_ptr<::gloo::transport::Device> GlooDevice(const GroupOptions& options) {
  using PG = c10d::ProcessGroupGloo;
  const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
  if (ifname && *ifname) return PG::createDeviceForInterface(ifname);
  if (IsLoopback(options.masterAddr)) return PG::createDeviceForHostname("127.0.0.1");
  const std::string local = LocalAddressToward(options.masterAddr, options.masterPort);
  return local.empty() ? PG::createDefaultDevice() : PG::createDeviceForHostname(local);
}
#endif

}  // namespace

struct Group::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<Comm> comm;

  // Waits a little longer than the backend's own timeout, so that its more specific error
  // (which operation, which peer) is the one reported when both would fire.
  void Wait(const c10::intrusive_ptr<c10d::Work>& work, std::chrono::milliseconds timeout) {
    work->wait(timeout + std::chrono::milliseconds(2000));
  }
};

bool Group::BackendAvailable(const std::string& backend, std::string* why) {
  auto fail = [&](const std::string& reason) {
    if (why) *why = reason;
    return false;
  };
  if (backend == "gloo") {
#ifdef KONER_WITH_GLOO
    return true;
#else
    return fail("this build of koner has no Gloo (its headers were not found at build time)");
#endif
  }
  if (backend == "nccl") {
#if defined(KONER_WITH_NCCL) && defined(KONER_WITH_CUDA)
    if (torch::cuda::device_count() == 0) return fail("no CUDA device is visible");
    return true;
#else
    return fail(
        "this build of koner has no NCCL (it needs a CUDA LibTorch and nccl.h at build time); "
        "use backend 'gloo'");
#endif
  }
  return fail("unknown backend (use 'gloo' or 'nccl')");
}

void Group::Validate(const GroupOptions& o) {
  auto bad = [](const std::string& message) { throw std::invalid_argument(message); };
  if (o.worldSize < 1) bad("worldSize: must be at least 1, got " + std::to_string(o.worldSize));
  if (o.rank < 0 || o.rank >= o.worldSize) {
    bad("rank: must be from 0 to worldSize - 1 = " + std::to_string(o.worldSize - 1) + ", got " +
        std::to_string(o.rank));
  }
  if (o.masterAddr.empty()) bad("masterAddr: must not be empty");
  if (o.masterPort < 1 || o.masterPort > 65535) {
    bad("masterPort: must be from 1 to 65535, got " + std::to_string(o.masterPort));
  }
  if (o.timeout.count() < 1) bad("timeout: must be at least 1 ms");
  std::string why;
  if (o.backend != "gloo" && o.backend != "nccl") {
    bad("backend: must be 'gloo' or 'nccl', got '" + o.backend + "'");
  }
  if (!BackendAvailable(o.backend, &why)) {
    bad("backend: '" + o.backend + "' is unavailable: " + why);
  }
  if (o.backend == "nccl" && o.cudaDevice >= static_cast<int>(torch::cuda::device_count())) {
    bad("cudaDevice: " + std::to_string(o.cudaDevice) + " is not among the " +
        std::to_string(torch::cuda::device_count()) + " visible CUDA devices");
  }
}

Group::Group(const GroupOptions& options) : options_(options), impl_(std::make_unique<Impl>()) {
  Validate(options_);
  if (options_.backend == "nccl") {
    const int count = static_cast<int>(torch::cuda::device_count());
    const int index = options_.cudaDevice >= 0 ? options_.cudaDevice : options_.rank % count;
    device_ = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  const std::string where = options_.masterAddr + ":" + std::to_string(options_.masterPort);
  const std::string who =
      "rank " + std::to_string(options_.rank) + " of " + std::to_string(options_.worldSize);
  const auto start = std::chrono::steady_clock::now();

  // Rendezvous: rank 0 hosts the store and waits for every rank to connect; the others retry
  // connecting until the timeout, so start order does not matter.
  try {
    c10d::TCPStoreOptions store;
    store.port = static_cast<std::uint16_t>(options_.masterPort);
    store.isServer = options_.rank == 0;
    store.numWorkers = static_cast<std::size_t>(options_.worldSize);
    store.waitWorkers = true;
    store.timeout = options_.timeout;
    impl_->store = c10::make_intrusive<c10d::TCPStore>(options_.masterAddr, store);
  } catch (const std::exception& e) {
    const std::string role = options_.rank == 0
                                 ? "could not host the rendezvous store on " + where +
                                       " (is the port free, and are all " +
                                       std::to_string(options_.worldSize) + " workers started?)"
                                 : "could not reach the rendezvous store at " + where +
                                       " (is rank 0 running, and are the master address and port "
                                       "right?)";
    throw std::runtime_error("koner dist: " + who + " " + role + " (gave up after " +
                             Seconds(std::chrono::steady_clock::now() - start) +
                             "): " + MessageOf(e));
  }

  try {
    if (options_.backend == "gloo") {
#ifdef KONER_WITH_GLOO
      auto gloo = c10d::ProcessGroupGloo::Options::create(options_.timeout);
      gloo->devices.push_back(GlooDevice(options_));
      impl_->comm = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, options_.rank,
                                                                options_.worldSize, gloo);
#endif
    } else {
#ifdef KONER_WITH_NCCL
      // Read by the constructor; a value the user set wins.
      setenv(kNcclBlockingWait, "1", /*overwrite=*/0);
      c10::OptionalDeviceGuard guard(device_);
      auto nccl = c10d::ProcessGroupNCCL::Options::create();
      nccl->timeout = options_.timeout;
      impl_->comm = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl_->store, options_.rank,
                                                                options_.worldSize, nccl);
#endif
    }
  } catch (const std::exception& e) {
    throw std::runtime_error("koner dist: " + who + " could not connect to all its peers over " +
                             options_.backend + " (are all " + std::to_string(options_.worldSize) +
                             " workers started, with the store at " + where + "? gave up after " +
                             Seconds(std::chrono::steady_clock::now() - start) +
                             "): " + MessageOf(e));
  }
  if (!impl_->comm) throw std::logic_error("koner dist: backend " + options_.backend + " missing");
}

Group::~Group() = default;

// ---- turns ----------------------------------------------------------------------------------

uint64_t Group::ReserveTurn() {
  std::lock_guard<std::mutex> lock(turnMutex_);
  return nextTurn_++;
}

Group::TurnGuard::TurnGuard(Group& group, uint64_t turn) : group_(group), owned_(true) {
  std::unique_lock<std::mutex> lock(group_.turnMutex_);
  group_.turnChanged_.wait(lock, [&] { return group_.serving_ == turn; });
  group_.holder_ = std::this_thread::get_id();
}

Group::TurnGuard::~TurnGuard() {
  if (!owned_) return;
  {
    std::lock_guard<std::mutex> lock(group_.turnMutex_);
    group_.holder_ = std::thread::id();
    ++group_.serving_;
  }
  group_.turnChanged_.notify_all();
}

// Runs a collective in the caller's turn (inside InTurn) or in the next free one, turning any
// failure into one message that says what likely happened. After a failure the group is not
// trusted again: peers may be mid-collective, and Gloo's connections are closed.
template <typename F>
void Group::Collective(const char* what, F&& body) {
  bool inTurn;
  {
    std::lock_guard<std::mutex> lock(turnMutex_);
    inTurn = holder_ == std::this_thread::get_id();
  }
  std::optional<TurnGuard> turn;
  if (!inTurn) turn.emplace(*this, ReserveTurn());

  const std::string who =
      "rank " + std::to_string(options_.rank) + " of " + std::to_string(options_.worldSize);
  if (!impl_->comm)
    throw std::runtime_error("koner dist: " + std::string(what) + " on " + who +
                             ": the group was destroyed");
  if (!failure_.empty()) {
    throw std::runtime_error("koner dist: " + std::string(what) + " on " + who +
                             ": the group failed earlier and cannot be used again (" + failure_ +
                             ")");
  }
  c10::OptionalDeviceGuard guard;
  if (device_.is_cuda()) guard.reset_device(device_);
  const auto start = std::chrono::steady_clock::now();
  try {
    body();
  } catch (const std::exception& e) {
    const auto elapsed = std::chrono::steady_clock::now() - start;
    const std::string cause = MessageOf(e);
    std::string message = "koner dist: " + std::string(what) + " on " + who;
    if (LooksLikeTimeout(cause) || elapsed >= options_.timeout) {
      message += " got no answer within " + Seconds(options_.timeout) +
                 ": another worker died, hung or the network failed (" + cause + ")";
    } else {
      message += " failed after " + Seconds(elapsed) +
                 ": another worker died or the network failed (" + cause + ")";
    }
    failure_ = message;
    throw std::runtime_error(message);
  }
}

// ---- collectives ----------------------------------------------------------------------------

namespace {

// Argument errors are the caller's, not the network's: checked before a collective starts, so
// they neither read as a dead peer nor spoil the group.
void CheckTensors(const char* what, const std::vector<torch::Tensor>& tensors, int64_t bucketBytes,
                  bool floatingOnly) {
  if (bucketBytes < 1) {
    throw std::invalid_argument(std::string(what) + ": bucketBytes must be positive");
  }
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (!tensors[i].defined()) {
      throw std::invalid_argument(std::string(what) + ": tensor " + std::to_string(i) +
                                  " is undefined");
    }
    if (floatingOnly && !tensors[i].is_floating_point()) {
      throw std::invalid_argument(std::string(what) + ": tensor " + std::to_string(i) +
                                  " is not floating point");
    }
  }
}

}  // namespace

// Cuts `tensors` into runs of one dtype of about `bucketBytes` each (a larger tensor is a run of
// its own), flattens each run into one buffer on device_, runs `run` on it, and copies the result
// back into the tensors. One collective per bucket amortises the per-call latency that dominates
// with BERT's ~200 parameter tensors, while bounding the extra memory to one bucket.
void Group::Bucketed(std::vector<torch::Tensor>& tensors, int64_t bucketBytes,
                     const std::function<void(torch::Tensor&)>& run, bool copyBack) {
  size_t i = 0;
  while (i < tensors.size()) {
    const size_t first = i;
    const auto dtype = tensors[i].scalar_type();
    int64_t bytes = tensors[i].numel() * tensors[i].element_size();
    for (++i; i < tensors.size() && tensors[i].scalar_type() == dtype; ++i) {
      const int64_t more = tensors[i].numel() * tensors[i].element_size();
      if (bytes + more > bucketBytes) break;
      bytes += more;
    }
    std::vector<torch::Tensor> parts;
    parts.reserve(i - first);
    for (size_t j = first; j < i; ++j) parts.push_back(tensors[j].detach().reshape(-1).to(device_));
    // cat always allocates: the collective never writes into a caller's tensor directly.
    torch::Tensor flat = torch::cat(parts);
    // Equal shapes on every rank give equal buckets, so an empty one is skipped everywhere.
    if (flat.numel() == 0) continue;
    run(flat);
    if (!copyBack) continue;
    torch::NoGradGuard noGrad;
    int64_t offset = 0;
    for (size_t j = first; j < i; ++j) {
      const int64_t n = tensors[j].numel();
      tensors[j].copy_(flat.narrow(0, offset, n).view(tensors[j].sizes()));
      offset += n;
    }
  }
}

void Group::AllreduceMean(std::vector<torch::Tensor>& tensors, int64_t bucketBytes) {
  CheckTensors("allreduceMean", tensors, bucketBytes, /*floatingOnly=*/true);
  Collective("allreduce", [&] {
    Bucketed(
        tensors, bucketBytes,
        [&](torch::Tensor& flat) {
          std::vector<torch::Tensor> io{flat};
          c10d::AllreduceOptions opts;
          opts.reduceOp = c10d::ReduceOp::SUM;
          opts.timeout = options_.timeout;
          impl_->Wait(impl_->comm->allreduce(io, opts), options_.timeout);
          flat.div_(options_.worldSize);
        },
        /*copyBack=*/true);
  });
}

void Group::Broadcast(std::vector<torch::Tensor>& tensors, int root, int64_t bucketBytes) {
  if (root < 0 || root >= options_.worldSize) {
    throw std::invalid_argument("broadcast: root must be from 0 to " +
                                std::to_string(options_.worldSize - 1) + ", got " +
                                std::to_string(root));
  }
  CheckTensors("broadcast", tensors, bucketBytes, /*floatingOnly=*/false);
  Collective("broadcast", [&] {
    Bucketed(
        tensors, bucketBytes,
        [&](torch::Tensor& flat) {
          std::vector<torch::Tensor> io{flat};
          c10d::BroadcastOptions opts;
          opts.rootRank = root;
          opts.timeout = options_.timeout;
          impl_->Wait(impl_->comm->broadcast(io, opts), options_.timeout);
        },
        /*copyBack=*/options_.rank != root);
  });
}

// A one-element allreduce: nobody returns before everyone has arrived. Unlike the backends' own
// barrier it needs no device guess (NCCL) and fails the same way as every other collective.
void Group::Barrier() {
  Collective("barrier", [&] {
    std::vector<torch::Tensor> io{torch::zeros({1}, torch::TensorOptions().device(device_))};
    c10d::AllreduceOptions opts;
    opts.timeout = options_.timeout;
    impl_->Wait(impl_->comm->allreduce(io, opts), options_.timeout);
  });
}

std::vector<double> Group::AllreduceScalars(const std::vector<double>& values, ReduceOp op) {
  std::vector<double> out(values);
  if (values.empty()) return out;
  Collective("allreduce", [&] {
    auto host = torch::from_blob(out.data(), {static_cast<int64_t>(out.size())},
                                 torch::TensorOptions().dtype(torch::kFloat64));
    std::vector<torch::Tensor> io{host.to(device_, /*non_blocking=*/false, /*copy=*/true)};
    c10d::AllreduceOptions opts;
    opts.reduceOp = ToC10d(op);
    opts.timeout = options_.timeout;
    impl_->Wait(impl_->comm->allreduce(io, opts), options_.timeout);
    host.copy_(io[0].to(torch::kCPU));
  });
  return out;
}

void Group::Destroy() {
  std::optional<TurnGuard> turn;
  {
    std::lock_guard<std::mutex> lock(turnMutex_);
    if (holder_ == std::this_thread::get_id()) throw std::logic_error("Destroy inside a turn");
  }
  turn.emplace(*this, ReserveTurn());
  // The backend before the store it was built on.
  impl_->comm.reset();
  impl_->store.reset();
}

}  // namespace koner::dist
