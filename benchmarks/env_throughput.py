"""Env-steps per second of the gymnasium vector env and the TorchRL env.

One env-step is one 20 ms decision window of one network, summed over the
batch; random actions; warm-up excluded; median of the repeats. Writes
benchmarks/results/env_throughput_<device>.json.

    python benchmarks/env_throughput.py --device cpu --batches 1 64 1024
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from neuroloop_gpu.cli import SIZES, describe_device
from neuroloop_gpu.config import SimConfig
from neuroloop_gpu.envs import FTSTSTorchEnv, FTSTSVectorEnv

SIM = SimConfig(duration=5000.0)


def time_steps(step, steps: int, repeats: int, device: torch.device) -> float:
    step()  # warm-up
    rates = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        for _ in range(steps):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        rates.append(steps / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", default="small", choices=sorted(SIZES))
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 64, 1024])
    parser.add_argument("--steps", type=int, default=2, help="env steps per timed repeat")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    device = torch.device(args.device)
    num_e, num_i = SIZES[args.size]
    model = {"num_e": num_e, "num_i": num_i}
    rows = []
    for batch in tqdm(args.batches, desc="env benchmark", unit="batch"):
        vec = FTSTSVectorEnv(batch, SIM, model, device=device)
        vec.reset(seed=0)
        rng = np.random.default_rng(0)
        vec_rate = time_steps(lambda: vec.step(rng.uniform(-1, 1, (batch, 3)).astype(np.float32)),
                              args.steps, args.repeats, device)
        trl = FTSTSTorchEnv(batch, SIM, model, device=device, check_actions=False)
        td = trl.reset()

        def trl_step():
            nonlocal td
            td["action"] = torch.rand(batch, 3, device=device) * 2 - 1
            td = trl.step_and_maybe_reset(td)[1]

        trl_rate = time_steps(trl_step, args.steps, args.repeats, device)
        rows.append({"batch": batch, "size": args.size, "vector_env_steps_per_s": vec_rate * batch,
                     "torchrl_env_steps_per_s": trl_rate * batch})
        tqdm.write(f"B={batch:5d}: vector env {vec_rate * batch:9.1f}, TorchRL env {trl_rate * batch:9.1f} env-steps/s")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"env_throughput_{device.type}.json"
    path.write_text(json.dumps({"device": describe_device(device), "torch": torch.__version__, "commit": commit,
                                "steps": args.steps, "repeats": args.repeats, "results": rows}, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
