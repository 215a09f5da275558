// LibTorch's CPU allocator for koner's process: large tensors (128 KiB and up) come from a cache
// of page mappings kept by size class, smaller ones from LibTorch's default allocator.
//
// Why: a training step allocates and frees the same few hundred activation tensors every step,
// on the tensor thread and the OpenMP team. Freed to glibc, each block either stays in a
// per-thread arena (the process grew to 3.2 GB in four pretraining steps) or, with a low mmap
// threshold, goes back to the system and is faulted in again, page by page, at the next step:
// 4 million page faults in 25 pretraining steps, 5x slower than with the blocks kept. Here a
// freed block waits in its size class for the next tensor of that class, so a step reuses the
// last step's memory and the cache stays at the step's working set.
//
// Blocks come in eight size classes per power of two, and a request takes the smallest free block
// at most two classes larger (tensors whose size changes with each batch still find one). The
// cache keeps at most `limit` bytes of free blocks (1 GiB unless set), unmapping the
// longest-unused ones beyond it.
#pragma once
#include <cstddef>
#include <cstdint>

namespace koner::model {

struct CpuBlockCacheStats {
  std::size_t cachedBytes = 0;  // free blocks kept for reuse
  std::size_t inUseBytes = 0;   // blocks that back live tensors
  std::size_t limitBytes = 0;
  std::uint64_t hits = 0;    // allocations served from the cache
  std::uint64_t misses = 0;  // allocations that mapped new memory
};

// Makes the cache LibTorch's CPU allocator (at the addon's load); idempotent.
void InstallCpuBlockCache();

CpuBlockCacheStats CpuBlockCacheStatistics();

// Sets the most free bytes the cache keeps (0: none; every block is unmapped when freed).
void SetCpuBlockCacheLimit(std::size_t bytes);

// Unmaps every free block (model disposal: the process's memory drops at once).
void EmptyCpuBlockCache();

}  // namespace koner::model
