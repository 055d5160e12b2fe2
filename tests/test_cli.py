"""The `neuroloop` command at tiny size."""

import json
import subprocess
import sys

import pytest

from neuroloop_gpu.cli import main

REQUIRED = {"kop_per_second", "mean_weight_per_second", "stim_off_time_s", "rate_e_hz", "rate_i_hz", "wall_time_s",
            "device", "chi_per_second", "kop_before", "kop_during", "bytes_per_network", "protocol", "networks"}


def test_simulate_writes_summary_and_figure(tmp_path):
    out = tmp_path / "run"
    main(["simulate", "--num-e", "40", "--num-i", "10", "--duration", "2", "--onset", "1", "--networks", "2",
          "--device", "cpu", "--out", str(out), "--quiet", "--latch", "259"])
    summary = json.loads((out / "summary.json").read_text())
    assert REQUIRED <= summary.keys()
    assert len(summary["kop_per_second"]) == 2 and len(summary["mean_weight_per_second"]) == 2
    assert summary["num_networks"] == 2 and len(summary["networks"]) == 2
    assert summary["device"].startswith("cpu")
    assert all(0.0 <= k <= 1.0 for k in summary["kop_per_second"])
    assert summary["rate_e_hz"] > 0
    # a latch just below the initial weight trips soon after onset
    assert 1.0 < summary["networks"][0]["stim_off_time_s"] < 2.0
    assert summary["networks"][0]["kop_after"] is not None
    assert (out / "open_loop.png").stat().st_size > 10_000


@pytest.mark.parametrize("args,message", [
    (["--duration", "0.21"], "duration must be a whole multiple of sample_duration"),
    (["--num-e", "0"], "num_e must be an integer >= 1"),
    (["--amplitude", "-5"], "amplitude must be a number >= 0"),
    (["--networks", "0"], "num_networks must be an integer >= 1"),
    (["--backend", "triton", "--device", "cpu"], "backend must be 'eager' here"),
])
def test_simulate_rejects_bad_options(tmp_path, args, message):
    with pytest.raises(SystemExit, match=message):
        main(["simulate", "--num-e", "40", "--num-i", "10", "--duration", "0.2", "--out", str(tmp_path), "--quiet",
              *args])


def test_help_lists_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["simulate", "--help"])
    text = capsys.readouterr().out
    for option in ("--size", "--duration", "--amplitude", "--waveform", "--synaptic-input", "--seed", "--device",
                   "--out", "--networks"):
        assert option in text


TINY = ["--num-e", "20", "--num-i", "5", "--device", "cpu", "--quiet"]


def test_train_evaluate_plot_end_to_end(tmp_path):
    run = tmp_path / "train"
    main(["train", *TINY, "--networks", "4", "--episode", "0.2", "--windows-per-batch", "5", "--frames", "40",
          "--minibatch", "10", "--out", str(run)])
    assert (run / "checkpoint.pt").stat().st_size > 0 and len((run / "train_log.csv").read_text().splitlines()) == 3

    out = tmp_path / "evaluate"
    main(["evaluate", *TINY, "--controllers", "none", "ftsts", "--policy", str(run / "checkpoint.pt"), "--seeds", "2",
          "--duration", "0.4", "--onset", "0.2", "--out", str(out)])
    report = json.loads((out / "evaluation.json").read_text())
    assert set(report["controllers"]) == {"none", "ftsts", "ppo"}
    assert (out / "evaluation.md").read_text().count("\n") >= 4 and (out / "evaluation.csv").exists()
    figures = sorted(p.name for p in out.glob("*.png"))
    assert "training.png" in figures and len(figures) >= 6
    for figure in out.glob("*.png"):
        figure.unlink()
    main(["plot", str(out), "--quiet"])
    assert len(list(out.glob("*.png"))) == len(figures)


@pytest.mark.parametrize("argv,message", [
    (["evaluate", "--policy", "missing.pt"], "does not exist"),
    (["evaluate", "--policy", "", "--seeds", "0"], "seeds must be"),
    (["train", "--lr", "2"], "lr must be"),
    (["plot", "nowhere"], "is not a folder"),
    (["evaluate", "--policy", "", "--backend", "triton", "--device", "cpu", "--seeds", "1", "--num-e", "20",
      "--duration", "0.4", "--onset", "0.2"], "backend must be 'eager' here"),
])
def test_subcommands_reject_bad_input(tmp_path, argv, message):
    with pytest.raises(SystemExit, match=message):
        main([*argv, *(["--out", str(tmp_path)] if argv[0] != "plot" else []), "--quiet"])


@pytest.mark.parametrize("command", ["simulate", "train", "evaluate", "plot", "bench"])
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "usage: neuroloop " + command in capsys.readouterr().out


def test_cli_and_gymnasium_envs_import_without_torchrl():
    # TensorDict and TorchRL (with torch's compiler stack) take seconds to import: only train, evaluate
    # with a policy, the TorchRL env and its benchmark target load them
    code = ("import sys, neuroloop_gpu.cli, neuroloop_gpu.envs, neuroloop_gpu.bench; "
            "print(sorted(m for m in ('tensordict', 'torchrl') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
    from neuroloop_gpu.envs import FTSTSTorchEnv  # still there, on first use

    assert FTSTSTorchEnv.__module__ == "neuroloop_gpu.envs.torchrl_env"
