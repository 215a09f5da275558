#include "napi/threads.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <thread>

namespace koner::napi {
namespace {

int DefaultThreads() { return std::max(1u, std::thread::hardware_concurrency()); }

std::atomic<int> desired{DefaultThreads()};
thread_local int applied = 0;

}  // namespace

void SetDesiredThreads(int n) {
  desired.store(n);
  ApplyThreads();
}

int DesiredThreads() { return desired.load(); }

void ApplyThreads() {
  const int n = desired.load();
  if (applied != n) {
    at::set_num_threads(n);
    applied = n;
  }
}

}  // namespace koner::napi
