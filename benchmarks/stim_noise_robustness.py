"""Stimulation-locked membrane noise (``NetworkParams.stim_noise_e``): the two model variants and
the lasting effect of FTSTS against the noise level, full size.

    python benchmarks/stim_noise_robustness.py variants [--seeds 0 1 2 3] [--duration 25]
    python benchmarks/stim_noise_robustness.py levels [--levels 0 5 10 20] [--seeds 0 1 2] [--duration 25]

``variants`` runs the open-loop FTSTS protocol of ``MODELS["paper"]`` and ``MODELS["published-code"]``;
``levels`` runs the published-code protocol (stimulation from 1.98 s, plasticity from 80 ms) with E
noise levels in mV (I: 0), one batch of the seeds per level (the noise is a network parameter shared by
a batch). Each writes a JSON (device, versions, command, per-network values), a Markdown table and a
figure under ``benchmarks/results/stim_noise_robustness/`` (``variants``: both variants side by side,
second by second).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from neuroloop_gpu.config import RecordConfig, SimConfig
from neuroloop_gpu.network import NetworkBatch
from neuroloop_gpu.open_loop import MODELS, ModelVariant, run_open_loop, summarize

OUT = Path(__file__).parent / "results" / "stim_noise_robustness"


def weight_slope_mv_per_s(weight_mv: np.ndarray, stimulating: np.ndarray, window_ms: float) -> float | None:
    """Least-squares slope of the end-of-window mean J_I*w over the stimulating windows, mV/s."""
    windows = np.flatnonzero(stimulating)
    if windows.size < 2:
        return None
    return float(np.polyfit((windows + 1) * window_ms / 1000.0, weight_mv[windows], 1)[0])


def run_variant(variant: ModelVariant, seeds: list[int], duration_s: float, backend: str, label: str) -> dict:
    """One batch of ``seeds`` under ``variant``; per network: R before / while / after stimulating
    (offline Kuramoto R of E, 1 ms samples), latch time, weight slope while stimulating, final weight."""
    params, protocol = variant.network(), variant.protocol()
    sim = SimConfig(duration=duration_s * 1000.0, seed=seeds[0])
    net = NetworkBatch(
        len(seeds), params, sim, seeds=seeds, device="cpu", record=RecordConfig(spikes_e=True), backend=backend
    )
    run = run_open_loop(net, protocol, sim.num_windows, progress=True)
    summary = summarize(run, protocol, device="cpu")
    networks = []
    for b, entry in enumerate(summary["networks"]):
        networks.append(
            {
                "seed": entry["seed"],
                "kop_before": entry["kop_before"],
                "kop_during": entry["kop_during"],
                "kop_after": entry["kop_after"],
                "latch_time_s": entry["stim_off_time_s"],
                "weight_slope_mv_per_s": weight_slope_mv_per_s(
                    run.stats["weight_mv"][:, b], run.stimulating[:, b], run.window_ms
                ),
                "final_weight_mv": entry["final_weight_mv"],
                "rate_e_hz": entry["rate_e_hz"],
            }
        )
    # the first seed's course, second by second (offline R, mean J_I*w at each second's end): the variants figure
    course = {
        "seed": seeds[0],
        "kop_per_second": summary["kop_per_second"],
        "weight_mv_per_second": summary["mean_weight_per_second"],
    }
    return {
        "label": label,
        "network_params": dataclasses.asdict(params),
        "protocol": summary["protocol"],
        "backend": net.backend,
        "wall_time_s": run.wall_time_s,
        "networks": networks,
        "course": course,
    }


def mean_of(networks: list[dict], key: str) -> float | None:
    values = [n[key] for n in networks if n[key] is not None]
    return float(np.mean(values)) if values else None


def environment(argv: list[str]) -> dict:
    """What produced a result: command, device, versions (the checkout's commit: uncommitted changes
    may sit on top of it), date."""
    cpu = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.machine(),
        )
        if Path("/proc/cpuinfo").exists()
        else "?"
    )
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent
    ).stdout.strip()
    return {
        "command": f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '')} python "
        "benchmarks/stim_noise_robustness.py " + " ".join(argv),
        "device": f"CPU ({cpu}), {torch.get_num_threads()} torch thread(s)",
        "versions": {
            "neuroloop_gpu": importlib.metadata.version("neuroloop-gpu"),
            "commit": commit,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "date_utc": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()),
    }


def table(rows: list[dict]) -> str:
    """Markdown: mean ± s.d. over the seeds; the latch time of every seed."""
    lines = [
        "| variant | seeds | R before | R while stimulating | R after | latch (s) | slope (mV/s) | J_I·w at end (mV) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        n = row["networks"]

        def stat(key: str, digits: int) -> str:
            values = [x[key] for x in n if x[key] is not None]
            return f"{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}" if values else "—"

        latch = ", ".join("never" if x["latch_time_s"] is None else f"{x['latch_time_s']:.2f}" for x in n)
        seeds = ", ".join(str(x["seed"]) for x in n)
        lines.append(
            f"| {row['label']} | {seeds} | {stat('kop_before', 3)} | {stat('kop_during', 3)} "
            f"| {stat('kop_after', 3)} | {latch} | {stat('weight_slope_mv_per_s', 2)} "
            f"| {stat('final_weight_mv', 1)} |"
        )
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], levels: list[float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [
        ("latch_time_s", "stimulation switched off (s)"),
        ("kop_during", "R while stimulating"),
        ("kop_after", "R after stimulation"),
        ("final_weight_mv", "J_I·w at the end (mV)"),
    ]
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.4))
    for ax, (key, title) in zip(axes, keys):
        for level, row in zip(levels, rows):
            values = [n[key] for n in row["networks"] if n[key] is not None]
            ax.plot([level] * len(values), values, "o", color="tab:blue", alpha=0.6)
        means = [mean_of(row["networks"], key) for row in rows]
        ax.plot(
            [lv for lv, m in zip(levels, means) if m is not None],
            [m for m in means if m is not None],
            "-",
            color="black",
        )
        ax.set_xlabel("stimulation-locked E noise (mV)")
        ax.set_title(title, fontsize=10)
        if key.startswith("kop"):  # R from 0: the spread between seeds is small against its range
            ax.set_ylim(0, max(0.1, ax.get_ylim()[1]))
    fig.suptitle("FTSTS, published-code protocol, full size: lasting effect against the noise level", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def plot_variants(rows: list[dict], path: Path) -> None:
    """Both variants side by side: R and mean J_I*w second by second (first seed), the published marks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (kop_ax, weight_ax) = plt.subplots(1, 2, figsize=(12, 3.8))
    for row, color in zip(rows, ("tab:blue", "tab:red")):
        course = row["course"]
        seconds = np.arange(1, len(course["kop_per_second"]) + 1) - 0.5
        label = f"{row['label']} (seed {course['seed']})"
        kop_ax.plot(seconds, course["kop_per_second"], color=color, label=label)
        weight_ax.plot(
            np.arange(1, len(course["weight_mv_per_second"]) + 1),
            course["weight_mv_per_second"],
            color=color,
            label=label,
        )
        for latch in (n["latch_time_s"] for n in row["networks"][:1] if n["latch_time_s"] is not None):
            for ax in (kop_ax, weight_ax):
                ax.axvline(latch, color=color, linestyle=":", linewidth=1)
    kop_ax.axhspan(0.11, 0.13, color="grey", alpha=0.3, label="published, while stimulating")
    kop_ax.set(xlabel="time (s)", ylabel="Kuramoto R (E), per second", ylim=(0, 1), title="synchrony")
    weight_ax.axhline(75.0, color="black", linewidth=0.8, label="latch, 75 mV")
    weight_ax.axvline(18.0, color="grey", linewidth=3, alpha=0.4, label="published stop, ~18 s")
    weight_ax.set(xlabel="time (s)", ylabel="mean J_I·w (mV)", title="E→I weight")
    for ax in (kop_ax, weight_ax):
        ax.legend(fontsize=8)
    fig.suptitle(
        "Open-loop FTSTS at full size: the paper's equations and the published code (dotted: stop)", fontsize=11
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("variants", "levels"))
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--levels", type=float, nargs="+", default=[0.0, 5.0, 10.0, 20.0])
    parser.add_argument("--duration", type=float, default=25.0, help="s")
    parser.add_argument("--backend", default="fused")
    parser.add_argument("--replot", action="store_true", help="redraw the figure from the JSON")
    args = parser.parse_args(argv)
    if args.replot:
        rows = json.loads((OUT / f"{args.what}.json").read_text())["runs"]
        if args.what == "variants":
            plot_variants(rows, OUT / "variants.png")
        else:
            plot(rows, [float(row["network_params"]["stim_noise_e"]) for row in rows], OUT / "levels.png")
        return
    OUT.mkdir(parents=True, exist_ok=True)
    if args.what == "variants":
        seeds = args.seeds or [0, 1, 2, 3]
        rows = [run_variant(MODELS[name], seeds, args.duration, args.backend, name) for name in MODELS]
        stem = "variants"
        plot_variants(rows, OUT / f"{stem}.png")
    else:
        seeds = args.seeds or [0, 1, 2]
        base = MODELS["published-code"]
        rows = [
            run_variant(
                dataclasses.replace(base, stim_noise_e=level), seeds, args.duration, args.backend, f"{level:g} mV"
            )
            for level in tqdm(args.levels, desc="noise levels", unit="level")
        ]
        stem = "levels"
        plot(rows, args.levels, OUT / f"{stem}.png")
    (OUT / f"{stem}.json").write_text(
        json.dumps({**environment(argv), "duration_s": args.duration, "runs": rows}, indent=1)
    )
    (OUT / f"{stem}.md").write_text(table(rows))
    print(table(rows))


if __name__ == "__main__":
    main(sys.argv[1:])
