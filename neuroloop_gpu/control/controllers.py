"""Stimulation controllers behind one batched interface.

A controller turns what :class:`~neuroloop_gpu.envs.DBSCore` reported after
a decision window into the pulse train of the next window, for B networks at
once, with tensor operations on the core's device only (no loop over
networks, no host synchronisation), so it runs inside the same batched
evaluation as the trained policy.

| name | controller | what it does |
|---|---|---|
| ``none`` | :class:`NoStimulation` | amplitude 0 throughout |
| ``ftsts`` | :class:`OpenLoopFTSTS` | the published protocol, latched off once J_I*w < 75 mV |
| ``ftsts-tuned`` | :class:`TunedFTSTS` | the cheapest FTSTS setting of the full-size sweep within NeuroLoop's bounds |
| ``ftsts-tuned-1ms`` | :class:`TunedFTSTS1ms` | the same with phases up to the published 1 ms |
| ``ftsts-scheduled`` | :class:`WeightScheduledFTSTS` | the FTSTS train, its amplitude chosen from the observed weight |
| ``ftsts-scheduled-1ms`` | :class:`WeightScheduledFTSTS1ms` | the same with 1 ms phases (published width) |
| ``hf-dbs`` | :class:`HighFrequencyDBS` | continuous clinical-style 130 Hz, 60 us, 200 mV |
| ``threshold`` | :class:`ThresholdStimulation` | a fixed train on while synchrony is high (hysteresis) |
| ``pi`` | :class:`ProportionalIntegral` | PI on synchrony drives the amplitude, anti-windup |

Every pulse is the FTSTS phase pair of :mod:`neuroloop_gpu.stimulus` (the
only waveform this model has: I gets +A then -A, E the mirror image), so the
controllers differ in amplitude, rate, width and when they stimulate.
"""

from __future__ import annotations

import abc
import json
import math
from dataclasses import asdict, dataclass, fields
from importlib import resources
from pathlib import Path

import torch

from ..config import PlasticityParams, is_finite, require
from ..stimulus import FTSTS_AMPLITUDE_MV, FTSTS_FREQUENCY_HZ, FTSTS_PULSE_WIDTH_US, PUBLISHED_LATCH_MV, PulseTrain


class Controller(abc.ABC):
    """Batched closed-loop stimulation policy.

    Contract, per episode of B networks that start together:

    * ``reset(num_envs, device)`` once at episode start (clears all state);
    * ``act(observation, info)`` once per decision window, before it runs.
      ``observation`` is DBSCore's ``[B, 6]`` float32 observation (feature 0
      synchrony in [0, 1], feature 5 the mean E->I weight fraction); before
      the first window it is the fresh-reset observation. ``info`` is the
      previous window's ``CoreStep.info`` (``[B]`` tensors in physical units:
      ``weight_mv``, ``kop``, ``stimulating``, ...) and is the empty dict
      ``{}`` before the first window of an episode.
    * It returns a :class:`PulseTrain` of ``[B]`` float64 tensors on the
      observation's device. The core still gates it (amplitude 0 before the
      episode's stimulation onset), and ``info["stimulating"]`` /
      ``info["amplitude_mv"]`` report what was actually delivered.

    A trained policy that maps observations to the agent's normalised
    actions plugs in through the environment's own mapping::

        class Policy(Controller):
            name = "ppo"
            def reset(self, num_envs, device):
                self.low, self.high = ActionBounds().lows_highs(device)
            def act(self, observation, info):
                physical = to_physical(self.actor(observation), self.low, self.high)
                return pulse_train(physical)
    """

    name: str = "controller"
    synchrony: str | None = None  # measure observation feature 0 must hold ("kop", "chi"); None: either

    @abc.abstractmethod
    def reset(self, num_envs: int, device: torch.device | str) -> None:
        """Start an episode of ``num_envs`` networks on ``device``."""

    @abc.abstractmethod
    def act(self, observation: torch.Tensor, info: dict[str, torch.Tensor]) -> PulseTrain:
        """The pulse train of the next window for every network."""

    def describe(self) -> dict:
        """JSON-ready name and parameters, for reports."""
        return {"controller": self.name}


@dataclass(frozen=True)
class TrainParams:
    """A biphasic pulse train of fixed timing (FTSTS phase pair, see ``stimulus.py``)."""

    amplitude: float = FTSTS_AMPLITUDE_MV  # mV per phase, >= 0
    frequency: float = FTSTS_FREQUENCY_HZ  # Hz, pulses per second
    pulse_width: float = FTSTS_PULSE_WIDTH_US  # us per phase, at most half the period
    polarity: float = 1.0  # +1 FTSTS (I depolarised first), -1 swapped (E first)

    def __post_init__(self) -> None:
        self._require(is_finite(self.amplitude) and self.amplitude >= 0, "amplitude", "a finite number >= 0 (mV)")
        self._require(is_finite(self.frequency) and self.frequency > 0, "frequency", "a finite number > 0 (Hz)")
        half_period_us = 1e6 / (2 * self.frequency) if self.frequency > 0 else math.inf
        self._require(
            is_finite(self.pulse_width) and 0 < self.pulse_width <= half_period_us,
            "pulse_width",
            f"> 0 and at most half the period, {half_period_us:g} us at {self.frequency:g} Hz",
        )
        self._require(self.polarity in (1, -1), "polarity", "+1 (FTSTS) or -1 (swapped)")

    def _require(self, condition: bool, name: str, allowed: str) -> None:
        require(condition, f"{type(self).__name__}.{name}", allowed, getattr(self, name))

    def constant(self, batch: int, device: torch.device | str, amplitude: float | None = None) -> PulseTrain:
        """This train on ``batch`` networks (amplitude overridable)."""
        return PulseTrain.constant(
            batch,
            self.amplitude if amplitude is None else amplitude,
            self.frequency,
            self.pulse_width,
            self.polarity,
            device,
        )


class _FixedTrainController(Controller):
    """A controller that switches one :class:`TrainParams` train on and off per network."""

    params_type: type[TrainParams] = TrainParams

    def __init__(self, params: TrainParams | None = None, **overrides: float):
        require(
            params is None or (isinstance(params, self.params_type) and not overrides),
            "params",
            f"a {self.params_type.__name__} (or keyword overrides, not both)",
            params,
        )
        if params is None:
            allowed = [f.name for f in fields(self.params_type)]
            unknown = sorted(set(overrides) - set(allowed))
            require(not unknown, f"{self.name} parameter", f"one of {allowed}", unknown[0] if unknown else None)
            params = self.params_type(**overrides)
        self.params = params

    def reset(self, num_envs: int, device: torch.device | str) -> None:
        self.train = self.params.constant(num_envs, device)  # frequency, width, polarity never change
        self.zeros = torch.zeros_like(self.train.amplitude)

    def _switched(self, on: torch.Tensor) -> PulseTrain:
        """The train where ``on`` ([B] bool), amplitude 0 elsewhere."""
        amplitude = torch.where(on, self.train.amplitude, self.zeros)
        return PulseTrain(amplitude, self.train.frequency, self.train.pulse_width, self.train.polarity)

    def describe(self) -> dict:
        return {"controller": self.name, **asdict(self.params)}


class NoStimulation(Controller):
    """Amplitude 0 in every window: the untreated, synchronous network."""

    name = "none"

    def __init__(self, **params: float):
        require(not params, "none parameter", "absent (no stimulation has no parameters)", sorted(params))

    def reset(self, num_envs: int, device: torch.device | str) -> None:
        self.train = PulseTrain.off(num_envs, device)

    def act(self, observation: torch.Tensor, info: dict[str, torch.Tensor]) -> PulseTrain:
        return self.train


@dataclass(frozen=True)
class FTSTSParams(TrainParams):
    """The published open-loop protocol: 100 mV, 1 ms phases, 12 ms period (83.3 Hz).

    ``latch_mv="published"`` becomes the polarity's published threshold
    (:data:`PUBLISHED_LATCH_MV`: 75 mV, or 125 mV for the swapped waveform).
    """

    latch_mv: float | str | None = "published"  # mV; off for good once mean J_I*w crosses it (None: never)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.latch_mv == "published":
            object.__setattr__(self, "latch_mv", PUBLISHED_LATCH_MV[self.polarity])
        self._require(
            self.latch_mv is None or (is_finite(self.latch_mv) and self.latch_mv > 0),
            "latch_mv",
            "'published', None or a finite number > 0 (mV)",
        )


class OpenLoopFTSTS(_FixedTrainController):
    """Schmalz & Kumar's FTSTS train, switched off for good by the weight latch.

    The latch trips per network when a window that delivered stimulation ends
    with mean J_I*w below ``latch_mv`` (above it for the swapped polarity),
    exactly as :func:`neuroloop_gpu.open_loop.run_open_loop` does, so this
    controller on DBSCore reproduces the open-loop run. Its 1000 us phases lie
    outside the agent's action box on purpose: it is the published baseline.
    """

    name = "ftsts"
    params_type = FTSTSParams

    def reset(self, num_envs: int, device: torch.device | str) -> None:
        super().reset(num_envs, device)
        self.latched = torch.zeros(num_envs, dtype=torch.bool, device=device)

    def act(self, observation: torch.Tensor, info: dict[str, torch.Tensor]) -> PulseTrain:
        latch = self.params.latch_mv
        if latch is not None and info:
            below = info["weight_mv"] < latch if self.params.polarity > 0 else info["weight_mv"] > latch
            self.latched = self.latched | (info["stimulating"] & below)
        return self._switched(~self.latched)


SHIPPED_SWEEP_FILE = "sweep_full.json"  # in neuroloop_gpu/policies: the full-size sweep (docs: results)


def shipped_sweep() -> Path:
    """The tuned points of the sweep this project ran at full size (``neuroloop sweep``), shipped in the package."""
    return Path(str(resources.files("neuroloop_gpu") / "policies" / SHIPPED_SWEEP_FILE))


class TunedFTSTS(OpenLoopFTSTS):
    """The FTSTS train at the cheapest setting of an open-loop sweep: the bar a closed-loop controller
    must clear (same waveform and latch as ``ftsts``, tuned amplitude, frequency and phase width).

    ``sweep`` is a ``sweep.json`` written by ``neuroloop sweep`` (or its folder); the default is the
    full-size sweep shipped with the package. Its tuned point within :attr:`bounds` (``"neuroloop"``:
    the agent's action box, phases up to 500 us) gives the parameters; keyword overrides change them.
    """

    name = "ftsts-tuned"
    bounds = "neuroloop"

    def __init__(self, params: FTSTSParams | None = None, *, sweep: Path | str | None = None, **overrides: float):
        self.sweep = Path(sweep) if sweep is not None else shipped_sweep()
        if params is None:
            from ..sweep import sweep_file, tuned_settings  # the sweep runs these controllers: not at the top

            path = sweep_file(self.sweep)
            try:
                document = json.loads(path.read_text())
            except (OSError, ValueError) as error:
                raise ValueError(
                    f"sweep must be a readable sweep.json (or its folder), got {str(path)!r}: {error}"
                ) from None
            overrides = {**tuned_settings(document, self.bounds), **overrides}
        super().__init__(params, **overrides)

    def describe(self) -> dict:
        return {**super().describe(), "sweep": str(self.sweep), "bounds": self.bounds}


class TunedFTSTS1ms(TunedFTSTS):
    """:class:`TunedFTSTS` within the wider bounds: phases up to the published protocol's 1 ms."""

    name = "ftsts-tuned-1ms"
    bounds = "1ms"


@dataclass(frozen=True)
class WeightScheduleParams(TrainParams):
    """The FTSTS train whose amplitude follows the mean E->I weight J_I*w (observation feature 5).

    Above ``switch_mv`` the weak ``amplitude``; from there down to ``off_below_mv`` the
    ``late_amplitude``; below ``off_below_mv`` no stimulation. The defaults come from the full-size
    depression map (docs: results, "How much a closed loop can save"): while the weights are high,
    40 mV at 83 Hz with 500 us phases is the cheapest train per mV of depression; below about 150 mV
    it no longer depresses fast enough and 50 mV is cheaper per mV.
    """

    amplitude: float = 40.0  # mV per phase while J_I*w > switch_mv
    frequency: float = FTSTS_FREQUENCY_HZ
    pulse_width: float = 500.0  # us per phase: the top of NeuroLoop's range
    switch_mv: float = 150.0  # mV of J_I*w at which the amplitude steps up
    late_amplitude: float = 50.0  # mV per phase while off_below_mv <= J_I*w <= switch_mv
    off_below_mv: float = PUBLISHED_LATCH_MV[1]  # mV of J_I*w below which the train is off

    def __post_init__(self) -> None:
        super().__post_init__()
        self._require(self.polarity == 1, "polarity", "+1 (the schedule is measured for the FTSTS waveform)")
        self._require(
            is_finite(self.late_amplitude) and self.late_amplitude >= 0, "late_amplitude", "a finite number >= 0 (mV)"
        )
        self._require(
            is_finite(self.off_below_mv) and self.off_below_mv >= 0, "off_below_mv", "a finite number >= 0 (mV)"
        )
        self._require(
            is_finite(self.switch_mv) and self.switch_mv >= self.off_below_mv,
            "switch_mv",
            f"a finite number >= off_below_mv={self.off_below_mv} (mV)",
        )


class WeightScheduledFTSTS(_FixedTrainController):
    """A hand-made closed loop: the FTSTS train at the amplitude :class:`WeightScheduleParams` assigns
    to the weight the last observation reports.

    It has no memory: the weight is read from observation feature 5 in every window (the fraction of
    the default plasticity bounds, 10-290 mV), so the train comes back on if the weight climbs back
    above ``off_below_mv``. In the lasting task the core's latch ends its stimulation as it ends
    every controller's. Being a function of the observation alone, it can also be imitated by a
    policy (``neuroloop train --imitate ftsts-scheduled``).
    """

    name = "ftsts-scheduled"
    params_type = WeightScheduleParams

    def reset(self, num_envs: int, device: torch.device | str) -> None:
        super().reset(num_envs, device)
        bounds = PlasticityParams()
        self.weight_low, self.weight_span = bounds.w_min_mv, bounds.w_max_mv - bounds.w_min_mv
        self.late = torch.full_like(self.train.amplitude, self.params.late_amplitude)

    def act(self, observation: torch.Tensor, info: dict[str, torch.Tensor]) -> PulseTrain:
        p = self.params
        weight_mv = self.weight_low + self.weight_span * observation[:, 5].to(torch.float64)
        amplitude = torch.where(weight_mv > p.switch_mv, self.train.amplitude, self.late)
        amplitude = torch.where(weight_mv >= p.off_below_mv, amplitude, self.zeros)
        return PulseTrain(amplitude, self.train.frequency, self.train.pulse_width, self.train.polarity)


@dataclass(frozen=True)
class WeightSchedule1msParams(WeightScheduleParams):
    """:class:`WeightScheduleParams` for 1 ms phases, from the full-size depression map of 1000 us
    trains (docs: results, "With 1 ms phases"): 15 mV while J_I*w > 180 mV, then 25 mV (the
    open-loop ``ftsts-tuned-1ms`` amplitude) down to the latch.
    """

    amplitude: float = 15.0
    pulse_width: float = 1000.0  # us per phase: the published protocol's width
    switch_mv: float = 180.0
    late_amplitude: float = 25.0


class WeightScheduledFTSTS1ms(WeightScheduledFTSTS):
    """:class:`WeightScheduledFTSTS` with 1 ms phases: the hand-made bar for controllers allowed the
    published width (``--max-pulse-width 1000``)."""

    name = "ftsts-scheduled-1ms"
    params_type = WeightSchedule1msParams


@dataclass(frozen=True)
class HFDBSParams(TrainParams):
    """Continuous clinical-style high-frequency DBS.

    60 us at 130 Hz is the most common clinical setting. The default
    amplitude is the top of the agent's action range (200 mV), so the
    clinical baseline is not weaker than what the agent may deliver; its
    energy is still about 0.37x that of the FTSTS train (duty 1.6 % vs 17 %).
    """

    amplitude: float = 200.0  # mV
    frequency: float = 130.0  # Hz, at least 100 (high frequency)
    pulse_width: float = 60.0  # us per phase, 60-90 (clinical range)

    def __post_init__(self) -> None:
        super().__post_init__()
        self._require(self.frequency >= 100, "frequency", "a number >= 100 Hz (high-frequency DBS)")
        self._require(60 <= self.pulse_width <= 90, "pulse_width", "in [60, 90] us (clinical range)")


class HighFrequencyDBS(_FixedTrainController):
    """Continuous high-frequency stimulation, on in every window."""

    name = "hf-dbs"
    params_type = HFDBSParams

    def act(self, observation: torch.Tensor, info: dict[str, torch.Tensor]) -> PulseTrain:
        return self.train


@dataclass(frozen=True)
class ThresholdParams(TrainParams):
    """On-demand stimulation with the FTSTS train, switched by measured synchrony.

    Defaults suit the causal Kuramoto estimate: about 0.2-0.35 per window in
    the untreated 160/40 network (0.6-0.75 at full size), about 0.13 while
    the FTSTS train runs.
    """

    upper: float = 0.3  # synchrony (observation 0, 0..1) above which stimulation switches on
    lower: float = 0.2  # synchrony below which it switches off again; lower <= upper

    def __post_init__(self) -> None:
        super().__post_init__()
        self._require(is_finite(self.upper) and 0 <= self.upper <= 1, "upper", "in [0, 1]")
        self._require(is_finite(self.lower) and 0 <= self.lower <= self.upper, "lower", f"in [0, upper={self.upper}]")


class ThresholdStimulation(_FixedTrainController):
    """Adaptive (on-demand) DBS: on above ``upper``, off below ``lower``, else unchanged."""

    name = "threshold"
    params_type = ThresholdParams

    def reset(self, num_envs: int, device: torch.device | str) -> None:
        super().reset(num_envs, device)
        self.on = torch.zeros(num_envs, dtype=torch.bool, device=device)

    def act(self, observation: torch.Tensor, info: dict[str, torch.Tensor]) -> PulseTrain:
        synchrony = observation[:, 0]
        self.on = (synchrony > self.params.upper) | (self.on & (synchrony >= self.params.lower))
        return self._switched(self.on)


@dataclass(frozen=True)
class PIParams(TrainParams):
    """PI control of the amplitude of the FTSTS train on the synchrony error.

    Per window: e = synchrony - target, I = clamp(I + ki * e, 0, amplitude),
    A = clamp(kp * e + I, 0, amplitude). Clamping the integral to the output
    range is the anti-windup: after a long saturation the amplitude follows
    a change of sign of e at once. Gains are per decision window (20 ms by
    default), hand-set, not tuned.
    """

    amplitude: float = FTSTS_AMPLITUDE_MV  # mV, the largest amplitude the controller may command
    target: float = 0.15  # synchrony (observation 0) the controller steers to, 0..1
    kp: float = 500.0  # mV per unit synchrony error
    ki: float = 25.0  # mV per unit synchrony error per decision window

    def __post_init__(self) -> None:
        super().__post_init__()
        self._require(is_finite(self.target) and 0 <= self.target <= 1, "target", "in [0, 1]")
        for name in ("kp", "ki"):
            self._require(is_finite(getattr(self, name)) and getattr(self, name) >= 0, name, "a finite number >= 0")


class ProportionalIntegral(_FixedTrainController):
    """Proportional-integral amplitude control with integrator clamping."""

    name = "pi"
    params_type = PIParams

    def reset(self, num_envs: int, device: torch.device | str) -> None:
        super().reset(num_envs, device)
        self.integral = torch.zeros(num_envs, dtype=torch.float64, device=device)  # mV

    def act(self, observation: torch.Tensor, info: dict[str, torch.Tensor]) -> PulseTrain:
        p = self.params
        error = observation[:, 0].to(torch.float64) - p.target
        self.integral = (self.integral + p.ki * error).clamp(0.0, p.amplitude)
        amplitude = (p.kp * error + self.integral).clamp(0.0, p.amplitude)
        return PulseTrain(amplitude, self.train.frequency, self.train.pulse_width, self.train.polarity)


CONTROLLERS: dict[str, type[Controller]] = {
    cls.name: cls
    for cls in (
        NoStimulation,
        OpenLoopFTSTS,
        TunedFTSTS,
        TunedFTSTS1ms,
        WeightScheduledFTSTS,
        WeightScheduledFTSTS1ms,
        HighFrequencyDBS,
        ThresholdStimulation,
        ProportionalIntegral,
    )
}


def make_controller(name: str, **params: float) -> Controller:
    """The controller registered as ``name`` with keyword parameter overrides."""
    require(name in CONTROLLERS, "controller", f"one of {sorted(CONTROLLERS)}", name)
    return CONTROLLERS[name](**params)
