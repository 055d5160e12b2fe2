"""Typed, validated configuration of the FTSTS network and its simulation.

Every default is the published value of Schmalz & Kumar (2019); units are in
the field comments. Configuration is frozen: state lives elsewhere
(:mod:`neuroloop_gpu.network.state`). Invalid values raise ``ValueError``
naming the parameter and the allowed range at construction time, so nothing
is ever half-built. The checks that need the Euler step (refractory period,
delay and plasticity onset as whole steps) run when a ``NetworkBatch`` is
built from a ``NetworkParams`` and a ``SimConfig``.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Literal

SynapticInput = Literal["published", "summed"]
NoiseScaling = Literal["published", "euler_maruyama"]

_STEP_TOLERANCE = 1e-9
MAX_SYNAPSE_MV = 1e30  # one synapse's strength J / C: far beyond physiology, still finite in float32
MAX_STEPS = 2**31 - 1  # Euler steps in one run or episode: spike times and noise counters are 32-bit integers


def require(condition: bool, name: str, allowed: str, value: object) -> None:
    """Raise a ``ValueError`` naming the parameter and its allowed range."""
    if not condition:
        raise ValueError(f"{name} must be {allowed}, got {value!r}")


def is_finite(value: float) -> bool:
    """A finite real number (Python or NumPy); not a boolean."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def require_positive(name: str, value: float) -> None:
    require(is_finite(value) and value > 0, name, "a finite number > 0", value)


def is_integer(value: object) -> bool:
    """Python and NumPy integers; not booleans."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def require_count(name: str, value: int, minimum: int = 1) -> None:
    require(
        is_integer(value) and value >= minimum,
        name,
        f"an integer >= {minimum}",
        value,
    )


def steps_in(duration: float, step_size: float, name: str, *, allow_zero: bool = False) -> int:
    """Number of Euler steps in ``duration``; it must be a whole multiple of the step."""
    require(is_finite(duration), name, f"a finite whole multiple of step_size={step_size} ms", duration)
    steps = round(duration / step_size)
    require(
        abs(steps * step_size - duration) <= _STEP_TOLERANCE * max(1.0, abs(duration))
        and (steps >= 1 or (allow_zero and steps == 0)),
        name,
        f"a {'non-negative' if allow_zero else 'positive'} whole multiple of step_size={step_size} ms",
        duration,
    )
    return steps


@dataclass(frozen=True)
class PlasticityParams:
    """Pair-based STDP on the E->I synapses (per-neuron traces)."""

    enabled: bool = True
    onset: float = 100.0  # ms; weights change only from this network time on
    tau_pre: float = 20.0  # ms, decay time of the presynaptic (E) trace
    tau_post: float = 22.0  # ms, decay time of the postsynaptic (I) trace
    trace_increment: float = 0.005  # added to a trace on a spike
    eta: float = 0.25  # learning rate
    a_ltd: float = -1.1  # depression factor, applied on an E (pre) spike
    a_ltp: float = 1.0  # potentiation factor, applied on an I (post) spike
    w_init: float = 1.0  # initial weight (dimensionless; J_I * w in mV)
    w_min_mv: float = 10.0  # mV, lower bound of J_I * w
    w_max_mv: float = 290.0  # mV, upper bound of J_I * w

    def __post_init__(self) -> None:
        require(isinstance(self.enabled, bool), "plasticity.enabled", "True or False", self.enabled)
        require(is_finite(self.w_init) and self.w_init >= 0, "plasticity.w_init", "a finite number >= 0", self.w_init)
        require(is_finite(self.onset) and self.onset >= 0, "plasticity.onset", "a finite number >= 0 (ms)", self.onset)
        for name in ("tau_pre", "tau_post", "eta", "w_min_mv"):
            require_positive(f"plasticity.{name}", getattr(self, name))
        require(
            is_finite(self.trace_increment) and self.trace_increment >= 0,
            "plasticity.trace_increment",
            "a finite number >= 0",
            self.trace_increment,
        )
        require(is_finite(self.a_ltd) and self.a_ltd <= 0, "plasticity.a_ltd", "a finite number <= 0", self.a_ltd)
        require(is_finite(self.a_ltp) and self.a_ltp >= 0, "plasticity.a_ltp", "a finite number >= 0", self.a_ltp)
        require(
            is_finite(self.w_max_mv) and self.w_max_mv > self.w_min_mv,
            "plasticity.w_max_mv",
            f"a finite number > w_min_mv={self.w_min_mv}",
            self.w_max_mv,
        )


@dataclass(frozen=True)
class NetworkParams:
    """The E-I network of leaky integrate-and-fire neurons (model spec)."""

    num_e: int = 1600  # excitatory neurons
    num_i: int = 400  # inhibitory neurons
    tau_m: float = 10.0  # ms, membrane time constant (both populations)
    v_rest: float = 0.0  # mV; also the floor below which V is clamped
    v_threshold: float = 20.0  # mV
    v_reset: float = 14.0  # mV, reset and initial potential
    refractory: float = 2.0  # ms, held at v_reset after a spike (the published code's float countdown holds 1.9)
    mu_e: float = 20.8  # mV, mean drive of E neurons
    sigma_e: float = 1.0  # mV, noise amplitude of E neurons
    mu_i: float = 18.0  # mV
    sigma_i: float = 3.0  # mV
    noise_scaling: NoiseScaling = "published"  # "published": dt*xi; "euler_maruyama": sqrt(dt)*xi
    # mV, stimulation-locked membrane noise: while a network's stimulator is on (its window's pulse train
    # has amplitude > 0) every E (I) neuron's dV/dt numerator gets stim_noise_e (_i) * xi, a fresh draw per
    # neuron and step, scaled like the sigma term (dt or sqrt(dt)) but without its sqrt(tau_m): the
    # published code's "Figure 6" E equation has 10 * randn (0.1 mV s.d. per 0.1 ms step); 0 = the paper
    stim_noise_e: float = 0.0
    stim_noise_i: float = 0.0
    connection_prob: float = 0.1  # probability of each ordered E->I and I->E pair
    j_e: float = 100.0  # mV, strength of I->E synapses (input to E neurons)
    j_i: float = 260.0  # mV, strength of E->I synapses (input to I neurons)
    coupling_fraction: float = 0.3  # C_E = C_I = coupling_fraction * (num_e + num_i)
    delay: float = 5.0  # ms, synaptic delay
    tau_d: float = 1.0  # ms, decay time of the synaptic filter S
    tau_r: float = 1.0  # ms, rise time of the synaptic filter X
    synaptic_input: SynapticInput = "published"  # coincident inputs: last wins, or summed
    plasticity: PlasticityParams = field(default_factory=PlasticityParams)

    def __post_init__(self) -> None:
        for name in ("num_e", "num_i"):
            require_count(name, getattr(self, name))
            object.__setattr__(self, name, int(getattr(self, name)))  # plain ints in sizes and JSON
        for name in ("tau_m", "refractory", "j_e", "j_i", "coupling_fraction", "delay", "tau_d", "tau_r"):
            require_positive(name, getattr(self, name))
        for name in ("v_rest", "v_threshold", "v_reset", "mu_e", "mu_i"):
            require(is_finite(getattr(self, name)), name, "a finite number (mV)", getattr(self, name))
        for name in ("sigma_e", "sigma_i", "stim_noise_e", "stim_noise_i"):
            require(
                is_finite(getattr(self, name)) and getattr(self, name) >= 0,
                name,
                "a finite number >= 0 (mV)",
                getattr(self, name),
            )
        require(
            self.v_rest <= self.v_reset < self.v_threshold,
            "v_reset",
            f"in [v_rest={self.v_rest}, v_threshold={self.v_threshold}) mV",
            self.v_reset,
        )
        require(
            is_finite(self.connection_prob) and 0 < self.connection_prob <= 1,
            "connection_prob",
            "in (0, 1]",
            self.connection_prob,
        )
        # J / C is one synapse's strength: it must stay a float32 number, or the potentials become inf - inf
        strongest = max(self.j_e, self.j_i) / self.coupling_norm
        require(
            strongest <= MAX_SYNAPSE_MV,
            "j_e, j_i and coupling_fraction",
            f"such that one synapse, max(j_e, j_i) / C with C = coupling_fraction * (num_e + num_i), is at most "
            f"{MAX_SYNAPSE_MV:g} mV",
            {"j_e": self.j_e, "j_i": self.j_i, "coupling_fraction": self.coupling_fraction},
        )
        require(
            self.noise_scaling in ("published", "euler_maruyama"),
            "noise_scaling",
            "'published' or 'euler_maruyama'",
            self.noise_scaling,
        )
        require(
            self.synaptic_input in ("published", "summed"),
            "synaptic_input",
            "'published' or 'summed'",
            self.synaptic_input,
        )
        require(isinstance(self.plasticity, PlasticityParams), "plasticity", "a PlasticityParams", self.plasticity)

    @property
    def coupling_norm(self) -> float:
        """C_E = C_I, the number the synaptic strengths are divided by."""
        return self.coupling_fraction * (self.num_e + self.num_i)

    @classmethod
    def from_dict(cls, data: dict) -> "NetworkParams":
        """The inverse of ``dataclasses.asdict`` (as saved in evaluation and sweep results)."""
        return cls(**{**data, "plasticity": PlasticityParams(**data["plasticity"])})

    @classmethod
    def small(cls, **overrides) -> "NetworkParams":
        """The reduced 160 E / 40 I network the closed-loop prototype trained on."""
        return cls(**{"num_e": 160, "num_i": 40, **overrides})


@dataclass(frozen=True)
class SimConfig:
    """Timing of a run, NeuroLoop's ``SimConfig`` (all times in ms)."""

    duration: float = 25_000.0  # ms, episode / run length
    step_size: float = 0.1  # ms, Euler step dt
    sample_duration: float = 20.0  # ms, one decision window
    seed: int | None = None  # base seed, network b of a batch uses seed + b; None: fresh entropy (as gymnasium)

    def __post_init__(self) -> None:
        require_positive("step_size", self.step_size)
        require_positive("sample_duration", self.sample_duration)
        require_positive("duration", self.duration)
        require(
            self.sample_duration / self.step_size <= MAX_STEPS,
            "step_size",
            f"at least sample_duration / {MAX_STEPS} ms (step counters are 32-bit)",
            self.step_size,
        )
        steps_in(self.sample_duration, self.step_size, "sample_duration")
        require(
            self.duration / self.step_size <= MAX_STEPS,
            "duration",
            f"at most {MAX_STEPS} steps of step_size={self.step_size} ms = {MAX_STEPS * self.step_size:.6g} ms "
            "(step counters are 32-bit)",
            self.duration,
        )
        require(
            self.duration >= self.sample_duration
            and abs(round(self.duration / self.sample_duration) * self.sample_duration - self.duration)
            <= _STEP_TOLERANCE * self.duration,
            "duration",
            f"a whole multiple of sample_duration={self.sample_duration} ms",
            self.duration,
        )
        require(
            self.seed is None or (is_integer(self.seed) and 0 <= self.seed < 2**63),
            "seed",
            "None or an integer in [0, 2**63)",
            self.seed,
        )
        if self.seed is not None:
            object.__setattr__(self, "seed", int(self.seed))  # a NumPy integer would overflow in seed + b

    @property
    def steps_per_window(self) -> int:
        return steps_in(self.sample_duration, self.step_size, "sample_duration")

    @property
    def num_windows(self) -> int:
        return round(self.duration / self.sample_duration)


@dataclass(frozen=True)
class RecordConfig:
    """What the simulator writes into its preallocated per-window buffers."""

    spikes_e: bool = False  # E spike raster [B, steps, num_e]
    traces: bool = False  # per-step mean V_E, mean V_I and mean E->I weight [B, steps]
