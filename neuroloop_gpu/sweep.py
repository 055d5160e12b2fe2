"""The open-loop FTSTS waveform over a grid of settings: the tuned open-loop baseline.

A closed-loop controller has to beat the best open-loop setting, not only the
published one. :func:`run_sweep` runs the FTSTS phase pair at every
amplitude x frequency x phase width of a :class:`SweepConfig` on the same
seeds, all points and seeds in one batched simulation (it is one
:func:`~neuroloop_gpu.evaluation.evaluate` with one open-loop controller per
point). Every point follows the lasting-effect protocol: stimulation from
``stim_onset_s`` until the latch (mean J_I*w < ``latch_mv``) or the budget,
then ``followup_s`` with the stimulator off.

Per point (mean and 95 % interval over seeds): whether and when the latch
trips, the energy and charge delivered (all of it before the latch, since the
latch ends stimulation for good), R while stimulating and R in the follow-up.
:meth:`SweepResult.tuned` picks, within each set of action bounds
(:data:`BOUNDS`), the point with the least mean energy among those that
latch on at least ``latch_fraction`` of their networks: the ``ftsts-tuned``
baselines (:mod:`neuroloop_gpu.control.controllers`).
"""

from __future__ import annotations

import csv
import itertools
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from .config import NetworkParams, is_finite, require
from .control.controllers import OpenLoopFTSTS
from .envs import LASTING_BUDGET_S, LASTING_FOLLOWUP_S, LASTING_LATCH_MV, ActionBounds
from .evaluation import EvaluationConfig, _json_ready, evaluate, mean_interval
from .stimulus import FTSTS_FREQUENCY_HZ

# Phase width allowed by each set of bounds (amplitude and frequency: the agent's box, 10-200 mV, 5-180 Hz).
# "neuroloop": NeuroLoop's action box (50-500 us), what the PPO agent may choose; "1ms": phases up to the
# published protocol's 1 ms.
BOUNDS = {"neuroloop": ActionBounds(), "1ms": ActionBounds(pulse_width=(ActionBounds.pulse_width[0], 1000.0))}
SWEEP_METRICS = (
    "latch_reached",
    "time_to_latch_s",
    "energy_mv2ms",
    "charge_mvms",
    "kop_before",
    "kop_stimulating",
    "kop_followup",
    "weight_final_mv",
)
FILES = {"json": "sweep.json", "csv": "sweep.csv", "figure": "sweep.png"}


def _values(name: str, values: tuple, allowed: str, ok) -> None:
    require(
        isinstance(values, tuple)
        and len(values) >= 1
        and len(set(values)) == len(values)
        and all(is_finite(v) and ok(v) for v in values),
        name,
        f"a non-empty tuple of distinct {allowed}",
        values,
    )


@dataclass(frozen=True)
class SweepConfig:
    """The grid and the protocol every point is run with (times in s)."""

    amplitudes_mv: tuple[float, ...] = (25.0, 50.0, 75.0, 100.0, 150.0, 200.0)
    frequencies_hz: tuple[float, ...] = (20.0, 50.0, FTSTS_FREQUENCY_HZ, 130.0, 180.0)
    pulse_widths_us: tuple[float, ...] = (100.0, 250.0, 500.0, 1000.0)
    seeds: tuple[int, ...] = tuple(range(2_000_000, 2_000_003))  # disjoint from training (< 1e6) and evaluation
    network: NetworkParams = field(default_factory=NetworkParams)  # the full 1600 E / 400 I network
    stim_onset_s: float = 2.0  # s without stimulation first (the published onset)
    stim_budget_s: float = LASTING_BUDGET_S  # s of stimulation at most
    followup_s: float = LASTING_FOLLOWUP_S  # s with the stimulator off at the end
    latch_mv: float = LASTING_LATCH_MV  # mV, stimulation ends for good once mean J_I*w falls below it
    latch_fraction: float = 0.9  # a tuned point must latch on at least this fraction of its networks
    dtype: str = "float32"

    def __post_init__(self) -> None:
        _values("amplitudes_mv", self.amplitudes_mv, "amplitudes > 0 (mV)", lambda v: v > 0)
        _values("frequencies_hz", self.frequencies_hz, "frequencies > 0 (Hz)", lambda v: v > 0)
        _values("pulse_widths_us", self.pulse_widths_us, "phase widths > 0 (us)", lambda v: v > 0)
        require(0 < self.latch_fraction <= 1, "latch_fraction", "in (0, 1]", self.latch_fraction)
        require(
            len(self.points) >= 1,
            "pulse_widths_us",
            f"at least one width that fits two phases in a period of the frequencies {self.frequencies_hz}",
            self.pulse_widths_us,
        )
        self.evaluation  # validates seeds, network and times

    @property
    def points(self) -> list[tuple[float, float, float]]:
        """(amplitude mV, frequency Hz, phase width us) of every grid point whose phase pair fits its period."""
        grid = itertools.product(self.amplitudes_mv, self.frequencies_hz, self.pulse_widths_us)
        return [(a, f, w) for a, f, w in grid if 2 * w <= 1e6 / f]

    @property
    def evaluation(self) -> EvaluationConfig:
        return EvaluationConfig(
            seeds=self.seeds,
            network=self.network,
            stim_onset_s=self.stim_onset_s,
            duration_s=self.stim_onset_s + self.stim_budget_s + self.followup_s,
            stim_budget_s=self.stim_budget_s,
            followup_s=self.followup_s,
            latch_mv=self.latch_mv,
            latch_ends_stimulation=True,
            raster_ms=0.0,
            dtype=self.dtype,
        )

    def to_dict(self) -> dict:
        return {**asdict(self), "seeds": list(self.seeds)}

    @classmethod
    def from_dict(cls, data: dict) -> "SweepConfig":
        tuples = ("amplitudes_mv", "frequencies_hz", "pulse_widths_us", "seeds")
        network = NetworkParams.from_dict(data["network"])
        return cls(**{**data, **{k: tuple(data[k]) for k in tuples}, "network": network})


def point_name(amplitude: float, frequency: float, pulse_width: float) -> str:
    return f"A{amplitude:g}-f{frequency:.4g}-pw{pulse_width:g}"


@dataclass
class SweepResult:
    """Per point and seed metrics of one sweep; summaries and the tuned points derive from them."""

    config: SweepConfig
    per_network: dict[str, np.ndarray]  # SWEEP_METRICS name -> [points, seeds]
    device: str
    backend: str
    versions: dict[str, str]
    wall_time_s: float

    def summary(self) -> list[dict]:
        """One entry per point: its settings and {metric: {mean, low, high, n}} over seeds."""
        rows = []
        for p, (amplitude, frequency, width) in enumerate(self.config.points):
            metrics = {m: mean_interval(self.per_network[m][p]) for m in SWEEP_METRICS}
            rows.append(
                {"amplitude_mv": amplitude, "frequency_hz": frequency, "pulse_width_us": width, "metrics": metrics}
            )
        return rows

    def tuned(self) -> dict[str, dict | None]:
        """Bounds name -> the cheapest point (least mean energy) within those bounds that latches on at
        least ``latch_fraction`` of its networks, or None when no point does."""
        best = {}
        for name, bounds in BOUNDS.items():
            inside = [
                row
                for row in self.summary()
                if all(
                    getattr(bounds, k)[0] <= row[f"{k}_{unit}"] <= getattr(bounds, k)[1]
                    for k, unit in (("amplitude", "mv"), ("frequency", "hz"), ("pulse_width", "us"))
                )
                and row["metrics"]["latch_reached"]["mean"] >= self.config.latch_fraction
            ]
            best[name] = min(inside, key=lambda row: row["metrics"]["energy_mv2ms"]["mean"], default=None)
        return best

    def save(self, out_dir: Path | str) -> dict[str, Path]:
        """Write ``sweep.json`` (config, points, tuned points, per-network values) and ``sweep.csv``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {kind: out / name for kind, name in FILES.items() if kind != "figure"}
        document = {
            "config": self.config.to_dict(),
            "bounds": {name: asdict(b) for name, b in BOUNDS.items()},
            "points": self.summary(),
            "tuned": self.tuned(),
            "per_network": {m: v.tolist() for m, v in self.per_network.items()},
            "device": self.device,
            "backend": self.backend,
            "versions": self.versions,
            "wall_time_s": self.wall_time_s,
        }
        paths["json"].write_text(json.dumps(_json_ready(document), indent=1, allow_nan=False))
        with paths["csv"].open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(
                ["amplitude_mv", "frequency_hz", "pulse_width_us"]
                + [f"{m}_{k}" for m in SWEEP_METRICS for k in ("mean", "low", "high", "n")]
            )
            for row in self.summary():
                writer.writerow(
                    [row["amplitude_mv"], row["frequency_hz"], row["pulse_width_us"]]
                    + [row["metrics"][m][k] for m in SWEEP_METRICS for k in ("mean", "low", "high", "n")]
                )
        return paths

    @classmethod
    def load(cls, out_dir: Path | str) -> "SweepResult":
        path = Path(out_dir) / FILES["json"]
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: not a sweep folder")
        document = json.loads(path.read_text())
        per_network = {m: np.array(v, dtype=np.float64) for m, v in document["per_network"].items()}  # None -> nan
        return cls(
            SweepConfig.from_dict(document["config"]),
            per_network,
            document["device"],
            document["backend"],
            document["versions"],
            document["wall_time_s"],
        )


def run_sweep(
    config: SweepConfig | None = None,
    *,
    device: torch.device | str | None = None,
    backend: str = "auto",
    progress: bool = True,
) -> SweepResult:
    """Every grid point on every seed, in one batched simulation."""
    config = config or SweepConfig()
    controllers = {
        point_name(*p): OpenLoopFTSTS(amplitude=p[0], frequency=p[1], pulse_width=p[2], latch_mv=config.latch_mv)
        for p in config.points
    }
    result = evaluate(controllers, config.evaluation, device=device, backend=backend, progress=progress)
    metrics = result.network_metrics()
    return SweepResult(
        config,
        {m: np.asarray(metrics[m], dtype=np.float64) for m in SWEEP_METRICS},
        result.device,
        result.backend,
        result.versions,
        result.wall_time_s,
    )


def sweep_file(path: Path | str) -> Path:
    """The ``sweep.json`` that ``path`` names: the file itself, or the one in that folder."""
    path = Path(path)
    return path / FILES["json"] if path.is_dir() else path


def tuned_settings(document: dict, bounds: str = "neuroloop") -> dict[str, float]:
    """amplitude, frequency and pulse_width of a sweep document's tuned point within ``bounds``."""
    require(bounds in BOUNDS, "bounds", " or ".join(map(repr, BOUNDS)), bounds)
    point = document.get("tuned", {}).get(bounds)
    require(
        point is not None,
        "sweep",
        f"a sweep with a tuned point within the {bounds!r} bounds (no point latched often enough)",
        None,
    )
    return {
        "amplitude": point["amplitude_mv"],
        "frequency": point["frequency_hz"],
        "pulse_width": point["pulse_width_us"],
    }
