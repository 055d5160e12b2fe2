"""The ``neuroloop`` command."""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch

from .config import NetworkParams, PlasticityParams, RecordConfig, SimConfig
from .network import NetworkBatch, default_device
from .open_loop import OpenLoopProtocol, run_open_loop, summarize
from .plots import plot_open_loop

SIZES = {"full": (1600, 400), "small": (160, 40)}


def _device(name: str) -> torch.device:
    if name == "auto":
        return default_device()
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda requested but CUDA is not available; use --device cpu")
    return device


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"


def simulate(args: argparse.Namespace) -> dict:
    num_e, num_i = SIZES[args.size] if args.num_e is None else (args.num_e, args.num_i or args.num_e // 4)
    try:
        params = NetworkParams(num_e=num_e, num_i=num_i, j_i=args.j_i, synaptic_input=args.synaptic_input,
                               noise_scaling=args.noise, plasticity=PlasticityParams())
        sim = SimConfig(duration=args.duration * 1000.0, seed=args.seed)
        protocol = OpenLoopProtocol(waveform=args.waveform, amplitude=args.amplitude, onset=args.onset * 1000.0,
                                    latch_mv=None if args.latch < 0 else args.latch)
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None
    device = _device(args.device)
    dtype = {"float32": torch.float32, "float64": torch.float64}[args.dtype]
    net = NetworkBatch(args.networks, params, sim, device=device, dtype=dtype, record=RecordConfig(spikes_e=True))
    run = run_open_loop(net, protocol, sim.num_windows, progress=not args.quiet)
    summary = summarize(run, protocol, device=describe_device(device))
    summary["network"] = {"num_e": num_e, "num_i": num_i, "j_i": args.j_i, "synaptic_input": args.synaptic_input,
                          "noise_scaling": args.noise, "dtype": args.dtype}
    summary["bytes_per_network"] = net.bytes_per_network()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    figure = plot_open_loop(run, summary, out)
    if not args.quiet:
        first = summary["networks"][0]
        print(f"kop before/during/after: {first.get('kop_before')}, {first.get('kop_during')}, "
              f"{first.get('kop_after')}; stimulation off at {first['stim_off_time_s']} s; "
              f"final mean J_I*w {first['final_weight_mv']:.1f} mV")
        print(f"wrote {out / 'summary.json'} and {figure} ({summary['wall_time_s']:.1f} s wall)")
    return summary


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neuroloop", description="Closed-loop DBS on batched FTSTS networks.")
    commands = parser.add_subparsers(dest="command", required=True)
    sim = commands.add_parser("simulate", help="open-loop FTSTS simulation (the published protocol)",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sim.add_argument("--size", choices=sorted(SIZES), default="full", help="network size: 1600/400 or 160/40")
    sim.add_argument("--num-e", type=int, default=None, help="excitatory neurons (overrides --size)")
    sim.add_argument("--num-i", type=int, default=None, help="inhibitory neurons (default num_e / 4)")
    sim.add_argument("--duration", type=float, default=25.0, help="simulated seconds")
    sim.add_argument("--onset", type=float, default=2.0, help="stimulation onset, s")
    sim.add_argument("--amplitude", type=float, default=100.0, help="pulse amplitude, mV")
    sim.add_argument("--waveform", choices=["ftsts", "swapped", "none"], default="ftsts")
    sim.add_argument("--latch", type=float, default=75.0,
                     help="switch stimulation off for good once mean J_I*w crosses this, mV (negative: never)")
    sim.add_argument("--j-i", type=float, default=260.0, help="E->I strength J_I, mV (published swapped run: 75)")
    sim.add_argument("--synaptic-input", choices=["published", "summed"], default="published")
    sim.add_argument("--noise", choices=["published", "euler_maruyama"], default="published")
    sim.add_argument("--networks", type=int, default=1, help="independent networks (seeds seed..seed+n-1)")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    sim.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    sim.add_argument("--out", default="runs/simulate", help="output folder")
    sim.add_argument("--quiet", action="store_true", help="no progress bar or report")
    sim.set_defaults(handler=simulate)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.handler(args)


if __name__ == "__main__":
    main()
