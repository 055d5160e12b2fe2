// What the kernel library's sources share: spike flags as bytes, the instruction-set check, and
// the transcendental functions of torch's own CPU kernels (VectorMath).
#pragma once

#include <ATen/ATen.h>
#include <ATen/Version.h>

#include <dlfcn.h>

#include <cstdint>
#include <type_traits>

namespace neuroloop_fused {

// Spike flags are read as the bytes (0 or 1) of torch's bool tensors: GCC vectorises a select on a
// uint8_t, not on a bool. Every helper is inlined into advance_networks, which is built twice: for
// AVX2 + FMA and for the baseline instruction set.
using Flag = uint8_t;
#define ALWAYS_INLINE inline __attribute__((always_inline))

inline bool has_avx2_fma() {
#if defined(__x86_64__) || defined(__i386__)
  // torch's own CPU kernels must run their vectorised flavour too (not so under ATEN_CPU_CAPABILITY=default):
  // the monitor's squares then round once, as their addcmul_ does
  static const bool supported = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                                at::get_cpu_capability() != "DEFAULT";
  return supported;
#else
  return false;
#endif
}

// The transcendental functions torch's CPU kernels use (the noise's Box-Muller transform, the
// causal Kuramoto estimate). A torch built with MKL (at::vml) evaluates log,
// sqrt, cos and sin of a contiguous float tensor with MKL's vector math library in its
// high-accuracy mode; its results are not always correctly rounded, so the same bits need the same
// calls. They are looked up in the library that holds torch's CPU kernels (the 64-bit-length
// variants, whatever MKL_INT is); where it has none, the noise stays with torch
// (noise.cpp: standard_normal_available) and the Kuramoto samples between kernel calls.
template <typename T>
using VmlFunction = void (*)(int64_t, const T*, T*, int64_t);
constexpr int64_t kVmlMode = 0x2 | 0x140000 | 0x100;  // VML_HA | VML_FTZDAZ_OFF | VML_ERRMODE_IGNORE, as at::vml

template <typename T>
struct VectorMath {
  VmlFunction<T> log, sqrt, cos, sin;
  bool available() const { return log && sqrt && cos && sin; }
};

inline void* torch_cpu_library() {
  Dl_info info;
  if (!dladdr(reinterpret_cast<void*>(&at::native::empty_cpu), &info)) return nullptr;
  return dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
}

template <typename T>
inline const VectorMath<T>& vector_math() {
  static const VectorMath<T> math = [] {
    void* library = torch_cpu_library();
    const char* names[4][2] = {{"vmsLn_64", "vmdLn_64"}, {"vmsSqrt_64", "vmdSqrt_64"}, {"vmsCos_64", "vmdCos_64"},
                               {"vmsSin_64", "vmdSin_64"}};
    VmlFunction<T> found[4] = {};
    for (int f = 0; f < 4 && library; ++f) {
      found[f] = reinterpret_cast<VmlFunction<T>>(dlsym(library, names[f][std::is_same_v<T, double>]));
    }
    return VectorMath<T>{found[0], found[1], found[2], found[3]};
  }();
  return math;
}

// TORCH_CHECK with the op's name
inline void require(bool ok, const char* what) { TORCH_CHECK(ok, "neuroloop_fused: ", what); }

}  // namespace neuroloop_fused
