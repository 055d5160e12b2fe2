"""Misuse of the commands and the API: every case fails early with one clear error, and loses nothing.

Organised by entry point. Each CLI case asserts argparse's error style (one ``error:`` line naming the option,
exit status 2) and, where a run folder or a checkpoint exists, that it is byte for byte unchanged afterwards.
"""

import csv
import gc
import json
import math
import shutil
import warnings
from dataclasses import fields

import numpy as np
import pytest
import torch
from filelock import FileLock
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuroloop_gpu import cli
from neuroloop_gpu.cli import main
from neuroloop_gpu.config import NetworkParams, PlasticityParams, SimConfig
from neuroloop_gpu.control.checkpoint import CheckpointError, load_checkpoint
from neuroloop_gpu.envs import FTSTSEnv, FTSTSVectorEnv
from neuroloop_gpu.network import NetworkBatch
from neuroloop_gpu.open_loop import OpenLoopProtocol
from neuroloop_gpu.run_folder import LOCK_NAME, RUN_FILES, RunFolderError, claim

TINY = ["--num-e", "20", "--num-i", "5", "--device", "cpu", "--quiet"]
TRAIN = [
    "train",
    *TINY,
    "--networks",
    "4",
    "--episode",
    "0.2",
    "--windows-per-batch",
    "5",
    "--minibatch",
    "10",
    "--hidden",
    "8",
    "--checkpoint-every",
    "1",
]
EVALUATE = ["evaluate", *TINY, "--controllers", "none", "--seeds", "1", "--duration", "0.4", "--onset", "0.2"]
SIMULATE = ["simulate", *TINY, "--duration", "0.2", "--onset", "0.1"]


def refusal(argv, capsys) -> str:
    """The one line `neuroloop argv` printed on stderr as it refused (exit status 2)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as refused:
        main(argv)
    assert refused.value.code == 2
    err = capsys.readouterr().err
    assert err.rstrip("\n").splitlines()[-1].startswith(("error: ", "neuroloop ")), err
    return err


def snapshot(folder) -> dict:
    """Every file under ``folder`` with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def rows(log) -> list[int]:
    with open(log) as file:
        return [int(row["iteration"]) for row in csv.DictReader(file)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished 4-iteration training run (checkpoint and log)."""
    run = tmp_path_factory.mktemp("trained") / "run"
    main([*TRAIN, "--frames", "80", "--out", str(run)])
    assert rows(run / "train_log.csv") == [1, 2, 3, 4]
    return run


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """An evaluation folder (tables, traces, figures) without a policy."""
    out = tmp_path_factory.mktemp("evaluated") / "eval"
    main([*EVALUATE, "--policy", "", "--out", str(out)])
    return out


# --- train -------------------------------------------------------------------------------------------------------


def test_train_refuses_a_used_folder_and_overwrites_only_when_asked(trained, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    before = snapshot(run)
    message = refusal([*TRAIN, "--frames", "20", "--out", str(run)], capsys)
    assert f"--out {run} holds an earlier run (checkpoint.pt, " in message and "train_log.csv" in message
    assert "--overwrite" in message
    assert snapshot(run) == before
    main([*TRAIN, "--frames", "20", "--out", str(run), "--overwrite"])
    assert rows(run / "train_log.csv") == [1] and load_checkpoint(run / "checkpoint.pt")["iteration"] == 1


def test_a_second_process_cannot_write_a_folder_in_use(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    with FileLock(run / LOCK_NAME):  # what a running neuroloop process holds (released by the OS if it dies)
        message = refusal([*TRAIN, "--frames", "20", "--out", str(run)], capsys)
        assert "is in use by another neuroloop process" in message
        assert "is in use" in refusal([*SIMULATE, "--out", str(run)], capsys)
    assert not (run / "checkpoint.pt").exists()
    main([*TRAIN, "--frames", "20", "--out", str(run)])  # free again
    assert rows(run / "train_log.csv") == [1]


@pytest.mark.parametrize(
    "option,value,field",
    [
        ("--energy-weight", "0.5", "energy_weight"),
        ("--lr", "0.001", "lr"),
        ("--gamma", "0.9", "gamma"),
        ("--networks", "2", "num_envs"),
        ("--size", "full", "num_e"),
    ],
)
def test_resume_refuses_a_changed_configuration(trained, tmp_path, capsys, option, value, field):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    before = snapshot(run)
    argv = [
        "train",
        "--resume",
        str(run / "checkpoint.pt"),
        "--frames",
        "100",
        "--out",
        str(run),
        "--device",
        "cpu",
        "--quiet",
        option,
        value,
    ]
    message = refusal(argv, capsys)
    assert "was trained with another configuration" in message and f"{field} " in message
    assert f"--allow-change {field}" in message
    assert snapshot(run) == before


def test_resume_inherits_the_configuration_and_allows_named_changes(trained, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    saved = load_checkpoint(run / "checkpoint.pt")["config"]
    # only --frames: everything else comes from the checkpoint (a 20/5 network, 4 networks, hidden 8)
    main(
        [
            "train",
            "--resume",
            str(run / "checkpoint.pt"),
            "--frames",
            "100",
            "--out",
            str(run),
            "--device",
            "cpu",
            "--quiet",
        ]
    )
    after = load_checkpoint(run / "checkpoint.pt")
    assert after["iteration"] == 5 and {**after["config"], "total_frames": 80} == saved
    assert rows(run / "train_log.csv") == [1, 2, 3, 4, 5]
    main(
        [
            "train",
            "--resume",
            str(run / "checkpoint.pt"),
            "--frames",
            "120",
            "--lr",
            "0.001",
            "--allow-change",
            "lr",
            "--out",
            str(run),
            "--device",
            "cpu",
            "--quiet",
        ]
    )
    changed = load_checkpoint(run / "checkpoint.pt")
    assert changed["iteration"] == 6 and changed["config"]["lr"] == 0.001


def test_resume_into_a_new_folder_keeps_the_whole_log(trained, tmp_path):
    main(
        [
            "train",
            "--resume",
            str(trained / "checkpoint.pt"),
            "--frames",
            "100",
            "--out",
            str(tmp_path / "more"),
            "--device",
            "cpu",
            "--quiet",
        ]
    )
    with open(trained / "train_log.csv") as old, open(tmp_path / "more" / "train_log.csv") as new:
        old_rows, new_rows = list(csv.DictReader(old)), list(csv.DictReader(new))
    assert new_rows[:4] == old_rows and [int(r["iteration"]) for r in new_rows] == [1, 2, 3, 4, 5]
    assert float(new_rows[4]["wall_s"]) > float(old_rows[3]["wall_s"])  # wall time goes on across the resume


def test_resume_refuses_another_task(trained, tmp_path, capsys):
    message = refusal(
        [
            "train",
            "--resume",
            str(trained / "checkpoint.pt"),
            "--task",
            "lasting",
            "--out",
            str(tmp_path / "x"),
            "--quiet",
        ],
        capsys,
    )
    assert "argument --task: must be the resumed run's task ('acute')" in message


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--seed", "-1"], "argument --seed: must be an integer >= 0, got '-1'"),
        (["--onset", "0.013"], "argument --onset: must be a whole number (>= 0) of 20 ms decision windows"),
        (["--device", "foo"], "argument --device: must be auto, cpu, cuda or cuda:N, got 'foo'"),
        (["--lr", "2"], "lr must be a number in (0, 1)"),
        (["--latch-bonus", "-1"], "reward.latch_bonus must be a finite number >= 0, got -1.0"),
        (["--weight-credit", "nan"], "reward.weight_credit must be a finite number >= 0, got nan"),
    ],
)
def test_train_options_are_refused_before_training(tmp_path, capsys, argv, message):
    assert message in refusal([*TRAIN, "--frames", "20", *argv, "--out", str(tmp_path / "run")], capsys)
    assert not (tmp_path / "run").exists()


# --- simulate, evaluate, sweep: the output folder -----------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        SIMULATE,
        [*EVALUATE, "--policy", ""],
        [
            "sweep",
            *TINY,
            "--amplitudes",
            "50",
            "--frequencies",
            "83.3",
            "--pulse-widths",
            "500",
            "--seeds",
            "1",
            "--budget",
            "0.2",
            "--followup",
            "0.2",
        ],
    ],
)
def test_unusable_output_folders_fail_before_the_work(tmp_path, capsys, monkeypatch, command):
    def no_work(*args, **kwargs):
        raise AssertionError("the command started its work before checking --out")

    for name in ("run_open_loop", "run_evaluation"):
        monkeypatch.setattr(cli, name, no_work)
    monkeypatch.setattr("neuroloop_gpu.sweep.run_sweep", no_work)
    a_file = tmp_path / "file"
    a_file.write_text("mine")
    assert f"--out {a_file} is a file" in refusal([*command, "--out", str(a_file)], capsys)
    assert "cannot be written" in refusal([*command, "--out", str(a_file / "below")], capsys)
    used = tmp_path / "used"
    used.mkdir()
    (used / "summary.json").write_text("{}")
    (used / "evaluation.json").write_text("{}")
    (used / "sweep.json").write_text("{}")
    assert f"--out {used} holds an earlier run (evaluation.json, summary.json, sweep.json)" in refusal(
        [*command, "--out", str(used)], capsys
    )
    assert a_file.read_text() == "mine" and (used / "summary.json").read_text() == "{}"


def test_simulate_overwrite_replaces_the_earlier_run(tmp_path):
    out = tmp_path / "run"
    main([*SIMULATE, "--out", str(out)])
    first = json.loads((out / "summary.json").read_text())
    (out / "notes.txt").write_text("the user's own file")
    main([*SIMULATE, "--seed", "5", "--out", str(out), "--overwrite"])
    second = json.loads((out / "summary.json").read_text())
    assert second["networks"] != first["networks"]  # another network, really rewritten
    assert (out / "notes.txt").read_text() == "the user's own file"  # --overwrite deletes only run files


def test_evaluate_refuses_the_policy_folder_and_never_mixes_runs(trained, tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    before = snapshot(run)
    message = refusal([*EVALUATE, "--policy", str(run / "checkpoint.pt"), "--out", str(run)], capsys)
    assert f"--out {run} is the folder of the input {run / 'checkpoint.pt'}" in message
    assert snapshot(run) == before
    out = tmp_path / "eval"
    main([*EVALUATE, "--policy", str(run / "checkpoint.pt"), "--out", str(out)])
    assert (out / "train_log.csv").exists() and (out / "training.png").exists()
    assert "holds an earlier run" in refusal([*EVALUATE, "--policy", "", "--out", str(out)], capsys)
    main([*EVALUATE, "--policy", "", "--out", str(out), "--overwrite"])  # a run without a policy: no stale log
    assert not (out / "train_log.csv").exists() and not (out / "training.png").exists()
    assert list(json.loads((out / "evaluation.json").read_text())["controllers"]) == ["none"]


# --- simulate: options that used to be accepted and then fail -----------------------------------------------------


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--duration", "1e300"], "argument --duration: must be a positive whole number of 20 ms decision windows"),
        (["--amplitude", "1e30"], "argument --amplitude: must be a number of mV in [0, 1000], got '1e30'"),
        (["--amplitude", "inf"], "argument --amplitude: must be a number of mV in [0, 1000], got 'inf'"),
        (["--amplitude", "nan"], "argument --amplitude: must be a number of mV in [0, 1000], got 'nan'"),
        (["--onset", "0.4"], "argument --onset: must be less than --duration (0.2 s), or the run never stimulates"),
        (["--onset", "0.013"], "argument --onset: must be a whole number (>= 0) of 20 ms decision windows"),
        (["--seed", "-1"], "argument --seed: must be an integer >= 0"),
        (["--device", "meta"], "argument --device: must be auto, cpu, cuda or cuda:N, got 'meta'"),
        (["--device", "cpu:5"], "argument --device: must be cpu without an index"),
        (["--device", "cuda:0"] if not torch.cuda.is_available() else ["--device", "cuda:99"], "argument --device: "),
    ],
)
def test_simulate_refuses_what_it_cannot_run(tmp_path, capsys, argv, message):
    assert message in refusal([*SIMULATE, *argv, "--out", str(tmp_path / "run")], capsys)
    assert not (tmp_path / "run").exists()


def test_summary_json_is_strict(tmp_path):
    # a latch no network reaches: no stimulation-off time and no R after it (null, never NaN)
    main([*SIMULATE, "--latch", "1", "--out", str(tmp_path)])

    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    summary = json.loads((tmp_path / "summary.json").read_text(), parse_constant=refuse)
    assert summary["networks"][0]["stim_off_time_s"] is None


# --- plot: damaged run folders --------------------------------------------------------------------------------------


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _wrong_shape(path):
    with np.load(path) as arrays:
        data = {k: arrays[k] for k in arrays.files}
    key = next(k for k in data if k.startswith("trace_"))
    data[key] = data[key].reshape(-1)[:3]
    np.savez_compressed(path, **data)


@pytest.mark.parametrize(
    "damage,named",
    [
        (lambda out: _truncate(out / "evaluation.npz"), "evaluation.npz"),
        (lambda out: (out / "evaluation.json").write_text("{not json"), "evaluation.json"),
        (lambda out: (out / "evaluation.json").write_text(json.dumps({"config": {}})), "evaluation.json"),
        (lambda out: _wrong_shape(out / "evaluation.npz"), "evaluation.npz"),
        (lambda out: (out / "train_log.csv").write_text(""), "train_log.csv"),
    ],
    ids=["truncated-npz", "bad-json", "missing-key", "wrong-shape", "empty-log"],
)
def test_plot_reports_damaged_files(evaluated, tmp_path, capsys, damage, named):
    out = tmp_path / "eval"
    shutil.copytree(evaluated, out)
    if named == "train_log.csv":
        shutil.copyfile(out / "evaluation.csv", out / "train_log.csv")  # then emptied: a log with no rows
    damage(out)
    message = refusal(["plot", str(out), "--quiet"], capsys)
    assert message.startswith(f"error: cannot draw the figures of {out}: {out}") and named in message


def test_a_damaged_npz_leaves_no_file_open(evaluated, tmp_path):
    """np.load keeps its handle when a damaged archive makes it raise; loading closes it all the same."""
    from neuroloop_gpu.evaluation import EvaluationResult

    out = tmp_path / "eval"
    shutil.copytree(evaluated, out)
    _truncate(out / "evaluation.npz")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(Exception):  # noqa: B017 - whichever error the damaged archive gives
            EvaluationResult.load(out)
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


# --- checkpoints ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("obs_loc", torch.zeros(3), "obs_loc is torch.Size([3]), not a float tensor of shape [6]"),
        ("obs_loc", "zeros", "obs_loc is str, not a float tensor of shape [6]"),
        ("obs_scale", torch.full((6,), math.nan), "obs_scale holds NaN or infinite values"),
        ("obs_scale", torch.zeros(6), "obs_scale holds values <= 0"),
        ("iteration", "seven", "iteration is 'seven', not an integer >= 0"),
        ("frames", -1, "frames is -1, not an integer >= 0"),
        ("config", [1, 2], "config is a list, not a dict"),
    ],
)
def test_checkpoint_fields_are_validated_before_use(trained, tmp_path, capsys, field, value, message):
    payload = load_checkpoint(trained / "checkpoint.pt")
    payload[field] = value
    bad = tmp_path / "bad.pt"
    torch.save(payload, bad)
    with pytest.raises(
        CheckpointError,
        match=f"checkpoint {bad} is unusable: " + message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)"),
    ):
        load_checkpoint(bad)
    assert message in refusal([*EVALUATE, "--policy", str(bad), "--out", str(tmp_path / "e")], capsys)


def test_a_checkpoint_with_nan_weights_is_refused_not_trained_on(trained, tmp_path, capsys):
    payload = load_checkpoint(trained / "checkpoint.pt")
    name = next(iter(payload["actor"]))
    payload["actor"][name] = torch.full_like(payload["actor"][name], math.nan)
    run = tmp_path / "nan"
    run.mkdir()
    torch.save(payload, run / "checkpoint.pt")
    before = snapshot(run)
    message = refusal(
        ["train", "--resume", str(run / "checkpoint.pt"), "--frames", "100", "--out", str(run), "--quiet"], capsys
    )
    assert f"actor weight {name} holds NaN or infinite values" in message
    assert snapshot(run) == before


# --- the library: constructors validate, so an accepted configuration never fails mid-run ---------------------------


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: SimConfig(duration=1e21), "duration must be at most 2147483647 steps"),
        (lambda: SimConfig(step_size=1e-300), "step_size must be at least sample_duration / 2147483647"),
        (lambda: FTSTSVectorEnv(0, device="cpu"), "num_envs must be an integer >= 1, got 0"),
        (
            lambda: FTSTSVectorEnv(1, autoreset_mode="sometimes", device="cpu"),
            "autoreset_mode must be an AutoresetMode or one of ['NextStep', 'SameStep', 'Disabled']",
        ),
        (
            lambda: NetworkBatch(2, NetworkParams(num_e=1, num_i=1), SimConfig(seed=0), device="cpu"),
            "num_e=1, num_i=1, connection_prob=0.1: the networks of seeds [0] have no E->I synapse",
        ),
        (
            lambda: FTSTSEnv(SimConfig(duration=100.0, seed=0), model_params={"num_e": 1, "num_i": 1}, device="cpu"),
            "have no E->I synapse",
        ),
        (
            lambda: NetworkParams(coupling_fraction=1e-300),
            "j_e, j_i and coupling_fraction must be such that one synapse",
        ),
        (lambda: OpenLoopProtocol(amplitude=math.inf), "amplitude must be a finite number >= 0 (mV), got inf"),
    ],
)
def test_library_constructors_name_the_parameter(make, message):
    with pytest.raises(ValueError) as error:
        make()
    assert message in str(error.value)


def test_run_folder_claim_and_files(tmp_path):
    with claim(tmp_path / "a") as out:
        (out / "summary.json").write_text("{}")
        with pytest.raises(RunFolderError, match="in use by another neuroloop process"):
            with claim(out, overwrite=True):
                pass
    with claim(tmp_path / "a", keep={"summary.json"}):  # a run's own files (a resumed training) stay
        assert (tmp_path / "a" / "summary.json").exists()
    # every file the commands write is known to the folder rules (else --overwrite would leave it behind)
    from neuroloop_gpu.control.ppo import TRAIN_FILES
    from neuroloop_gpu.evaluation import FILES as EVALUATION_FILES
    from neuroloop_gpu.sweep import FILES as SWEEP_FILES

    assert set(EVALUATION_FILES.values()) | set(SWEEP_FILES.values()) | set(TRAIN_FILES) <= RUN_FILES


def test_every_file_the_commands_write_is_a_run_file(trained, evaluated):
    for folder in (trained, evaluated):
        written = {p.name for p in folder.iterdir()} - {LOCK_NAME}
        assert written <= RUN_FILES, written - RUN_FILES


NUMERIC_FIELDS = [
    (cls, f.name)
    for cls in (NetworkParams, PlasticityParams, SimConfig)
    for f in fields(cls)
    if f.type in ("float", "int")
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(NUMERIC_FIELDS),
    st.sampled_from([math.nan, math.inf, -math.inf, -1.0, -1e300, 1e300, "7", None, True]),
)
def test_bad_numbers_in_any_config_field_name_that_field(target, value):
    cls, name = target
    try:
        cls(**{name: value})
    except ValueError as error:  # refused: the message names the field
        assert name in str(error).split(" must be ")[0] or name in str(error), str(error)
    else:  # accepted: then it is a value the field allows (e.g. a huge duration is not, a negative v_rest is)
        assert value is not True and isinstance(value, (int, float)) and math.isfinite(value)
