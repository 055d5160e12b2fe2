"""Where the Triton kernel's time goes, by region of its source: Nsight Compute's per-line counters summed.

    python benchmarks/gpu_tuning/ncu_regions.py \
        benchmarks/results/gpu_logs/ncu_triton_full_b2048_a11f8a4_h200-source.csv.gz \
        --kernel <(git show a11f8a4:neuroloop_gpu/network/triton_kernel.py)

Reads the per-source-line export that ``bash benchmarks/gpu_tuning/gpu_session.sh ncu`` writes next to each report
(``ncu --import R.ncu-rep --page source --csv --print-source cuda,sass``; plain or gzipped). A region is a
helper function of the kernel (by its name) or a stretch of ``steps_kernel`` that starts at one of its
``# ---- name`` comments (before the step loop: the prologue; after it: the epilogue); lines of Triton's own
library (reductions, scans) form one region. ``--kernel`` must be the source that was profiled: every
profiled line is checked against it. Prints each region's share of the warp-stall samples and of the
executed warp instructions, with the stall reasons that dominate.
"""

from __future__ import annotations

import argparse
import ast
import collections
import csv
import gzip
import re
from pathlib import Path

KERNEL = Path(__file__).parents[2] / "neuroloop_gpu" / "network" / "triton_kernel.py"
SAMPLES, INSTRUCTIONS = "Warp Stall Sampling (All Samples)", "Instructions Executed"
STALLS = ("long_sb", "barrier", "wait", "short_sb", "math", "selected", "not_selected", "branch_resolving", "no_inst")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", help="the source page export (.csv or .csv.gz)")
    parser.add_argument("--kernel", default=str(KERNEL), help="the profiled kernel's source (default: this tree's)")
    args = parser.parse_args()
    source = Path(args.kernel).read_text().splitlines()
    region_of = regions(source)
    totals = collections.defaultdict(collections.Counter)
    for file, line, text, counters in profiled_lines(args.csv):
        if not file.endswith("triton_kernel.py"):
            totals["triton.language (reductions, scans)"].update(counters)
            continue
        if _bare(source[line - 1]) != _bare(text):
            raise SystemExit(
                f"line {line} of {args.kernel} is not the profiled source ({text.strip()[:60]!r}): "
                "pass --kernel of the profiled commit"
            )
        totals[region_of[line]].update(counters)
    samples = sum(c[SAMPLES] for c in totals.values())
    instructions = sum(c[INSTRUCTIONS] for c in totals.values())
    print(f"{'region':46s} {'stalls %':>8s} {'instr %':>8s}  largest stall reasons (% of all samples)")
    for name, c in sorted(totals.items(), key=lambda item: -item[1][SAMPLES]):
        reasons = sorted(STALLS, key=lambda r: -c[r])[:3]
        detail = ", ".join(f"{r} {100 * c[r] / samples:.1f}" for r in reasons if c[r])
        shares = f"{100 * c[SAMPLES] / samples:8.1f} {100 * c[INSTRUCTIONS] / instructions:8.1f}"
        print(f"{name[:46]:46s} {shares}  {detail}")
    every = collections.Counter()
    for c in totals.values():
        every.update(c)
    print(
        f"all: {samples:.0f} stall samples, {instructions:.0f} warp instructions; "
        + ", ".join(f"{r} {100 * every[r] / samples:.1f} %" for r in sorted(STALLS, key=lambda r: -every[r]))
    )


def regions(source: list[str]) -> dict[int, str]:
    """Region name of each line (1-based) of the kernel source."""
    names = {}
    for node in ast.parse("\n".join(source)).body:
        if isinstance(node, ast.FunctionDef):
            for line in range(node.lineno, node.end_lineno + 1):
                names[line] = node.name
    kernel = next(
        n for n in ast.parse("\n".join(source)).body if isinstance(n, ast.FunctionDef) and n.name == "steps_kernel"
    )
    loop = next(n for n in kernel.body if isinstance(n, ast.While))
    current = "steps_kernel: prologue"
    for line in range(kernel.lineno, kernel.end_lineno + 1):
        marker = re.match(r"\s*# ---- (.*)", source[line - 1])
        if line == loop.lineno:
            current = "step loop head"
        elif marker:
            current = marker.group(1).split(":")[0]
        elif line > loop.end_lineno:
            current = "steps_kernel: epilogue"
        if "tl.debug_barrier()" in source[line - 1]:
            names[line] = "barrier " + source[line - 1].split("#")[-1].strip()
        else:
            names[line] = current
    return names


def _number(row: list[str], columns: dict[str, int], name: str) -> float:
    """A counter of a row; 0 where the export lacks its column (sections not collected) or leaves it blank."""
    text = row[columns[name]] if name in columns else "-"
    return float(text) if text not in ("-", "") else 0.0


def _bare(text: str) -> str:
    """A source line as ncu's export compares: it drops the quotes of string literals."""
    return text.replace('"', "").replace("'", "").strip()


def profiled_lines(path: str):
    """(file, line, source text, counters) of every profiled source line in an ncu source-page export."""
    opener = gzip.open if path.endswith(".gz") else open
    file, columns = "", {}
    with opener(path, "rt") as stream:
        for row in csv.reader(stream):
            if not row:
                continue
            if row[0] == "File Path":
                file = row[1]
            elif row[0] == "Line No":
                columns = {name: index for index, name in enumerate(row)}
            elif row[0].isdigit():
                counters = collections.Counter({name: _number(row, columns, name) for name in (SAMPLES, INSTRUCTIONS)})
                counters.update({r: _number(row, columns, f"stall_{r}") for r in STALLS})
                yield file, int(row[0]), row[1], counters


if __name__ == "__main__":
    main()
