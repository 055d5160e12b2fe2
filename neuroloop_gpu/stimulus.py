"""Biphasic pulse trains, delivered to each Euler step as their exact average.

A pulse is the FTSTS phase pair of width ``pw``: the I population gets +A for
``pw`` then -A for ``pw``; the E population gets the mirror image (-A, then
+A), so I is depolarised one phase before E. ``polarity=-1`` swaps the two
(the potentiating protocol). Each network has its own amplitude, frequency,
width and polarity per decision window.

Exactness: with ``g`` the antiderivative of one pulse of unit amplitude,

    g(s) = clip(s, 0, pw) - clip(s - pw, 0, pw)

the stimulus entering step [t, t + dt) is ``A * (G(t + dt) - G(t)) / dt``,
its exact time-average. Widths below ``dt`` keep their full charge, and every
complete pulse has zero net charge for any A, f, pw and dt.

Continuity across windows: the time since the last pulse onset is carried
over, so a 5 Hz train is a 5 Hz train even with 20 ms windows, and a pulse
that straddles a window boundary is completed with its own amplitude and
width before the next window's first pulse starts. An amplitude of 0 means
the stimulator is off: no pulse onsets.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

FTSTS_PERIOD_MS = 12.0  # published pulse period (1 ms + 1 ms + 10 ms neutral)
FTSTS_FREQUENCY_HZ = 1000.0 / FTSTS_PERIOD_MS
FTSTS_PULSE_WIDTH_US = 1000.0  # published phase width
FTSTS_AMPLITUDE_MV = 100.0

WAVEFORM_POLARITY = {"ftsts": 1.0, "swapped": -1.0}
# Published stop criterion per polarity (model spec): FTSTS stops once mean J_I*w < 75 mV, the swapped
# (potentiating) waveform once it is > 125 mV.
PUBLISHED_LATCH_MV = {1.0: 75.0, -1.0: 125.0}


@dataclass
class PulseTrain:
    """Stimulation settings of one window, one entry per network."""

    amplitude: torch.Tensor  # [B] mV, >= 0 (0 = off)
    frequency: torch.Tensor  # [B] Hz, > 0
    pulse_width: torch.Tensor  # [B] us per phase, > 0, 2 * width <= period
    polarity: torch.Tensor  # [B] +1: FTSTS (I first), -1: swapped (E first)

    @classmethod
    def constant(
        cls,
        batch: int,
        amplitude: float,
        frequency: float = FTSTS_FREQUENCY_HZ,
        pulse_width: float = FTSTS_PULSE_WIDTH_US,
        polarity: float = 1.0,
        device: torch.device | str = "cpu",
    ) -> "PulseTrain":
        def full(value: float) -> torch.Tensor:
            return torch.full((batch,), float(value), dtype=torch.float64, device=device)

        return cls(full(amplitude), full(frequency), full(pulse_width), full(polarity))

    @classmethod
    def off(cls, batch: int, device: torch.device | str = "cpu") -> "PulseTrain":
        return cls.constant(batch, 0.0, device=device)

    def check_shapes(self, batch: int, device: torch.device | str | None = None) -> None:
        """Raise ``ValueError`` for a field that is not a floating-point ``[batch]`` tensor, or not on
        ``device`` when one is given (no device read)."""
        device = None if device is None else torch.device(device)
        for item in fields(self):
            value = getattr(self, item.name)
            if not isinstance(value, torch.Tensor) or value.shape != (batch,) or not value.is_floating_point():
                got = f"{value.dtype} {tuple(value.shape)}" if isinstance(value, torch.Tensor) else type(value).__name__
                raise ValueError(
                    f"PulseTrain.{item.name} must be a floating-point tensor of shape ({batch},), got {got}"
                )
            if device is not None and (
                value.device.type != device.type or device.index is not None and value.device.index != device.index
            ):
                raise ValueError(f"PulseTrain.{item.name} must be on the networks' device {device}, got {value.device}")

    def validate(self, batch: int, device: torch.device | str | None = None) -> None:
        """Raise ``ValueError`` naming the offending field (host check, once per window)."""
        self.check_shapes(batch, device)
        self.check_values()

    def check_values(self) -> None:
        """Raise ``ValueError`` for a field with values out of range; the shapes checked first
        (:meth:`check_shapes`). Every condition is read from the device at once: one sync on a GPU."""
        finite = [(item.name, torch.isfinite(getattr(self, item.name)), "finite") for item in fields(self)]
        period_us = 1e6 / self.frequency.clamp_min(1e-300)
        in_range = [
            ("amplitude", self.amplitude >= 0, ">= 0 mV"),
            ("frequency", self.frequency > 0, "> 0 Hz"),
            (
                "pulse_width",
                (self.pulse_width > 0) & (2 * self.pulse_width <= period_us * (1 + 1e-12)),
                "> 0 us and at most half the pulse period (1e6 / (2 * frequency) us)",
            ),
            ("polarity", (self.polarity == 1) | (self.polarity == -1), "+1 (FTSTS) or -1 (swapped)"),
        ]
        checks = finite + in_range  # in this order: a NaN is reported as not finite
        passed = torch.stack([ok.all().to(self.amplitude.device) for _, ok, _ in checks]).tolist()
        for (name, ok, allowed), all_ok in zip(checks, passed):
            if not all_ok:  # name the first few offenders only: a batch may hold thousands of networks
                bad = (~ok).nonzero().flatten()
                shown = bad[:5].tolist()
                more = f" (and {bad.numel() - 5} more)" if bad.numel() > 5 else ""
                raise ValueError(
                    f"PulseTrain.{name} must be {allowed}, got {getattr(self, name)[shown].tolist()} "
                    f"for networks {shown}" + more
                )


@dataclass
class StimulatorState:
    """What a pulse train carries from one window into the next ([B], float64)."""

    since_onset: torch.Tensor  # ms since the last pulse onset (inf: none yet)
    amplitude: torch.Tensor  # mV of that last pulse
    width: torch.Tensor  # ms per phase of that last pulse
    polarity: torch.Tensor

    @classmethod
    def initial(cls, batch: int, device: torch.device | str) -> "StimulatorState":
        zeros = torch.zeros(batch, dtype=torch.float64, device=device)
        return cls(torch.full_like(zeros, float("inf")), zeros.clone(), zeros.clone(), torch.ones_like(zeros))

    def reset(self, mask: torch.Tensor) -> None:
        fresh = StimulatorState.initial(mask.shape[0], mask.device)
        for item in fields(self):
            setattr(self, item.name, torch.where(mask, getattr(fresh, item.name), getattr(self, item.name)))


@dataclass
class WindowStimulus:
    """A pulse train rendered onto the Euler steps of one window."""

    current_i: torch.Tensor  # [B, steps] mV, input to I neurons (E neurons get the negative)
    energy: torch.Tensor  # [B] mV^2 ms, integral of u_I^2 over the window
    charge: torch.Tensor  # [B] mV ms, integral of |u_I| over the window
    net_charge: torch.Tensor  # [B] mV ms, integral of u_I (0 for complete pulses)


def pulse_integral(s: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
    """Antiderivative g(s) of one unit biphasic pulse (+1 for width, then -1 for width)."""
    return s.clamp(min=0).minimum(width) - (s - width).clamp(min=0).minimum(width)


def pulse_abs_integral(s: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
    """Antiderivative of |pulse|: the time spent stimulating up to s."""
    return s.clamp(min=0).minimum(2 * width)


def render_window(
    train: PulseTrain, state: StimulatorState, steps: int, step_size: float
) -> tuple[WindowStimulus, StimulatorState]:
    """Exact per-step stimulus of one window and the carry-over into the next."""
    device = train.amplitude.device
    window = steps * step_size
    edges = torch.arange(steps + 1, dtype=torch.float64, device=device) * step_size  # [steps + 1]
    t = edges.unsqueeze(0)  # [1, steps + 1]
    col = lambda x: x.unsqueeze(1)  # noqa: E731  [B] -> [B, 1]

    # The pulse carried over from the previous window runs to its end.
    old_s = col(state.since_onset) + t
    old_width = col(state.width)
    old_g = pulse_integral(old_s, old_width) * col(state.amplitude * state.polarity)
    old_h = pulse_abs_integral(old_s, old_width)

    # This window's pulses: period T, first onset once the carried pulse is over.
    period = 1000.0 / train.frequency
    width = train.pulse_width * 1e-3
    on = train.amplitude > 0
    remaining = (2 * state.width - state.since_onset).clamp(min=0)
    first = torch.maximum(period - state.since_onset, remaining)
    since_first = t - col(first)
    phase = torch.where(since_first >= 0, since_first - col(period) * torch.floor(since_first / col(period)), -1.0)
    new_g = pulse_integral(phase, col(width)) * col(train.amplitude * train.polarity * on)

    onsets = torch.where(on & (first < window), torch.ceil((window - first) / period), 0.0)
    last_onset = first + (onsets - 1) * period
    new_stim_time = torch.where(
        onsets > 0, (onsets - 1) * 2 * width + pulse_abs_integral(window - last_onset, width), 0.0
    )

    g = old_g + new_g
    current_i = (g[:, 1:] - g[:, :-1]) / step_size
    old_stim_time = old_h[:, -1] - old_h[:, 0]
    energy = state.amplitude**2 * old_stim_time + train.amplitude**2 * new_stim_time
    charge = state.amplitude * old_stim_time + train.amplitude * new_stim_time

    fired = onsets > 0
    carry = StimulatorState(
        since_onset=torch.where(fired, window - last_onset, state.since_onset + window),
        amplitude=torch.where(fired, train.amplitude, state.amplitude),
        width=torch.where(fired, width, state.width),
        polarity=torch.where(fired, train.polarity, state.polarity),
    )
    return WindowStimulus(current_i, energy, charge, g[:, -1] - g[:, 0]), carry
