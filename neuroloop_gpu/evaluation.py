"""Every controller on the same held-out networks, in one batched simulation.

One :class:`~neuroloop_gpu.envs.DBSCore` holds B = C x S networks for C
controllers and S seeds: controller c drives the slice ``[c*S, (c+1)*S)``,
and every slice holds the same S seeds, so all controllers meet identical
networks with identical noise (the simulator's draws depend only on seed,
episode, step and neuron). Each episode starts with ``stim_onset_s`` seconds
in which the core keeps every stimulator off, then the controllers act on
their own slices, window by window.

Per-window traces stay on the device in preallocated ``[windows, B]``
buffers and reach the host once at the end. E spike rasters are kept for
the first seed of each controller only, for ``raster_ms`` before the onset
and at the end of the episode: the simulator records the whole batch just
in those windows (``NetworkBatch.record`` is read per window), so there is
no second pass and no raster of the whole run.

Metrics are computed per network from the traces (:func:`network_metrics`)
and summarised per controller as the mean over seeds with a 95 % Student-t
interval (:func:`mean_interval`). The synchrony metrics use the simulator's
causal Kuramoto estimate averaged per window (the offline R needs every
network's full raster).
"""

from __future__ import annotations

import csv
import functools
import json
import math
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from .config import NetworkParams, RecordConfig, SimConfig, require, require_count
from .control import Controller, make_controller
from .envs import DBSCore, EpisodeConfig, RewardConfig
from .stimulus import PulseTrain

TRACES = (
    "kop",
    "chi",
    "weight_mv",
    "rate_e_hz",
    "energy_mv2ms",
    "charge_mvms",
    "amplitude_mv",
    "frequency_hz",
    "pulse_width_us",
    "stimulating",
)  # CoreStep.info keys recorded per window

METRICS = {  # name: definition (per network; reported as mean and 95 % t-interval over seeds)
    "kop_before": "Kuramoto order parameter R of E (causal estimate), mean over the last second before the onset",
    "kop_mean": "R, mean over the controlled period (from the onset to the end)",
    "kop_stimulating": "R, mean over the windows with stimulation on (networks never stimulated are left out)",
    "kop_followup": "R, mean over the stimulation-off follow-up (the last followup_s of the episode; "
    "only with a follow-up)",
    "kop_final": "R, mean over the final part of the episode (final_fraction)",
    "chi_mean": "Golomb voltage synchrony chi of E, mean over the controlled period",
    "chi_final": "chi, mean over the final part of the episode",
    "weight_final_mv": "mean E->I weight J_I*w at the end of the episode, mV",
    "time_to_latch_s": "s from stimulation onset to the end of the first window with mean J_I*w < latch_mv "
    "(networks that never get there are left out; see latch_reached)",
    "latch_reached": "fraction of networks whose mean J_I*w fell below latch_mv after the onset",
    "energy_mv2ms": "stimulation energy, integral of u^2 over the episode, mV^2 ms",
    "charge_mvms": "stimulation charge, integral of |u| over the episode, mV ms",
    "stimulating_fraction": "fraction of the controlled period's windows with stimulation on",
}

FILES = {"json": "evaluation.json", "csv": "evaluation.csv", "markdown": "evaluation.md", "npz": "evaluation.npz"}


@dataclass(frozen=True)
class EvaluationConfig:
    """What every controller is evaluated on (times in the units named)."""

    seeds: tuple[int, ...] = tuple(range(1_000_000, 1_000_032))  # held-out network seeds (training uses 0, 1, ...)
    network: NetworkParams = field(default_factory=NetworkParams.small)  # the 160 E / 40 I RL network
    duration_s: float = 10.0  # s, episode length
    stim_onset_s: float = 1.0  # s of no stimulation before the controllers act
    window_ms: float = 20.0  # ms, decision window
    step_ms: float = 0.1  # ms, Euler step
    synchrony: Literal["kop", "chi"] = "kop"  # observation feature 0, as the policy was trained with
    latch_mv: float = 75.0  # mV, desynchronisation criterion of "time until J_I*w < latch_mv"
    final_fraction: float = 0.1  # part of the episode the "final" metrics average over
    raster_ms: float = 200.0  # ms of E spikes kept before the onset and at the end (first seed of each controller)
    dtype: Literal["float32", "float64"] = "float32"  # simulator precision
    stim_budget_s: float | None = None  # s after the onset after which every stimulator is off (None: never)
    followup_s: float = 0.0  # s, the episode's stimulation-off end: duration_s = onset + budget + follow-up
    latch_ends_stimulation: bool = False  # every controller's stimulation ends for good once J_I*w < latch_mv

    def __post_init__(self) -> None:
        seeds = self.seeds
        require(
            isinstance(seeds, tuple)
            and len(seeds) >= 1
            and len(set(seeds)) == len(seeds)
            and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds),
            "seeds",
            "a non-empty tuple of distinct integers >= 0",
            seeds,
        )
        require(isinstance(self.network, NetworkParams), "network", "a NetworkParams", self.network)
        windows = self.sim.num_windows  # validates duration, window and step
        require(
            0 <= self.stim_onset_s < self.duration_s and _whole(self.stim_onset_s * 1000.0 / self.window_ms),
            "stim_onset_s",
            f"in [0, duration_s={self.duration_s}) s and a whole number of {self.window_ms:g} ms windows",
            self.stim_onset_s,
        )
        require(self.synchrony in ("kop", "chi"), "synchrony", "'kop' or 'chi'", self.synchrony)
        require(
            math.isfinite(self.latch_mv) and self.latch_mv > 0, "latch_mv", "a finite number > 0 (mV)", self.latch_mv
        )
        require(0 < self.final_fraction <= 1, "final_fraction", "in (0, 1]", self.final_fraction)
        require(
            _whole(self.raster_ms / self.window_ms) and 0 <= self.raster_ms / self.window_ms <= windows,
            "raster_ms",
            f"a whole number of {self.window_ms:g} ms windows, at most the episode",
            self.raster_ms,
        )
        require(self.dtype in ("float32", "float64"), "dtype", "'float32' or 'float64'", self.dtype)
        require(
            self.stim_budget_s is None
            or (
                math.isfinite(self.stim_budget_s)
                and self.stim_budget_s > 0
                and _whole(self.stim_budget_s * 1000.0 / self.window_ms)
            ),
            "stim_budget_s",
            f"None or a positive whole number of {self.window_ms:g} ms windows",
            self.stim_budget_s,
        )
        require(
            math.isfinite(self.followup_s)
            and self.followup_s >= 0
            and _whole(self.followup_s * 1000.0 / self.window_ms),
            "followup_s",
            f"a whole number (>= 0) of {self.window_ms:g} ms windows",
            self.followup_s,
        )
        if self.followup_s > 0:
            end = self.stim_onset_s + (self.stim_budget_s or math.nan) + self.followup_s
            require(
                self.stim_budget_s is not None
                and _whole(end * 1000.0 / self.window_ms)
                and round(end * 1000.0 / self.window_ms) == windows,
                "duration_s",
                f"stim_onset_s + stim_budget_s + followup_s = {end:g} s with a follow-up (stim_budget_s set)",
                self.duration_s,
            )
        require(
            isinstance(self.latch_ends_stimulation, bool),
            "latch_ends_stimulation",
            "True or False",
            self.latch_ends_stimulation,
        )

    @property
    def followup_windows(self) -> int:
        return round(self.followup_s * 1000.0 / self.window_ms)

    @property
    def episode(self) -> EpisodeConfig:
        """The core's episode: the onset, the budget and (when asked) the latch gate every controller alike."""
        return EpisodeConfig(
            stim_onset=self.stim_onset_s * 1000.0,
            latch_mv=self.latch_mv if self.latch_ends_stimulation else None,
            stim_budget=None if self.stim_budget_s is None else self.stim_budget_s * 1000.0,
        )

    @property
    def sim(self) -> SimConfig:
        return SimConfig(duration=self.duration_s * 1000.0, step_size=self.step_ms, sample_duration=self.window_ms)

    @property
    def num_windows(self) -> int:
        return self.sim.num_windows

    @property
    def onset_window(self) -> int:
        return round(self.stim_onset_s * 1000.0 / self.window_ms)

    def to_dict(self) -> dict:
        return {**asdict(self), "seeds": list(self.seeds)}

    @classmethod
    def from_dict(cls, data: Mapping) -> "EvaluationConfig":
        return cls(**{**data, "seeds": tuple(data["seeds"]), "network": NetworkParams.from_dict(data["network"])})


def _whole(value: float) -> bool:
    return math.isfinite(value) and abs(value - round(value)) < 1e-9 * max(1.0, abs(value))


# ------------------------------------------------------------------ metrics
@functools.lru_cache(maxsize=64)
def t_quantile(probability: float, df: int) -> float:
    """Student-t quantile, by interpolating the numerically integrated CDF (accurate to ~1e-6)."""
    require(0.5 <= probability < 0.9995, "probability", "in [0.5, 0.9995)", probability)
    require_count("df", df)
    grid = np.linspace(0.0, 1000.0, 1_000_001)
    log_norm = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    density = np.exp(log_norm - (df + 1) / 2 * np.log1p(grid**2 / df))
    cdf = 0.5 + np.concatenate(([0.0], np.cumsum((density[1:] + density[:-1]) / 2 * np.diff(grid))))
    return float(np.interp(probability, cdf, grid))


def mean_interval(values: np.ndarray, confidence: float = 0.95) -> dict[str, float]:
    """Mean and two-sided Student-t interval of the finite ``values`` (NaNs left out).

    ``n`` counts the values used; with fewer than two the interval is NaN.
    """
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    n = finite.size
    mean = float(finite.mean()) if n else math.nan
    if n < 2:
        return {"mean": mean, "low": math.nan, "high": math.nan, "n": n}
    half = t_quantile(0.5 + confidence / 2, n - 1) * float(finite.std(ddof=1)) / math.sqrt(n)
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": n}


def network_metrics(
    traces: Mapping[str, np.ndarray],
    *,
    window_ms: float,
    onset_window: int,
    latch_mv: float,
    final_fraction: float = 0.1,
    followup_windows: int = 0,
) -> dict[str, np.ndarray]:
    """Per-network metrics (:data:`METRICS`) from per-window traces ``[..., windows]``.

    Needs the traces ``kop``, ``chi``, ``weight_mv``, ``energy_mv2ms``,
    ``charge_mvms`` and ``stimulating``; returns arrays of the leading shape.
    The controlled period is windows ``onset_window`` to the end; the final
    part is the last ``max(1, round(final_fraction * windows))`` windows; the
    follow-up the last ``followup_windows`` (NaN metrics without one); "before"
    the last second (at most) before the onset (NaN with the onset at 0).
    """
    windows = traces["kop"].shape[-1]
    require(0 <= onset_window < windows, "onset_window", f"in [0, {windows})", onset_window)
    require(
        0 <= followup_windows < windows - onset_window,
        "followup_windows",
        f"in [0, {windows - onset_window}) (after the onset)",
        followup_windows,
    )
    final = max(1, round(final_fraction * windows))
    controlled = slice(onset_window, None)
    below = traces["weight_mv"][..., controlled] < latch_mv
    reached = below.any(axis=-1)
    first_below = below.argmax(axis=-1)
    kop = traces["kop"]
    before = kop[..., max(0, onset_window - round(1000.0 / window_ms)) : onset_window]
    on = traces["stimulating"].astype(bool)
    on_windows = on.sum(-1)
    nan = np.full(kop.shape[:-1], np.nan)
    # NaN for a network never stimulated (and kop_before with the onset at 0): left out of the means
    kop_stimulating = np.where(on_windows > 0, (kop * on).sum(-1) / np.maximum(on_windows, 1), np.nan)
    return {
        "kop_before": before.mean(-1) if onset_window else nan,
        "kop_mean": kop[..., controlled].mean(-1),
        "kop_stimulating": kop_stimulating,
        "kop_followup": kop[..., -followup_windows:].mean(-1) if followup_windows else nan,
        "kop_final": traces["kop"][..., -final:].mean(-1),
        "chi_mean": traces["chi"][..., controlled].mean(-1),
        "chi_final": traces["chi"][..., -final:].mean(-1),
        "weight_final_mv": traces["weight_mv"][..., -1].astype(np.float64),
        "time_to_latch_s": np.where(reached, (first_below + 1) * window_ms / 1000.0, np.nan),
        "latch_reached": reached.astype(np.float64),
        "energy_mv2ms": traces["energy_mv2ms"].sum(-1),
        "charge_mvms": traces["charge_mvms"].sum(-1),
        "stimulating_fraction": traces["stimulating"][..., controlled].mean(-1, dtype=np.float64),
    }


# --------------------------------------------------------------- the result
@dataclass
class EvaluationResult:
    """Traces and metadata of one evaluation; metrics are derived from the traces."""

    config: EvaluationConfig
    controllers: dict[str, dict]  # name -> parameters, in batch order
    traces: dict[str, np.ndarray]  # TRACES name -> [controllers, seeds, windows]
    rasters: dict[str, np.ndarray]  # "before" / "after" -> [controllers, steps, num_e] bool, first seed
    raster_start_s: dict[str, float]  # "before" / "after" -> s, start of that raster
    device: str
    versions: dict[str, str]
    wall_time_s: float
    backend: str = "unknown"  # the simulator backend that ran (results written before it was recorded: unknown)

    @property
    def names(self) -> list[str]:
        return list(self.controllers)

    @property
    def time_s(self) -> np.ndarray:
        """[windows] end time of each window, s."""
        return np.arange(1, self.config.num_windows + 1) * self.config.window_ms / 1000.0

    def network_metrics(self) -> dict[str, np.ndarray]:
        """Metric name -> [controllers, seeds]."""
        c = self.config
        return network_metrics(
            self.traces,
            window_ms=c.window_ms,
            onset_window=c.onset_window,
            latch_mv=c.latch_mv,
            final_fraction=c.final_fraction,
            followup_windows=c.followup_windows,
        )

    def summary(self) -> dict[str, dict[str, dict[str, float]]]:
        """Controller -> metric -> {mean, low, high, n} over seeds."""
        per_network = self.network_metrics()
        return {
            name: {metric: mean_interval(values[c]) for metric, values in per_network.items()}
            for c, name in enumerate(self.names)
        }

    def markdown(self) -> str:
        """The comparison table: mean [95 % interval] per controller and metric."""
        summary = self.summary()
        header = "| controller | " + " | ".join(METRICS) + " |"
        lines = [header, "|" + "---|" * (len(METRICS) + 1)]
        for name, metrics in summary.items():
            cells = [_cell(metrics[m]) for m in METRICS]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        notes = "\n".join(f"* `{m}`: {text}" for m, text in METRICS.items())
        c = self.config
        protocol = f"stimulation from {c.stim_onset_s:g} s"
        if c.stim_budget_s is not None:
            protocol += f" for at most {c.stim_budget_s:g} s"
        if c.latch_ends_stimulation:
            protocol += f", ended for good once mean J_I*w < {c.latch_mv:g} mV"
        if c.followup_s:
            protocol += f", then {c.followup_s:g} s of follow-up with every stimulator off"
        return (
            f"{len(c.seeds)} held-out network{'s' * (len(c.seeds) != 1)} ({c.network.num_e} E / {c.network.num_i} I), "
            f"{c.duration_s:g} s episodes, {protocol}; "
            f"mean [95 % Student-t interval] over networks.\n\n" + "\n".join(lines) + "\n\n" + notes + "\n"
        )

    def save(self, out_dir: Path | str) -> dict[str, Path]:
        """Write the JSON, CSV and Markdown tables and the ``.npz`` of traces and rasters."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {kind: out / name for kind, name in FILES.items()}
        summary = self.summary()
        document = {
            "config": self.config.to_dict(),
            "controllers": self.controllers,
            "metrics": summary,
            "metric_definitions": METRICS,
            "interval": "95 % two-sided Student-t interval of the mean over networks (NaNs left out)",
            "per_network": {m: v.tolist() for m, v in self.network_metrics().items()},
            "device": self.device,
            "backend": self.backend,
            "versions": self.versions,
            "wall_time_s": self.wall_time_s,
            "raster_start_s": self.raster_start_s,
        }
        paths["json"].write_text(json.dumps(_json_ready(document), indent=1, allow_nan=False))
        with paths["csv"].open("w", newline="") as handle:
            writer = csv.writer(handle)
            columns = ("mean", "low", "high", "n")
            writer.writerow(["controller"] + [f"{m}_{k}" for m in METRICS for k in columns])
            for name, metrics in summary.items():
                writer.writerow([name] + [metrics[m][k] for m in METRICS for k in columns])
        paths["markdown"].write_text(self.markdown())
        arrays = {f"trace_{k}": v for k, v in self.traces.items()}
        arrays.update({f"raster_{k}": v for k, v in self.rasters.items()})
        np.savez_compressed(paths["npz"], **arrays)
        return paths

    @classmethod
    def load(cls, out_dir: Path | str) -> "EvaluationResult":
        """Read a result written by :meth:`save` (metrics are recomputed from the traces)."""
        out = Path(out_dir)
        for name in (FILES["json"], FILES["npz"]):
            if not (out / name).is_file():
                raise FileNotFoundError(f"{out / name} is missing: not an evaluation folder")
        document = json.loads((out / FILES["json"]).read_text())
        # our own handle: np.load leaves the file open when a damaged archive makes it raise
        with open(out / FILES["npz"], "rb") as handle, np.load(handle) as arrays:
            traces = {k[len("trace_") :]: arrays[k] for k in arrays.files if k.startswith("trace_")}
            rasters = {k[len("raster_") :]: arrays[k] for k in arrays.files if k.startswith("raster_")}
        return cls(
            EvaluationConfig.from_dict(document["config"]),
            document["controllers"],
            traces,
            rasters,
            document["raster_start_s"],
            document["device"],
            document["versions"],
            document["wall_time_s"],
            document.get("backend", "unknown"),
        )


def _cell(stat: dict[str, float]) -> str:
    if not math.isfinite(stat["mean"]):
        return "n/a"
    size = abs(stat["mean"])
    style = ".3f" if size < 10 else ".1f" if size < 1000 else ",.0f"
    interval = "" if not math.isfinite(stat["low"]) else f" [{stat['low']:{style}}, {stat['high']:{style}}]"
    return f"{stat['mean']:{style}}{interval}"


def _json_ready(value):
    """NaN -> None, recursively (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    return value


def describe_device(device: torch.device) -> str:
    """The device in words, for reports (GPU name, or CPU and thread count)."""
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"


def _versions() -> dict[str, str]:
    try:
        package = version("neuroloop-gpu")
    except PackageNotFoundError:
        package = "unknown"
    return {
        "neuroloop_gpu": package,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


# ------------------------------------------------------------------ the run
def _named(controllers: Mapping[str, Controller] | Sequence[Controller | str]) -> dict[str, Controller]:
    if isinstance(controllers, Mapping):
        names, built = list(controllers), list(controllers.values())
    else:
        built = [make_controller(c) if isinstance(c, str) else c for c in controllers]
        names = [getattr(c, "name", None) for c in built]
    require(
        len(built) >= 1 and all(isinstance(c, Controller) for c in built),
        "controllers",
        "at least one Controller (or registered name)",
        controllers,
    )
    require(len(set(names)) == len(names), "controllers", "distinct names (pass a dict to name them)", names)
    named = dict(zip(names, built))
    require(
        len({id(c) for c in named.values()}) == len(named),
        "controllers",
        "distinct instances (each keeps its own state)",
        list(named),
    )
    return named


def evaluate(
    controllers: Mapping[str, Controller] | Sequence[Controller | str],
    config: EvaluationConfig | None = None,
    *,
    device: torch.device | str | None = None,
    backend: str = "auto",
    progress: bool = True,
) -> EvaluationResult:
    """Run every controller on the same held-out networks in one batched simulation.

    ``controllers``: a dict name -> :class:`Controller`, or a list of
    controllers / registered names (``"none"``, ``"ftsts"``, ...). The first
    window's pulse train is validated on the host; controllers must keep
    producing valid trains (the built-in ones do by construction).
    """
    config = config or EvaluationConfig()
    named = _named(controllers)
    for name, controller in named.items():  # a policy trained on R gets nonsense from chi, and vice versa
        if controller.synchrony not in (None, config.synchrony):
            raise ValueError(
                f"controller {name!r} was trained with synchrony={controller.synchrony!r} observations; "
                f"this evaluation observes synchrony={config.synchrony!r} (use "
                f"synchrony={controller.synchrony!r}, CLI --synchrony {controller.synchrony})"
            )
    num_seeds, num_controllers, windows = len(config.seeds), len(named), config.num_windows
    batch = num_controllers * num_seeds
    dtype = {"float32": torch.float32, "float64": torch.float64}[config.dtype]
    core = DBSCore(
        batch,
        config.network,
        config.sim,
        reward_config=RewardConfig(synchrony=config.synchrony),
        episode=config.episode,
        device=device,
        dtype=dtype,
        backend=backend,
    )
    core.reset(seeds=torch.tensor(config.seeds * num_controllers, dtype=torch.int64))
    slices = [slice(c * num_seeds, (c + 1) * num_seeds) for c in range(num_controllers)]
    for controller in named.values():
        controller.reset(num_seeds, core.device)

    traces = {key: torch.empty(windows, batch, dtype=torch.float64, device=core.device) for key in TRACES}
    raster_windows = round(config.raster_ms / config.window_ms)
    raster_first = {"before": max(0, config.onset_window - raster_windows), "after": windows - raster_windows}
    raster_count = {"before": config.onset_window - raster_first["before"], "after": raster_windows}
    steps, first_seed = core.net.steps_per_window, torch.arange(num_controllers, device=core.device) * num_seeds
    rasters = {
        k: torch.zeros(num_controllers, n * steps, config.network.num_e, dtype=torch.bool, device=core.device)
        for k, n in raster_count.items()
    }

    observation, infos = core.observation, [{} for _ in slices]
    start = time.perf_counter()
    bar = tqdm(range(windows), desc="evaluate", unit="window", disable=not progress)
    for w in bar:
        trains = [controller.act(observation[s], info) for controller, s, info in zip(named.values(), slices, infos)]
        train = PulseTrain(*(torch.cat([getattr(t, f.name) for t in trains]) for f in fields(PulseTrain)))
        recording = {k for k in rasters if raster_first[k] <= w < raster_first[k] + raster_count[k]}
        core.net.record = RecordConfig(spikes_e=bool(recording))
        result = core.step_train(train, validate=w == 0)
        for key, buffer in traces.items():
            buffer[w] = result.info[key]
        for k in recording:
            offset = (w - raster_first[k]) * steps
            rasters[k][:, offset : offset + steps] = core.last_recording.spikes_e[first_seed]
        observation = result.observation
        infos = [{k: v[s] for k, v in result.info.items()} for s in slices]
        if progress and (w % 25 == 24 or w == windows - 1):
            shown = zip(named, slices) if len(named) <= 8 else [("R, all networks", slice(None))]  # a sweep: one
            bar.set_postfix({name: f"{float(traces['kop'][w, s].mean()):.2f}" for name, s in shown})

    shape = (windows, num_controllers, num_seeds)
    host = {k: v.cpu().numpy().reshape(shape).transpose(1, 2, 0) for k, v in traces.items()}
    host["stimulating"] = host["stimulating"].astype(bool)
    return EvaluationResult(
        config=config,
        controllers={name: controller.describe() for name, controller in named.items()},
        traces=host,
        rasters={k: v.cpu().numpy() for k, v in rasters.items()},
        raster_start_s={k: raster_first[k] * config.window_ms / 1000.0 for k in rasters},
        device=describe_device(core.device),
        versions=_versions(),
        wall_time_s=time.perf_counter() - start,
        backend=core.net.backend,
    )
