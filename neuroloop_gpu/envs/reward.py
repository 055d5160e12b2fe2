"""Reward of one decision window (configurable terms, documented defaults).

    desynchronise:  r = -(s * S + coupling_weight * W + energy_weight * E) + weight_credit * (W_prev - W)
                        + latch_bonus * L
    synchronise:    r = -(s * (1 - S) + coupling_weight * (1 - W) + energy_weight * E) + weight_credit * (W - W_prev)
                        + latch_bonus * L

with s = synchrony_weight in the stimulation phase and
s = followup_synchrony_weight in the follow-up (the windows after the
stimulation phase has ended, see ``EpisodeConfig.followup``). W_prev is the
weight fraction at the end of the previous window (at reset: the episode's
start weight), so an episode's weight credits add up to
weight_credit * (W_start - W_end) whatever the path: the credit for lowering
the weight is paid window by window as it happens (a potential-based
shaping whose final potential is kept, so the final weight is part of the
objective, as the cause of the lasting effect it is).

L is 1 in the window whose end trips the latch (``EpisodeConfig.latch_mv``), else 0: a
one-off prize for reaching the lasting state within the stimulation budget, which the weight credit
alone pays no more for than for the same fall after the budget.

S is the window's synchrony (causal Kuramoto R by default, or chi) and W the
mean E->I weight as a fraction of its range (observation feature 5), both in
[0, 1]. E is the window's stimulation energy (integral of u^2) divided by
:func:`max_window_energy`, the mean energy per window of the strongest train
the bounds allow (highest amplitude, frequency and width), or
``energy_scale_mv2ms`` where given: a fixed price of energy, the same whatever
the bounds (the lasting task uses the NeuroLoop box's 144,000 mV^2 ms, so that
agents with wider bounds pay the same for a pulse). E is not capped at
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
    weight_credit: float = 0.0  # reward per unit decrease of the weight fraction within a window
    followup_synchrony_weight: float = 0.0  # penalty on synchrony in the follow-up windows (replaces synchrony_weight)
    latch_bonus: float = 0.0  # reward in the window that trips the latch (EpisodeConfig.latch_mv)
    energy_scale_mv2ms: float | None = None  # E's unit; None: the strongest train of the env's bounds (see below)

    def __post_init__(self) -> None:
        require(
            self.target in ("desynchronise", "synchronise"),
            "reward.target",
            "'desynchronise' or 'synchronise'",
            self.target,
        )
        require(self.synchrony in ("kop", "chi"), "reward.synchrony", "'kop' or 'chi'", self.synchrony)
        for name in (
            "synchrony_weight",
            "coupling_weight",
            "energy_weight",
            "weight_credit",
            "followup_synchrony_weight",
            "latch_bonus",
        ):
            value = getattr(self, name)
            require(
                isinstance(value, (int, float)) and value >= 0 and value < float("inf"),
                f"reward.{name}",
                "a finite number >= 0",
                value,
            )
        scale = self.energy_scale_mv2ms
        require(
            scale is None or (isinstance(scale, (int, float)) and 0 < scale < float("inf")),
            "reward.energy_scale_mv2ms",
            "None or a finite number > 0 (mV^2 ms)",
            scale,
        )


def max_window_energy(bounds: ActionBounds, window_ms: float) -> float:
    """Mean mV^2 ms per window of the strongest allowed train (one window may hold a pulse more)."""
    duty = 2 * bounds.pulse_width[1] * 1e-6 * bounds.frequency[1]  # fraction of time stimulating
    return bounds.amplitude[1] ** 2 * duty * window_ms


def reward(
    config: RewardConfig,
    synchrony: torch.Tensor,
    weight: torch.Tensor,
    energy: torch.Tensor,
    energy_scale: float,
    *,
    previous_weight: torch.Tensor | None = None,
    followup: torch.Tensor | None = None,
    latched: torch.Tensor | None = None,
) -> torch.Tensor:
    """[B] reward from [B] synchrony (0..1), weight fraction (0..1) and energy (mV^2 ms).

    ``previous_weight`` [B] (the weight fraction a window started from) is needed when
    ``weight_credit`` > 0; ``followup`` [B] bool marks follow-up windows (default: none); ``latched``
    [B] bool the windows that tripped the latch, needed when ``latch_bonus`` > 0.
    """
    if config.target == "synchronise":
        synchrony, weight = 1.0 - synchrony, 1.0 - weight
        previous_weight = None if previous_weight is None else 1.0 - previous_weight
    synchrony_weight = torch.as_tensor(config.synchrony_weight, dtype=synchrony.dtype, device=synchrony.device)
    if followup is not None:
        synchrony_weight = torch.where(followup, config.followup_synchrony_weight, synchrony_weight)
    cost = synchrony_weight * synchrony + config.coupling_weight * weight + config.energy_weight * energy / energy_scale
    if config.weight_credit:
        require(
            previous_weight is not None,
            "previous_weight",
            "the [B] weight fractions the window started from (reward.weight_credit > 0)",
            previous_weight,
        )
        cost = cost - config.weight_credit * (previous_weight - weight)
    if config.latch_bonus:
        require(
            latched is not None,
            "latched",
            "the [B] bools marking the windows that tripped the latch (reward.latch_bonus > 0)",
            latched,
        )
        cost = cost - config.latch_bonus * latched.to(cost.dtype)
    return (-cost).to(torch.float32)
