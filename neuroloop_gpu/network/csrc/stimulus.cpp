// stimulus.render_window as one loop per network, for the fused backend: with a few networks the
// torch version's ~80 small tensor ops cost more than the window's Euler steps. Every value is the
// torch version's float64 expression, in its order (built with -ffp-contract=off; a Python scalar
// divided by a tensor is torch's reciprocal times the scalar), and minimum,
// maximum and clamp resolve ties and NaNs as torch's do (the first operand on ties, NaN
// propagates): the same bits (tests/test_stimulus.py).
#include <ATen/ATen.h>
#include <torch/library.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <tuple>

#include "common.h"

namespace {

using namespace neuroloop_fused;

inline double maximum(double a, double b) {
  return std::isnan(a) || std::isnan(b) ? std::numeric_limits<double>::quiet_NaN() : (a < b ? b : a);
}
inline double minimum(double a, double b) {
  return std::isnan(a) || std::isnan(b) ? std::numeric_limits<double>::quiet_NaN() : (b < a ? b : a);
}
inline double clamp_low(double s) { return s < 0.0 ? 0.0 : s; }  // clamp(min=0): NaN and -0.0 pass

// stimulus.pulse_integral and stimulus.pulse_abs_integral
inline double pulse_integral(double s, double width) {
  return minimum(clamp_low(s), width) - minimum(clamp_low(s - width), width);
}
inline double pulse_abs_integral(double s, double width) { return minimum(clamp_low(s), 2 * width); }

// (current_i [B, steps], energy, charge, net_charge, and the carry: since_onset, amplitude, width, polarity)
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
render_window(at::Tensor amplitude, at::Tensor frequency, at::Tensor pulse_width, at::Tensor polarity,
              at::Tensor since_onset, at::Tensor last_amplitude, at::Tensor last_width, at::Tensor last_polarity,
              int64_t steps, double step_size) {
  const int64_t batch = amplitude.size(0);
  for (const at::Tensor& t : {amplitude, frequency, pulse_width, polarity, since_onset, last_amplitude, last_width,
                              last_polarity}) {
    require(t.device().is_cpu() && t.scalar_type() == at::kDouble && t.dim() == 1 && t.size(0) == batch &&
                t.is_contiguous(),
            "every tensor must be a contiguous float64 [batch] tensor on the CPU");
  }
  require(steps > 0, "steps must be > 0");
  const at::TensorOptions options = amplitude.options();
  at::Tensor current = at::empty({batch, steps}, options);
  at::Tensor energy = at::empty({batch}, options), charge = at::empty({batch}, options);
  at::Tensor net_charge = at::empty({batch}, options), next_since = at::empty({batch}, options);
  at::Tensor next_amplitude = at::empty({batch}, options), next_width = at::empty({batch}, options);
  at::Tensor next_polarity = at::empty({batch}, options);
  const double* amp = amplitude.data_ptr<double>();
  const double* freq = frequency.data_ptr<double>();
  const double* pw = pulse_width.data_ptr<double>();
  const double* pol = polarity.data_ptr<double>();
  const double* since_in = since_onset.data_ptr<double>();
  const double* old_amp = last_amplitude.data_ptr<double>();
  const double* old_width_in = last_width.data_ptr<double>();
  const double* old_pol = last_polarity.data_ptr<double>();
  double* out = current.data_ptr<double>();
  const double window = static_cast<double>(steps) * step_size;
  for (int64_t b = 0; b < batch; ++b) {
    // the pulse carried over from the previous window, and this window's pulses (period, first onset)
    const double since = since_in[b], old_width = old_width_in[b], old_sign = old_amp[b] * old_pol[b];
    const double period = (1.0 / freq[b]) * 1000.0, width = pw[b] * 1e-3;  // torch's scalar / tensor
    const bool on = amp[b] > 0;
    const double remaining = clamp_low(2 * old_width - since);
    const double first = maximum(period - since, remaining);
    const double new_sign = amp[b] * pol[b] * (on ? 1.0 : 0.0);
    double g_first = 0.0, g_last = 0.0, h_first = 0.0, h_last = 0.0, g_previous = 0.0;
    for (int64_t k = 0; k <= steps; ++k) {
      const double t = static_cast<double>(k) * step_size;
      const double old_s = since + t;
      const double old_g = pulse_integral(old_s, old_width) * old_sign;
      const double since_first = t - first;
      const double phase = since_first >= 0 ? since_first - period * std::floor(since_first / period) : -1.0;
      const double g = old_g + pulse_integral(phase, width) * new_sign;
      if (k == 0) {
        g_first = g;
        h_first = pulse_abs_integral(old_s, old_width);
      } else {
        out[b * steps + k - 1] = (g - g_previous) / step_size;
      }
      if (k == steps) {
        g_last = g;
        h_last = pulse_abs_integral(old_s, old_width);
      }
      g_previous = g;
    }
    const double onsets = on && first < window ? std::ceil((window - first) / period) : 0.0;
    const double last_onset = first + (onsets - 1) * period;
    const double new_stim_time =
        onsets > 0 ? (onsets - 1) * 2 * width + pulse_abs_integral(window - last_onset, width) : 0.0;
    const double old_stim_time = h_last - h_first;
    energy.data_ptr<double>()[b] = old_amp[b] * old_amp[b] * old_stim_time + amp[b] * amp[b] * new_stim_time;
    charge.data_ptr<double>()[b] = old_amp[b] * old_stim_time + amp[b] * new_stim_time;
    net_charge.data_ptr<double>()[b] = g_last - g_first;
    const bool fired = onsets > 0;
    next_since.data_ptr<double>()[b] = fired ? window - last_onset : since + window;
    next_amplitude.data_ptr<double>()[b] = fired ? amp[b] : old_amp[b];
    next_width.data_ptr<double>()[b] = fired ? width : old_width;
    next_polarity.data_ptr<double>()[b] = fired ? pol[b] : old_pol[b];
  }
  return {current, energy, charge, net_charge, next_since, next_amplitude, next_width, next_polarity};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(neuroloop_fused, m) {
  m.def("render_window(Tensor amplitude, Tensor frequency, Tensor pulse_width, Tensor polarity, "
        "Tensor since_onset, Tensor last_amplitude, Tensor last_width, Tensor last_polarity, int steps, "
        "float step_size) -> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)");
  m.impl("render_window", c10::DispatchKey::CPU, TORCH_FN(render_window));
}
