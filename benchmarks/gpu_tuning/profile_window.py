"""Where one decision window's time goes: ``torch.profiler`` over the benchmark workload.

    python benchmarks/gpu_tuning/profile_window.py --device cuda --size full --batch 1024 --backend eager \
        --synapses event
    ncu --kernel-name regex:steps_kernel --launch-skip 1 --launch-count 1 \
        python benchmarks/gpu_tuning/profile_window.py --device cuda --backend triton --profiler none

Prints the top operators (by device time on CUDA, CPU time on the CPU) of ``--windows`` windows
after one untimed warm-up window, and the wall time per window. ``--profiler none`` leaves the
profiling to an outside tool (Nsight Compute's counters and torch's profiler cannot share CUPTI).
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch
from torch.profiler import ProfilerActivity, profile

from neuroloop_gpu.bench.harness import resolve_device
from neuroloop_gpu.bench.workload import STIM_AMPLITUDE_MV, STIM_FREQUENCY_HZ, STIM_PULSE_WIDTH_US, parse_size
from neuroloop_gpu.network import NetworkBatch
from neuroloop_gpu.stimulus import PulseTrain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", default="full", help="small, full or NE/NI")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--synapses", default=None, help="event or dense (default: the simulator's choice)")
    parser.add_argument("--windows", type=int, default=1)
    parser.add_argument("--rows", type=int, default=25)
    parser.add_argument("--profiler", choices=["torch", "none"], default="torch")
    args = parser.parse_args()
    if args.windows < 1:
        parser.error(f"argument --windows: must be an integer >= 1, got {args.windows}")
    try:  # a bad size, batch, device, backend or synapse choice
        device = resolve_device(args.device)
        net = NetworkBatch(
            args.batch, parse_size(args.size).params(), device=device, backend=args.backend, synapses=args.synapses
        )
    except (ValueError, RuntimeError) as error:  # torch.device() raises RuntimeError for a bad name
        parser.error(str(error))
    train = PulseTrain.constant(args.batch, STIM_AMPLITUDE_MV, STIM_FREQUENCY_HZ, STIM_PULSE_WIDTH_US, device=device)
    net.run_window(train)  # warm-up: allocator, kernels, compilation
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    start = time.perf_counter()
    with profile(activities=activities) if args.profiler == "torch" else contextlib.nullcontext() as prof:
        for _ in range(args.windows):
            net.run_window(train)
        sync()
    wall = (time.perf_counter() - start) / args.windows
    print(
        f"{args.size} B={args.batch} {net.backend}/{net.synapses} on {device}: {wall:.3f} s per window under the "
        f"{args.profiler} profiler, {args.batch / wall:.1f} env-steps/s"
    )
    if args.profiler == "none":
        return
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=key, row_limit=args.rows, max_name_column_width=60))


if __name__ == "__main__":
    main()
