"""How much a closed-loop controller can save over the tuned open-loop FTSTS train, full size.

    python benchmarks/closed_loop_headroom.py map        [--seeds 3000000 3000001]
    python benchmarks/closed_loop_headroom.py map        --pulse-width 1000 --amplitudes 15 20 25 30 --label 1ms
    python benchmarks/closed_loop_headroom.py schedules  [--seeds 2000000 2000001 2000002]
    python benchmarks/closed_loop_headroom.py schedules  --pulse-width 1000 --label 1ms

``map`` measures, for FTSTS trains of 500 us phases (or ``--pulse-width``) at several amplitudes and
frequencies, how fast each lowers the mean E->I weight J_I*w and what it costs, starting from several
weight levels: every (level, setting, seed) is one network of one batch, its weights set to the level
at reset, stimulated for 2.5 s; the rate and the power are taken over the last 2 s (the first 0.5 s
lets the network settle after its weights were set). Energy per mV of depression = power / rate:
which setting is cheapest per mV at each level is what a controller that sees the weight could exploit.

``schedules`` runs the lasting protocol (2 s off, stimulation until J_I*w < 75 mV or 40 s, 5 s off)
for open-loop trains and weight-scheduled trains (the setting switches when the observed weight
falls below a level) on the sweep's networks (disjoint from training and evaluation seeds): whether
the savings the map suggests survive a whole course to the latch.

Each writes JSON (device, versions, command, values), a Markdown table and, for ``map``, a figure
under ``benchmarks/results/closed_loop_headroom/``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from neuroloop_gpu.bench.harness import describe_device, environment_info
from neuroloop_gpu.config import NetworkParams, SimConfig
from neuroloop_gpu.control import Controller
from neuroloop_gpu.envs.core import LASTING_BUDGET_S, LASTING_FOLLOWUP_S, LASTING_LATCH_MV, DBSCore
from neuroloop_gpu.evaluation import EvaluationConfig, evaluate
from neuroloop_gpu.stimulus import PulseTrain

OUT = Path(__file__).parent / "results" / "closed_loop_headroom"
FTSTS_HZ = 1000.0 / 12.0
WIDTH_US = 500.0  # the top of NeuroLoop's phase-width range: the cheapest trains use it (the sweep)
LEVELS_MV = (260.0, 220.0, 180.0, 140.0, 110.0, 90.0)
AMPLITUDES_MV = (30.0, 40.0, 50.0, 60.0, 80.0)
FREQUENCIES_HZ = (50.0, FTSTS_HZ, 120.0, 180.0)
SETTLE_S, MEASURE_S = 0.5, 2.0
MIN_RATE_MV_PER_S = 0.1  # slower falls are within the 2 s measurement's noise: no price per mV is given


def provenance(device: torch.device) -> dict:
    return {
        "command": f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '')} python "
        + " ".join(["benchmarks/closed_loop_headroom.py", *sys.argv[1:]]),
        "device": describe_device(device),
        "environment": environment_info(device),
        "date_utc": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()),
    }


def depression_map(
    seeds: list[int], device: torch.device, width_us: float = WIDTH_US, amplitudes: tuple = AMPLITUDES_MV
) -> dict:
    """Rate of change of J_I*w (mV/s), power (mV^2 ms per s) and R for every (level, setting, seed)."""
    settings = [(0.0, FTSTS_HZ)] + list(itertools.product(amplitudes, FREQUENCIES_HZ))
    cases = list(itertools.product(LEVELS_MV, settings, seeds))
    window_ms = 20.0
    settle, measure = round(SETTLE_S * 1000 / window_ms), round(MEASURE_S * 1000 / window_ms)
    core = DBSCore(
        len(cases), NetworkParams(), SimConfig(duration=(SETTLE_S + MEASURE_S) * 1000.0, seed=seeds[0]), device=device
    )
    core.reset(seeds=torch.tensor([seed for _, _, seed in cases], device=device))
    state = core.net.state
    level = torch.tensor([lv for lv, _, _ in cases], dtype=torch.float64, device=device) / core.params.j_i
    state.weight = level.to(state.weight.dtype).unsqueeze(1).expand_as(state.weight).clone()
    amplitude, frequency = (
        torch.tensor([s[k] for _, s, _ in cases], dtype=torch.float64, device=device) for k in (0, 1)
    )
    train = PulseTrain(amplitude, frequency, torch.full_like(amplitude, width_us), torch.ones_like(amplitude))
    weight_start = energy = kop = None
    for window in tqdm(range(settle + measure), desc="map", unit="window"):
        info = core.step_train(train, validate=window == 0).info
        if window == settle - 1:
            weight_start = info["weight_mv"].double().clone()
            energy = torch.zeros_like(weight_start)
            kop = torch.zeros_like(weight_start)
        elif window >= settle:
            energy += info["energy_mv2ms"].double()
            kop += info["kop"].double() / measure
    rate = ((info["weight_mv"].double() - weight_start) / MEASURE_S).cpu().numpy()
    power = (energy / MEASURE_S).cpu().numpy()
    kop = kop.cpu().numpy()
    rows = []
    for lv, (a, f) in itertools.product(LEVELS_MV, settings):
        index = [i for i, (l2, s, _) in enumerate(cases) if l2 == lv and s == (a, f)]
        r, p = float(rate[index].mean()), float(power[index].mean())
        rows.append(
            {
                "level_mv": lv,
                "amplitude_mv": a,
                "frequency_hz": f,
                "pulse_width_us": width_us,
                "rate_mv_per_s": r,
                "rate_per_seed": rate[index].tolist(),
                "power_mv2ms_per_s": p,
                "energy_per_mv": p / -r if r < -MIN_RATE_MV_PER_S and a > 0 else None,
                "kop": float(kop[index].mean()),
            }
        )
    return {"seeds": seeds, "settle_s": SETTLE_S, "measure_s": MEASURE_S, "pulse_width_us": width_us, "rows": rows}


def map_table(doc: dict) -> str:
    lines = [
        "| J_I·w at start (mV) | setting (mV, Hz) | dJ/dt (mV/s) | power (10³ mV²·ms/s) "
        "| energy per mV (10³ mV²·ms) | R |",
        "|---|---|---|---|---|---|",
    ]
    for row in doc["rows"]:
        setting = "off" if row["amplitude_mv"] == 0 else f"{row['amplitude_mv']:g}, {row['frequency_hz']:.1f}"
        per_mv = "—" if row["energy_per_mv"] is None else f"{row['energy_per_mv'] / 1e3:.1f}"
        lines.append(
            f"| {row['level_mv']:g} | {setting} | {row['rate_mv_per_s']:.2f} | {row['power_mv2ms_per_s'] / 1e3:.0f} "
            f"| {per_mv} | {row['kop']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def plot_map(doc: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (rate_ax, cost_ax) = plt.subplots(1, 2, figsize=(14, 4.4))
    amplitudes = sorted({r["amplitude_mv"] for r in doc["rows"] if r["amplitude_mv"] > 0})
    colors = dict(zip(amplitudes, plt.cm.viridis(np.linspace(0, 0.9, len(amplitudes)))))
    styles = dict(zip(FREQUENCIES_HZ, ("o-", "s--", "^:", "d-.")))
    for a, f in itertools.product(amplitudes, FREQUENCIES_HZ):
        rows = [r for r in doc["rows"] if r["amplitude_mv"] == a and r["frequency_hz"] == f]
        levels = [r["level_mv"] for r in rows]
        label = f"{a:g} mV, {f:.0f} Hz"
        rate_ax.plot(levels, [-r["rate_mv_per_s"] for r in rows], styles[f], color=colors[a], ms=4, label=label)
        cost = [np.nan if r["energy_per_mv"] is None else r["energy_per_mv"] / 1e3 for r in rows]
        cost_ax.plot(levels, cost, styles[f], color=colors[a], ms=4)
    off = [r for r in doc["rows"] if r["amplitude_mv"] == 0]
    rate_ax.plot([r["level_mv"] for r in off], [-r["rate_mv_per_s"] for r in off], "k-", lw=2, label="off")
    rate_ax.axhline(0, color="grey", lw=0.5)
    rate_ax.set(xlabel="mean J_I·w at start (mV)", ylabel="depression rate −dJ/dt (mV/s)")
    cost_ax.set(xlabel="mean J_I·w at start (mV)", ylabel="energy per mV of depression (10³ mV²·ms)", ylim=(0, 150))
    fig.legend(*rate_ax.get_legend_handles_labels(), loc="center right", fontsize=7)
    for ax in (rate_ax, cost_ax):
        ax.invert_xaxis()  # the course of a treatment runs from high to low weight
    width = doc["rows"][0]["pulse_width_us"]
    fig.suptitle(f"FTSTS trains ({width:g} µs phases), full network: rate and cost of depression", fontsize=11)
    fig.tight_layout(rect=(0, 0, 0.87, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


class WeightScheduledFTSTS(Controller):
    """The FTSTS train whose setting follows the observed mean weight: ``stages`` are
    (above_mv, amplitude_mv, frequency_hz), the first stage whose ``above_mv`` lies below the
    weight the last window ended with applies (the first window: the first stage)."""

    name = "scheduled"

    def __init__(self, stages: list[tuple[float, float, float]], width_us: float = WIDTH_US):
        self.stages, self.width_us = stages, width_us

    def reset(self, num_envs: int, device: torch.device | str) -> None:
        self.num_envs, self.device = num_envs, device

    def act(self, observation: torch.Tensor, info: dict[str, torch.Tensor]) -> PulseTrain:
        weight = info["weight_mv"].double() if info else torch.full((self.num_envs,), np.inf, device=self.device)
        amplitude = torch.zeros(self.num_envs, dtype=torch.float64, device=self.device)
        frequency = torch.full_like(amplitude, FTSTS_HZ)
        for above, a, f in reversed(self.stages):  # the first matching stage is written last
            match = weight > above
            amplitude, frequency = torch.where(match, a, amplitude), torch.where(match, f, frequency)
        return PulseTrain(amplitude, frequency, torch.full_like(amplitude, self.width_us), torch.ones_like(amplitude))

    def describe(self) -> dict:
        return {"controller": self.name, "stages": self.stages, "pulse_width_us": self.width_us}


SCHEDULES = {  # name: stages (above_mv, amplitude_mv, frequency_hz); a single stage is an open-loop train
    "open 50 mV (ftsts-tuned)": [(0.0, 50.0, FTSTS_HZ)],
    "open 45 mV": [(0.0, 45.0, FTSTS_HZ)],
    "open 40 mV": [(0.0, 40.0, FTSTS_HZ)],
    "40 mV, 83 Hz > 150 mV > 50 mV, 83 Hz": [(150.0, 40.0, FTSTS_HZ), (0.0, 50.0, FTSTS_HZ)],
    "40 mV, 83 Hz > 150 mV > 50 mV, 50 Hz": [(150.0, 40.0, FTSTS_HZ), (0.0, 50.0, 50.0)],
    "40 mV, 83 Hz > 150 mV > 60 mV, 50 Hz": [(150.0, 40.0, FTSTS_HZ), (0.0, 60.0, 50.0)],
    "45 mV, 83 Hz > 150 mV > 50 mV, 50 Hz": [(150.0, 45.0, FTSTS_HZ), (0.0, 50.0, 50.0)],
    "40 mV, 83 Hz > 180 mV > 50 mV, 50 Hz": [(180.0, 40.0, FTSTS_HZ), (0.0, 50.0, 50.0)],
}
SCHEDULES_1MS = {  # the same with 1000 us phases (the published width; --pulse-width 1000)
    "open 25 mV (ftsts-tuned-1ms)": [(0.0, 25.0, FTSTS_HZ)],
    "15 mV > 220 mV > 25 mV": [(220.0, 15.0, FTSTS_HZ), (0.0, 25.0, FTSTS_HZ)],
    "15 mV > 180 mV > 25 mV": [(180.0, 15.0, FTSTS_HZ), (0.0, 25.0, FTSTS_HZ)],
    "15 mV > 150 mV > 25 mV": [(150.0, 15.0, FTSTS_HZ), (0.0, 25.0, FTSTS_HZ)],
    "20 mV > 150 mV > 25 mV": [(150.0, 20.0, FTSTS_HZ), (0.0, 25.0, FTSTS_HZ)],
}


def schedules(
    seeds: list[int], device: torch.device, names: list[str] | None = None, width_us: float = WIDTH_US
) -> dict:
    config = EvaluationConfig(
        seeds=tuple(seeds),
        network=NetworkParams(),
        duration_s=2.0 + LASTING_BUDGET_S + LASTING_FOLLOWUP_S,
        stim_onset_s=2.0,
        stim_budget_s=LASTING_BUDGET_S,
        followup_s=LASTING_FOLLOWUP_S,
        latch_mv=LASTING_LATCH_MV,
        latch_ends_stimulation=True,
        raster_ms=0.0,
    )
    table = SCHEDULES if width_us == WIDTH_US else SCHEDULES_1MS
    chosen = {name: table[name] for name in names or table}
    controllers = {name: WeightScheduledFTSTS(stages, width_us) for name, stages in chosen.items()}
    result = evaluate(controllers, config, device=device)
    summary = result.summary()
    keys = ("latch_reached", "time_to_latch_s", "energy_mv2ms", "kop_followup", "weight_final_mv")
    return {
        "seeds": seeds,
        "pulse_width_us": width_us,
        "protocol": config.to_dict(),
        "rows": [
            {"name": name, "stages": stages, **{key: summary[name][key] for key in keys}}
            for name, stages in chosen.items()
        ],
    }


def schedules_table(doc: dict) -> str:
    lines = [
        "| train | latched | time to latch (s) | energy (10⁶ mV²·ms) | R, follow-up | J_I·w at end (mV) |",
        "|---|---|---|---|---|---|",
    ]
    for row in doc["rows"]:
        t = row["time_to_latch_s"]
        latch_time = "—" if t["n"] == 0 else f"{t['mean']:.1f}"
        lines.append(
            f"| {row['name']} | {row['latch_reached']['mean']:.0%} | {latch_time} "
            f"| {row['energy_mv2ms']['mean'] / 1e6:.2f} | {row['kop_followup']['mean']:.3f} "
            f"| {row['weight_final_mv']['mean']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("map", "schedules"))
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument(
        "--only", nargs="+", choices=[*SCHEDULES, *SCHEDULES_1MS], default=None, help="schedules: these trains"
    )
    parser.add_argument("--label", default="", help="appended to the output files' names (e.g. heldout)")
    parser.add_argument(
        "--pulse-width", type=float, default=WIDTH_US, help="phase width, us (default 500; schedules: 500 or 1000)"
    )
    parser.add_argument("--amplitudes", type=float, nargs="+", default=list(AMPLITUDES_MV), help="map: mV")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    OUT.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if args.what == "map":
        doc = depression_map(args.seeds or [3_000_000, 3_000_001], device, args.pulse_width, tuple(args.amplitudes))
        table = map_table(doc)
        plot_map(doc, OUT / (f"map_{args.label}.png" if args.label else "map.png"))
    else:
        doc = schedules(args.seeds or [2_000_000, 2_000_001, 2_000_002], device, args.only, args.pulse_width)
        table = schedules_table(doc)
    doc.update(provenance(device), wall_time_s=time.perf_counter() - started)
    stem = f"{args.what}_{args.label}" if args.label else args.what
    (OUT / f"{stem}.json").write_text(json.dumps(doc, indent=1) + "\n")
    (OUT / f"{stem}.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
