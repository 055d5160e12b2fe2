"""The documentation site builds without a warning, and the README stays a front page."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
QUICK_START = (
    "pip install torch==2.13.0 -e . && neuroloop evaluate --duration 6 --out runs/quickstart",
    'pip install torch==2.13.0 -e ".[dev]" && pytest',
)


def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    pytest.importorskip("mkdocstrings_handlers.python")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "api" / "index.html").is_file()


def test_readme_is_a_front_page():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines; move detail into docs/"
    for command in QUICK_START:
        assert command in lines, f"quick-start command missing from README.md: {command}"


@pytest.mark.parametrize("command", ["", "simulate", "train", "evaluate", "sweep", "plot", "bench"])
def test_cli_reference_is_the_current_help(command, capsys, monkeypatch):
    """docs/cli.md quotes every subcommand's --help at 100 columns; a changed option must reach it."""
    from neuroloop_gpu.cli import main

    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit):
        main([command, "--help"] if command else ["--help"])
    text = capsys.readouterr().out.rstrip("\n")
    assert text in (ROOT / "docs" / "cli.md").read_text(encoding="utf-8"), (
        f"docs/cli.md is out of date for `neuroloop {command} --help`: paste the output of "
        f"`COLUMNS=100 neuroloop {command} --help` into its block"
    )
