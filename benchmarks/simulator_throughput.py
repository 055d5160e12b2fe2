"""Throughput of the batched simulator: env-steps/s and simulated seconds per wall second.

One env-step is one 20 ms decision window (200 Euler steps) of one network;
numbers are summed over the batch. Warm-up windows are excluded; each point
is the median (and min) of several timed repeats. Writes a JSON file named
after the device into benchmarks/results/.

    python benchmarks/simulator_throughput.py --device cpu --batches 1 16 256 --sizes small full
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from neuroloop_gpu.cli import SIZES, describe_device
from neuroloop_gpu.config import NetworkParams, SimConfig
from neuroloop_gpu.network import NetworkBatch
from neuroloop_gpu.stimulus import PulseTrain


def measure(size: str, batch: int, device: torch.device, windows: int, repeats: int) -> dict:
    num_e, num_i = SIZES[size]
    net = NetworkBatch(batch, NetworkParams(num_e=num_e, num_i=num_i), SimConfig(), device=device)
    train = PulseTrain.constant(batch, 100.0, 130.0, 90.0, device=device)
    net.run_window(train)  # warm-up
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        for _ in range(windows):
            net.run_window(train)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append((time.perf_counter() - start) / windows)
    per_window = statistics.median(times)
    window_s = net.sim.sample_duration / 1000.0
    return {
        "size": size, "num_e": num_e, "num_i": num_i, "batch": batch,
        "seconds_per_window_median": per_window, "seconds_per_window_min": min(times),
        "env_steps_per_s": batch / per_window,
        "simulated_s_per_wall_s": batch * window_s / per_window,
        "bytes_per_network": net.bytes_per_network(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", nargs="+", default=["small", "full"], choices=sorted(SIZES))
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 16, 256])
    parser.add_argument("--windows", type=int, default=2, help="windows per timed repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    device = torch.device(args.device)
    rows = []
    cases = [(s, b) for s in args.sizes for b in args.batches]
    for size, batch in tqdm(cases, desc="benchmark", unit="case"):
        rows.append(measure(size, batch, device, args.windows, args.repeats))
        tqdm.write(f"{size:5s} B={batch:5d}: {rows[-1]['env_steps_per_s']:9.1f} env-steps/s, "
                   f"{rows[-1]['simulated_s_per_wall_s']:8.3f} sim-s/wall-s")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    result = {
        "device": describe_device(device), "torch": torch.__version__, "python": platform.python_version(),
        "threads": torch.get_num_threads(), "commit": commit, "windows": args.windows, "repeats": args.repeats,
        "results": rows,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"simulator_throughput_{device.type}.json"
    path.write_text(json.dumps(result, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
