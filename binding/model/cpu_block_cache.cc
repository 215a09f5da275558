#include "model/cpu_block_cache.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/util/Exception.h>
#include <sys/mman.h>
#include <torch/version.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <vector>

namespace koner::model {
namespace {

// Every block starts with a header that says how it was obtained, so that one deleter (and
// LibTorch's raw_deallocate) frees any block. 64 bytes keep the tensor data at LibTorch's
// alignment.
constexpr std::size_t kHeader = 64;
struct Header {
  std::size_t mapped;  // bytes of the block's mapping; 0 for a block from malloc
};
constexpr std::size_t kSmallest = 128 * 1024;  // below: malloc, whose bins serve small blocks well
constexpr std::size_t kPage = 4096;

// Eight classes per power of two, each a multiple of the page.
std::size_t SizeClass(std::size_t bytes) {
  const int top = 63 - __builtin_clzll(bytes);
  const std::size_t step = std::max<std::size_t>(std::size_t{1} << (top - 3), kPage);
  return (bytes + step - 1) / step * step;
}

void* Map(std::size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

void Unmap(const std::vector<std::pair<void*, std::size_t>>& blocks) {
  for (const auto& [base, bytes] : blocks) munmap(base, bytes);
}

constexpr std::size_t kDefaultLimit = std::size_t{1} << 30;

// Allocator's allocate() lost its const in PyTorch 2.3, which also made copy_data pure virtual.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
#define KONER_ALLOCATE_CONST
#define KONER_ALLOCATOR_COPY_DATA
#else
#define KONER_ALLOCATE_CONST const
#endif

class CpuBlockCache final : public c10::Allocator {
 public:
  c10::DataPtr allocate(std::size_t n) KONER_ALLOCATE_CONST override {
    void* data = n + kHeader < kSmallest ? Small(n) : Large(n);
    return {data, data, &Release, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &Release; }

#ifdef KONER_ALLOCATOR_COPY_DATA
  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }
#endif

  CpuBlockCacheStats Stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

  void SetLimit(std::size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stats_.limitBytes = bytes;
    }
    TrimTo(bytes);
  }

  void Empty() const { TrimTo(0); }

  static CpuBlockCache& Instance() {
    // Never destroyed: tensors may be freed during the process's exit, after static destructors.
    static auto* cache = new CpuBlockCache();
    return *cache;
  }

 private:
  CpuBlockCache() { stats_.limitBytes = kDefaultLimit; }

  static void* Small(std::size_t n) {
    void* base = nullptr;
    TORCH_CHECK(posix_memalign(&base, kHeader, n + kHeader) == 0,
                "not enough memory: you tried to allocate ", n, " bytes");
    static_cast<Header*>(base)->mapped = 0;
    return static_cast<char*>(base) + kHeader;
  }

  void* Large(std::size_t n) const {
    const std::size_t bytes = SizeClass(n + kHeader);
    void* base = Take(bytes);
    if (!base) {
      base = Map(bytes);
      if (!base) {
        Empty();  // memory the cache holds may be what the system lacks
        base = Map(bytes);
      }
      TORCH_CHECK(base, "not enough memory: you tried to allocate ", n, " bytes");
      static_cast<Header*>(base)->mapped = bytes;
      std::lock_guard<std::mutex> lock(mutex_);
      stats_.inUseBytes += bytes;
    }
    return static_cast<char*>(base) + kHeader;
  }

  // The smallest free block that fits and wastes at most a quarter (two classes): the sizes of
  // some tensors change with every batch (the masked pieces, the longest sentence), and exact
  // classes would keep a block for each. Null after counting the miss.
  void* Take(std::size_t bytes) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = free_.lower_bound(bytes);
    if (it == free_.end() || it->first > bytes + bytes / 4) {
      ++stats_.misses;
      return nullptr;
    }
    void* base = it->second.base;  // its header keeps the block's own size
    const std::size_t size = it->first;
    free_.erase(it);
    ++stats_.hits;
    stats_.cachedBytes -= size;
    stats_.inUseBytes += size;
    return base;
  }

  // Keeps the block, then unmaps the longest-unused blocks while the cache holds more than the
  // limit.
  void Put(void* base, std::size_t bytes) const {
    std::vector<std::pair<void*, std::size_t>> released;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stats_.inUseBytes -= bytes;
      free_.emplace(bytes, Free{base, ++clock_});
      stats_.cachedBytes += bytes;
      released = ShrinkTo(stats_.limitBytes);
    }
    Unmap(released);
  }

  void TrimTo(std::size_t bytes) const {
    std::vector<std::pair<void*, std::size_t>> released;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      released = ShrinkTo(bytes);
    }
    Unmap(released);
  }

  // Takes the longest-unused free blocks out until the cache holds at most `bytes`; the caller
  // unmaps them outside the lock. A linear scan: the cache holds a few thousand blocks at most, and
  // it runs only when the cache is full.
  std::vector<std::pair<void*, std::size_t>> ShrinkTo(std::size_t bytes) const {
    std::vector<std::pair<void*, std::size_t>> released;
    while (stats_.cachedBytes > bytes) {
      auto oldest = free_.begin();
      for (auto it = free_.begin(); it != free_.end(); ++it) {
        if (it->second.freedAt < oldest->second.freedAt) oldest = it;
      }
      released.emplace_back(oldest->second.base, oldest->first);
      stats_.cachedBytes -= oldest->first;
      free_.erase(oldest);
    }
    return released;
  }

  static void Release(void* data) {
    if (!data) return;
    void* base = static_cast<char*>(data) - kHeader;
    const std::size_t mapped = static_cast<Header*>(base)->mapped;
    if (mapped == 0) {
      std::free(base);
    } else {
      Instance().Put(base, mapped);
    }
  }

  // Mutable: allocate() is const before PyTorch 2.3.
  mutable std::mutex mutex_;
  struct Free {
    void* base;
    std::uint64_t freedAt;  // clock_ when freed
  };
  mutable std::multimap<std::size_t, Free> free_;  // by block size
  mutable std::uint64_t clock_ = 0;
  mutable CpuBlockCacheStats stats_;
};

}  // namespace

void InstallCpuBlockCache() {
  static std::once_flag once;
  // Priority 1: above LibTorch's own registration (0), so a later default registration cannot
  // take the place back.
  std::call_once(once, [] { c10::SetCPUAllocator(&CpuBlockCache::Instance(), 1); });
}

CpuBlockCacheStats CpuBlockCacheStatistics() { return CpuBlockCache::Instance().Stats(); }

void SetCpuBlockCacheLimit(std::size_t bytes) { CpuBlockCache::Instance().SetLimit(bytes); }

void EmptyCpuBlockCache() { CpuBlockCache::Instance().Empty(); }

}  // namespace koner::model
