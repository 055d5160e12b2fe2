"""Peer: Brian2 (runtime/Cython and cpp_standalone), run in a separate Python process.

Brian2 2.9 needs NumPy < 2.3 while this package runs on NumPy 2.x, so the
network (:mod:`brian2_network`, a standalone script) runs in whichever
interpreter has Brian2: ``python`` argument, else ``$NEUROLOOP_BRIAN2_PYTHON``,
else the current interpreter. A missing Brian2 gives a "skipped" record, not
an error. Every target runs in its own process because Brian2's device
choice is global state.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from ..measure import summarize_times
from ..workload import STEP_MS, STIM_AMPLITUDE_MV, WINDOW_MS, Size, pulse_train_per_step

SCRIPT = Path(__file__).with_name("brian2_network.py")
TARGETS = {"brian2-runtime": "runtime", "brian2-cpp": "cpp_standalone"}
ENV_PYTHON = "NEUROLOOP_BRIAN2_PYTHON"
INSTALL_HINT = (
    "install it with `pip install 'neuroloop-gpu[brian2]'` (needs numpy < 2.3), or point "
    f"--brian2-python / ${ENV_PYTHON} at an interpreter that has it"
)


def brian2_python(python: str | None = None) -> str:
    return python or os.environ.get(ENV_PYTHON) or sys.executable


def run_brian2(
    peer: str,
    size: Size,
    *,
    windows: int,
    repeats: int,
    warmup: int,
    seed: int = 0,
    python: str | None = None,
    threads: int = 1,
    record_spikes: bool = False,
    amplitude: float = STIM_AMPLITUDE_MV,
    timeout_s: float = 1800.0,
) -> dict:
    """Time one Brian2 network of ``size`` on the workload (``amplitude``: its pulse train's, mV; 0 for no
    stimulation); returns a peer record (see the harness)."""
    interpreter = brian2_python(python)
    base = {
        "peer": peer,
        "size": size.name,
        "num_e": size.num_e,
        "num_i": size.num_i,
        "batch": 1,
        "device": "cpu",
        "windows": windows,
        "repeats": repeats,
        "warmup": warmup,
        "python_executable": interpreter,
    }
    steps = round(WINDOW_MS / STEP_MS) * (warmup + windows * repeats)
    with tempfile.TemporaryDirectory(prefix="neuroloop_brian2_") as tmp:
        folder = Path(tmp)
        np.save(folder / "stimulus.npy", pulse_train_per_step(steps, STEP_MS, amplitude))
        job = {
            "target": TARGETS[peer],
            "params": dataclasses.asdict(size.params(synaptic_input="summed")),
            "dt_ms": STEP_MS,
            "window_ms": WINDOW_MS,
            "seed": seed,
            "windows": windows,
            "repeats": repeats,
            "warmup": warmup,
            "threads": threads,
            "record_spikes": record_spikes,
            "stimulus_path": str(folder / "stimulus.npy"),
            "build_dir": str(folder / "build"),
        }
        (folder / "job.json").write_text(json.dumps(job))
        try:
            done = subprocess.run(
                [interpreter, str(SCRIPT), str(folder / "job.json"), str(folder / "result.json")],
                capture_output=True,
                text=True,
                timeout=timeout_s,
                cwd=tmp,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            return {**base, "error": f"{type(error).__name__}: {error}"}
        result_path = folder / "result.json"
        if done.returncode != 0 or not result_path.exists():
            tail = (done.stderr or done.stdout or "").strip().splitlines()[-15:]
            return {**base, "error": f"{interpreter} exited with {done.returncode}: " + "\n".join(tail)}
        result = json.loads(result_path.read_text())
    if "skipped" in result:
        return {**base, "skipped": f"{result['skipped']}; {INSTALL_HINT}"}
    times = result.pop("seconds_per_window")
    state = result.pop("state_bytes", None)
    return {
        **base,
        **summarize_times(times, 1, WINDOW_MS),
        **result,
        "peer": peer,
        "memory": {
            "peak_bytes_per_network": None,
            "persistent_bytes_per_network": state,
            "method": "sum of the state arrays of Brian2's groups, synapses and spike counters",
        },
        "notes": "Brian2 network from the model spec, synaptic_input 'summed' (transmission delay on the "
        "spikes), one network; compilation and code generation excluded",
    }
