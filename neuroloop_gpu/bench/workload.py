"""What every benchmark target and peer simulates: network sizes and the stimulus.

The workload is the published open-loop FTSTS setting with stimulation from
t = 0: the biphasic pulse train of 100 mV, 83.3 Hz (12 ms period) and 1 ms
phases, plasticity on from 100 ms, 20 ms decision windows of 200 Euler steps
of 0.1 ms. The environment targets instead step with uniformly random actions
(their per-window cost does not depend on the action).

This module needs only NumPy and the configuration dataclasses, so the peers
can use it without torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..config import NetworkParams

SIZES = {"small": (160, 40), "full": (1600, 400)}  # name -> (num_e, num_i)

STIM_AMPLITUDE_MV = 100.0
STIM_FREQUENCY_HZ = 1000.0 / 12.0
STIM_PULSE_WIDTH_US = 1000.0
WINDOW_MS = 20.0
STEP_MS = 0.1
GPU_TARGETS = {"full": 100_000, "small": 1_000_000}  # issue 5: env-steps/s of the simulator on a GPU

WORKLOAD = {
    "stimulus": "FTSTS pulse train from t = 0 (I: +A then -A; E: the mirror image)",
    "amplitude_mv": STIM_AMPLITUDE_MV,
    "frequency_hz": STIM_FREQUENCY_HZ,
    "pulse_width_us": STIM_PULSE_WIDTH_US,
    "window_ms": WINDOW_MS,
    "step_ms": STEP_MS,
    "plasticity_onset_ms": NetworkParams().plasticity.onset,
    "env_targets": "uniform random actions in [-1, 1]^3, 5 s episodes, autoreset",
}

_CUSTOM = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class Size:
    """A network size: a name ("small", "full" or "NE/NI") and its population sizes."""

    name: str
    num_e: int
    num_i: int

    def params(self, **overrides) -> NetworkParams:
        return NetworkParams(num_e=self.num_e, num_i=self.num_i, **overrides)


def parse_size(text: str) -> Size:
    """``"small"`` (160/40), ``"full"`` (1600/400) or ``"NE/NI"`` such as ``"40/10"``."""
    if isinstance(text, Size):
        return text
    if isinstance(text, str) and text in SIZES:
        return Size(text, *SIZES[text])
    match = _CUSTOM.match(text) if isinstance(text, str) else None
    if match is None or int(match.group(1)) < 1 or int(match.group(2)) < 1:
        raise ValueError(
            f"sizes must be 'small' (160/40), 'full' (1600/400) or 'NE/NI' with both >= 1 (e.g. '40/10'), got {text!r}"
        )
    num_e, num_i = int(match.group(1)), int(match.group(2))
    return Size(f"{num_e}/{num_i}", num_e, num_i)


def pulse_train_per_step(
    steps: int,
    step_ms: float = STEP_MS,
    amplitude: float = STIM_AMPLITUDE_MV,
    frequency: float = STIM_FREQUENCY_HZ,
    pulse_width_us: float = STIM_PULSE_WIDTH_US,
    polarity: float = 1.0,
) -> np.ndarray:
    """Input to the I population per Euler step (mV; E gets the negative), onsets at 0, T, 2T, ...

    Each entry is the exact average of the biphasic pulse over its step, as in
    :func:`neuroloop_gpu.stimulus.render_window`: with ``g`` the antiderivative
    of one unit pulse and ``G(t) = g(t mod T)`` (a whole pulse has zero net
    charge), step k receives ``A * (G(t_{k+1}) - G(t_k)) / dt``.
    """
    period = 1000.0 / frequency
    width = pulse_width_us * 1e-3
    t = np.arange(steps + 1, dtype=np.float64) * step_ms
    phase = t - period * np.floor(t / period)
    g = np.minimum(np.clip(phase, 0, None), width) - np.minimum(np.clip(phase - width, 0, None), width)
    return amplitude * polarity * np.diff(g) / step_ms
