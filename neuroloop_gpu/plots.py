"""Figures (matplotlib, written as PNG files)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .open_loop import PUBLISHED, OpenLoopRun, offline_kop  # noqa: E402


def _raster_segment(run: OpenLoopRun, network: int, start_ms: float, length_ms: float) -> tuple[np.ndarray, np.ndarray]:
    steps_per_window = run.spikes_e[0].shape[1]
    first = int(start_ms // run.window_ms)
    count = max(1, int(np.ceil(length_ms / run.window_ms)))
    packed = np.concatenate([w[network] for w in run.spikes_e[first:first + count]], axis=0)
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
            ax.axvspan(onset_s, off_s if off_s is not None else duration_s, color="tab:orange", alpha=0.12,
                       label="stimulation on")

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
    fig.suptitle(f"Open-loop {summary['protocol']['waveform']} (seed {net['seed']}): "
                 f"stimulation off at {off_s if off_s is not None else 'never'} s")
    path = out_dir / "open_loop.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
