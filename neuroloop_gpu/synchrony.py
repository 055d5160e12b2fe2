"""Synchrony measures of the E population, batched over networks.

* Golomb's voltage synchrony chi over a window:
  chi^2 = Var_t(mean_i V_i(t)) / mean_i Var_t(V_i(t)).
* Kuramoto order parameter R(t) = |mean_k exp(i phi_k(t))| from spike times,
  with phi_k(t) = 2 pi (t - t_n) / (t_{n+1} - t_n) between a neuron's spikes
  t_n <= t < t_{n+1}. The offline form needs the next spike; the causal
  (online) estimate replaces the unknown next interval by the last observed
  one. Neurons whose phase is undefined at t (no spike before, or offline no
  spike after) are left out of the mean at t.
"""

from __future__ import annotations

import math

import torch

_ELEMENTS_PER_CHUNK = 1 << 24


def chi_from_moments(
    mean_trace_sum: torch.Tensor,
    mean_trace_sq_sum: torch.Tensor,
    neuron_sum: torch.Tensor,
    neuron_sq_sum: torch.Tensor,
    samples: int,
) -> torch.Tensor:
    """chi from running sums over ``samples`` time points.

    ``mean_trace_sum`` / ``mean_trace_sq_sum`` [B]: sums of the population mean
    V(t) and its square; ``neuron_sum`` / ``neuron_sq_sum`` [B, N]: per-neuron
    sums of V and V^2. Sums may be of shifted voltages (V - c), which
    leaves variances unchanged and keeps float32 accurate.
    """
    mean_var = mean_trace_sq_sum / samples - (mean_trace_sum / samples) ** 2
    neuron_var = neuron_sq_sum / samples - (neuron_sum / samples) ** 2
    denominator = neuron_var.mean(dim=-1)
    chi_sq = torch.where(denominator > 0, mean_var.clamp(min=0) / denominator.clamp(min=1e-30), 0.0)
    return chi_sq.sqrt()


def golomb_chi(voltage: torch.Tensor) -> torch.Tensor:
    """chi of voltage traces ``[..., T, N]`` (time, neurons) -> ``[...]``."""
    shifted = voltage - voltage[..., :1, :]
    mean_trace = shifted.mean(dim=-1)
    return chi_from_moments(
        mean_trace.sum(-1), (mean_trace**2).sum(-1), shifted.sum(-2), (shifted**2).sum(-2), voltage.shape[-2]
    )


def kuramoto_order(raster: torch.Tensor, sample_every: int = 1) -> torch.Tensor:
    """Offline Kuramoto order parameter from a spike raster.

    ``raster`` is ``[B, T, N]`` bool (steps x neurons); returns R ``[B, M]`` at
    steps ``0, sample_every, 2 * sample_every, ...`` (M = ceil(T / sample_every)).
    Vectorised over networks and neurons; neurons are processed in chunks so
    memory stays bounded for long runs.
    """
    batch, steps, neurons = raster.shape
    device = raster.device
    index = torch.arange(steps, device=device, dtype=torch.int32).view(1, steps, 1)
    samples = torch.arange(0, steps, sample_every, device=device)
    never = torch.iinfo(torch.int32).max
    cos_sum = torch.zeros(batch, samples.numel(), dtype=torch.float64, device=device)
    sin_sum = torch.zeros_like(cos_sum)
    defined = torch.zeros_like(cos_sum)
    chunk = max(1, _ELEMENTS_PER_CHUNK // max(1, batch * steps))
    for start in range(0, neurons, chunk):
        spikes = raster[:, :, start : start + chunk]
        last = torch.where(spikes, index, -1).cummax(dim=1).values  # last spike <= t
        upcoming = torch.where(spikes, index, never).flip(1).cummin(dim=1).values.flip(1)  # next spike >= t
        # the next spike strictly after t is the "next spike >= t + 1"
        after = torch.cat((upcoming[:, 1:], torch.full_like(upcoming[:, :1], never)), dim=1)
        last, after = last[:, samples], after[:, samples]
        ok = (last >= 0) & (after < never)
        t = samples.view(1, -1, 1).to(torch.float64)
        phase = 2 * math.pi * (t - last) / (after - last).clamp(min=1)
        cos_sum += torch.where(ok, torch.cos(phase), 0.0).sum(-1)
        sin_sum += torch.where(ok, torch.sin(phase), 0.0).sum(-1)
        defined += ok.sum(-1)
    return torch.where(defined > 0, torch.hypot(cos_sum, sin_sum) / defined.clamp(min=1), 0.0)


def ordered_sum(values: torch.Tensor) -> torch.Tensor:
    """Sum over the last dim in element order: torch's CPU cumsum accumulates a float32 row in
    float64, one element after the other, so that a plain loop (the fused kernel's) gives the same
    bits; ``sum`` would add in an order of its own."""
    return values.cumsum(-1)[..., -1]


def causal_order(last_spike: torch.Tensor, last_isi: torch.Tensor, now: torch.Tensor) -> torch.Tensor:
    """Online Kuramoto estimate at step ``now`` [B] from each neuron's last spike
    step and last inter-spike interval (``[B, N]``, int; isi 0 = not yet known).
    Sums in neuron order and the modulus as sqrt(c^2 + s^2): the fused CPU kernel, which takes
    these samples itself, repeats every op."""
    ok = last_isi > 0
    phase = 2 * math.pi * (now.unsqueeze(1) - last_spike).to(torch.float32) / last_isi.clamp(min=1).to(torch.float32)
    count = ok.sum(-1)
    cos_sum = ordered_sum(torch.where(ok, torch.cos(phase), 0.0))
    sin_sum = ordered_sum(torch.where(ok, torch.sin(phase), 0.0))
    return torch.where(count > 0, (cos_sum * cos_sum + sin_sum * sin_sum).sqrt() / count.clamp(min=1), 0.0)
