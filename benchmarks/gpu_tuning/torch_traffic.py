"""The pure-torch step's memory traffic and the bandwidth bound it sets on a GPU, counted without a GPU.

    python benchmarks/gpu_tuning/torch_traffic.py --size full --batch 32 --plot benchmarks/results/traffic_full.png

Prints :func:`neuroloop_gpu.bench.traffic_model` as Markdown tables (the model, its three fusion scenarios
and its limits are described in :mod:`neuroloop_gpu.bench.traffic`); ``--plot`` draws the bounds beside the
GPU throughput committed in ``benchmarks/results/`` at the same size.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from neuroloop_gpu.bench import format_traffic, latest_results, load_results, plot_traffic, traffic_model

RESULTS = Path(__file__).resolve().parents[1] / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="full", help="small, full or NE/NI")
    parser.add_argument(
        "--batch", type=int, default=32, help="networks counted (the bytes per network barely depend on it)"
    )
    parser.add_argument("--synapses", nargs="+", default=["event", "dense"], choices=["event", "dense"])
    parser.add_argument("--device", default="cpu", help="where to run the window (the operators are the same)")
    parser.add_argument("--plot", type=Path, help="PNG of the bounds beside the committed GPU results")
    args = parser.parse_args()

    try:
        rows = traffic_model(args.size, args.batch, args.synapses, args.device)
    except ValueError as error:  # a bad size, batch or device
        parser.error(str(error))
    print(format_traffic(rows))
    if args.plot is not None:
        plot_traffic(rows, latest_results(load_results(sorted(RESULTS.glob("throughput_*.json")))), path=args.plot)
        print(f"\nwrote {args.plot}")


if __name__ == "__main__":
    main()
