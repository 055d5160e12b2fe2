"""The throughput harness at tiny size: files, bookkeeping, peers, errors (no timing assertions)."""

import argparse
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from test_figures import assert_png_shows, assert_throughput_figure

from neuroloop_gpu.bench import (
    BenchConfig,
    add_subcommand,
    compute_ratios,
    latest_results,
    parse_size,
    plot_results,
    run,
    run_benchmarks,
)
from neuroloop_gpu.bench.harness import source_digest
from neuroloop_gpu.bench.peers import expand_peers, run_peer
from neuroloop_gpu.bench.peers.brian2_peer import ENV_PYTHON
from neuroloop_gpu.bench.workload import pulse_train_per_step
from neuroloop_gpu.network.simulator import BACKENDS, backend_problem
from neuroloop_gpu.stimulus import PulseTrain, StimulatorState, render_window

TINY = dict(device="cpu", sizes=("20/5",), batches=(1, 2), windows=1, repeats=2, warmup=1, progress=False)


def parse(argv):
    parser = argparse.ArgumentParser(prog="neuroloop")
    add_subcommand(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["bench", *argv])


def test_source_digest_names_the_code_not_the_checkout(tmp_path):
    """Same sources, same digest wherever they lie; one changed byte, another digest."""
    package = Path(__file__).resolve().parents[1] / "neuroloop_gpu"
    copy = tmp_path / "neuroloop_gpu"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pt", "*.csv"))
    assert source_digest(copy) == source_digest(package)
    (copy / "config.py").write_text((copy / "config.py").read_text() + " ")
    assert source_digest(copy) != source_digest(package)


def test_harness_writes_well_formed_json_and_plot(tmp_path):
    doc = run_benchmarks(BenchConfig(**TINY, peers=("reference",)), out=tmp_path)
    path = tmp_path / "throughput_cpu.json"
    assert doc["files"] == {"json": str(path), "plot": str(tmp_path / "throughput_cpu.png")}
    saved = json.loads(path.read_text())
    assert saved["schema"] == "neuroloop-bench/1" and saved["device_type"] == "cpu"
    assert saved["device"].startswith("cpu")
    env = saved["environment"]
    assert {"python", "torch", "numpy", "git_commit", "torch_threads", "cpu_count", "source_sha256"} <= env.keys()
    assert env["torch"] == torch.__version__ and env["numpy"] == np.__version__
    assert env["source_sha256"] == source_digest()
    assert saved["config"]["batches"] == [1, 2] and saved["config"]["peers"] == ["reference"]
    assert saved["workload"]["window_ms"] == 20.0

    results = saved["results"]
    assert sorted((r["target"], r["batch"]) for r in results) == [
        (t, b) for t in ("simulator", "torchrl-env", "vector-env") for b in (1, 2)
    ]
    for row in results:
        assert (row["num_e"], row["num_i"], row["size"]) == (20, 5, "20/5")
        assert len(row["seconds_per_window"]) == 2 and all(t > 0 for t in row["seconds_per_window"])
        assert row["seconds_per_window_min"] == min(row["seconds_per_window"])
        assert row["seconds_per_window_min"] <= row["seconds_per_window_median"]
        assert row["env_steps_per_s"] == pytest.approx(row["batch"] / row["seconds_per_window_median"])
        assert row["simulated_s_per_wall_s"] == pytest.approx(row["env_steps_per_s"] * 0.02)
        assert row["env_steps_per_s_best"] >= row["env_steps_per_s"]
        memory = row["memory"]
        assert memory["persistent_bytes_per_network"] > 0 and memory["method"]
        assert memory["peak_bytes_per_network"] is None or memory["peak_bytes_per_network"] >= 0
    simulator = next(r for r in results if r["target"] == "simulator")
    assert simulator["activity"]["rate_e_hz"] >= 0 and 0 <= simulator["activity"]["kop_causal"] <= 1

    (peer,) = saved["peers"]
    assert peer["peer"] == "reference" and peer["batch"] == 1 and peer["env_steps_per_s"] > 0
    assert len(saved["ratios"]) == 3
    for ratio in saved["ratios"]:
        assert ratio["ratio_best"] == pytest.approx(ratio["ours_best_env_steps_per_s"] / peer["env_steps_per_s"])
    # the PNG a user opens draws the saved measurements: each target's rates, bands and memory, the peer
    figure = plot_results([saved])
    assert_throughput_figure(figure, [saved])
    drawn = {line.get_label() for line in figure.axes[0].lines}
    threads = env["torch_threads"]
    assert drawn == {f"CPU x{threads} {t} 20/5" for t in ("simulator", "torchrl-env", "vector-env")} | {
        "peer reference 20/5"
    }
    assert_png_shows(tmp_path / "throughput_cpu.png", figure)


def test_reference_peer_runs():
    record = run_peer("reference", parse_size("20/5"), windows=1, repeats=2, warmup=1, seed=3)
    assert record["peer"] == "reference" and len(record["seconds_per_window"]) == 2
    assert record["env_steps_per_s"] > 0
    activity = record["activity"]
    assert activity["simulated_s"] == pytest.approx(0.06)
    assert activity["rate_e_hz"] > 0 and activity["rate_i_hz"] > 0
    assert 10.0 <= activity["mean_weight_mv"] <= 290.0


def test_peers_share_the_simulator_stimulus():
    """The peers' per-step pulse train is the one NetworkBatch renders (workload is apples to apples)."""
    for amplitude, frequency, width in ((100.0, 1000 / 12, 1000.0), (37.0, 130.0, 75.0), (200.0, 5.0, 500.0)):
        train = PulseTrain.constant(1, amplitude, frequency, width)
        state, windows = StimulatorState.initial(1, "cpu"), []
        for _ in range(12):
            stimulus, state = render_window(train, state, 200, 0.1)
            windows.append(stimulus.current_i[0].numpy())
        expected = pulse_train_per_step(2400, 0.1, amplitude, frequency, width)
        np.testing.assert_allclose(np.concatenate(windows), expected, rtol=0, atol=1e-8)


def test_ratio_bookkeeping():
    def row(target, size, n, batch, rate):
        return {
            "target": target,
            "size": size,
            "num_e": n,
            "num_i": n // 4,
            "batch": batch,
            "device": "cpu",
            "env_steps_per_s": rate,
        }

    results = [
        row("simulator", "small", 160, 1, 10.0),
        row("simulator", "small", 160, 16, 80.0),
        row("simulator", "small", 160, 64, 60.0),
        row("torchrl-env", "small", 160, 4, 5.0),
        row("simulator", "full", 1600, 1, 2.0),
        {"target": "simulator", "size": "full", "num_e": 1600, "num_i": 400, "batch": 256, "error": "OOM"},
    ]
    peers = [
        {"peer": "reference", "size": "small", "num_e": 160, "num_i": 40, "env_steps_per_s": 20.0},
        {"peer": "brian2-cpp", "size": "small", "num_e": 160, "num_i": 40, "env_steps_per_s": 40.0},
        {"peer": "reference", "size": "full", "num_e": 1600, "num_i": 400, "env_steps_per_s": 0.5},
        {"peer": "brian2-runtime", "size": "full", "num_e": 1600, "num_i": 400, "skipped": "no brian2"},
    ]
    ratios = {(r["target"], r["size"], r["peer"]): r for r in compute_ratios(results, peers)}
    assert set(ratios) == {
        ("simulator", "small", "reference"),
        ("torchrl-env", "small", "reference"),
        ("simulator", "small", "brian2-cpp"),
        ("torchrl-env", "small", "brian2-cpp"),
        ("simulator", "full", "reference"),
    }
    r = ratios["simulator", "small", "reference"]
    assert (r["ours_best_batch"], r["ratio_best"], r["ratio_batch1"]) == (16, 4.0, 0.5)
    assert ratios["simulator", "small", "brian2-cpp"]["ratio_best"] == 2.0
    r = ratios["torchrl-env", "small", "reference"]
    assert (r["ratio_best"], r["ratio_batch1"], r["ours_batch1_env_steps_per_s"]) == (0.25, None, None)
    assert ratios["simulator", "full", "reference"]["ratio_best"] == 4.0  # the failed batch 256 is left out


def test_a_rerun_supersedes_the_run_it_repeats():
    def doc(gpu, created, batches, backends=("triton",)):
        return {
            "device_type": "cuda",
            "environment": {"gpu": gpu},
            "created": created,
            "config": {
                "targets": ["simulator"],
                "backends": list(backends),
                "sizes": ["small", "full"],
                "batches": list(batches),
                "synaptic_input": "published",
                "sim_options": {},
            },
        }

    old, new = doc("H200", "2026-11-26T13:00:00+00:00", [1, 1024]), doc("H200", "2026-11-26T23:00:00+00:00", [1, 1024])
    large = doc("H200", "2026-11-26T13:01:00+00:00", [65536])  # another sweep of the same device
    eager = doc("H200", "2026-11-26T06:00:00+00:00", [1, 1024], backends=("eager",))
    other_gpu = doc("H100", "2026-11-26T01:00:00+00:00", [1, 1024])
    assert latest_results([old, large, new, eager, other_gpu]) == [new, large, eager, other_gpu]


def test_cli_subcommand_runs_and_writes(tmp_path, capsys):
    # every backend that can run here (each is checked bit for bit against eager elsewhere)
    backends = [b for b in BACKENDS if backend_problem(b, torch.device("cpu")) is None]
    args = parse(
        [
            "--device",
            "cpu",
            "--sizes",
            "20/5",
            "--batches",
            "2",
            "--windows",
            "1",
            "--repeats",
            "1",
            "--warmup",
            "0",
            "--targets",
            "simulator",
            "--peers",
            "none",
            "--out",
            str(tmp_path),
            "--quiet",
            "--tag",
            "tiny run",
            "--sim-option",
            "kop_sample_interval=2.0",
            "--backends",
            *backends,
        ]
    )
    doc = run(args)
    printed = capsys.readouterr().out
    assert "env-steps/s" in printed and "throughput_cpu_tiny-run.json" in printed and backends[-1] in printed
    saved = json.loads((tmp_path / "throughput_cpu_tiny-run.json").read_text())
    assert saved["config"]["sim_options"] == {"kop_sample_interval": 2.0}
    assert saved["config"]["backends"] == backends
    assert [r["backend"] for r in saved["results"]] == backends
    assert all(r["sim_options"] == {"kop_sample_interval": 2.0} for r in saved["results"])
    # the same networks whichever backend runs them
    assert all(r["activity"] == saved["results"][0]["activity"] for r in saved["results"])
    assert doc["peers"] == [] and doc["ratios"] == []


def test_cli_times_the_peers_alone(tmp_path, capsys):
    args = parse(
        [
            "--device",
            "cpu",
            "--sizes",
            "20/5",
            "--windows",
            "1",
            "--repeats",
            "1",
            "--warmup",
            "0",
            "--targets",
            "none",
            "--peers",
            "reference",
            "--out",
            str(tmp_path),
            "--quiet",
        ]
    )
    doc = run(args)
    printed = capsys.readouterr().out
    assert doc["results"] == [] and doc["ratios"] == [] and [p["peer"] for p in doc["peers"]] == ["reference"]
    assert doc["peers"][0]["env_steps_per_s"] > 0 and "reference" in printed and "backend" not in printed
    assert json.loads((tmp_path / "throughput_cpu.json").read_text())["config"]["targets"] == []


def test_cli_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--device", "--sizes", "--batches", "--windows", "--repeats", "--backends", "--peers", "--out"):
        assert option in text


@pytest.mark.parametrize(
    "overrides,message",
    [
        (dict(batches=(0,)), "batches must be one or more integers >= 1"),
        (dict(batches=(4, -1)), "batches must be one or more integers >= 1"),
        (dict(sizes=("huge",)), "sizes must be 'small' .* got 'huge'"),
        (dict(sizes=("0/10",)), "sizes must be"),
        (dict(sizes=()), "sizes must be at least one size"),
        (dict(windows=0), "windows must be an integer >= 1"),
        (dict(repeats=0), "repeats must be an integer >= 1"),
        (dict(targets=("gpu-kernel",)), "targets must be among simulator"),
        (dict(peers=("neuron",)), "peers must be among reference"),
        (dict(device="tpu"), "device must be 'auto', 'cpu', 'cuda' or 'cuda:N'"),
        (dict(backends=("graphs",)), "backends must be one or more of eager, compiled, fused, triton"),
    ],
)
def test_bad_config_is_rejected_clearly(overrides, message):
    with pytest.raises(ValueError, match=message):
        BenchConfig(**{**TINY, **overrides})


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--batches", "0"], "error: batches must be one or more integers >= 1"),
        (["--sizes", "medium"], "error: sizes must be 'small'"),
        (["--sim-option", "no_such_keyword=1"], "error: sim_options must be NetworkBatch keywords"),
        (["--sim-option", "record=1"], "error: record must be a RecordConfig or None, got 1"),
        (["--targets", "none", "simulator"], "error: --targets: none cannot be combined with targets"),
        (["--targets", "none"], "error: targets must be at least one target or peer"),
    ],
)
def test_cli_bad_arguments_exit_with_a_message(tmp_path, capsys, argv, message):
    args = parse(
        [
            "--device",
            "cpu",
            "--sizes",
            "20/5",
            "--batches",
            "1",
            "--peers",
            "none",
            "--quiet",
            "--out",
            str(tmp_path),
            *argv,
        ]
    )
    with pytest.raises(SystemExit) as exit_info:
        run(args)
    assert exit_info.value.code == 2 and re.match(message, capsys.readouterr().err)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_without_a_gpu_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="CUDA is not available"):
        run_benchmarks(BenchConfig(**{**TINY, "device": "cuda"}), out=tmp_path)


def test_peer_aliases():
    assert expand_peers(["brian2"]) == ("brian2-runtime", "brian2-cpp")
    assert expand_peers(["reference", "all"]) == ("reference", "brian2-runtime", "brian2-cpp")
    assert expand_peers(["none"]) == ()


@pytest.mark.skipif(importlib.util.find_spec("brian2") is not None, reason="Brian2 is installed here")
def test_missing_brian2_is_skipped_with_an_install_hint():
    record = run_peer("brian2-cpp", parse_size("20/5"), windows=1, repeats=1, warmup=0, brian2_python=sys.executable)
    assert "env_steps_per_s" not in record and "error" not in record
    assert "neuroloop-gpu[brian2]" in record["skipped"]


def brian2_python() -> str:
    """An interpreter with Brian2: $NEUROLOOP_BRIAN2_PYTHON, else this one if it has Brian2, else skip."""
    python = os.environ.get(ENV_PYTHON)
    if python:
        return python
    pytest.importorskip("brian2")
    return sys.executable


@pytest.mark.timeout(600)
def test_brian2_peer_runs_the_network():
    python = brian2_python()  # skipped where Brian2 is absent (its first Cython build takes about a minute)
    record = run_peer(
        "brian2-runtime", parse_size("40/10"), windows=2, repeats=2, warmup=1, brian2_windows=2, brian2_python=python
    )
    assert "error" not in record and "skipped" not in record, record.get("error") or record.get("skipped")
    assert record["peer"] == "brian2-runtime" and record["env_steps_per_s"] > 0
    assert record["brian2"] and record["target"] == "runtime"
    activity = record["activity"]
    assert activity["rate_e_hz"] > 0 and activity["rate_i_hz"] > 0
    assert activity["synapses_ei"] > 0 and 10.0 <= activity["mean_weight_mv"] <= 290.0


AGREEMENT = Path(__file__).parents[1] / "benchmarks" / "brian2_agreement.py"


@pytest.mark.timeout(600)
def test_brian2_agreement_tabulates_both_simulators(tmp_path):
    python = brian2_python()  # skipped where Brian2 is absent (two cpp_standalone builds, about a minute)
    out = tmp_path / "agreement.md"
    done = subprocess.run(
        [
            sys.executable,
            str(AGREEMENT),
            "--size",
            "40/10",
            "--seconds",
            "0.1",
            "--seeds",
            "3",
            "--brian2-python",
            python,
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in out.read_text().splitlines() if line.startswith(("| FTSTS", "| none"))]
    assert len(rows) == 2
    for row in rows:  # three simulators per stimulus, each "E / I Hz, R r": all firing, R in [0, 1]
        for cell in row.split("|")[2:5]:
            rates, synchrony = cell.split("Hz, R")
            assert all(float(rate) > 0 for rate in rates.split("/")) and 0 <= float(synchrony) <= 1


@pytest.mark.parametrize(
    "argv,message",
    [(["--seconds", "0.01"], "--seconds must be at least one window"), (["--size", "big"], "sizes must be 'small'")],
)
def test_brian2_agreement_bad_arguments_are_clear_errors(argv, message):
    done = subprocess.run([sys.executable, str(AGREEMENT), *argv], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and message in done.stderr


def test_an_output_folder_that_cannot_be_written_is_refused_before_measuring(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setattr("neuroloop_gpu.bench.harness.measure_target", None)  # measuring would fail differently
    with pytest.raises(ValueError, match="out must be a folder that can be written"):
        run_benchmarks(BenchConfig(**TINY), out=blocker / "results")


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_gpu_session_script_refuses_an_unknown_stage_before_any_work(tmp_path):
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_tuning" / "gpu_session.sh"
    done = subprocess.run(
        ["bash", str(script), "tests", "no_such_stage"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "RESULTS": str(tmp_path / "results")},
        timeout=60,
    )
    assert done.returncode == 2 and "unknown stage 'no_such_stage'" in done.stderr
    assert not (tmp_path / "results" / "gpu.txt").exists()  # stopped before touching the machine


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None, reason="needs bash and timeout")
def test_gpu_session_script_exits_with_the_last_stage_status(tmp_path):
    tools = tmp_path / "benchmarks" / "gpu_tuning"
    tools.mkdir(parents=True)
    shutil.copy(Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_tuning" / "gpu_session.sh", tools)
    (tools / "triton_math_check.py").write_text("raise SystemExit(3)\n")  # the "math" stage
    done = subprocess.run(
        ["bash", "benchmarks/gpu_tuning/gpu_session.sh", "math"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "RESULTS": str(tmp_path / "results")},
        timeout=120,
    )
    assert done.returncode == 3 and "== triton-math: exit 3" in done.stdout
