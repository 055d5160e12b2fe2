"""Throughput benchmarks: the harness, its peers, the plot and the ``bench`` subcommand.

* :func:`run_benchmarks` / :class:`BenchConfig` (:mod:`.harness`): measure and write JSON + PNG.
* :mod:`.peers`: the one-network peers (reference loop, Brian2).
* :func:`plot_results` (:mod:`.plot`): throughput and memory vs number of networks.
* :func:`add_subcommand` / :func:`run` (:mod:`.cli`): ``neuroloop bench``.
"""

from .cli import add_subcommand, run
from .harness import (BenchConfig, compute_ratios, device_slug, format_report, latest_results, load_results,
                      run_benchmarks, target_summary, write_results)
from .plot import plot_results
from .workload import SIZES, Size, parse_size

__all__ = ["SIZES", "BenchConfig", "Size", "add_subcommand", "compute_ratios", "device_slug", "format_report",
           "latest_results", "load_results", "parse_size", "plot_results", "run", "run_benchmarks", "target_summary",
           "write_results"]
