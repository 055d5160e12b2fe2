"""The published open-loop FTSTS protocol, run on a batch of networks.

Stimulation switches on at ``onset`` with a fixed pulse train and is switched
off for good ("latched") once the mean E->I weight J_I * w crosses the
latch threshold: below it for the depressing FTSTS waveform, above it for the
swapped (potentiating) one. By default the threshold is the waveform's
published one (75 mV for FTSTS, 125 mV for the swapped waveform). The latch
is checked at the end of every decision window (20 ms by default).

:data:`MODELS` names the two variants of the model spec: ``"paper"`` (the
paper's equations, the default everywhere) and ``"published-code"`` (what the
authors' stored open-loop run was made with: stimulation-locked E noise,
stimulation from 1.98 s, plasticity from 80 ms).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from .config import NetworkParams, is_finite, require, require_positive
from .network import NetworkBatch
from .stimulus import (
    FTSTS_AMPLITUDE_MV,
    FTSTS_FREQUENCY_HZ,
    FTSTS_PULSE_WIDTH_US,
    PUBLISHED_LATCH_MV,
    WAVEFORM_POLARITY,
    PulseTrain,
)
from .synchrony import kuramoto_order

Waveform = Literal["ftsts", "swapped", "none"]

# Published full-size result (model spec): Kuramoto order parameter of E.
PUBLISHED = {
    "kop_before": 0.74,
    "kop_during": [0.11, 0.13],
    "kop_after": [0.02, 0.05],
    "stim_off_time_s": 16.0,
}


@dataclass(frozen=True)
class OpenLoopProtocol:
    waveform: Waveform = "ftsts"
    amplitude: float = FTSTS_AMPLITUDE_MV  # mV
    frequency: float = FTSTS_FREQUENCY_HZ  # Hz (12 ms period)
    pulse_width: float = FTSTS_PULSE_WIDTH_US  # us per phase
    onset: float = 2000.0  # ms, stimulation switches on
    # mV, stop for good once mean J_I * w crosses this (None: never); "published" becomes the
    # waveform's published threshold: 75 (ftsts), 125 (swapped), None (none)
    latch_mv: float | str | None = "published"

    def __post_init__(self) -> None:
        require(
            self.waveform in ("ftsts", "swapped", "none"), "waveform", "'ftsts', 'swapped' or 'none'", self.waveform
        )
        require(
            is_finite(self.amplitude) and self.amplitude >= 0, "amplitude", "a finite number >= 0 (mV)", self.amplitude
        )
        require(is_finite(self.onset) and self.onset >= 0, "onset", "a finite number >= 0 (ms)", self.onset)
        if self.latch_mv == "published":
            object.__setattr__(self, "latch_mv", PUBLISHED_LATCH_MV.get(WAVEFORM_POLARITY.get(self.waveform)))
        if self.latch_mv is not None:
            require_positive("latch_mv", self.latch_mv)


@dataclass(frozen=True)
class ModelVariant:
    """A named variant of the model: what it changes in :class:`NetworkParams` and where the
    open-loop protocol switches stimulation on."""

    description: str
    stim_noise_e: float  # mV, NetworkParams.stim_noise_e
    stim_noise_i: float  # mV, NetworkParams.stim_noise_i
    plasticity_onset: float  # ms, NetworkParams.plasticity.onset
    stim_onset: float  # ms, OpenLoopProtocol.onset

    def network(self, params: NetworkParams | None = None) -> NetworkParams:
        """``params`` (default: the published full-size network) with this variant's noise and plasticity onset."""
        params = params or NetworkParams()
        return dataclasses.replace(
            params,
            stim_noise_e=self.stim_noise_e,
            stim_noise_i=self.stim_noise_i,
            plasticity=dataclasses.replace(params.plasticity, onset=self.plasticity_onset),
        )

    def protocol(self, **overrides) -> "OpenLoopProtocol":
        """The open-loop protocol with this variant's stimulation onset (``overrides``: any other field)."""
        return OpenLoopProtocol(**{"onset": self.stim_onset, **overrides})


MODELS = {
    # the paper's equations (its Figure 3): every default of the package
    "paper": ModelVariant(
        "the paper's equations (Figure 3): no stimulation-locked noise, stimulation from 2 s, plasticity from 100 ms",
        0.0,
        0.0,
        100.0,
        2000.0,
    ),
    # the authors' MATLAB code as published (folder "Figures 3, 4, 6, and 7"), which made their stored
    # open-loop data: its active E equation is the "to make Figure 6" one, + ON * 10 * randn per neuron
    # and step; ON = (i * 20 >= 2000) switches on with the sample covering 1980-2000 ms; plasticity
    # from the sample i * 20 >= 100, i.e. from 80 ms. Its latch is checked before each sample against
    # the previous sample's end weights, as run_open_loop does after each window.
    "published-code": ModelVariant(
        "the authors' published code: + 10 mV x N(0,1) per E neuron and step while "
        "stimulating, stimulation from 1.98 s, plasticity from 80 ms",
        10.0,
        0.0,
        80.0,
        1980.0,
    ),
}


@dataclass
class OpenLoopRun:
    """Per-window results of an open-loop run (arrays are [windows, B])."""

    window_ms: float
    step_ms: float
    seeds: list[int]
    stats: dict[str, np.ndarray]  # WindowStats fields per window
    stimulating: np.ndarray  # bool, stimulation delivered in the window
    stim_off_time_ms: list[float | None]  # per network, when the latch switched stimulation off
    spikes_e: list[np.ndarray] = field(default_factory=list)  # per window: packed E raster [B, steps, ceil(num_e/8)]
    num_e: int = 0
    wall_time_s: float = 0.0
    # offline R per (network, sample_ms): the summary and the figure both need it, and it costs
    # about a second per simulated second of a full-size network
    kop_cache: dict[tuple[int, float], np.ndarray] = field(default_factory=dict, repr=False, compare=False)


def run_open_loop(net: NetworkBatch, protocol: OpenLoopProtocol, windows: int, *, progress: bool = True) -> OpenLoopRun:
    """Run ``windows`` decision windows of ``protocol`` on every network of ``net``."""
    batch, device = net.num_networks, net.device
    polarity = WAVEFORM_POLARITY.get(protocol.waveform, 1.0)
    amplitude = 0.0 if protocol.waveform == "none" else protocol.amplitude
    latched = torch.zeros(batch, dtype=torch.bool, device=device)
    off_time = torch.full((batch,), float("nan"), dtype=torch.float64, device=device)
    window_ms = net.sim.sample_duration
    per_window: dict[str, list[torch.Tensor]] = {}
    stimulating, rasters = [], []
    start = time.perf_counter()
    bar = tqdm(range(windows), desc=f"simulate {protocol.waveform}", unit="window", disable=not progress)
    for w in bar:
        window_start = w * window_ms
        active = (~latched) & torch.tensor(window_start >= protocol.onset, device=device) & (amplitude > 0)
        train = PulseTrain.constant(batch, amplitude, protocol.frequency, protocol.pulse_width, polarity, device)
        train.amplitude = torch.where(active, train.amplitude, 0.0)
        result = net.run_window(train)
        stats = result.stats
        if protocol.latch_mv is not None:
            crossed = stats.weight_mv < protocol.latch_mv if polarity > 0 else stats.weight_mv > protocol.latch_mv
            newly = active & crossed
            off_time = torch.where(newly, window_start + window_ms, off_time)
            latched |= newly
        for name, value in vars(stats).items():
            per_window.setdefault(name, []).append(value.detach().to("cpu", torch.float64))
        stimulating.append(active.cpu())
        if result.recording.spikes_e is not None:
            rasters.append(np.packbits(result.recording.spikes_e.cpu().numpy(), axis=-1))
        if progress and w % 10 == 9:
            bar.set_postfix(kop=f"{float(stats.kop.mean()):.2f}", w_mV=f"{float(stats.weight_mv.mean()):.0f}")
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return OpenLoopRun(
        window_ms=window_ms,
        step_ms=net.sim.step_size,
        seeds=net.state.seed.cpu().tolist(),
        stats={name: torch.stack(values).numpy() for name, values in per_window.items()},
        stimulating=torch.stack(stimulating).numpy(),
        stim_off_time_ms=[None if np.isnan(t) else float(t) for t in off_time.cpu().tolist()],
        spikes_e=rasters,
        num_e=net.params.num_e,
        wall_time_s=time.perf_counter() - start,
    )


def offline_kop(run: OpenLoopRun, network: int, sample_ms: float = 1.0) -> np.ndarray:
    """Offline Kuramoto order parameter of one network over the whole run, sampled every ``sample_ms``."""
    if not run.spikes_e:
        raise ValueError("the run has no E spike raster: build the NetworkBatch with RecordConfig(spikes_e=True)")
    if (network, sample_ms) not in run.kop_cache:
        run.kop_cache[network, sample_ms] = _offline_kop(run, network, sample_ms)
    return run.kop_cache[network, sample_ms]


def _offline_kop(run: OpenLoopRun, network: int, sample_ms: float) -> np.ndarray:
    packed = np.concatenate([window[network] for window in run.spikes_e], axis=0)
    raster = torch.from_numpy(np.unpackbits(packed, axis=-1, count=run.num_e).astype(bool))
    every = max(1, round(sample_ms / run.step_ms))
    return kuramoto_order(raster.unsqueeze(0), sample_every=every)[0].numpy()


def _per_second(values: np.ndarray, per_second: int) -> list[float]:
    seconds = len(values) // per_second
    return values[: seconds * per_second].reshape(seconds, per_second).mean(axis=1).tolist()


def _mean_between(values: np.ndarray, sample_ms: float, start_ms: float, stop_ms: float) -> float | None:
    lo, hi = int(round(start_ms / sample_ms)), int(round(stop_ms / sample_ms))
    return float(values[lo:hi].mean()) if hi > lo else None


def summarize(run: OpenLoopRun, protocol: OpenLoopProtocol, *, device: str, sample_ms: float = 1.0) -> dict:
    """JSON-ready summary: per-network curves and the before / during / after phases."""
    windows_per_second = max(1, round(1000.0 / run.window_ms))
    duration_ms = run.stats["kop"].shape[0] * run.window_ms
    networks = []
    for b, seed in enumerate(run.seeds):
        kop = offline_kop(run, b, sample_ms) if run.spikes_e else None
        off = run.stim_off_time_ms[b]
        stim_on = protocol.onset if protocol.waveform != "none" and protocol.onset < duration_ms else None
        entry = {
            "seed": seed,
            "stim_off_time_s": None if off is None else off / 1000.0,
            "mean_weight_per_second": _per_second(run.stats["weight_mv"][:, b], windows_per_second),
            "chi_per_second": _per_second(run.stats["chi"][:, b], windows_per_second),
            "rate_e_hz": float(run.stats["rate_e"][:, b].mean()),
            "rate_i_hz": float(run.stats["rate_i"][:, b].mean()),
            "energy_mv2ms": float(run.stats["energy"][:, b].sum()),
            "charge_mvms": float(run.stats["charge"][:, b].sum()),
            "final_weight_mv": float(run.stats["weight_mv"][-1, b]),
        }
        if kop is not None:
            end_stim = off if off is not None else duration_ms
            entry["kop_per_second"] = _per_second(kop, round(1000.0 / sample_ms))
            entry["kop_before"] = _mean_between(kop, sample_ms, 0.0, stim_on if stim_on is not None else duration_ms)
            entry["kop_during"] = None if stim_on is None else _mean_between(kop, sample_ms, stim_on, end_stim)
            entry["kop_after"] = None if off is None else _mean_between(kop, sample_ms, off, duration_ms)
        networks.append(entry)
    first = networks[0]
    # top level: network 0's curves, phases and stimulation-off time (those of the figure); the rates,
    # energy, charge and final weight are means over the networks; every network's values are in "networks"
    summary = {key: first[key] for key in first if key != "seed"}
    if len(networks) > 1:
        for key in ("rate_e_hz", "rate_i_hz", "energy_mv2ms", "charge_mvms", "final_weight_mv"):
            summary[key] = float(np.mean([n[key] for n in networks]))
    summary.update(
        {
            "protocol": asdict(protocol),
            "num_networks": len(networks),
            "duration_s": duration_ms / 1000.0,
            "wall_time_s": run.wall_time_s,
            "simulated_s_per_wall_s": len(networks) * duration_ms / 1000.0 / max(run.wall_time_s, 1e-9),
            "device": device,
            "networks": networks,
            "published": PUBLISHED,
        }
    )
    return summary
