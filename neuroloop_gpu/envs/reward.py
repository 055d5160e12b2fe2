"""Reward of one decision window (configurable terms, documented defaults).

    desynchronise:  r = -(synchrony_weight * S + coupling_weight * W + energy_weight * E)
    synchronise:    r = -(synchrony_weight * (1 - S) + coupling_weight * (1 - W) + energy_weight * E)

S is the window's synchrony (causal Kuramoto R by default, or chi) and W the
mean E->I weight as a fraction of its range (observation feature 5), both in
[0, 1]. E is the window's stimulation energy (integral of u^2) divided by
:func:`max_window_energy`, the mean energy per window of the strongest train
the bounds allow (highest amplitude, frequency and width). E is not capped at
1: a window that holds more pulses than that mean exceeds it, most for short
windows and few pulses per window (at the defaults 180 Hz gives 3.6 pulses per
20 ms on average, and a window with 4 has E = 1.11). Doing nothing leaves S
and W high; stimulating hard costs E.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from ..config import require
from .actions import ActionBounds


@dataclass(frozen=True)
class RewardConfig:
    target: Literal["desynchronise", "synchronise"] = "desynchronise"
    synchrony: Literal["kop", "chi"] = "kop"  # causal Kuramoto R or Golomb chi
    synchrony_weight: float = 1.0
    coupling_weight: float = 0.5  # penalty on the mean E->I weight (the lasting cause of synchrony)
    energy_weight: float = 0.2

    def __post_init__(self) -> None:
        require(self.target in ("desynchronise", "synchronise"), "reward.target",
                "'desynchronise' or 'synchronise'", self.target)
        require(self.synchrony in ("kop", "chi"), "reward.synchrony", "'kop' or 'chi'", self.synchrony)
        for name in ("synchrony_weight", "coupling_weight", "energy_weight"):
            value = getattr(self, name)
            require(isinstance(value, (int, float)) and value >= 0 and value < float("inf"), f"reward.{name}",
                    "a finite number >= 0", value)


def max_window_energy(bounds: ActionBounds, window_ms: float) -> float:
    """Mean mV^2 ms per window of the strongest allowed train (one window may hold a pulse more)."""
    duty = 2 * bounds.pulse_width[1] * 1e-6 * bounds.frequency[1]  # fraction of time stimulating
    return bounds.amplitude[1] ** 2 * duty * window_ms


def reward(config: RewardConfig, synchrony: torch.Tensor, weight: torch.Tensor, energy: torch.Tensor,
           energy_scale: float) -> torch.Tensor:
    """[B] reward from [B] synchrony (0..1), weight fraction (0..1) and energy (mV^2 ms)."""
    if config.target == "synchronise":
        synchrony, weight = 1.0 - synchrony, 1.0 - weight
    cost = (config.synchrony_weight * synchrony + config.coupling_weight * weight
            + config.energy_weight * energy / energy_scale)
    return (-cost).to(torch.float32)
