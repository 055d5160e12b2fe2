"""Does the Brian2 peer simulate the same network as ours? Firing rates and synchrony side by side.

    python benchmarks/brian2_agreement.py --brian2-python ~/venv-brian2/bin/python \
        --out benchmarks/results/brian2_agreement.md

The Brian2 peer (``neuroloop_gpu/bench/peers/brian2_network.py``, cpp_standalone) is the model spec
written again in Brian2, with its own random numbers, so it can agree with ours only in distribution:
each network starts from rest and runs ``--seconds`` under the benchmark's FTSTS pulse train and without
stimulation, for ``--seeds`` seeds each. Brian2 has no "last presynaptic spike wins" mode, so it runs
``synaptic_input="summed"``; ours runs that (the like-for-like column) and the published default.
Reported per network: the E and I rates over the whole run and R, the offline Kuramoto order parameter
of the E population (``synchrony.kuramoto_order``) sampled every 1 ms and averaged over the run.
"""

from __future__ import annotations

import argparse

import torch
from tqdm import tqdm

from neuroloop_gpu.bench.peers.brian2_peer import run_brian2
from neuroloop_gpu.bench.workload import (
    STEP_MS,
    STIM_AMPLITUDE_MV,
    STIM_FREQUENCY_HZ,
    STIM_PULSE_WIDTH_US,
    WINDOW_MS,
    parse_size,
)
from neuroloop_gpu.config import RecordConfig
from neuroloop_gpu.network import NetworkBatch
from neuroloop_gpu.stimulus import PulseTrain
from neuroloop_gpu.synchrony import kuramoto_order

SAMPLE_STEPS = round(1.0 / STEP_MS)  # R every 1 ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="full", help="small, full or NE/NI")
    parser.add_argument("--seconds", type=float, default=1.0, help="simulated time per network, from rest")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument(
        "--brian2-python",
        default=None,
        help="an interpreter with Brian2 (default: $NEUROLOOP_BRIAN2_PYTHON, else this one)",
    )
    parser.add_argument("--out", default=None, help="also write the table to this Markdown file")
    args = parser.parse_args()
    windows = round(args.seconds * 1000.0 / WINDOW_MS)
    if windows < 1 or not args.seeds or min(args.seeds) < 0:
        parser.error("--seconds must be at least one window (0.02 s) and --seeds non-negative integers")
    try:
        size = parse_size(args.size)
    except ValueError as error:
        parser.error(str(error))

    stimuli = {f"FTSTS {STIM_AMPLITUDE_MV:g} mV from t = 0": STIM_AMPLITUDE_MV, "none": 0.0}
    rows = []
    with tqdm(total=len(stimuli) * (len(args.seeds) + 2), desc="brian2 agreement", unit="run") as progress:
        for label, amplitude in stimuli.items():
            cells = {}
            for mode in ("summed", "published"):
                cells[mode] = ours(size, mode, amplitude, args.seeds, windows)
                progress.update()
            brian2 = []
            for seed in args.seeds:
                record = run_brian2(
                    "brian2-cpp",
                    size,
                    windows=windows,
                    repeats=1,
                    warmup=0,
                    seed=seed,
                    python=args.brian2_python,
                    record_spikes=True,
                    amplitude=amplitude,
                )
                if "activity" not in record:
                    raise SystemExit(f"Brian2 did not run: {record.get('error') or record.get('skipped')}")
                brian2.append(brian2_activity(record["activity"], size.num_e, windows))
                progress.update()
            rows.append((label, cells["summed"], brian2, cells["published"]))

    name = size.name if size.name == f"{size.num_e}/{size.num_i}" else f"{size.name} ({size.num_e}/{size.num_i})"
    lines = [
        f"{name}, {args.seconds:g} s from rest, seeds "
        f"{', '.join(map(str, args.seeds))}; per network: E / I rate, mean R of E (1 ms samples)",
        "",
        "| stimulus | ours (summed) | Brian2 cpp_standalone (summed) | ours (published, default) |",
        "|---|---|---|---|",
    ]
    lines += [f"| {label} | {cell(a)} | {cell(b)} | {cell(c)} |" for label, a, b, c in rows]
    print("\n".join(lines))
    if args.out:
        with open(args.out, "w") as out:
            out.write("\n".join(lines) + "\n")


def ours(size, synaptic_input: str, amplitude: float, seeds: list[int], windows: int) -> list[tuple]:
    """(E rate, I rate, mean R) of each seed's network of ours, run together in one batch."""
    batch = len(seeds)
    net = NetworkBatch(
        batch, size.params(synaptic_input=synaptic_input), seeds=seeds, device="cpu", record=RecordConfig(spikes_e=True)
    )
    train = PulseTrain.constant(batch, amplitude, STIM_FREQUENCY_HZ, STIM_PULSE_WIDTH_US)
    rates_e, rates_i, rasters = [], [], []
    for _ in range(windows):  # windows of equal length: the run's rates are the means of theirs
        result = net.run_window(train)
        rates_e.append(result.stats.rate_e)
        rates_i.append(result.stats.rate_i)
        rasters.append(result.recording.spikes_e)
    rate_e, rate_i = torch.stack(rates_e).mean(0), torch.stack(rates_i).mean(0)
    synchrony = kuramoto_order(torch.cat(rasters, dim=1), SAMPLE_STEPS).mean(-1)
    return [(float(rate_e[b]), float(rate_i[b]), float(synchrony[b])) for b in range(batch)]


def brian2_activity(activity: dict, num_e: int, windows: int) -> tuple:
    """(E rate, I rate, mean R) of a Brian2 run, R from its recorded E spike times."""
    steps = windows * round(WINDOW_MS / STEP_MS)
    raster = torch.zeros(1, steps, num_e, dtype=torch.bool)
    times = torch.tensor(activity["spike_times_ms"], dtype=torch.float64)
    step = torch.round(times / STEP_MS).long().clamp(max=steps - 1)
    raster[0, step, torch.tensor(activity["spike_neurons"], dtype=torch.long)] = True
    return activity["rate_e_hz"], activity["rate_i_hz"], float(kuramoto_order(raster, SAMPLE_STEPS).mean())


def cell(runs: list[tuple]) -> str:
    """Networks' values as ``E / I Hz, R``, each a single value or a range over the networks."""

    def spread(values, digits):
        low, high = min(values), max(values)
        return (
            f"{low:.{digits}f}" if round(low, digits) == round(high, digits) else f"{low:.{digits}f}-{high:.{digits}f}"
        )

    e, i, r = zip(*runs)
    return f"{spread(e, 1)} / {spread(i, 1)} Hz, R {spread(r, 2)}"


if __name__ == "__main__":
    main()
