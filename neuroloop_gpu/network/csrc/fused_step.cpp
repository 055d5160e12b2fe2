// A run of forward-Euler steps of a batch of FTSTS networks as one C++ loop per network (CPU).
//
// The same step as neuroloop_gpu/network/dynamics.py::euler_step with event-driven synapses,
// written as the per-neuron and per-synapse loops those batched ops stand for, so that a
// network's whole step stays in one core's cache and no intermediate tensor is ever built.
// Each network goes through all the steps of a call (up to a whole window) before the next one
// starts, so its state stays in cache from step to step; the call also takes the window's causal
// Kuramoto samples. Networks run in parallel (at::parallel_for); each one touches only its own rows.
// The library's noise ops are in noise.cpp, what both share in common.h.
//
// Same bits as the eager torch path: every expression below applies the same IEEE operations
// in the same order as the tensor op it replaces (noted as "torch: ..."), constants are
// rounded to the working type exactly as torch rounds a Python scalar, transcendental functions
// are the ones torch calls (VectorMath), and the build turns off multiply-add contraction
// (-ffp-contract=off). Coincident E->I inputs are summed in ascending synapse order, the order of
// torch's CPU index_add_.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "common.h"

namespace {

using namespace neuroloop_fused;

// Positions of the float64 and int64 constants (neuroloop_gpu/network/fused.py builds them).
enum Real { DT, V_REST, V_THRESHOLD, V_RESET, REFRACTORY_STEPS, TAU_M, TAU_D, TAU_R, TAU_PRE, TAU_POST,
            TRACE_INCREMENT, LTD, LTP, W_MIN, W_MAX, NUM_REALS };
enum Integer { NUM_E, NUM_I, PLASTICITY_ONSET_STEPS, PUBLISHED, NUM_INTEGERS };

template <typename T>
struct Constants {
  T dt, v_rest, v_threshold, v_reset, refractory_steps, tau_m, tau_d, tau_r, tau_pre, tau_post,
      trace_increment, ltd, ltp, w_min, w_max;
  int64_t num_e, num_i, onset;
  bool published;

  Constants(at::ArrayRef<double> r, at::ArrayRef<int64_t> n)
      : dt(r[DT]), v_rest(r[V_REST]), v_threshold(r[V_THRESHOLD]), v_reset(r[V_RESET]),
        refractory_steps(r[REFRACTORY_STEPS]), tau_m(r[TAU_M]), tau_d(r[TAU_D]), tau_r(r[TAU_R]),
        tau_pre(r[TAU_PRE]), tau_post(r[TAU_POST]), trace_increment(r[TRACE_INCREMENT]), ltd(r[LTD]),
        ltp(r[LTP]), w_min(r[W_MIN]), w_max(r[W_MAX]), num_e(n[NUM_E]), num_i(n[NUM_I]),
        onset(n[PLASTICITY_ONSET_STEPS]), published(n[PUBLISHED] != 0) {}
};

// torch clamp(min=lo) / clamp(max=hi): NaN passes through, an equal value is kept
template <typename T> ALWAYS_INLINE T at_least(T x, T lo) { return x < lo ? lo : x; }
template <typename T> ALWAYS_INLINE T at_most(T x, T hi) { return x > hi ? hi : x; }

// dynamics.stdp for one synapse: plastic is 1 from plasticity onset on, else 0
template <typename T>
ALWAYS_INLINE T stdp(const Constants<T>& c, T w, bool pre_spiked, T pre_trace, bool post_spiked, T post_trace, T plastic) {
  if (c.published) {
    if (post_spiked) return at_most(w + plastic * c.ltp * pre_trace, c.w_max);
    if (pre_spiked) return at_least(w + plastic * c.ltd * post_trace, c.w_min);
    return w;
  }
  // torch: ltd * post_trace * pre_spiked + ltp * pre_trace * post_spiked, bools as 0/1
  T change = post_trace * c.ltd * T(pre_spiked) + pre_trace * c.ltp * T(post_spiked);
  return at_most(at_least(w + plastic * change, c.w_min), c.w_max);
}

// The per-neuron loops take the constants by value and their arrays as __restrict__ (no
// aliasing), so that the compiler can vectorise them; vector and scalar IEEE operations round
// alike, so the bits do not depend on it.

// dynamics._trace: A + dt * (-A) / tau, or on a spike A + increment (summed: decayed + increment).
// One loop per semantics: a loop-invariant choice inside the loop keeps it from vectorising.
template <typename T>
ALWAYS_INLINE void update_traces(const Constants<T> c, T* __restrict__ trace, const Flag* __restrict__ spiked, int64_t count,
                   T tau) {
  if (c.published) {
    for (int64_t k = 0; k < count; ++k) {
      const T a = trace[k];
      const T decayed = -a * c.dt / tau + a;
      trace[k] = spiked[k] ? a + c.trace_increment : decayed;
    }
  } else {
    for (int64_t k = 0; k < count; ++k) {
      const T a = trace[k];
      const T decayed = -a * c.dt / tau + a;
      trace[k] = spiked[k] ? decayed + c.trace_increment : decayed;
    }
  }
}

// Membrane (eq. 1-2), threshold, reset, refractory hold, floor: dynamics.integrate_neurons.
// StimNoise: the stimulator of this network is on and the stimulation-locked noise is drawn (one
// instance each, so that the loop stays branch-free and the plain one is the code it always was).
template <typename T, bool StimNoise>
ALWAYS_INLINE void integrate_neurons(const Constants<T> c, int64_t n, T* __restrict__ v, T* __restrict__ refractory,
                       const T* __restrict__ s, const T* __restrict__ noise, const T* __restrict__ mu,
                       const T* __restrict__ coupling, const T* __restrict__ stim_sign,
                       const T* __restrict__ noise_gain, T stim, Flag* __restrict__ spiked,
                       const T* __restrict__ stim_noise, const T* __restrict__ stim_noise_gain) {
  for (int64_t j = 0; j < n; ++j) {
    const T old = v[j];
    // torch: (((V_rest - V) + coupling S + mu + sign stim) * dt / tau_m + V) + gain xi
    T v_new = c.v_rest - old;
    v_new = v_new + coupling[j] * s[j];
    v_new = v_new + mu[j];
    v_new = v_new + stim_sign[j] * stim;
    v_new = v_new * c.dt / c.tau_m + old;
    v_new = v_new + noise_gain[j] * noise[j];
    if constexpr (StimNoise) v_new = v_new + stim_noise_gain[j] * stim_noise[j];  // torch: + stim_gain xi'
    const T remaining = refractory[j] - T(1);
    const T held_before = at_least(remaining, T(-1));
    // no branch, so that the loop vectorises: & and | rather than && and ||, and the hold tested
    // on the unclamped count (the same truth value: the clamp only lifts values below -1 to -1)
    const bool fired = (old < c.v_threshold) & (v_new >= c.v_threshold);
    const bool held = (remaining >= T(0)) | fired;
    const T floored = at_least(v_new, c.v_rest);
    v[j] = held ? c.v_reset : floored;
    refractory[j] = fired ? c.refractory_steps : held_before;
    spiked[j] = fired;
  }
}

// Two-stage synaptic filter of the inputs emitted d ago, tau_d dS/dt = -S + X, tau_r dX/dt = -X + input
// (published: X(t+dt) = X(t) + input for a receiver, summed: decay, then add): the filter half of
// dynamics.integrate_synapses_and_traces. E neurons receive -1 per I spike (published: once, however
// many coincide), I neurons the E->I input.
template <typename T, bool Published>
ALWAYS_INLINE void filter_one(const Constants<T>& c, T& x, T& s, T arrived) {
  const T x0 = x, s0 = s;
  s = (x0 - s0) * c.dt / c.tau_d + s0;
  const T decayed = -x0 * c.dt / c.tau_r + x0;
  x = Published ? (arrived != T(0) ? x0 + arrived : decayed) : decayed + arrived;
}

template <typename T, bool Published>
ALWAYS_INLINE void filter_populations(const Constants<T> c, int64_t ne, int64_t ni, T* __restrict__ x, T* __restrict__ s,
                        const int32_t* __restrict__ count_e, const T* __restrict__ input_i) {
  for (int64_t j = 0; j < ne; ++j) {
    const T count = static_cast<T>(count_e[j]);
    filter_one<T, Published>(c, x[j], s[j], -(Published ? at_most(count, T(1)) : count));
  }
  for (int64_t j = 0; j < ni; ++j) filter_one<T, Published>(c, x[ne + j], s[ne + j], input_i[j]);
}

// The window monitor's running sums (monitors.WindowMonitor.observe) of V - shift after the step:
// population means summed in neuron order in double, as torch's CPU cumsum does
// (monitors.population_mean), per-neuron E sums and squares, spike counts. Squares are added as
// torch's addcmul_ adds them: with one rounding (fma) in its AVX2 kernels, two in its portable ones.
template <typename T, bool kFma>
ALWAYS_INLINE T add_square(T sum, T d) {
  return kFma ? std::fma(d, d, sum) : sum + d * d;
}

// Whether the float64 sum of x_j = v_j - shift (float32, j < count) is exact in every order, so that a
// vectorised sum has the bits of the sequential one (torch's cumsum): every nonzero |x| lies in
// [2^-m, 2^5) with m = 25 - bits(count), so every x is a multiple of 2^-(m + 23) and every partial sum,
// below count * 2^5 <= 2^(30 - m) in magnitude, fits in 53 bits. Float64 states, a value too close to
// the shift (rare: within 2^-14 mV at full size) or far from it (or NaN) keep the sequential loop.
template <typename T>
ALWAYS_INLINE bool sums_exactly(const T* __restrict__ v, int64_t count, T shift) {
  if constexpr (!std::is_same_v<T, float>) {
    return false;
  } else {
    const int bits = 64 - __builtin_clzll(static_cast<uint64_t>(count));
    if (bits > 24) return false;
    const float smallest = std::ldexp(1.0f, bits - 25);
    int64_t outside = 0;
    for (int64_t j = 0; j < count; ++j) {
      const float x = std::fabs(v[j] - shift);
      outside += !((x == 0.0f) | ((x >= smallest) & (x < 32.0f)));
    }
    return outside == 0;
  }
}

template <typename T, bool kFma>
ALWAYS_INLINE void observe(const T* __restrict__ v, const Flag* __restrict__ spiked, int64_t ne, int64_t ni, T shift,
                         T& mean_e_sum, T& mean_e_sq_sum, T* __restrict__ neuron_sum, T* __restrict__ neuron_sq_sum,
                         T& v_i_sum, T& v_i_sq_sum, T& spikes_e, T& spikes_i) {
  for (int64_t j = 0; j < ne; ++j) {
    const T d = v[j] - shift;
    neuron_sum[j] = neuron_sum[j] + d;
    neuron_sq_sum[j] = add_square<T, kFma>(neuron_sq_sum[j], d);
  }
  double total = 0.0;
  int64_t fired = 0;
  if (sums_exactly(v, ne, shift)) {  // any order gives the sequential sum: let the compiler vectorise
#pragma omp simd reduction(+ : total, fired)
    for (int64_t j = 0; j < ne; ++j) {
      total += static_cast<double>(v[j] - shift);
      fired += spiked[j];
    }
  } else {
    for (int64_t j = 0; j < ne; ++j) {
      total += static_cast<double>(v[j] - shift);
      fired += spiked[j];
    }
  }
  const T mean_e = static_cast<T>(total) / static_cast<T>(ne);
  mean_e_sum = mean_e_sum + mean_e;
  mean_e_sq_sum = add_square<T, kFma>(mean_e_sq_sum, mean_e);
  spikes_e = spikes_e + static_cast<T>(fired);
  double total_i = 0.0, squares_i = 0.0;
  fired = 0;
  for (int64_t j = ne; j < ne + ni; ++j) {
    const T d = v[j] - shift;
    total_i += static_cast<double>(d);
    squares_i += static_cast<double>(d * d);
    fired += spiked[j];
  }
  v_i_sum = v_i_sum + static_cast<T>(total_i) / static_cast<T>(ni);
  v_i_sq_sum = v_i_sq_sum + static_cast<T>(squares_i) / static_cast<T>(ni);
  spikes_i = spikes_i + static_cast<T>(fired);
}

// synchrony.causal_order for one network: the online Kuramoto estimate at step `now` from each E
// neuron's last spike step and last inter-spike interval (0: not yet known), summed in neuron
// order in double as torch's CPU cumsum sums (synchrony.ordered_sum).
ALWAYS_INLINE float causal_order(const VectorMath<float>& math, int64_t ne, const int32_t* __restrict__ last_spike,
                                 const int32_t* __restrict__ last_isi, int32_t now, float* __restrict__ phase,
                                 float* __restrict__ cosine, float* __restrict__ sine) {
  const float two_pi = static_cast<float>(2.0 * M_PI);
  for (int64_t e = 0; e < ne; ++e) {
    phase[e] = two_pi * static_cast<float>(now - last_spike[e]) / static_cast<float>(std::max(last_isi[e], 1));
  }
  math.cos(ne, phase, cosine, kVmlMode);
  math.sin(ne, phase, sine, kVmlMode);
  double cos_total = 0.0, sin_total = 0.0;
  int64_t count = 0;
  for (int64_t e = 0; e < ne; ++e) {
    const bool ok = last_isi[e] > 0;
    cos_total += static_cast<double>(ok ? cosine[e] : 0.0f);
    sin_total += static_cast<double>(ok ? sine[e] : 0.0f);
    count += ok;
  }
  if (count == 0) return 0.0f;
  const float c = static_cast<float>(cos_total), s = static_cast<float>(sin_total);
  const float squared = c * c + s * s;
  float norm;
  math.sqrt(1, &squared, &norm, kVmlMode);
  return norm / static_cast<float>(count);
}

// The indices of the set flags among flags[0, count), ascending; returns how many. Reads eight
// flags at a time (most neurons are silent in a step): a set flag is bit 8j of a little-endian word.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "set_flags reads flags as little-endian words");
ALWAYS_INLINE int64_t set_flags(const Flag* __restrict__ flags, int64_t count, int32_t* __restrict__ out) {
  int64_t found = 0, k = 0;
  for (; k + 8 <= count; k += 8) {
    uint64_t word;
    std::memcpy(&word, flags + k, sizeof word);
    for (; word != 0; word &= word - 1) out[found++] = static_cast<int32_t>(k + __builtin_ctzll(word) / 8);
  }
  for (; k < count; ++k) {
    if (flags[k]) out[found++] = static_cast<int32_t>(k);
  }
  return found;
}

constexpr int64_t kPrefetch = 16;  // synapses ahead: enough to overlap a cache miss

struct Tables {  // the tensors of one call, by role
  at::Tensor v, refractory, x, s, spiked_pre, trace_pre, spiked_post, trace_post, weight, ring_spikes_i,
      ring_input_i, last_spike_e, last_isi_e, step, stim_i, noise, stim_on, stim_noise, stim_noise_gain, mu,
      coupling, stim_sign, noise_gain, ei_post, ei_start, ei_degree, ei_by_post, ei_pre_by_post, ei_post_start, ei_post_degree, ie_post, ie_start, ie_degree,
      spiked, mean_e_sum, mean_e_sq_sum, neuron_e_sum, neuron_e_sq_sum, v_i_sum, v_i_sq_sum, spikes_e, spikes_i,
      kop_sum;
};

template <typename T, typename PreIndex>
struct Arrays {  // the data of Tables, typed; flags as bytes (see Flag)
  int64_t batch, capacity, steps, delay;
  T *v_all, *refractory_all, *x_all, *s_all, *trace_pre_all, *trace_post_all, *weight, *ring_input_all;
  Flag *spiked_pre_all, *spiked_post_all, *ring_spikes_all, *spiked_all;
  int32_t *last_spike_all, *last_isi_all;
  int64_t* step;
  const T *stim_i, *noise_all, *mu, *coupling, *stim_sign, *noise_gain;
  const Flag* stim_on;                          // [batch]: the stimulator is on in this window
  const T *stim_noise_all, *stim_noise_gain;    // [steps, batch, n] draws (none: empty), [n]
  bool has_stim_noise;
  const int32_t *ei_post, *ei_by_post, *ie_post;
  const PreIndex* ei_pre_by_post;
  const int64_t *ei_start, *ei_degree, *ei_post_start, *ei_post_degree, *ie_start, *ie_degree;
  T *mean_e_sum, *mean_e_sq_sum, *neuron_e_sum, *neuron_e_sq_sum, *v_i_sum, *v_i_sq_sum, *spikes_e, *spikes_i, *kop_sum;

  explicit Arrays(const Tables& t)
      : batch(t.v.size(0)), capacity(t.weight.size(1)), steps(t.stim_i.size(0)), delay(t.ring_spikes_i.size(0)),
        v_all(t.v.data_ptr<T>()), refractory_all(t.refractory.data_ptr<T>()), x_all(t.x.data_ptr<T>()),
        s_all(t.s.data_ptr<T>()), trace_pre_all(t.trace_pre.data_ptr<T>()),
        trace_post_all(t.trace_post.data_ptr<T>()), weight(t.weight.data_ptr<T>()),
        ring_input_all(t.ring_input_i.data_ptr<T>()), spiked_pre_all(flags(t.spiked_pre)),
        spiked_post_all(flags(t.spiked_post)), ring_spikes_all(flags(t.ring_spikes_i)), spiked_all(flags(t.spiked)),
        last_spike_all(t.last_spike_e.data_ptr<int32_t>()), last_isi_all(t.last_isi_e.data_ptr<int32_t>()),
        step(t.step.data_ptr<int64_t>()), stim_i(t.stim_i.data_ptr<T>()), noise_all(t.noise.data_ptr<T>()),
        mu(t.mu.data_ptr<T>()), coupling(t.coupling.data_ptr<T>()), stim_sign(t.stim_sign.data_ptr<T>()),
        noise_gain(t.noise_gain.data_ptr<T>()), stim_on(flags(t.stim_on)),
        stim_noise_all(t.stim_noise.data_ptr<T>()), stim_noise_gain(t.stim_noise_gain.data_ptr<T>()),
        has_stim_noise(t.stim_noise.numel() > 0), ei_post(t.ei_post.data_ptr<int32_t>()),
        ei_by_post(t.ei_by_post.data_ptr<int32_t>()), ie_post(t.ie_post.data_ptr<int32_t>()),
        ei_pre_by_post(t.ei_pre_by_post.data_ptr<PreIndex>()), ei_start(t.ei_start.data_ptr<int64_t>()),
        ei_degree(t.ei_degree.data_ptr<int64_t>()), ei_post_start(t.ei_post_start.data_ptr<int64_t>()),
        ei_post_degree(t.ei_post_degree.data_ptr<int64_t>()), ie_start(t.ie_start.data_ptr<int64_t>()),
        ie_degree(t.ie_degree.data_ptr<int64_t>()), mean_e_sum(t.mean_e_sum.data_ptr<T>()),
        mean_e_sq_sum(t.mean_e_sq_sum.data_ptr<T>()), neuron_e_sum(t.neuron_e_sum.data_ptr<T>()),
        neuron_e_sq_sum(t.neuron_e_sq_sum.data_ptr<T>()), v_i_sum(t.v_i_sum.data_ptr<T>()),
        v_i_sq_sum(t.v_i_sq_sum.data_ptr<T>()), spikes_e(t.spikes_e.data_ptr<T>()),
        spikes_i(t.spikes_i.data_ptr<T>()), kop_sum(t.kop_sum.data_ptr<T>()) {}

  static Flag* flags(const at::Tensor& t) { return reinterpret_cast<Flag*>(t.data_ptr<bool>()); }
};

// What a call's steps are within the window: the window step of the first one, and every how many
// steps the causal Kuramoto estimate is sampled into kop_sum (0: the monitor samples it).
struct WindowPosition {
  int64_t first_step, kop_every;
};

// Networks [first, last) through all the steps of the call; Avx2: built for AVX2 + FMA, whose
// kernels torch runs there too (see observe).
template <typename T, typename PreIndex, bool Avx2>
ALWAYS_INLINE void advance_networks(const Arrays<T, PreIndex>& a, const Constants<T> c, T shift, int64_t ring_base,
                                    WindowPosition window, int64_t first, int64_t last) {
  const int64_t ne = c.num_e, ni = c.num_i, n = ne + ni;
  std::vector<int32_t> count_e(ne);  // I spikes arriving at each E neuron now
  std::vector<T> sent(ni);           // E->I input leaving now for each I neuron
  std::vector<int32_t> e_list(ne), i_list(ni), arriving_list(ni);  // this step's spike lists
  std::vector<float> phase(ne), cosine(ne), sine(ne);                 // causal Kuramoto scratch
  const VectorMath<float>& math = vector_math<float>();
  for (int64_t b = first; b < last; ++b) {
    T* v = a.v_all + b * n;
    T* refractory = a.refractory_all + b * n;
    T* x = a.x_all + b * n;
    T* s = a.s_all + b * n;
    Flag* spiked_pre = a.spiked_pre_all + b * (ne + 1);
    T* trace_pre = a.trace_pre_all + b * (ne + 1);
    Flag* spiked_post = a.spiked_post_all + b * (ni + 1);
    T* trace_post = a.trace_post_all + b * (ni + 1);
    int32_t* last_spike = a.last_spike_all + b * ne;
    int32_t* last_isi = a.last_isi_all + b * ne;
    Flag* spiked = a.spiked_all + b * n;
    for (int64_t k = 0; k < a.steps; ++k) {
      const int64_t slot = (ring_base + k) % a.delay;
      Flag* arriving_i = a.ring_spikes_all + (slot * a.batch + b) * (ni + 1);
      T* input_i = a.ring_input_all + (slot * a.batch + b) * ni;
      const T* noise = a.noise_all + (k * a.batch + b) * n;
      const T stim = a.stim_i[k * a.batch + b];
      const int32_t now = static_cast<int32_t>(a.step[b] + 1);
      const T plastic = (a.step[b] >= c.onset && c.onset >= 0) ? T(1) : T(0);

      if (a.has_stim_noise && a.stim_on[b]) {
        integrate_neurons<T, true>(c, n, v, refractory, s, noise, a.mu, a.coupling, a.stim_sign, a.noise_gain, stim,
                                   spiked, a.stim_noise_all + (k * a.batch + b) * n, a.stim_noise_gain);
      } else {
        integrate_neurons<T, false>(c, n, v, refractory, s, noise, a.mu, a.coupling, a.stim_sign, a.noise_gain, stim,
                                    spiked, nullptr, nullptr);
      }
      observe<T, Avx2>(v, spiked, ne, ni, shift, a.mean_e_sum[b], a.mean_e_sq_sum[b], a.neuron_e_sum + b * ne,
                       a.neuron_e_sq_sum + b * ne, a.v_i_sum[b], a.v_i_sq_sum[b], a.spikes_e[b], a.spikes_i[b]);
      for (int64_t e = 0; e < ne; ++e) {  // causal phase bookkeeping for the online Kuramoto estimate
        const bool fired = spiked[e];
        const int32_t last = last_spike[e];
        spiked_pre[e] = fired;
        last_isi[e] = fired & (last >= 0) ? now - last : last_isi[e];
        last_spike[e] = fired ? now : last;
      }
      for (int64_t i = 0; i < ni; ++i) spiked_post[i] = spiked[ne + i];

      // The step's spike lists, in ascending order (the order of the loops they replace).
      const int64_t spiking_e = set_flags(spiked_pre, ne, e_list.data());
      const int64_t spiking_i = set_flags(spiked_post, ni, i_list.data());
      const int64_t arriving = set_flags(arriving_i, ni, arriving_list.data());

      // I -> E: the synapses leaving the I spikes emitted d ago; then this step's I spikes leave.
      std::fill(count_e.begin(), count_e.end(), 0);
      const int64_t e_offset = b * (ne + 1), i_offset = b * (ni + 1);
      for (int64_t j = 0; j < arriving; ++j) {
        const int64_t i = arriving_list[j];
        const int64_t from = a.ie_start[i_offset + i], to = from + a.ie_degree[i_offset + i];
        for (int64_t id = from; id < to; ++id) ++count_e[a.ie_post[id] - e_offset];
      }
      for (int64_t i = 0; i < ni; ++i) arriving_i[i] = spiked_post[i];

      // E -> I input with the weights before this step's STDP, in ascending synapse order:
      // published, the highest-ranked active synapse of each I neuron wins; summed, all add up.
      std::fill(sent.begin(), sent.end(), T(0));
      for (int64_t j = 0; j < spiking_e; ++j) {
        const int64_t e = e_list[j];
        const int64_t from = a.ei_start[e_offset + e], to = from + a.ei_degree[e_offset + e];
        for (int64_t id = from; id < to; ++id) {
          T& into = sent[a.ei_post[id] - i_offset];
          into = c.published ? a.weight[id] : into + a.weight[id];
        }
      }

      // STDP (eq. 7-11), first every synapse entering an I spike (final value), then those
      // leaving an E spike whose I neuron did not spike: dynamics.stdp_entering_i / stdp_leaving_e.
      T* net_weight = a.weight + b * a.capacity;
      for (int64_t j = 0; j < spiking_i; ++j) {
        const int64_t i = i_list[j];
        const int64_t from = a.ei_post_start[i_offset + i], to = from + a.ei_post_degree[i_offset + i];
        for (int64_t p = from; p < to; ++p) {
          // the weights entering one I neuron lie scattered: ask for them ahead of use
          if (p + kPrefetch < to) __builtin_prefetch(net_weight + a.ei_by_post[p + kPrefetch], 1);
          const int64_t pre = a.ei_pre_by_post[p];
          T& w = net_weight[a.ei_by_post[p]];
          w = stdp(c, w, spiked_pre[pre], trace_pre[pre], true, trace_post[i], plastic);
        }
      }
      for (int64_t j = 0; j < spiking_e; ++j) {
        const int64_t e = e_list[j];
        const int64_t from = a.ei_start[e_offset + e], to = from + a.ei_degree[e_offset + e];
        for (int64_t id = from; id < to; ++id) {
          const int64_t post = a.ei_post[id] - i_offset;
          if (spiked_post[post]) continue;
          a.weight[id] = stdp(c, a.weight[id], true, trace_pre[e], false, trace_post[post], plastic);
        }
      }

      if (c.published) {
        filter_populations<T, true>(c, ne, ni, x, s, count_e.data(), input_i);
      } else {
        filter_populations<T, false>(c, ne, ni, x, s, count_e.data(), input_i);
      }
      std::copy(sent.begin(), sent.end(), input_i);  // this step's E->I input leaves, d from now
      update_traces(c, trace_pre, spiked_pre, ne + 1, c.tau_pre);
      update_traces(c, trace_post, spiked_post, ni + 1, c.tau_post);
      a.step[b] += 1;
      if (window.kop_every > 0 && (window.first_step + k + 1) % window.kop_every == 0) {
        const float order = causal_order(math, ne, last_spike, last_isi, static_cast<int32_t>(a.step[b]), phase.data(),
                                         cosine.data(), sine.data());
        a.kop_sum[b] = a.kop_sum[b] + static_cast<T>(order);
      }
    }
  }
}

#if defined(__x86_64__) || defined(__i386__)
template <typename T, typename PreIndex>
__attribute__((target("avx2,fma"))) void advance_networks_avx2(const Arrays<T, PreIndex>& a, const Constants<T> c,
                                                               T shift, int64_t ring_base, WindowPosition window,
                                                               int64_t first, int64_t last) {
  advance_networks<T, PreIndex, true>(a, c, shift, ring_base, window, first, last);
}
#endif

template <typename T, typename PreIndex>
void step_networks(const Tables& t, const Constants<T>& constants, T shift, int64_t ring_base, WindowPosition window) {
  const Arrays<T, PreIndex> arrays(t);
  at::parallel_for(0, arrays.batch, 1, [&](int64_t first, int64_t last) {
#if defined(__x86_64__) || defined(__i386__)
    if (has_avx2_fma()) {
      return advance_networks_avx2<T, PreIndex>(arrays, constants, shift, ring_base, window, first, last);
    }
#endif
    advance_networks<T, PreIndex, false>(arrays, constants, shift, ring_base, window, first, last);
  });
}

at::Tensor euler_steps(at::Tensor v, at::Tensor refractory, at::Tensor x, at::Tensor s, at::Tensor spiked_pre,
                      at::Tensor trace_pre, at::Tensor spiked_post, at::Tensor trace_post, at::Tensor weight,
                      at::Tensor ring_spikes_i, at::Tensor ring_input_i, at::Tensor last_spike_e, at::Tensor last_isi_e,
                      at::Tensor step, at::Tensor stim_i, at::Tensor noise, at::Tensor stim_on, at::Tensor stim_noise,
                      at::Tensor stim_noise_gain, at::Tensor mu, at::Tensor coupling,
                      at::Tensor stim_sign, at::Tensor noise_gain, at::Tensor ei_post, at::Tensor ei_start,
                      at::Tensor ei_degree, at::Tensor ei_by_post, at::Tensor ei_pre_by_post, at::Tensor ei_post_start,
                      at::Tensor ei_post_degree, at::Tensor ie_post, at::Tensor ie_start, at::Tensor ie_degree,
                      at::Tensor spiked, at::Tensor mean_e_sum, at::Tensor mean_e_sq_sum, at::Tensor neuron_e_sum,
                      at::Tensor neuron_e_sq_sum, at::Tensor v_i_sum, at::Tensor v_i_sq_sum, at::Tensor spikes_e,
                      at::Tensor spikes_i, at::Tensor kop_sum, int64_t ring_base, int64_t first_step,
                      int64_t kop_every, double shift, at::ArrayRef<double> reals, at::ArrayRef<int64_t> integers) {
  require(reals.size() == NUM_REALS && integers.size() == NUM_INTEGERS, "wrong number of constants");
  Tables t{v, refractory, x, s, spiked_pre, trace_pre, spiked_post, trace_post, weight, ring_spikes_i, ring_input_i,
           last_spike_e, last_isi_e, step, stim_i, noise, stim_on, stim_noise, stim_noise_gain, mu, coupling, stim_sign, noise_gain, ei_post, ei_start,
           ei_degree, ei_by_post, ei_pre_by_post, ei_post_start, ei_post_degree, ie_post, ie_start, ie_degree,
           spiked, mean_e_sum, mean_e_sq_sum, neuron_e_sum, neuron_e_sq_sum, v_i_sum, v_i_sq_sum, spikes_e,
           spikes_i, kop_sum};
  for (const at::Tensor& tensor : {t.v, t.refractory, t.x, t.s, t.spiked_pre, t.trace_pre, t.spiked_post,
                                   t.trace_post, t.weight, t.ring_spikes_i, t.ring_input_i, t.last_spike_e,
                                   t.last_isi_e,
                                   t.step, t.stim_i, t.noise, t.stim_on, t.stim_noise, t.stim_noise_gain, t.mu,
                                   t.coupling, t.stim_sign, t.noise_gain, t.ei_post,
                                   t.ei_start, t.ei_degree, t.ei_by_post, t.ei_pre_by_post, t.ei_post_start,
                                   t.ei_post_degree, t.ie_post, t.ie_start, t.ie_degree, t.mean_e_sum,
                                   t.mean_e_sq_sum, t.neuron_e_sum, t.neuron_e_sq_sum, t.v_i_sum, t.v_i_sq_sum,
                                   t.spikes_e, t.spikes_i, t.kop_sum}) {
    require(tensor.device().is_cpu() && tensor.is_contiguous(), "every tensor must be contiguous on the CPU");
  }
  require(integers[NUM_E] + integers[NUM_I] == v.size(1), "num_e + num_i must match v");
  require(spiked.scalar_type() == at::kBool && spiked.sizes() == v.sizes() && spiked.is_contiguous(),
          "spiked must be a contiguous bool tensor shaped like v");
  const int64_t steps = stim_i.size(0), batch = v.size(0);
  require(stim_i.dim() == 2 && stim_i.size(1) == batch && noise.dim() == 3 && noise.size(0) == steps &&
              noise.size(1) == batch && noise.size(2) == v.size(1),
          "stim_i must be [steps, batch] and noise [steps, batch, n]");
  require(stim_on.scalar_type() == at::kBool && stim_on.dim() == 1 && stim_on.size(0) == batch &&
              stim_noise.scalar_type() == v.scalar_type() && stim_noise_gain.scalar_type() == v.scalar_type() &&
              stim_noise_gain.numel() == v.size(1) &&
              (stim_noise.numel() == 0 || stim_noise.sizes() == noise.sizes()),
          "stim_on must be [batch] bool, stim_noise empty or shaped like noise, stim_noise_gain [n]");
  require(ring_spikes_i.dim() == 3 && ring_spikes_i.size(1) == batch && ring_input_i.dim() == 3 &&
              ring_input_i.size(0) == ring_spikes_i.size(0) && ring_input_i.size(1) == batch && ring_base >= 0,
          "the rings must be [delay, batch, ...] and ring_base >= 0");
  require(first_step >= 0 && kop_every >= 0 && (kop_every == 0 || vector_math<float>().available()),
          "first_step >= 0 and kop_every >= 0 (0 where torch's vector math is not available)");
  const WindowPosition window{first_step, kop_every};
  AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "neuroloop_fused_euler_step", [&] {
    Constants<scalar_t> c(reals, integers);
    if (ei_pre_by_post.scalar_type() == at::kShort) {
      step_networks<scalar_t, int16_t>(t, c, static_cast<scalar_t>(shift), ring_base, window);
    } else {
      step_networks<scalar_t, int32_t>(t, c, static_cast<scalar_t>(shift), ring_base, window);
    }
  });
  return t.spiked;
}

}  // namespace

TORCH_LIBRARY(neuroloop_fused, m) {
  m.def(
      "euler_steps(Tensor(a!) v, Tensor(b!) refractory, Tensor(c!) x, Tensor(d!) s, Tensor(e!) spiked_pre, "
      "Tensor(f!) trace_pre, Tensor(g!) spiked_post, Tensor(h!) trace_post, Tensor(i!) weight, "
      "Tensor(j!) ring_spikes_i, Tensor(k!) ring_input_i, Tensor(l!) last_spike_e, Tensor(m!) last_isi_e, "
      "Tensor(n!) step, Tensor stim_i, Tensor noise, Tensor stim_on, Tensor stim_noise, Tensor stim_noise_gain, "
      "Tensor mu, Tensor coupling, Tensor stim_sign, "
      "Tensor noise_gain, Tensor ei_post, Tensor ei_start, Tensor ei_degree, Tensor ei_by_post, "
      "Tensor ei_pre_by_post, Tensor ei_post_start, Tensor ei_post_degree, Tensor ie_post, Tensor ie_start, "
      "Tensor ie_degree, Tensor(o!) spiked, Tensor(p!) mean_e_sum, Tensor(q!) mean_e_sq_sum, "
      "Tensor(r!) neuron_e_sum, Tensor(s!) neuron_e_sq_sum, Tensor(t!) v_i_sum, Tensor(u!) v_i_sq_sum, "
      "Tensor(v!) spikes_e, Tensor(w!) spikes_i, Tensor(x!) kop_sum, int ring_base, int first_step, int kop_every, "
      "float shift, float[] reals, int[] integers) "
      "-> Tensor(o!)");
  m.impl("euler_steps", c10::DispatchKey::CPU, TORCH_FN(euler_steps));
}
