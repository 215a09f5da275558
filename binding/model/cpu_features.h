// What the host CPU computes natively, read at run time (cpuid and the OS's saved register
// state), never assumed from the build machine: the choice of a reduced-precision path depends on
// it. KONER_CPU_DISABLE (read once, at first use; e.g. `avx512_bf16,amx_bf16`) hides features, so
// that the fallback of a machine without them can be exercised on one that has them.
#pragma once
#include <string>

namespace koner::model {

struct CpuFeatures {
  bool avx512 = false;      // AVX-512 F, BW, VL and DQ, with the OS saving the ZMM state
  bool avx512Bf16 = false;  // AVX512_BF16: bfloat16 dot products (vdpbf16ps)
  bool amxBf16 = false;     // AMX-BF16 tiles, with the OS saving the tile state
  bool avx512Vnni = false;  // AVX512_VNNI: int8 dot products (vpdpbusd)
  bool amxInt8 = false;     // AMX-INT8 tiles
};

const CpuFeatures& HostCpu();

// Empty when bfloat16 matrix products run natively here (AVX512_BF16 or AMX-BF16); otherwise
// why not, naming the missing features.
std::string Bf16Unsupported();

// Empty when int8 matrix products run natively here (AVX512_VNNI or AMX-INT8); otherwise why not.
std::string Int8Unsupported();

}  // namespace koner::model
