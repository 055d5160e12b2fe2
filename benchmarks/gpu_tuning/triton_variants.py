"""The Triton kernel's launch settings side by side on one GPU (a tuning run, not the harness).

    python benchmarks/gpu_tuning/triton_variants.py --size full --batch 8192 --warps 8 16 32
    python benchmarks/gpu_tuning/triton_variants.py --size small --batch 65536 \
        --kernels neuroloop_gpu/network/triton_kernel.py my_kernel.py --tiles 128 256
    python benchmarks/gpu_tuning/triton_variants.py --size full --warps 16 --tiles 1024:2048 --settings - SCRATCH_LOADS=

A variant is a kernel source (``--kernels``: files defining ``steps_kernel`` with the package kernel's
arguments; default the package's), a spike tile (``--tiles``: synapses per tile, 0 the stepper's
choice, ``E:I`` tiles of their own for the walks over E and over I spikes), compile-time settings of
the kernel (``--settings KEY=VALUE[,KEY=VALUE]``, ``-`` the stepper's), a number of warps and a
register cap.

Every variant starts from the same state (taken after one warm-up window) and runs the same windows
after one more untimed window of its own (compilation), so the variants do the same work and must end
in the same state (checked: ``same`` is the largest difference in potentials from the first variant).
Prints env-steps/s per variant; ``--json`` appends one JSON line per variant to a file.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import time

import torch

from neuroloop_gpu.bench.harness import resolve_device
from neuroloop_gpu.bench.workload import STIM_AMPLITUDE_MV, STIM_FREQUENCY_HZ, STIM_PULSE_WIDTH_US, parse_size
from neuroloop_gpu.network import NetworkBatch, triton_step
from neuroloop_gpu.stimulus import PulseTrain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="full", help="small, full or NE/NI")
    parser.add_argument("--batch", type=int, default=8192)
    parser.add_argument("--warps", type=int, nargs="+", default=[8])
    parser.add_argument(
        "--maxnreg", type=int, nargs="+", default=None, help="register caps to try (0: none; default: the backend's)"
    )
    parser.add_argument("--kernels", nargs="+", default=[None], help="kernel source files (default: the package's)")
    parser.add_argument(
        "--tiles", nargs="+", default=["0"], help="synapses per spike tile, E:I for tiles of their own (0: default)"
    )
    parser.add_argument(
        "--settings",
        nargs="+",
        default=["-"],
        help="compile-time settings to try, KEY=VALUE[,KEY=VALUE] (-: the stepper's)",
    )
    parser.add_argument("--windows", type=int, default=2)
    parser.add_argument("--label", default="", help="a name for this tree in the output (e.g. a commit)")
    parser.add_argument("--json", default=None)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--backend", default="triton", help="another backend times its one setting (a smoke test)")
    args = parser.parse_args()
    if args.windows < 1:
        parser.error(f"argument --windows: must be an integer >= 1, got {args.windows}")
    try:  # a bad size, batch, device or backend
        device = resolve_device(args.device)
        net = NetworkBatch(args.batch, parse_size(args.size).params(), device=device, backend=args.backend)
    except (ValueError, RuntimeError) as error:  # torch.device() raises RuntimeError for a bad name
        parser.error(str(error))
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    launch = getattr(net._stepper, "launch", {})
    shape = dict(getattr(net._stepper, "shape", {}))
    package_kernel = getattr(net._stepper, "kernel", None)
    train = PulseTrain.constant(args.batch, STIM_AMPLITUDE_MV, STIM_FREQUENCY_HZ, STIM_PULSE_WIDTH_US, device=device)
    net.run_window(train)
    start_state = copy.deepcopy((net.state, net.stimulator, net._ring_position))
    reference = None
    caps = args.maxnreg if args.maxnreg is not None else [launch.get("maxnreg", 0)]
    variants = [
        (kernel, tile, settings, warps, maxnreg)
        for kernel in args.kernels
        for tile in args.tiles
        for settings in args.settings
        for warps in args.warps
        for maxnreg in caps
    ]
    for kernel, tile, settings, warps, maxnreg in variants:
        net.state, net.stimulator, net._ring_position = copy.deepcopy(start_state)
        if package_kernel is not None:
            net._stepper.kernel = load_kernel_file(kernel) if kernel else package_kernel
            net._stepper.shape = triton_step.tuned_shape(shape, tile, settings)
        launch.update(num_warps=warps)
        launch.pop("maxnreg", None)
        if maxnreg:
            launch["maxnreg"] = maxnreg
        net.run_window(train)  # compiles this variant
        sync()
        began = time.perf_counter()
        for _ in range(args.windows):
            net.run_window(train)
        sync()
        rate = args.batch * args.windows / (time.perf_counter() - began)
        if reference is None:
            reference = net.state.v.clone()
        same = (net.state.v - reference).abs().max().item()
        row = dict(
            label=args.label,
            kernel=kernel or "package",
            tile=tile,
            settings=settings,
            size=args.size,
            batch=args.batch,
            num_warps=warps,
            maxnreg=maxnreg,
            env_steps_per_s=rate,
            same=same,
            device=torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        )
        print(json.dumps(row), flush=True)
        if args.json:
            with open(args.json, "a") as out:
                out.write(json.dumps(row) + "\n")


def load_kernel_file(path: str):
    """``steps_kernel`` of a kernel source file (imported under a name of its own)."""
    spec = importlib.util.spec_from_file_location(f"kernel_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.steps_kernel


if __name__ == "__main__":
    main()
