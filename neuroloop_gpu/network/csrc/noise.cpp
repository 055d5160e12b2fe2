// The membrane noise of the fused backend: rng.box_muller_uniforms and rng.standard_normal for rows of
// (seed, c1, c2), with the same bits as the torch versions (see common.h for the vector math).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <tuple>
#include <type_traits>
#include <vector>

#include "common.h"

namespace {

using namespace neuroloop_fused;

bool standard_normal_available(at::ScalarType dtype) {
  return dtype == at::kDouble ? vector_math<double>().available() : vector_math<float>().available();
}

// rng.box_muller_uniforms for rows of (seed, c1, c2): Philox4x32-10 on 32-bit words (the torch
// version emulates the same arithmetic on int64), then the exact word-to-uniform maps of
// rng.words_to_uniform. Integer ops and exact conversions only: the same bits as torch's.
constexpr uint32_t kMult0 = 0xD2511F53u, kMult1 = 0xCD9E8D57u, kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;

template <typename T>
inline T word_to_uniform(uint32_t word);
template <>
inline float word_to_uniform<float>(uint32_t word) {  // top 23 bits: 1 - 2**-24 at most
  return (static_cast<float>(word >> 9) + 0.5f) * 0x1p-23f;
}
template <>
inline double word_to_uniform<double>(uint32_t word) {
  return (static_cast<double>(word) + 0.5) * 0x1p-32;
}

struct RoundKeys {  // the Philox key of each round
  uint32_t k0[10], k1[10];
  explicit RoundKeys(uint64_t seed) {
    k0[0] = static_cast<uint32_t>(seed);
    k1[0] = static_cast<uint32_t>(seed >> 32);
    for (int round = 1; round < 10; ++round) {
      k0[round] = k0[round - 1] + kWeyl0;
      k1[round] = k1[round - 1] + kWeyl1;
    }
  }
};

// Blocks [first, blocks) of one row, one block at a time.
template <typename T>
ALWAYS_INLINE void philox_row(const RoundKeys& key, uint32_t c1, uint32_t c2, uint32_t stream, int64_t first,
                              int64_t blocks, T* __restrict__ radius, T* __restrict__ angle) {
  for (int64_t block = first; block < blocks; ++block) {
    uint32_t x0 = static_cast<uint32_t>(block), x1 = c1, x2 = c2, x3 = stream;
#pragma GCC unroll 10
    for (int round = 0; round < 10; ++round) {
      const uint64_t p0 = static_cast<uint64_t>(x0) * kMult0, p1 = static_cast<uint64_t>(x2) * kMult1;
      x0 = static_cast<uint32_t>(p1 >> 32) ^ x1 ^ key.k0[round];
      x2 = static_cast<uint32_t>(p0 >> 32) ^ x3 ^ key.k1[round];
      x1 = static_cast<uint32_t>(p1);
      x3 = static_cast<uint32_t>(p0);
    }
    // radius uniforms from lanes 0 and 2, angle uniforms from lanes 1 and 3
    radius[2 * block] = word_to_uniform<T>(x0);
    radius[2 * block + 1] = word_to_uniform<T>(x2);
    angle[2 * block] = word_to_uniform<T>(x1);
    angle[2 * block + 1] = word_to_uniform<T>(x3);
  }
}

template <typename T>
void philox_rows_baseline(const int64_t* seed, const int64_t* c1, const int64_t* c2, uint32_t stream, int64_t rows,
                          int64_t blocks, T* radius, T* angle) {
  for (int64_t row = 0; row < rows; ++row) {
    philox_row<T>(RoundKeys(static_cast<uint64_t>(seed[row])), static_cast<uint32_t>(c1[row]),
                  static_cast<uint32_t>(c2[row]), stream, 0, blocks, radius + row * 2 * blocks,
                  angle + row * 2 * blocks);
  }
}

#if defined(__x86_64__) || defined(__i386__)
// Eight blocks per iteration in AVX2 registers (float32 uniforms), the same words as philox_row:
// vpmuludq forms the 64-bit products of the even 32-bit lanes, the odd lanes go through a shift,
// and blends put the low and high words of all eight back into lanes.
__attribute__((target("avx2"), always_inline)) inline void products(__m256i x, __m256i multiplier, __m256i& high,
                                                                    __m256i& low) {
  const __m256i even = _mm256_mul_epu32(x, multiplier);
  const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(x, 32), multiplier);
  low = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
  high = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}

__attribute__((target("avx2"), always_inline)) inline void store_pairs(__m256i first, __m256i second, float* out) {
  // word_to_uniform<float> of eight blocks' two words, stored as (first, second) pairs in block order
  const __m256 half = _mm256_set1_ps(0.5f), scale = _mm256_set1_ps(0x1p-23f);
  const __m256 a = _mm256_mul_ps(_mm256_add_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(first, 9)), half), scale);
  const __m256 b = _mm256_mul_ps(_mm256_add_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(second, 9)), half), scale);
  const __m256 low = _mm256_unpacklo_ps(a, b), high = _mm256_unpackhi_ps(a, b);
  _mm256_storeu_ps(out, _mm256_permute2f128_ps(low, high, 0x20));
  _mm256_storeu_ps(out + 8, _mm256_permute2f128_ps(low, high, 0x31));
}

__attribute__((target("avx2"))) void philox_rows_avx2(const int64_t* seed, const int64_t* c1, const int64_t* c2,
                                                      uint32_t stream, int64_t rows, int64_t blocks, float* radius,
                                                      float* angle) {
  const __m256i m0 = _mm256_set1_epi32(static_cast<int>(kMult0)), m1 = _mm256_set1_epi32(static_cast<int>(kMult1));
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (int64_t row = 0; row < rows; ++row) {
    const RoundKeys key(static_cast<uint64_t>(seed[row]));
    float* row_radius = radius + row * 2 * blocks;
    float* row_angle = angle + row * 2 * blocks;
    int64_t block = 0;
    for (; block + 8 <= blocks; block += 8) {
      __m256i x0 = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(block)), lanes);
      __m256i x1 = _mm256_set1_epi32(static_cast<int>(c1[row])), x2 = _mm256_set1_epi32(static_cast<int>(c2[row]));
      __m256i x3 = _mm256_set1_epi32(static_cast<int>(stream));
      for (int round = 0; round < 10; ++round) {
        __m256i high0, low0, high1, low1;
        products(x0, m0, high0, low0);
        products(x2, m1, high1, low1);
        x0 = _mm256_xor_si256(_mm256_xor_si256(high1, x1), _mm256_set1_epi32(static_cast<int>(key.k0[round])));
        x2 = _mm256_xor_si256(_mm256_xor_si256(high0, x3), _mm256_set1_epi32(static_cast<int>(key.k1[round])));
        x1 = low1;
        x3 = low0;
      }
      store_pairs(x0, x2, row_radius + 2 * block);
      store_pairs(x1, x3, row_angle + 2 * block);
    }
    philox_row<float>(key, static_cast<uint32_t>(c1[row]), static_cast<uint32_t>(c2[row]), stream, block, blocks,
                      row_radius, row_angle);
  }
}
#endif

// Rows of uniforms (rng.box_muller_uniforms).
template <typename T>
void philox_rows(const int64_t* seed, const int64_t* c1, const int64_t* c2, uint32_t stream, int64_t rows,
                 int64_t blocks, T* radius, T* angle) {
#if defined(__x86_64__) || defined(__i386__)
  if constexpr (std::is_same_v<T, float>) {
    if (has_avx2_fma()) return philox_rows_avx2(seed, c1, c2, stream, rows, blocks, radius, angle);
  }
#endif
  philox_rows_baseline<T>(seed, c1, c2, stream, rows, blocks, radius, angle);
}

// The (seed, c1, c2) rows of a draw op: int64 vectors of one length, contiguous.
struct CounterRows {
  at::Tensor seed, c1, c2;
  CounterRows(const at::Tensor& seed_in, const at::Tensor& c1_in, const at::Tensor& c2_in) {
    require(seed_in.scalar_type() == at::kLong && c1_in.scalar_type() == at::kLong &&
                c2_in.scalar_type() == at::kLong && seed_in.dim() == 1 && c1_in.sizes() == seed_in.sizes() &&
                c2_in.sizes() == seed_in.sizes(),
            "seed, c1 and c2 must be int64 vectors of one length");
    seed = seed_in.contiguous();
    c1 = c1_in.contiguous();
    c2 = c2_in.contiguous();
  }
  int64_t count() const { return seed.size(0); }
  // philox_rows over rows [first, first + rows)
  template <typename T>
  void uniforms(uint32_t stream, int64_t first, int64_t rows, int64_t blocks, T* radius, T* angle) const {
    philox_rows<T>(seed.data_ptr<int64_t>() + first, c1.data_ptr<int64_t>() + first, c2.data_ptr<int64_t>() + first,
                   stream, rows, blocks, radius, angle);
  }
};

std::tuple<at::Tensor, at::Tensor> box_muller_uniforms(at::Tensor seed, at::Tensor c1, at::Tensor c2, int64_t stream,
                                                        int64_t count, at::ScalarType dtype) {
  const CounterRows counters(seed, c1, c2);
  const int64_t rows = counters.count(), blocks = (count + 3) / 4;
  at::Tensor radius = at::empty({rows, blocks, 2}, seed.options().dtype(dtype));
  at::Tensor angle = at::empty({rows, blocks, 2}, seed.options().dtype(dtype));
  AT_DISPATCH_FLOATING_TYPES(dtype, "neuroloop_fused_box_muller_uniforms", [&] {
    scalar_t* radius_all = radius.data_ptr<scalar_t>();
    scalar_t* angle_all = angle.data_ptr<scalar_t>();
    at::parallel_for(0, rows, 1, [&](int64_t begin, int64_t end) {
      counters.uniforms<scalar_t>(static_cast<uint32_t>(stream), begin, end - begin, blocks,
                                  radius_all + begin * blocks * 2, angle_all + begin * blocks * 2);
    });
  });
  return {radius, angle};
}

// Box-Muller on `pairs` (radius, angle) uniforms in place: radius <- sqrt(-2 log u), angle <- cos
// of 2 pi u, sine <- sin of 2 pi u, each op as torch's rng.standard_normal applies it.
template <typename T>
void box_muller_in_place(const VectorMath<T>& math, int64_t pairs, T* radius, T* angle, T* sine) {
  math.log(pairs, radius, radius, kVmlMode);
  for (int64_t j = 0; j < pairs; ++j) radius[j] = radius[j] * T(-2);  // exact
  math.sqrt(pairs, radius, radius, kVmlMode);
  const T two_pi = static_cast<T>(2.0 * M_PI);  // torch rounds a Python scalar to the tensor's type
  for (int64_t j = 0; j < pairs; ++j) angle[j] = angle[j] * two_pi;
  math.sin(pairs, angle, sine, kVmlMode);
  math.cos(pairs, angle, angle, kVmlMode);
}

// rng.standard_normal for rows of (seed, c1, c2): the Philox uniforms above, then Box-Muller with
// torch's vector math.
at::Tensor standard_normal(at::Tensor seed, at::Tensor c1, at::Tensor c2, int64_t stream, int64_t count,
                           at::ScalarType dtype) {
  const CounterRows counters(seed, c1, c2);
  require(standard_normal_available(dtype), "torch's CPU vector math (MKL VML) is not available here");
  const int64_t rows = counters.count(), blocks = (count + 3) / 4, pairs_per_row = 2 * blocks;
  at::Tensor normal = at::empty({rows, count}, seed.options().dtype(dtype));
  // rows go through Box-Muller in groups of about kPairs pairs: long vector-math calls, in cache
  constexpr int64_t kPairs = 4096;
  const int64_t group = std::max<int64_t>(1, kPairs / pairs_per_row);
  AT_DISPATCH_FLOATING_TYPES(dtype, "neuroloop_fused_standard_normal", [&] {
    const VectorMath<scalar_t>& math = vector_math<scalar_t>();
    scalar_t* normal_all = normal.data_ptr<scalar_t>();
    at::parallel_for(0, (rows + group - 1) / group, 1, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> radius(group * pairs_per_row), angle(group * pairs_per_row), sine(group * pairs_per_row);
      for (int64_t g = begin; g < end; ++g) {
        const int64_t row0 = g * group, row_count = std::min(group, rows - row0);
        counters.uniforms<scalar_t>(static_cast<uint32_t>(stream), row0, row_count, blocks, radius.data(),
                                    angle.data());
        box_muller_in_place(math, row_count * pairs_per_row, radius.data(), angle.data(), sine.data());
        for (int64_t r = 0; r < row_count; ++r) {  // draws 2j and 2j + 1 of a row: pair j's cosine and sine
          const scalar_t* rad = radius.data() + r * pairs_per_row;
          const scalar_t* cosine = angle.data() + r * pairs_per_row;
          const scalar_t* sin_of = sine.data() + r * pairs_per_row;
          scalar_t* out = normal_all + (row0 + r) * count;
          for (int64_t j = 0; j < count / 2; ++j) {
            out[2 * j] = rad[j] * cosine[j];
            out[2 * j + 1] = rad[j] * sin_of[j];
          }
          if (count % 2) out[count - 1] = rad[count / 2] * cosine[count / 2];
        }
      }
    });
  });
  return normal;
}

// The transform alone, for whole arrays of uniforms (tests compare it with torch's on every float32
// uniform the generator can produce): (radius * cos, radius * sin).
std::tuple<at::Tensor, at::Tensor> box_muller(at::Tensor radius_u, at::Tensor angle_u) {
  require(radius_u.sizes() == angle_u.sizes() && radius_u.scalar_type() == angle_u.scalar_type(),
          "radius and angle uniforms must have one shape and dtype");
  require(standard_normal_available(radius_u.scalar_type()), "torch's CPU vector math (MKL VML) is not available here");
  at::Tensor radius = radius_u.contiguous().clone(), angle = angle_u.contiguous().clone();
  at::Tensor sine = at::empty_like(angle);
  AT_DISPATCH_FLOATING_TYPES(radius.scalar_type(), "neuroloop_fused_box_muller", [&] {
    box_muller_in_place(vector_math<scalar_t>(), radius.numel(), radius.data_ptr<scalar_t>(),
                        angle.data_ptr<scalar_t>(), sine.data_ptr<scalar_t>());
  });
  return {radius * angle, radius * sine};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(neuroloop_fused, m) {
  m.def("box_muller_uniforms(Tensor seed, Tensor c1, Tensor c2, int stream, int count, ScalarType dtype) "
        "-> (Tensor, Tensor)");
  m.impl("box_muller_uniforms", c10::DispatchKey::CPU, TORCH_FN(box_muller_uniforms));
  m.def("standard_normal_available(ScalarType dtype) -> bool", TORCH_FN(standard_normal_available));
  m.def("standard_normal(Tensor seed, Tensor c1, Tensor c2, int stream, int count, ScalarType dtype) -> Tensor");
  m.impl("standard_normal", c10::DispatchKey::CPU, TORCH_FN(standard_normal));
  m.def("box_muller(Tensor radius_u, Tensor angle_u) -> (Tensor, Tensor)");
  m.impl("box_muller", c10::DispatchKey::CPU, TORCH_FN(box_muller));
}
