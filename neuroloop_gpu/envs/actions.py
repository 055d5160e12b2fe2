"""The agent's action: a normalised box mapped to amplitude, frequency and pulse width."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..config import require
from ..stimulus import PulseTrain


@dataclass(frozen=True)
class ActionBounds:
    """Physical range of each action component (NeuroLoop's defaults).

    The agent acts in [-1, 1]^3; -1 maps to the low and +1 to the high end of
    each range, linearly. Values outside [-1, 1] are clipped to it.
    """

    amplitude: tuple[float, float] = (10.0, 200.0)  # mV
    frequency: tuple[float, float] = (5.0, 180.0)  # Hz
    pulse_width: tuple[float, float] = (50.0, 500.0)  # us per phase

    def __post_init__(self) -> None:
        for name in ("amplitude", "frequency", "pulse_width"):
            low, high = getattr(self, name)
            require(
                0 <= low < high < float("inf") and (name == "amplitude" or low > 0),
                f"bounds.{name}",
                "a pair (low, high) with 0 <= low < high (low > 0 for frequency and pulse_width)",
                (low, high),
            )
        max_width_us = 1e6 / (2 * self.frequency[1])
        require(
            self.pulse_width[1] <= max_width_us,
            "bounds.pulse_width",
            f"at most half the shortest period, {max_width_us:g} us at {self.frequency[1]:g} Hz",
            self.pulse_width,
        )

    def normalised(self, amplitude, frequency, pulse_width) -> np.ndarray:
        """The action in [-1, 1] that asks for these settings (mV, Hz, us per phase), float32 ``[..., 3]``.

        Scalars give one action, arrays broadcast to a batch; settings outside the bounds are refused
        (the env would clip them to the nearest bound).
        """
        settings = np.stack(
            np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (amplitude, frequency, pulse_width))),
            axis=-1,
        )
        low, high = (np.array(x) for x in zip(self.amplitude, self.frequency, self.pulse_width))
        require(
            bool(np.all(np.isfinite(settings)) and np.all((settings >= low) & (settings <= high))),
            "settings",
            f"within the bounds amplitude {self.amplitude} mV, frequency {self.frequency} Hz, "
            f"pulse_width {self.pulse_width} us",
            settings.tolist(),
        )
        return (2.0 * (settings - low) / (high - low) - 1.0).astype(np.float32)

    def physical(self, action) -> np.ndarray:
        """The settings ``[..., 3]`` (mV, Hz, us per phase) that an action ``[..., 3]`` gives, as the env
        applies it (clipped to [-1, 1] first)."""
        low, high = (np.array(x) for x in zip(self.amplitude, self.frequency, self.pulse_width))
        return low + (np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0) + 1.0) / 2.0 * (high - low)

    def lows_highs(self, device, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
        """[3] low and high ends (mV, Hz, us); build once and keep on the device."""
        ranges = (self.amplitude, self.frequency, self.pulse_width)
        low = torch.tensor([r[0] for r in ranges], dtype=dtype, device=device)
        high = torch.tensor([r[1] for r in ranges], dtype=dtype, device=device)
        return low, high


def to_normalised(physical: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """[B, 3] (mV, Hz, us) -> [B, 3] float32 actions in [-1, 1], settings outside [low, high] clipped: the
    action that :func:`to_physical` maps back to them."""
    return (2.0 * (physical.to(low.dtype) - low) / (high - low) - 1.0).clamp(-1.0, 1.0).to(torch.float32)


def to_physical(action: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """[B, 3] normalised actions -> [B, 3] (mV, Hz, us), clipped to [low, high]."""
    unit = (action.to(low.dtype).clamp(-1.0, 1.0) + 1.0) / 2.0
    return low + unit * (high - low)


def pulse_train(physical: torch.Tensor) -> PulseTrain:
    """The FTSTS-polarity pulse train of [B, 3] physical settings (amplitude 0 switches a network off)."""
    return PulseTrain(
        amplitude=physical[:, 0],
        frequency=physical[:, 1],
        pulse_width=physical[:, 2],
        polarity=torch.ones_like(physical[:, 0]),
    )
