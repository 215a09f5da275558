// A data-parallel process group over c10d: one process per device, meeting through a TCPStore
// hosted by global rank 0, talking over Gloo (CPU) or NCCL (CUDA). Collectives are bucketed
// (one call per flat buffer, not one per tensor) and never wait forever: each waits at most the
// group's timeout, and a dead or silent peer surfaces as a std::runtime_error that says so.
//
// The c10d types stay in group.cc: they need USE_C10D_* defines and, on CUDA, NCCL headers that
// no other translation unit should depend on.
#pragma once
#include <torch/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace koner::dist {

struct GroupOptions {
  int rank = 0;
  int worldSize = 1;
  // Where global rank 0 hosts the TCPStore (and where the others find it).
  std::string masterAddr = "127.0.0.1";
  int masterPort = 29500;
  // "gloo" (CPU tensors; CUDA tensors are staged through host memory) or "nccl" (CUDA).
  std::string backend = "gloo";
  // Bounds the rendezvous and every collective. Training waits in collectives while rank 0
  // evaluates and saves, so the default is generous (as torch.distributed's 30 minutes).
  std::chrono::milliseconds timeout{30 * 60 * 1000};
  // NCCL only: the CUDA device this rank uses; -1 picks rank % device count.
  int cudaDevice = -1;
};

enum class ReduceOp { kSum, kMax, kMin };

class Group {
 public:
  static constexpr int64_t kDefaultBucketBytes = 25 << 20;  // as DistributedDataParallel

  // Validates the options (each error names its field), then rendezvous: blocks until every rank
  // has joined or the timeout passes.
  explicit Group(const GroupOptions& options);
  ~Group();
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;

  // Whether this build can run a backend ("gloo", "nccl"); `why` says what is missing.
  static bool BackendAvailable(const std::string& backend, std::string* why = nullptr);
  // Checks options without connecting; throws std::invalid_argument naming the field.
  static void Validate(const GroupOptions& options);

  int rank() const { return options_.rank; }
  int worldSize() const { return options_.worldSize; }
  const std::string& backend() const { return options_.backend; }
  std::chrono::milliseconds timeout() const { return options_.timeout; }
  // Where the flat buffers live: the CPU for Gloo, this rank's CUDA device for NCCL.
  torch::Device device() const { return device_; }

  // Every rank ends with the element-wise mean over ranks, in place. Floating tensors only;
  // consecutive tensors of one dtype share flat buffers of about `bucketBytes`.
  void AllreduceMean(std::vector<torch::Tensor>& tensors,
                     int64_t bucketBytes = kDefaultBucketBytes);
  // Every rank ends with `root`'s values, in place (bucketed as above).
  void Broadcast(std::vector<torch::Tensor>& tensors, int root = 0,
                 int64_t bucketBytes = kDefaultBucketBytes);
  // Returns when every rank has called it.
  void Barrier();
  // Reduces doubles across ranks (float64 on the wire): loss sums, example counts.
  std::vector<double> AllreduceScalars(const std::vector<double>& values, ReduceOp op);
  double AllreduceScalar(double value, ReduceOp op) {
    return AllreduceScalars({value}, op).front();
  }
  // Releases the connections (after collectives in flight). Later calls throw.
  void Destroy();

  // Collectives must start in the same order on every rank. Callers that run collectives on
  // several threads (Promise workers) reserve a turn where the order is known (the JS thread)
  // and run in it; calls made outside a turn take the next free one.
  uint64_t ReserveTurn();
  template <typename F>
  auto InTurn(uint64_t turn, F&& body) -> decltype(body()) {
    TurnGuard guard(*this, turn);
    return body();
  }

 private:
  struct Impl;
  class TurnGuard {
   public:
    TurnGuard(Group& group, uint64_t turn);
    ~TurnGuard();

   private:
    Group& group_;
    bool owned_;
  };

  template <typename F>
  void Collective(const char* what, F&& body);
  void Bucketed(std::vector<torch::Tensor>& tensors, int64_t bucketBytes,
                const std::function<void(torch::Tensor&)>& run, bool copyBack);

  GroupOptions options_;
  torch::Device device_{torch::kCPU};
  std::unique_ptr<Impl> impl_;
  std::string failure_;  // set once a collective failed: the group cannot be trusted after it

  std::mutex turnMutex_;
  std::condition_variable turnChanged_;
  uint64_t nextTurn_ = 0, serving_ = 0;
  std::thread::id holder_;
};

}  // namespace koner::dist
