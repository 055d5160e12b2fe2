"""benchmarks/gpu_tuning/ncu_regions.py: Nsight Compute's per-line counters summed by region of the Triton kernel."""

import csv
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_tuning" / "ncu_regions.py"
KERNEL = ROOT / "neuroloop_gpu" / "network" / "triton_kernel.py"
COLUMNS = [
    "Line No",
    "Source",
    "Address",
    "Source",
    "Warp Stall Sampling (All Samples)",
    "Instructions Executed",
    "stall_long_sb",
    "stall_barrier",
]


def _export(path: Path, lines: list[tuple[str, int, str, float]]) -> None:
    """A source-page export in ncu's layout: per file a "File Path" row, a header, then one row per line."""
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        for file in dict.fromkeys(f for f, *_ in lines):
            writer.writerows([["File Path", file], ["Function Name", "steps_kernel"], COLUMNS])
            for _, number, text, samples in (line for line in lines if line[0] == file):
                # ncu drops the quotes of string literals from the source it prints
                writer.writerow([number, text.replace('"', ""), "-", "-", samples, 10, samples, 0])


def _line(fragment: str) -> tuple[int, str]:
    source = KERNEL.read_text().splitlines()
    number = next(i for i, text in enumerate(source, 1) if fragment in text)
    return number, source[number - 1]


def _run(export: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), str(export)], capture_output=True, text=True, timeout=120)


def test_lines_are_summed_by_kernel_region(tmp_path):
    stim, noise, walk = _line("stim = tl.load("), _line("first * tl.cos(first_angle)"), _line("tl.atomic_max(")
    _export(
        tmp_path / "export.csv",
        [
            (str(KERNEL), *stim, 30.0),
            (str(KERNEL), *noise, 50.0),
            (str(KERNEL), *walk, 15.0),
            ("triton/language/standard.py", 7, "x", 5.0),
        ],
    )
    done = _run(tmp_path / "export.csv")
    assert done.returncode == 0, done.stderr
    shares = {line[:46].strip(): float(line[46:55]) for line in done.stdout.splitlines()[1:-1]}
    assert shares == pytest.approx(
        {
            "normal_draws": 50.0,
            "step loop head": 30.0,
            "E -> I input with the weights before this step": 15.0,
            "triton.language (reductions, scans)": 5.0,
        }
    )


def test_a_profile_of_other_source_is_refused(tmp_path):
    number, _ = _line("stim = tl.load(")
    _export(tmp_path / "export.csv", [(str(KERNEL), number, "v = something_else(v)", 1.0)])
    done = _run(tmp_path / "export.csv")
    assert done.returncode != 0 and "pass --kernel of the profiled commit" in done.stderr
