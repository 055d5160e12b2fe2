"""Throughput benchmarks: the harness, its peers, the plot and the ``bench`` subcommand.

* :func:`run_benchmarks` / :class:`BenchConfig` (:mod:`.harness`): measure and write JSON + PNG.
* :mod:`.peers`: the one-network peers (reference loop, Brian2).
* :func:`plot_results` (:mod:`.plot`): throughput and memory vs number of networks.
* :func:`traffic_model` (:mod:`.traffic`): the pure-torch step's memory traffic and the bandwidth bound it
  sets on a GPU, counted on any device; :func:`plot_traffic` draws it beside measured GPU throughput.
* :func:`add_subcommand` / :func:`run` (:mod:`.cli`): ``neuroloop bench``.
"""

from .cli import add_subcommand, run
from .harness import (
    BenchConfig,
    compute_ratios,
    device_slug,
    format_report,
    latest_results,
    load_results,
    run_benchmarks,
    target_summary,
    write_results,
)
from .plot import plot_results, plot_traffic
from .traffic import format_traffic, traffic_model
from .workload import SIZES, Size, parse_size

__all__ = [
    "SIZES",
    "BenchConfig",
    "Size",
    "add_subcommand",
    "compute_ratios",
    "device_slug",
    "format_report",
    "format_traffic",
    "latest_results",
    "load_results",
    "parse_size",
    "plot_results",
    "plot_traffic",
    "run",
    "run_benchmarks",
    "target_summary",
    "traffic_model",
    "write_results",
]
