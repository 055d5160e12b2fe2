"""The six observation features of NeuroLoop's table, per decision window.

| index | feature | normalisation |
|---|---|---|
| 0 | synchrony (causal Kuramoto R, or chi) | as is, 0..1 |
| 1 | mean E membrane voltage | (V - V_rest) / (V_threshold - V_rest), 0..1 |
| 2 | std of E membrane voltage (over neurons and steps) | std / (V_threshold - V_rest), 0..1 |
| 3 | mean I membrane voltage | (V - V_rest) / (V_threshold - V_rest), 0..1 |
| 4 | std of I membrane voltage | std / (V_threshold - V_rest), 0..1 |
| 5 | mean E->I weight | (J_I w - w_min) / (w_max - w_min), 0..1 |

Voltages lie in [V_rest, V_threshold] (default [0, 20] mV: spikes reset, the
floor clamps), so the voltage features lie in [0, 1]; every feature is
clamped to [0, 1] all the same, the observation space's bounds.
"""

from __future__ import annotations

import torch

from ..config import NetworkParams
from ..network import WindowStats

OBSERVATION_NAMES = ("synchrony", "v_e_mean", "v_e_std", "v_i_mean", "v_i_std", "weight")


def weight_fraction(weight_mv: torch.Tensor, params: NetworkParams) -> torch.Tensor:
    stdp = params.plasticity
    return (weight_mv - stdp.w_min_mv) / (stdp.w_max_mv - stdp.w_min_mv)


def observe(stats: WindowStats, synchrony: torch.Tensor, params: NetworkParams) -> torch.Tensor:
    """[B, 6] float32 observation of one window."""
    rest, span = params.v_rest, params.v_threshold - params.v_rest
    features = (
        synchrony,
        (stats.v_e_mean - rest) / span,
        stats.v_e_std / span,
        (stats.v_i_mean - rest) / span,
        stats.v_i_std / span,
        weight_fraction(stats.weight_mv, params),
    )
    return torch.stack(features, dim=-1).to(torch.float32).clamp(0.0, 1.0)


def initial_observation(batch: int, params: NetworkParams, device: torch.device) -> torch.Tensor:
    """Observation of a freshly reset network: no synchrony yet, every V at V_reset, w = w_init
    (clamped as :func:`observe` clamps: w_init may lie outside the weight bounds)."""
    stdp = params.plasticity
    weight = torch.full((batch,), stdp.w_init * params.j_i, dtype=torch.float64, device=device)
    v = torch.full(
        (batch,),
        (params.v_reset - params.v_rest) / (params.v_threshold - params.v_rest),
        dtype=torch.float64,
        device=device,
    )
    zero = torch.zeros_like(v)
    features = (zero, v, zero, v, zero, weight_fraction(weight, params))
    return torch.stack(features, dim=-1).to(torch.float32).clamp(0.0, 1.0)
