"""A second way to compute what the package reports: the plain reference network plus NumPy formulas.

Nothing here goes through the batched simulator, its monitors, the stimulus renderer or the
closed-loop core. What is shared is the injected input only, as in ``tests/test_equivalence.py``:
each network's connectivity (read from the batch under test) and its membrane noise (the same
Philox draws). The stimulus is written here from the model spec (biphasic pulses of a constant
train, each Euler step getting the exact average of the waveform over the step), and every
per-window value (voltage statistics, chi, causal Kuramoto R, rates, weight, energy, charge) is
computed from the per-step potentials, spikes and weights that the reference network produces.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from neuroloop_gpu.config import NetworkParams
from neuroloop_gpu.reference import ReferenceNetwork
from neuroloop_gpu.rng import STREAM_MEMBRANE_NOISE, standard_normal


@dataclass(frozen=True)
class Train:
    """A constant biphasic pulse train (I gets +A then -A for ``width_ms`` each; E the mirror image)."""

    amplitude: float  # mV
    frequency: float  # Hz
    width_us: float  # per phase

    @property
    def period_ms(self) -> float:
        return 1000.0 / self.frequency

    @property
    def width_ms(self) -> float:
        return self.width_us * 1e-3


def overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def window_stimulus(train: Train, onsets: list[float], start_ms: float, steps: int, dt: float):
    """Per-step current into I [steps] (exact step averages), energy (mV^2 ms) and charge (mV ms) of
    the pulses starting at ``onsets`` (ms) within the window [start_ms, start_ms + steps * dt)."""
    w, a = train.width_ms, train.amplitude
    current = np.zeros(steps)
    stimulating_ms = 0.0
    end = start_ms + steps * dt
    for onset in onsets:
        if onset + 2 * w <= start_ms or onset >= end:
            continue
        stimulating_ms += overlap(onset, onset + 2 * w, start_ms, end)
        first = max(0, int(math.floor((onset - start_ms) / dt)) - 1)
        last = min(steps, int(math.ceil((onset + 2 * w - start_ms) / dt)) + 1)
        for k in range(first, last):
            t0 = start_ms + k * dt
            up = overlap(onset, onset + w, t0, t0 + dt)
            down = overlap(onset + w, onset + 2 * w, t0, t0 + dt)
            current[k] += a * (up - down) / dt
    return current, a * a * stimulating_ms, a * stimulating_ms


def golomb_chi(v: np.ndarray) -> float:
    """chi of voltages [steps, neurons]: sqrt(Var_t(mean_i V) / mean_i Var_t(V_i))."""
    denominator = v.var(axis=0).mean()
    return math.sqrt(v.mean(axis=1).var() / denominator) if denominator > 0 else 0.0


def causal_kuramoto(stamps: list[list[int]], now: int) -> float:
    """Online R at step ``now`` from each neuron's spike stamps (step count after the spiking step):
    phase 2 pi (now - last) / (last interval); neurons with fewer than two spikes left out."""
    c = s = 0.0
    count = 0
    for neuron in stamps:
        if len(neuron) < 2:
            continue
        isi = neuron[-1] - neuron[-2]
        phase = 2 * math.pi * (now - neuron[-1]) / isi
        c += math.cos(phase)
        s += math.sin(phase)
        count += 1
    return math.hypot(c, s) / count if count else 0.0


@dataclass
class WindowRecord:
    """What the reference did in one window of one network, and the values computed from it."""

    v_e: np.ndarray  # [steps, num_e] mV after each step
    v_i: np.ndarray  # [steps, num_i]
    spikes_e: np.ndarray  # [steps, num_e] bool
    spikes_i: np.ndarray  # [steps, num_i] bool
    weight_steps_mv: np.ndarray  # [steps] mean J_I*w after each step
    stats: dict[str, float] = field(default_factory=dict)


class ReferenceBatch:
    """One :class:`ReferenceNetwork` per network of a batch, with the batch's connectivity and noise."""

    def __init__(self, net, seeds: list[int], episodes: list[int] | None = None, total_steps: int = 0):
        self.params: NetworkParams = net.params
        self.dt = net.sim.step_size
        self.steps = net.sim.steps_per_window
        self.kop_every = net.kop_every
        p = self.params
        ne, ni = p.num_e, p.num_i
        ei_pre = net.connectivity.local("ei_pre", ne + 1).cpu().numpy()
        ei_post = net.connectivity.local("ei_post", ni + 1).cpu().numpy()
        ie_pre = net.connectivity.local("ie_pre", ni + 1).cpu().numpy()
        ie_post = net.connectivity.local("ie_post", ne + 1).cpu().numpy()
        self.refs, self.noise, self.ei = [], [], []
        episodes = episodes or [0] * len(seeds)
        for b, seed in enumerate(seeds):
            ei = np.zeros((ne, ni), dtype=bool)
            ie = np.zeros((ni, ne), dtype=bool)
            real = ei_post[b] < ni
            ei[ei_pre[b][real], ei_post[b][real]] = True
            real = ie_post[b] < ne
            ie[ie_pre[b][real], ie_post[b][real]] = True
            self.ei.append(ei)
            self.refs.append(ReferenceNetwork(p, self.dt, ei, ie))
            noise = standard_normal(
                torch.tensor([seed]),
                STREAM_MEMBRANE_NOISE,
                torch.arange(total_steps).view(1, -1),
                torch.tensor([[episodes[b]]], dtype=torch.int64),
                ne + ni,
                torch.float64,
            )
            self.noise.append(noise[0].numpy())
        self.stamps = [[[] for _ in range(ne)] for _ in seeds]
        self.n = 0  # steps run

    def weight_mv(self, b: int) -> float:
        ref = self.refs[b]
        return self.params.j_i * float(ref.w[self.ei[b]].mean())

    def run_window(self, currents: list[np.ndarray], energies, charges) -> list[WindowRecord]:
        """One window of every network under its per-step current into I (E gets the negative)."""
        p, steps, dt = self.params, self.steps, self.dt
        records = []
        for b, ref in enumerate(self.refs):
            rec = WindowRecord(
                np.zeros((steps, p.num_e)),
                np.zeros((steps, p.num_i)),
                np.zeros((steps, p.num_e), bool),
                np.zeros((steps, p.num_i), bool),
                np.zeros(steps),
            )
            kop_samples = []
            for k in range(steps):
                n = self.n + k
                noise = self.noise[b][n]
                rec.spikes_e[k], rec.spikes_i[k] = ref.step(float(currents[b][k]), noise[: p.num_e], noise[p.num_e :])
                rec.v_e[k], rec.v_i[k] = ref.v_e, ref.v_i
                rec.weight_steps_mv[k] = self.weight_mv(b)
                for neuron in np.flatnonzero(rec.spikes_e[k]):
                    self.stamps[b][neuron].append(n + 1)
                if (k + 1) % self.kop_every == 0:
                    kop_samples.append(causal_kuramoto(self.stamps[b], n + 1))
            seconds = steps * dt * 1e-3
            rec.stats = {
                "kop": float(np.mean(kop_samples)),
                "chi": golomb_chi(rec.v_e),
                "v_e_mean_mv": float(rec.v_e.mean()),
                "v_e_std_mv": float(rec.v_e.std()),
                "v_i_mean_mv": float(rec.v_i.mean()),
                "v_i_std_mv": float(rec.v_i.std()),
                "weight_mv": self.weight_mv(b),
                "rate_e_hz": float(rec.spikes_e.sum()) / (p.num_e * seconds),
                "rate_i_hz": float(rec.spikes_i.sum()) / (p.num_i * seconds),
                "energy_mv2ms": float(energies[b]),
                "charge_mvms": float(charges[b]),
            }
            records.append(rec)
        self.n += steps
        return records


def onsets_between(train: Train, first_ms: float, stop_ms: float) -> list[float]:
    """Pulse onsets first_ms, first_ms + T, ... before stop_ms."""
    count = max(0, math.ceil((stop_ms - first_ms) / train.period_ms - 1e-12))
    return [first_ms + i * train.period_ms for i in range(count)]


def run_schedule(
    net,
    seeds: list[int],
    trains: list[Train | None],
    enabled: list[list[bool]],
    windows: int,
    episodes: list[int] | None = None,
) -> list[list[WindowRecord]]:
    """[window][network] records of the reference networks of ``net`` (its connectivity for ``seeds``)
    under constant ``trains`` (None: never on) switched on in the windows where ``enabled[b][w]``
    (one contiguous stretch per network: pulses every period from its first window, none started
    after it; a started pulse completes)."""
    ref = ReferenceBatch(net, seeds, episodes, total_steps=windows * net.sim.steps_per_window)
    window_ms = net.sim.sample_duration
    out = []
    for w in range(windows):
        start = w * window_ms
        currents, energies, charges = [], [], []
        for b, train in enumerate(trains):
            on = [v for v, flag in enumerate(enabled[b]) if flag]
            if train is None or not on or on[0] > w:
                currents.append(np.zeros(ref.steps))
                energies.append(0.0)
                charges.append(0.0)
                continue
            assert on == list(range(on[0], on[-1] + 1)), "one contiguous stretch of stimulation"
            stop = min((on[-1] + 1) * window_ms, start + window_ms)
            current, energy, charge = window_stimulus(
                train, onsets_between(train, on[0] * window_ms, stop), start, ref.steps, ref.dt
            )
            currents.append(current)
            energies.append(energy)
            charges.append(charge)
        out.append(ref.run_window(currents, energies, charges))
    return out


FTSTS_TRAIN = Train(100.0, 1000.0 / 12.0, 1000.0)  # the published train: 100 mV, 12 ms period, 1 ms phases


def span_x(patch) -> tuple[float, float]:
    """x extent of an ``axvspan`` (a Rectangle from matplotlib 3.9, a Polygon before)."""
    if hasattr(patch, "get_width"):
        return patch.get_x(), patch.get_x() + patch.get_width()
    xs = np.asarray(patch.get_xy())[:, 0]
    return float(xs.min()), float(xs.max())
