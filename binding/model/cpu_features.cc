#include "model/cpu_features.h"

#include <cstdint>
#include <cstdlib>
#include <sstream>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#define KONER_X86 1
#endif

namespace koner::model {
namespace {

#if KONER_X86
struct Regs {
  uint32_t a = 0, b = 0, c = 0, d = 0;
};

Regs Cpuid(uint32_t leaf, uint32_t subleaf) {
  Regs r;
  if (!__get_cpuid_count(leaf, subleaf, &r.a, &r.b, &r.c, &r.d)) return {};
  return r;
}

uint64_t Xcr0() {
  uint32_t lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

bool Bit(uint32_t word, int bit) { return (word >> bit) & 1u; }

CpuFeatures Detect() {
  CpuFeatures f;
  const Regs l1 = Cpuid(1, 0);
  if (!Bit(l1.c, 27)) return f;  // no OSXSAVE: no xgetbv, no AVX state
  const uint64_t xcr0 = Xcr0();
  const bool zmmState = (xcr0 & 0xe6) == 0xe6;  // SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM
  const bool tileState = (xcr0 & (3ull << 17)) == (3ull << 17);  // XTILECFG, XTILEDATA
  const Regs l7 = Cpuid(7, 0), l7s1 = Cpuid(7, 1);
  f.avx512 = zmmState && Bit(l7.b, 16) && Bit(l7.b, 17) && Bit(l7.b, 30) && Bit(l7.b, 31);
  f.avx512Bf16 = f.avx512 && Bit(l7s1.a, 5);
  f.avx512Vnni = f.avx512 && Bit(l7.c, 11);
  const bool amxTile = tileState && Bit(l7.d, 24);
  f.amxBf16 = amxTile && Bit(l7.d, 22);
  f.amxInt8 = amxTile && Bit(l7.d, 25);
  return f;
}
#else
CpuFeatures Detect() { return {}; }
#endif

// Clears the features KONER_CPU_DISABLE lists (comma-separated names as in /proc/cpuinfo).
CpuFeatures Masked(CpuFeatures f) {
  const char* env = std::getenv("KONER_CPU_DISABLE");
  if (!env) return f;
  std::stringstream list(env);
  std::string name;
  while (std::getline(list, name, ',')) {
    if (name == "avx512f") f = {};
    if (name == "avx512_bf16") f.avx512Bf16 = false;
    if (name == "amx_bf16") f.amxBf16 = false;
    if (name == "avx512_vnni") f.avx512Vnni = false;
    if (name == "amx_int8") f.amxInt8 = false;
  }
  return f;
}

}  // namespace

const CpuFeatures& HostCpu() {
  static const CpuFeatures features = Masked(Detect());
  return features;
}

std::string Bf16Unsupported() {
  const auto& f = HostCpu();
  if (f.avx512Bf16 || f.amxBf16) return {};
  return "this CPU has neither AVX512_BF16 nor AMX-BF16 (bfloat16 matrix products would be "
         "emulated, slower than float32)";
}

std::string Int8Unsupported() {
  const auto& f = HostCpu();
  if (f.avx512Vnni || f.amxInt8) return {};
  return "this CPU has neither AVX512_VNNI nor AMX-INT8 (int8 matrix products would be "
         "emulated)";
}

}  // namespace koner::model
