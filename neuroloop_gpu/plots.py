"""Figures (matplotlib, written as PNG files).

Open-loop runs (:func:`plot_open_loop`), controller evaluations
(:func:`plot_evaluation`: synchrony, weight, rasters, actions, energy vs
synchrony) and PPO training logs (:func:`plot_training`). Evaluations and
logs are read back from their files, so :func:`plot_run` redraws every
figure of a run folder without simulating anything.
"""

from __future__ import annotations

import csv
import json
import math
import zipfile
from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402

from .evaluation import FILES, EvaluationResult, t_quantile  # noqa: E402
from .open_loop import PUBLISHED, OpenLoopRun, offline_kop  # noqa: E402
from .sweep import FILES as SWEEP_FILES  # noqa: E402
from .sweep import SweepConfig, SweepResult  # noqa: E402

TRAIN_LOG = "train_log.csv"


def _raster_segment(run: OpenLoopRun, network: int, start_ms: float, length_ms: float) -> tuple[np.ndarray, np.ndarray]:
    first = int(start_ms // run.window_ms)
    count = max(1, int(np.ceil(length_ms / run.window_ms)))
    packed = np.concatenate([w[network] for w in run.spikes_e[first : first + count]], axis=0)
    raster = np.unpackbits(packed, axis=-1, count=run.num_e).astype(bool)
    steps, neurons = np.nonzero(raster)
    return first * run.window_ms + steps * run.step_ms, neurons


def plot_open_loop(run: OpenLoopRun, summary: dict, out_dir: Path, network: int = 0, sample_ms: float = 1.0) -> Path:
    """Kuramoto order parameter, mean J_I * w and spike rasters of one network's open-loop run."""
    net = summary["networks"][network]
    duration_s = summary["duration_s"]
    onset_s = summary["protocol"]["onset"] / 1000.0
    off_s = net["stim_off_time_s"]
    stimulated = summary["protocol"]["waveform"] != "none" and onset_s < duration_s
    fig = plt.figure(figsize=(11, 8.5), constrained_layout=True)
    grid = fig.add_gridspec(3, 3, height_ratios=[1, 1, 1.1])
    ax_kop, ax_w = fig.add_subplot(grid[0, :]), fig.add_subplot(grid[1, :])

    def shade(ax):
        if stimulated:
            ax.axvspan(
                onset_s,
                off_s if off_s is not None else duration_s,
                color="tab:orange",
                alpha=0.12,
                label="stimulation on",
            )

    if run.spikes_e:
        kop = offline_kop(run, network, sample_ms)
        t = np.arange(kop.size) * sample_ms / 1000.0
        ax_kop.plot(t, kop, color="0.75", lw=0.4, label=f"R(t), {sample_ms:g} ms samples")
        per_s = net["kop_per_second"]
        ax_kop.stairs(per_s, np.arange(len(per_s) + 1), baseline=None, color="tab:blue", lw=2, label="1 s mean")
    ax_kop.axhline(PUBLISHED["kop_before"], color="k", ls=":", lw=1, label="published before (0.74)")
    ax_kop.axhspan(*PUBLISHED["kop_after"], color="tab:green", alpha=0.2, label="published after (0.02-0.05)")
    shade(ax_kop)
    ax_kop.set(ylabel="Kuramoto order R (E)", ylim=(0, 1), xlim=(0, duration_s))
    ax_kop.legend(loc="upper right", fontsize=8, ncol=2)

    weight = run.stats["weight_mv"][:, network]
    ax_w.plot((np.arange(weight.size) + 1) * run.window_ms / 1000.0, weight, color="tab:red", label="mean $J_I w$")
    latch = summary["protocol"]["latch_mv"]
    if latch is not None and stimulated:
        ax_w.axhline(latch, color="k", ls="--", lw=1, label=f"latch {latch:g} mV")
    shade(ax_w)
    ax_w.set(xlabel="time (s)", ylabel="mean E→I weight $J_I w$ (mV)", xlim=(0, duration_s))
    ax_w.legend(loc="upper right", fontsize=8)

    if run.spikes_e:
        length = 200.0
        moments = [("before", max(0.0, min(onset_s, duration_s) * 1000 - length - 100))]
        if stimulated:
            end = (off_s if off_s is not None else duration_s) * 1000
            moments.append(("during", (onset_s * 1000 + end) / 2))
            if off_s is not None:
                moments.append(("after", duration_s * 1000 - length))
        for col, (label, start) in enumerate(moments):
            ax = fig.add_subplot(grid[2, col])
            times, neurons = _raster_segment(run, network, start, length)
            ax.scatter(times / 1000.0, neurons, s=0.3, c="k", marker=".", linewidths=0)
            ax.set(title=f"E raster {label} ({start / 1000:.1f} s)", xlabel="time (s)", ylabel="E neuron")
    fig.suptitle(
        f"Open-loop {summary['protocol']['waveform']} (seed {net['seed']}): "
        f"stimulation off at {off_s if off_s is not None else 'never'} s"
    )
    return _save(fig, Path(out_dir) / "open_loop.png")


# ---------------------------------------------------------------- evaluation
def _colour(index: int):
    """Controller ``index``'s colour: tab10, then tab20's light shades, so up to 20 controllers differ."""
    index %= 20
    return plt.get_cmap("tab10")(index) if index < 10 else plt.get_cmap("tab20")(2 * (index - 10) + 1)


def _band(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over seeds (axis 0) of [seeds, windows] and the half width of its 95 % t-interval."""
    mean = values.mean(axis=0)
    n = values.shape[0]
    if n < 2:
        return mean, np.zeros_like(mean)
    return mean, t_quantile(0.975, n - 1) * values.std(axis=0, ddof=1) / math.sqrt(n)


def _shade_baseline(ax, result: EvaluationResult) -> None:
    """Grey: before the onset; green: the stimulation-off follow-up (when the episode has one)."""
    c = result.config
    if c.stim_onset_s > 0:
        ax.axvspan(0, c.stim_onset_s, color="0.9", label="no stimulation (baseline)")
    if c.followup_s > 0:
        ax.axvspan(
            c.duration_s - c.followup_s,
            c.duration_s,
            color="tab:green",
            alpha=0.12,
            label="follow-up (stimulation off)",
        )


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _traces_over_time(
    result: EvaluationResult, key: str, ylabel: str, title: str, path: Path, reference: tuple[float, str] | None = None
) -> Path:
    fig, ax = plt.subplots(figsize=(10, 4.5), constrained_layout=True)
    _shade_baseline(ax, result)
    t, n = result.time_s, len(result.config.seeds)
    for c, name in enumerate(result.names):
        mean, half = _band(result.traces[key][c])
        ax.plot(t, mean, color=_colour(c), lw=1.5, label=name)
        ax.fill_between(t, mean - half, mean + half, color=_colour(c), alpha=0.2, linewidth=0)
    if reference is not None:
        ax.axhline(reference[0], color="k", ls="--", lw=1, label=reference[1])
    ax.set(
        xlabel="time (s)",
        ylabel=ylabel,
        xlim=(0, t[-1]),
        title=f"{title}: mean and 95 % interval over {n} networks" if n > 1 else f"{title}: one network",
    )
    ax.legend(loc="best", fontsize=8, ncol=2)
    return _save(fig, path)


def plot_kop(result: EvaluationResult, out_dir: Path | str) -> Path:
    """Kuramoto order parameter (causal, per window) over time, per controller."""
    return _traces_over_time(result, "kop", "Kuramoto order R (E)", "Synchrony", Path(out_dir) / "kop.png")


def plot_weight(result: EvaluationResult, out_dir: Path | str) -> Path:
    """Mean E->I weight J_I*w over time, per controller, with the 75 mV criterion."""
    latch = result.config.latch_mv
    return _traces_over_time(
        result,
        "weight_mv",
        "mean E→I weight $J_I w$ (mV)",
        "Coupling",
        Path(out_dir) / "weight.png",
        (latch, f"{latch:g} mV"),
    )


def plot_rasters(result: EvaluationResult, out_dir: Path | str) -> Path:
    """E spike rasters of the first seed of each controller, before stimulation and at the end (in the
    follow-up, when the episode has one)."""
    names, step_s = result.names, result.config.step_ms / 1000.0
    fig, axes = plt.subplots(
        len(names), 2, figsize=(11, 1.9 * len(names) + 0.8), squeeze=False, constrained_layout=True, sharey=True
    )
    end = "follow-up, stimulation off" if result.config.followup_s > 0 else "end of episode"
    for c, name in enumerate(names):
        for col, (moment, label) in enumerate((("before", "before stimulation"), ("after", end))):
            ax, raster = axes[c, col], result.rasters[moment][c]
            ax.set_title(f"{name}: {label}", fontsize=9)
            ax.set_ylabel("E neuron" if col == 0 else "")
            if raster.shape[0] == 0:  # stimulation from 0 s (or raster_ms=0); an empty x range would warn
                ax.text(
                    0.5,
                    0.5,
                    "no data (no window recorded)",
                    ha="center",
                    va="center",
                    transform=ax.transAxes,
                    color="0.4",
                )
                ax.set_xticks([])
                continue
            steps, neurons = np.nonzero(raster)
            start = result.raster_start_s[moment]
            ax.scatter(start + steps * step_s, neurons, s=1.5, c=[_colour(c)], marker=".", linewidths=0)
            ax.set_xlim(start, start + raster.shape[0] * step_s)
    for ax in axes[-1]:
        ax.set_xlabel("time (s)")
    fig.suptitle(f"E spike rasters, network seed {result.config.seeds[0]}")
    return _save(fig, Path(out_dir) / "rasters.png")


def plot_actions(result: EvaluationResult, out_dir: Path | str) -> Path:
    """Delivered amplitude, frequency and pulse width over time, mean over networks per controller.

    Amplitude counts off windows as 0; frequency and width are averaged over
    the networks stimulating in the window (gaps where none does).
    """
    rows = (
        ("amplitude_mv", "amplitude (mV)"),
        ("frequency_hz", "frequency (Hz)"),
        ("pulse_width_us", "pulse width per phase (µs)"),
    )
    fig, axes = plt.subplots(3, 1, figsize=(10, 8), sharex=True, constrained_layout=True)
    t, on = result.time_s, result.traces["stimulating"]
    for ax, (key, label) in zip(axes, rows):
        _shade_baseline(ax, result)
        for c, name in enumerate(result.names):
            weights = np.ones_like(on[c]) if key == "amplitude_mv" else on[c]
            total, count = (result.traces[key][c] * weights).sum(0), weights.sum(0)
            mean = np.divide(total, count, out=np.full(total.shape, np.nan), where=count > 0)
            ax.plot(t, mean, color=_colour(c), lw=1.3, label=name)
        ax.set_ylabel(label)
    axes[2].set_yscale("log")
    axes[0].legend(loc="best", fontsize=8, ncol=3)
    axes[-1].set(xlabel="time (s)", xlim=(0, t[-1]))
    axes[0].set_title("Stimulation delivered (mean over networks)")
    return _save(fig, Path(out_dir) / "actions.png")


def plot_energy_vs_synchrony(result: EvaluationResult, out_dir: Path | str, sweep: dict | None = None) -> Path:
    """:func:`energy_synchrony_figure` written as ``energy_vs_synchrony.png`` in ``out_dir``."""
    return _save(energy_synchrony_figure(result, sweep), Path(out_dir) / "energy_vs_synchrony.png")


def energy_synchrony_figure(result: EvaluationResult, sweep: dict | None = None):
    """Total stimulation energy against synchrony at the end: one point per network, means with 95 %
    intervals. With a follow-up the synchrony is R in the follow-up, and a sweep document
    (``sweep.json``) adds its grid points (mean over its seeds; squares: points that latch often enough)."""
    metrics = result.network_metrics()
    followup = result.config.followup_s > 0
    key = "kop_followup" if followup else "kop_final"
    fig, ax = plt.subplots(figsize=(8, 5.8), constrained_layout=True)
    if sweep is not None:
        points = sweep["points"]
        fraction = sweep["config"]["latch_fraction"]
        for latched, marker, label in (
            (True, "s", f"sweep point, latched on ≥ {fraction:.0%}"),
            (False, "x", "sweep point, latched less often"),
        ):
            chosen = [p["metrics"] for p in points if (p["metrics"]["latch_reached"]["mean"] >= fraction) == latched]
            ax.scatter(
                [m["energy_mv2ms"]["mean"] for m in chosen],
                [m["kop_followup"]["mean"] if followup else math.nan for m in chosen],
                s=14,
                marker=marker,
                color="0.55",
                alpha=0.7,
                linewidths=0.8,
                label=label,
            )
    for c, name in enumerate(result.names):
        energy, kop = metrics["energy_mv2ms"][c], metrics[key][c]
        ax.scatter(energy, kop, s=12, color=_colour(c), alpha=0.35, linewidths=0)
        e_mean, e_half = _band(energy[:, None])
        k_mean, k_half = _band(kop[:, None])
        ax.errorbar(
            e_mean,
            k_mean,
            xerr=e_half,
            yerr=k_half,
            fmt="o",
            ms=8,
            color=_colour(c),
            capsize=3,
            markeredgecolor="k",
            label=name,
        )
    ax.set_xscale("symlog", linthresh=1e5)
    ylabel = (
        f"Kuramoto order R in the {result.config.followup_s:g} s follow-up"
        if followup
        else f"final Kuramoto order R (last {result.config.final_fraction:.0%})"
    )
    ax.set(
        xlabel="stimulation energy over the episode (mV²·ms)",
        ylabel=ylabel,
        title="Synchrony against stimulation energy",
    )
    ax.legend(loc="best", fontsize=8)
    return fig


def plot_evaluation(result: EvaluationResult, out_dir: Path | str, sweep: dict | None = None) -> list[Path]:
    """Every evaluation figure, written to ``out_dir`` (``sweep``: a sweep document for the energy plane)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [plot(result, out) for plot in (plot_kop, plot_weight, plot_rasters, plot_actions)]
    return paths + [plot_energy_vs_synchrony(result, out, sweep)]


# ------------------------------------------------------------------- sweeps
def _heat(ax, values: np.ndarray, config: SweepConfig, title: str, fmt: str, cmap: str, norm=None):
    image = ax.imshow(values, origin="lower", aspect="auto", cmap=cmap, norm=norm)
    ax.set_xticks(range(len(config.frequencies_hz)), [f"{f:.3g}" for f in config.frequencies_hz])
    ax.set_yticks(range(len(config.amplitudes_mv)), [f"{a:g}" for a in config.amplitudes_mv])
    ax.set_title(title, fontsize=9)
    for (i, j), value in np.ndenumerate(values):
        if math.isfinite(value):
            ax.text(j, i, format(value, fmt), ha="center", va="center", fontsize=6.5)
    return image


def plot_sweep(result: SweepResult, out_dir: Path | str) -> Path:
    """:func:`sweep_figure` written as ``sweep.png`` in ``out_dir``."""
    return _save(sweep_figure(result), Path(out_dir) / SWEEP_FILES["figure"])


def sweep_figure(result: SweepResult):
    """Heatmaps over amplitude x frequency, one column per phase width: energy to latch (points that
    latch on fewer than ``latch_fraction`` of their networks blank) and R in the follow-up; the tuned
    points framed in red. Row 0 holds energies in 10^6 mV^2 ms, row 1 follow-up R."""
    config, rows = result.config, result.summary()
    widths = config.pulse_widths_us
    shape = (len(config.amplitudes_mv), len(config.frequencies_hz))
    fig, axes = plt.subplots(
        2, len(widths), figsize=(3.2 * len(widths) + 1, 6.6), squeeze=False, constrained_layout=True
    )
    energy = {w: np.full(shape, np.nan) for w in widths}
    followup = {w: np.full(shape, np.nan) for w in widths}
    for row in rows:
        i, j = config.amplitudes_mv.index(row["amplitude_mv"]), config.frequencies_hz.index(row["frequency_hz"])
        latches = row["metrics"]["latch_reached"]["mean"] >= config.latch_fraction
        energy[row["pulse_width_us"]][i, j] = row["metrics"]["energy_mv2ms"]["mean"] / 1e6 if latches else np.nan
        followup[row["pulse_width_us"]][i, j] = row["metrics"]["kop_followup"]["mean"]
    finite = np.concatenate([e[np.isfinite(e)] for e in energy.values()])
    norm = LogNorm(vmin=finite.min(), vmax=finite.max()) if finite.size else None
    for c, width in enumerate(widths):
        image_e = _heat(
            axes[0, c], energy[width], config, f"energy to latch (10⁶ mV²·ms), {width:g} µs", ".2g", "viridis", norm
        )
        image_r = _heat(
            axes[1, c],
            followup[width],
            config,
            f"R in the {config.followup_s:g} s follow-up, {width:g} µs",
            ".2f",
            "magma_r",
            plt.Normalize(0, 1),
        )
        axes[1, c].set_xlabel("frequency (Hz)")
    for r in range(2):
        axes[r, 0].set_ylabel("amplitude (mV)")
    framed = []
    for name, point in result.tuned().items():
        if point is None:
            continue
        c = widths.index(point["pulse_width_us"])
        i, j = config.amplitudes_mv.index(point["amplitude_mv"]), config.frequencies_hz.index(point["frequency_hz"])
        for r in range(2):
            axes[r, c].add_patch(plt.Rectangle((j - 0.48, i - 0.48), 0.96, 0.96, fill=False, color="red", lw=1.8))
        framed.append(
            f"{name} bounds: {point['amplitude_mv']:g} mV, {point['frequency_hz']:.3g} Hz, "
            f"{point['pulse_width_us']:g} µs"
        )
    if finite.size:
        fig.colorbar(image_e, ax=axes[0, :], shrink=0.8, label="10⁶ mV²·ms")
    fig.colorbar(image_r, ax=axes[1, :], shrink=0.8, label="R")
    n = len(config.seeds)
    fig.suptitle(
        f"FTSTS waveform sweep, {config.network.num_e} E / {config.network.num_i} I, {n} seeds per point\n"
        f"blank energy: latched on < {config.latch_fraction:.0%} of networks within "
        f"{config.stim_budget_s:g} s; red: the tuned points ({'; '.join(framed) or 'none'})",
        fontsize=10,
    )
    return fig


# ------------------------------------------------------------------ training
def read_training_log(log_csv: Path | str) -> dict[str, np.ndarray]:
    """Columns of a training log CSV as float arrays (empty or non-numeric cells become NaN)."""
    with Path(log_csv).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise ValueError(f"{log_csv} has no rows: nothing to plot")

    def number(cell: str | None) -> float:
        try:
            return float(cell)
        except (TypeError, ValueError):
            return math.nan

    return {column: np.array([number(row[column]) for row in rows]) for column in rows[0]}


def plot_training(log_csv: Path | str, out_dir: Path | str) -> Path:
    """PPO training curves against frames: rewards, synchrony, weight, energy, the three losses and lr."""
    log = read_training_log(log_csv)
    missing = [c for c in ("frames", "reward_mean") if c not in log]
    if missing:
        raise ValueError(f"{log_csv} lacks the columns {missing}: not a training log")
    panels = (  # title, y label with units (the reward is a weighted sum of fractions: no unit), curves
        ("reward", "reward (unitless)", (("reward_mean", "per window"), ("episode_reward_mean", "per episode"))),
        ("synchrony", "Kuramoto R (0–1)", (("kop_mean", "Kuramoto R"),)),
        ("mean E→I weight", "$J_I w$ (mV)", (("weight_mv_mean", "J_I w (mV)"),)),
        ("energy per window", "energy (mV²·ms)", (("energy_mean", "energy (mV²·ms)"),)),
        ("loss: objective", "clipped surrogate (unitless)", (("loss_objective", "objective"),)),
        ("loss: critic", "value loss (unitless)", (("loss_critic", "critic"),)),
        ("loss: entropy", "−coeff × entropy (unitless)", (("loss_entropy", "entropy"),)),
        ("learning rate", "Adam step size (unitless)", (("lr", "learning rate"),)),
    )
    fig, axes = plt.subplots(2, 4, figsize=(15, 6.5), sharex=True, constrained_layout=True)
    frames = log["frames"]
    for ax, (title, ylabel, panel) in zip(axes.flat, panels):
        for key, label in panel:
            if key in log and np.isfinite(log[key]).any():
                ok = np.isfinite(log[key])
                ax.plot(frames[ok], log[key][ok], marker="." if ok.sum() < 50 else None, lw=1.2, label=label)
        if len(panel) > 1:
            ax.legend(fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(ylabel)
    for ax in axes[-1]:
        ax.set_xlabel("frames (network windows)")
    fig.suptitle(f"PPO training ({Path(log_csv).name})")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return _save(fig, out / "training.png")


# ------------------------------------------------------------------- run dirs
@contextmanager
def _naming(source: Path):
    """Errors from reading a damaged or foreign file as one ValueError that names it."""
    try:
        yield
    except (OSError, ValueError, KeyError, IndexError, TypeError, EOFError, zipfile.BadZipFile, csv.Error) as error:
        raise ValueError(f"{source}: {type(error).__name__}: {error}") from error


def plot_run(run_dir: Path | str) -> list[Path]:
    """Redraw every figure from the files under ``run_dir``, each next to its source.

    Looks (recursively) for training logs (``train_log.csv``), evaluation
    results (``evaluation.json`` + ``evaluation.npz``, with a ``sweep.json``
    beside them for the energy plane) and sweeps (``sweep.json`` alone).
    """
    root = Path(run_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder")
    paths = []
    for log in sorted(root.rglob(TRAIN_LOG)):
        with _naming(log):
            paths.append(plot_training(log, log.parent))
    for npz in sorted(root.rglob(FILES["npz"])):
        sweep = npz.parent / SWEEP_FILES["json"]
        with _naming(npz.parent / f"{FILES['json']}, {FILES['npz']} or {SWEEP_FILES['json']}"):
            paths += plot_evaluation(
                EvaluationResult.load(npz.parent),
                npz.parent,
                json.loads(sweep.read_text()) if sweep.is_file() else None,
            )
    for sweep in sorted(root.rglob(SWEEP_FILES["json"])):
        if not (sweep.parent / FILES["npz"]).is_file():
            with _naming(sweep):
                paths.append(plot_sweep(SweepResult.load(sweep.parent), sweep.parent))
    if not paths:
        raise FileNotFoundError(
            f"nothing to plot in {root}: no {TRAIN_LOG}, {FILES['npz']} or {SWEEP_FILES['json']} below it"
        )
    return paths
