"""The ``bench`` subcommand: ``add_subcommand(subparsers)`` registers it, ``run(args)`` runs it.

neuroloop bench --device cpu --sizes small full --batches 1 16 --peers reference brian2
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..network import BACKENDS
from ..usage import exit_with
from .harness import DEFAULT_BATCHES, DEFAULT_WINDOWS, TARGETS, BenchConfig, format_report, run_benchmarks
from .peers import ALIASES, PEERS
from .peers.brian2_peer import ENV_PYTHON

DESCRIPTION = """\
Throughput of the batched FTSTS simulator and its environments: env-steps/s
(20 ms decision windows of 200 Euler steps, summed over the networks),
simulated seconds per wall second and memory per network, for each network
size and batch size, against one-network peers (the port-faithful reference
loop; Brian2 runtime and cpp_standalone when installed) on the same workload.
Writes throughput_<device>.json and .png into --out and prints the ratios
ours / peer side by side.
"""


def _option(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE with KEY a Python name, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def add_subcommand(subparsers) -> argparse.ArgumentParser:
    """Register ``bench`` on an ``argparse`` subparsers object; its handler is :func:`run`."""
    parser = subparsers.add_parser(
        "bench",
        help="throughput benchmarks against the peers",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto = CUDA when available)")
    add(
        "--sizes",
        nargs="+",
        default=["small", "full"],
        metavar="SIZE",
        help="network sizes: small (160/40), full (1600/400) or NE/NI such as 40/10 (default: small full)",
    )
    add(
        "--batches",
        nargs="+",
        type=int,
        default=None,
        metavar="B",
        help=f"networks per batch (default: {' '.join(map(str, DEFAULT_BATCHES['cpu']))} on CPU, "
        f"{' '.join(map(str, DEFAULT_BATCHES['cuda']))} on CUDA)",
    )
    add(
        "--windows",
        type=int,
        default=None,
        help=f"timed windows per repeat (default: {DEFAULT_WINDOWS['cpu']} on CPU, {DEFAULT_WINDOWS['cuda']} on CUDA)",
    )
    add("--repeats", type=int, default=3, help="timed repeats; min and median are reported (default: 3)")
    add("--warmup", type=int, default=1, help="untimed windows before timing (default: 1)")
    add(
        "--targets",
        nargs="+",
        default=list(TARGETS),
        choices=[*TARGETS, "none"],
        metavar="TARGET",
        help=f"what to time: {', '.join(TARGETS)}, or none (only the peers) (default: all)",
    )
    add(
        "--backends",
        nargs="+",
        default=["eager"],
        choices=BACKENDS,
        metavar="BACKEND",
        help="simulator backends, each timed for every target and batch: eager, compiled (torch.compile; "
        "compiled during the warm-up window), fused (one C++ loop per network and step, CPU only), "
        "triton (a Triton kernel running many steps per launch, CUDA only); same results whichever, "
        "within the tolerances NetworkBatch states (default: eager)",
    )
    add(
        "--peers",
        nargs="+",
        default=["reference"],
        metavar="PEER",
        help=f"one-network peers: {', '.join(PEERS)}, or {', '.join(ALIASES)} (default: reference)",
    )
    add("--dtype", choices=["float32", "float64"], default="float32")
    add(
        "--synaptic-input",
        choices=["published", "summed"],
        default="published",
        help="coincident synaptic inputs of our network and the reference peer: the published 'last wins' or "
        "'summed' (Brian2's, for a like-for-like network) (default: published)",
    )
    add("--seed", type=int, default=0)
    add("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    add(
        "--sim-option",
        dest="sim_options",
        action="append",
        type=_option,
        default=[],
        metavar="KEY=VALUE",
        help="extra NetworkBatch keyword for the simulator target, value parsed as JSON when it can be "
        "(repeatable; e.g. --sim-option synapses=dense)",
    )
    add(
        "--brian2-python",
        default=None,
        help=f"Python interpreter that has Brian2 (default: ${ENV_PYTHON}, else this one)",
    )
    add("--brian2-threads", type=int, default=1, help="OpenMP threads of Brian2 cpp_standalone (default: 1)")
    add(
        "--brian2-windows",
        type=int,
        default=50,
        help="Brian2 peers time at least this many windows per run() call, amortising its per-call overhead "
        "(default: 50 = 1 simulated second)",
    )
    add("--out", default="benchmarks/results", help="output folder (default: benchmarks/results)")
    add("--tag", default=None, help="suffix for the output file names")
    add("--quiet", action="store_true", help="no progress bars or per-case lines (the summary still prints)")
    parser.set_defaults(handler=run)
    return parser


def config_from_args(args: argparse.Namespace) -> BenchConfig:
    return BenchConfig(
        device=args.device,
        sizes=tuple(args.sizes),
        batches=None if args.batches is None else tuple(args.batches),
        windows=args.windows,
        repeats=args.repeats,
        warmup=args.warmup,
        targets=_targets(args.targets),
        backends=tuple(args.backends),
        peers=tuple(args.peers),
        dtype=args.dtype,
        synaptic_input=args.synaptic_input,
        seed=args.seed,
        sim_options=dict(args.sim_options),
        brian2_python=args.brian2_python,
        brian2_threads=args.brian2_threads,
        brian2_windows=args.brian2_windows,
        threads=args.threads,
        progress=not args.quiet,
    )


def _targets(names: list[str]) -> tuple[str, ...]:
    """The targets named on the command line; ``none`` (alone) times only the peers."""
    if "none" not in names:
        return tuple(names)
    if len(names) > 1:
        raise ValueError(f"--targets: none cannot be combined with targets, got {' '.join(names)}")
    return ()


def run(args: argparse.Namespace) -> dict:
    """Run the benchmarks ``args`` describe, print the report, return the result document.

    Invalid settings print one ``error: ...`` line naming the option and exit with status 2.
    """
    try:
        config = config_from_args(args)
        doc = run_benchmarks(config, out=Path(args.out), tag=args.tag)
    except ValueError as error:
        exit_with(error)
    print(format_report(doc))
    print(f"wrote {doc['files']['json']} and {doc['files']['plot']}")
    return doc


def main(argv: list[str] | None = None) -> dict:
    """``python -m neuroloop_gpu.bench`` / ``benchmarks/run_benchmarks.py``: the subcommand on its own."""
    parser = argparse.ArgumentParser(prog="neuroloop")
    add_subcommand(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["bench", *(sys.argv[1:] if argv is None else argv)])
    return args.handler(args)
