"""The `neuroloop` command at tiny size."""

import csv
import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from neuroloop_gpu.cli import _network_size, build_parser, main
from neuroloop_gpu.config import NetworkParams, SimConfig
from neuroloop_gpu.control.checkpoint import load_checkpoint


def refusal(argv, capsys) -> str:
    """What `neuroloop argv` printed on stderr as it refused, argparse's way: one error line, exit status 2."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as refused:
        main(argv)
    assert refused.value.code == 2
    return capsys.readouterr().err


REQUIRED = {
    "kop_per_second",
    "mean_weight_per_second",
    "stim_off_time_s",
    "rate_e_hz",
    "rate_i_hz",
    "wall_time_s",
    "device",
    "chi_per_second",
    "kop_before",
    "kop_during",
    "bytes_per_network",
    "protocol",
    "networks",
}


def test_simulate_writes_summary_and_figure(tmp_path):
    out = tmp_path / "run"
    main(
        [
            "simulate",
            "--num-e",
            "40",
            "--num-i",
            "10",
            "--duration",
            "2",
            "--onset",
            "1",
            "--networks",
            "2",
            "--device",
            "cpu",
            "--out",
            str(out),
            "--quiet",
            "--latch",
            "259",
        ]
    )
    summary = json.loads((out / "summary.json").read_text())
    assert REQUIRED <= summary.keys()
    assert len(summary["kop_per_second"]) == 2 and len(summary["mean_weight_per_second"]) == 2
    assert summary["num_networks"] == 2 and len(summary["networks"]) == 2
    assert summary["device"].startswith("cpu")
    assert all(0.0 <= k <= 1.0 for k in summary["kop_per_second"])
    assert summary["rate_e_hz"] > 0
    # a latch just below the initial weight trips soon after onset: the CLI reports, per network, the end of
    # the first stimulated window whose mean J_I*w is below it (the window rule itself is checked against
    # the reference network in test_open_loop_values.py)
    from neuroloop_gpu.network import NetworkBatch
    from neuroloop_gpu.open_loop import OpenLoopProtocol, run_open_loop

    net = NetworkBatch(2, NetworkParams(num_e=40, num_i=10), SimConfig(duration=2000.0, seed=0), device="cpu")
    run = run_open_loop(net, OpenLoopProtocol(onset=1000.0, latch_mv=259.0), 100, progress=False)
    weight, windows = run.stats["weight_mv"], np.arange(100)
    for b, entry in enumerate(summary["networks"]):
        first = windows[(windows >= 50) & (weight[:, b] < 259.0)][0]  # stimulated from window 50 (1 s) on
        assert entry["stim_off_time_s"] == pytest.approx((first + 1) * 0.02)
    assert summary["networks"][0]["kop_after"] is not None
    assert summary["protocol"]["latch_mv"] == 259.0


def test_simulate_latch_defaults_to_the_published_threshold_of_the_waveform(tmp_path):
    parse = build_parser().parse_args
    assert parse(["simulate"]).latch == "published" and parse(["simulate", "--latch", "-1"]).latch is None
    # the published swapped run (J_I = 75 mV, 200 mV): J_I*w starts at 75 mV, so a 75 mV latch would stop it at once
    main(
        [
            "simulate",
            "--num-e",
            "40",
            "--num-i",
            "10",
            "--duration",
            "0.2",
            "--onset",
            "0.1",
            "--waveform",
            "swapped",
            "--j-i",
            "75",
            "--amplitude",
            "200",
            "--device",
            "cpu",
            "--out",
            str(tmp_path),
            "--quiet",
        ]
    )
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["protocol"]["latch_mv"] == 125.0 and summary["stim_off_time_s"] is None


@pytest.mark.parametrize(
    "args,message",
    [
        (["--duration", "0.21"], "argument --duration: must be a positive whole number of 20 ms decision windows"),
        (["--num-e", "0"], "argument --num-e: must be an integer >= 1"),
        (["--amplitude", "-5"], "argument --amplitude: must be a number of mV in [0, 1000], got '-5'"),
        (["--networks", "0"], "argument --networks: must be an integer >= 1"),
        (["--backend", "triton", "--device", "cpu"], "backend must be 'eager' here"),
    ],
)
def test_simulate_rejects_bad_options(tmp_path, capsys, args, message):
    argv = [
        "simulate",
        "--num-e",
        "40",
        "--num-i",
        "10",
        "--duration",
        "0.2",
        "--onset",
        "0.1",
        "--out",
        str(tmp_path),
        "--quiet",
    ]
    assert message in refusal([*argv, *args], capsys)


def test_num_i_only_with_num_e():
    parse = build_parser().parse_args
    assert _network_size(parse(["train", "--num-e", "40"])) == (40, 10)
    assert _network_size(parse(["train", "--num-e", "40", "--num-i", "7"])) == (40, 7)
    assert _network_size(parse(["train"])) == (160, 40)


# each error names the option as typed and the value in the option's units, not an internal field
@pytest.mark.parametrize(
    "argv,message",
    [
        (["train", "--networks", "0"], "argument --networks: must be an integer >= 1, got '0'"),
        (
            ["train", "--episode", "0.03"],
            "argument --episode: must be a positive whole number of 20 ms decision windows, in s, got '0.03'",
        ),
        (
            ["simulate", "--onset", "-1"],
            "argument --onset: must be a whole number (>= 0) of 20 ms decision windows, in s, got '-1'",
        ),
        (["train", "--frames", "0"], "argument --frames: must be an integer >= 1, got '0'"),
        (
            ["train", "--frames", "10", "--networks", "2", "--windows-per-batch", "25"],
            "argument --frames: must be at least one iteration's --networks x --windows-per-batch = 50 windows, got 10",
        ),
        (["train", "--onset", "5"], "argument --onset: must be less than --episode (5 s), got 5.0"),
        (
            ["train", "--task", "lasting", "--episode", "30"],
            "argument --episode: must be at least --onset + --budget + --followup = 45 s, got 30.0",
        ),
        (["train", "--followup", "1"], "argument --followup: must be 0 unless --budget is given, got 1.0"),
        (["train", "--latch", "-3"], "argument --latch: must be a number > 0, got '-3'"),
        (["evaluate", "--policy", "", "--latch", "nan"], "argument --latch: must be a number > 0, got 'nan'"),
        (["evaluate", "--policy", "", "--followup", "1"], "argument --followup: must be 0 unless --budget is given"),
        (
            ["evaluate", "--policy", "", "--first-seed", "-5"],
            "argument --first-seed: must be an integer >= 0, got '-5'",
        ),
        (
            ["evaluate", "--policy", "", "--onset", "0.01"],
            "argument --onset: must be a whole number (>= 0) of 20 ms decision windows, in s, got '0.01'",
        ),
        (["simulate", "--num-i", "10"], "argument --num-i: must be given with --num-e"),
        (["train", "--num-e", "40", "--num-i", "0"], "argument --num-i: must be an integer >= 1, got '0'"),
        (["simulate", "--num-e", "20", "--latch", "nan"], "argument --latch: must be 'published', a threshold > 0 mV"),
        (["simulate", "--num-e", "20", "--latch", "0"], "argument --latch: must be 'published', a threshold > 0 mV"),
    ],
)
def test_errors_name_the_option(tmp_path, capsys, argv, message):
    assert message in refusal([*argv, "--out", str(tmp_path), "--quiet"], capsys)


def test_version(capsys):
    from importlib import metadata

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out == f"neuroloop {metadata.version('neuroloop-gpu')}\n"


def test_help_lists_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["simulate", "--help"])
    text = capsys.readouterr().out
    for option in (
        "--size",
        "--duration",
        "--amplitude",
        "--waveform",
        "--synaptic-input",
        "--seed",
        "--device",
        "--out",
        "--networks",
    ):
        assert option in text


TINY = ["--num-e", "20", "--num-i", "5", "--device", "cpu", "--quiet"]


def test_train_evaluate_plot_end_to_end(tmp_path, capsys):
    run = tmp_path / "train"
    main(
        [
            "train",
            *TINY,
            "--networks",
            "4",
            "--episode",
            "0.2",
            "--windows-per-batch",
            "5",
            "--frames",
            "40",
            "--minibatch",
            "10",
            "--out",
            str(run),
        ]
    )
    # 4 networks x 5 windows per iteration: 40 windows are 2 iterations, each logged and the last saved
    saved = load_checkpoint(run / "checkpoint.pt")
    assert (saved["iteration"], saved["frames"]) == (2, 40)
    assert (saved["config"]["num_envs"], saved["config"]["num_e"], saved["config"]["episode_s"]) == (4, 20, 0.2)
    log = (run / "train_log.csv").read_text().splitlines()
    assert [row.split(",")[:2] for row in log[1:]] == [["1", "20"], ["2", "40"]]

    out = tmp_path / "evaluate"
    main(
        [
            "evaluate",
            *TINY,
            "--controllers",
            "none",
            "ftsts",
            "--policy",
            str(run / "checkpoint.pt"),
            "--seeds",
            "2",
            "--duration",
            "0.4",
            "--onset",
            "0.2",
            "--out",
            str(out),
        ]
    )
    report = json.loads((out / "evaluation.json").read_text())
    assert set(report["controllers"]) == {"none", "ftsts", "ppo"}
    # the table and the CSV hold the JSON's numbers, a row per controller
    rows = {row["controller"]: row for row in csv.DictReader((out / "evaluation.csv").open())}
    lines = [line.strip("|").split(" | ") for line in (out / "evaluation.md").read_text().splitlines()]
    header = next(cells for cells in lines if cells[0].strip() == "controller")
    table = {cells[0].strip(): cells for cells in lines if len(cells) == len(header)}
    for name in ("none", "ftsts", "ppo"):
        for metric, printed_to in (("energy_mv2ms", 0.5), ("kop_mean", 5e-4)):
            value = report["metrics"][name][metric]
            assert float(rows[name][f"{metric}_mean"]) == pytest.approx(value["mean"], rel=1e-12)
            cell = table[name][header.index(metric)].replace(",", "")
            assert [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?", cell)] == pytest.approx(
                [value["mean"], value["low"], value["high"]], abs=printed_to
            )
    figures = sorted(p.name for p in out.glob("*.png"))
    assert figures == [
        "actions.png",
        "energy_vs_synchrony.png",
        "kop.png",
        "rasters.png",
        "training.png",
        "weight.png",
    ]
    # the policy saw Kuramoto R in training: chi in its place is refused, not silently fed to it
    assert "'ppo' was trained with synchrony='kop'" in refusal(
        [
            "evaluate",
            *TINY,
            "--controllers",
            "none",
            "--policy",
            str(run / "checkpoint.pt"),
            "--seeds",
            "1",
            "--duration",
            "0.4",
            "--onset",
            "0.2",
            "--synchrony",
            "chi",
            "--out",
            str(tmp_path / "chi"),
        ],
        capsys,
    )
    for figure in out.glob("*.png"):
        figure.unlink()
    main(["plot", str(out), "--quiet"])
    assert sorted(p.name for p in out.glob("*.png")) == figures
    # several policies side by side, named or numbered
    main(
        [
            "evaluate",
            *TINY,
            "--controllers",
            "none",
            "--policy",
            f"early={run / 'checkpoint.pt'}",
            str(run / "checkpoint.pt"),
            "--seeds",
            "1",
            "--duration",
            "0.4",
            "--onset",
            "0.2",
            "--out",
            str(tmp_path / "two"),
        ]
    )
    two = json.loads((tmp_path / "two" / "evaluation.json").read_text())
    assert list(two["controllers"]) == ["none", "early", "ppo-2"]
    assert two["metrics"]["early"] == two["metrics"]["ppo-2"]  # one checkpoint, the same networks
    for policies, message in (
        ([f"none={run / 'checkpoint.pt'}"], "a name other than the controllers'"),
        ([f"a={run / 'checkpoint.pt'}", f"a={run / 'checkpoint.pt'}"], "distinct names"),
    ):
        assert message in refusal(
            [
                "evaluate",
                *TINY,
                "--controllers",
                "none",
                "--policy",
                *policies,
                "--seeds",
                "1",
                "--duration",
                "0.4",
                "--onset",
                "0.2",
                "--out",
                str(tmp_path / "bad"),
            ],
            capsys,
        )


@pytest.mark.parametrize(
    "argv,message",
    [
        (["evaluate", "--policy", "missing.pt"], "does not exist"),
        (["evaluate", "--policy", "", "--seeds", "0"], "argument --seeds: must be an integer >= 1"),
        (["train", "--lr", "2"], "lr must be"),
        (["plot", "nowhere"], "is not a folder"),
        (
            [
                "evaluate",
                "--policy",
                "",
                "--backend",
                "triton",
                "--device",
                "cpu",
                "--seeds",
                "1",
                "--num-e",
                "20",
                "--duration",
                "0.4",
                "--onset",
                "0.2",
            ],
            "backend must be 'eager' here",
        ),
    ],
)
def test_subcommands_reject_bad_input(tmp_path, capsys, argv, message):
    assert message in refusal([*argv, *(["--out", str(tmp_path)] if argv[0] != "plot" else []), "--quiet"], capsys)


def test_unreadable_checkpoint_is_an_error_not_a_traceback(tmp_path, capsys):
    text = tmp_path / "text.pt"
    text.write_text("hello world")
    for command in (["evaluate", "--policy", str(text)], ["train", "--resume", str(text)]):
        assert re.fullmatch(
            r"error: checkpoint .*text.pt is truncated or corrupt.*\n",
            refusal([*command, "--out", str(tmp_path / "out"), "--quiet"], capsys),
        )


@pytest.mark.parametrize("command", ["simulate", "train", "evaluate", "sweep", "plot", "bench"])
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "usage: neuroloop " + command in capsys.readouterr().out


def test_cli_and_gymnasium_envs_import_without_torchrl():
    # TensorDict and TorchRL (with torch's compiler stack) take seconds to import: only train, evaluate
    # with a policy, the TorchRL env and its benchmark target load them
    code = (
        "import sys, neuroloop_gpu.cli, neuroloop_gpu.envs, neuroloop_gpu.bench; "
        "print(sorted(m for m in ('tensordict', 'torchrl') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
    from neuroloop_gpu.envs import FTSTSTorchEnv  # still there, on first use

    assert FTSTSTorchEnv.__module__ == "neuroloop_gpu.envs.torchrl_env"


def test_lasting_task_from_sweep_to_training_to_evaluation(tmp_path):
    """The lasting-effect workflow at tiny size: a sweep gives the tuned baseline, PPO trains on the lasting
    task, and the evaluation runs the lasting protocol with the follow-up, the sweep's grid in its energy plane."""
    from neuroloop_gpu.evaluation import EvaluationResult
    from neuroloop_gpu.plots import energy_synchrony_figure

    sweep = tmp_path / "sweep"
    main(
        [
            "sweep",
            *TINY,
            "--amplitudes",
            "150",
            "200",
            "--frequencies",
            "150",
            "--pulse-widths",
            "400",
            "1000",
            "--seeds",
            "2",
            "--onset",
            "0.1",
            "--budget",
            "0.2",
            "--followup",
            "0.1",
            "--latch",
            "255",
            "--out",
            str(sweep),
        ]
    )
    run = tmp_path / "train"
    main(
        [
            "train",
            *TINY,
            "--task",
            "lasting",
            "--networks",
            "4",
            "--budget",
            "0.3",
            "--followup",
            "0.1",
            "--windows-per-batch",
            "5",
            "--frames",
            "40",
            "--minibatch",
            "10",
            "--out",
            str(run),
        ]
    )
    saved = torch.load(run / "checkpoint.pt", weights_only=False)["config"]
    assert (
        saved["task"],
        saved["episode_s"],
        saved["stim_budget_s"],
        saved["followup_s"],
        saved["gamma"],
        saved["weight_credit"],
    ) == ("lasting", pytest.approx(0.4), 0.3, 0.1, 0.99, 20.0)
    out = tmp_path / "evaluate"
    main(
        [
            "evaluate",
            *TINY,
            "--task",
            "lasting",
            "--controllers",
            "none",
            "ftsts-tuned-1ms",
            "--policy",
            str(run / "checkpoint.pt"),
            "--sweep",
            str(sweep),
            "--seeds",
            "2",
            "--onset",
            "0.1",
            "--budget",
            "0.2",
            "--followup",
            "0.1",
            "--out",
            str(out),
        ]
    )
    result = EvaluationResult.load(out)
    c = result.config
    assert (c.duration_s, c.stim_onset_s, c.stim_budget_s, c.followup_s, c.latch_ends_stimulation) == (
        pytest.approx(0.4),
        0.1,
        0.2,
        0.1,
        True,
    )
    assert not result.traces["stimulating"][:, :, -5:].any()  # the follow-up: every stimulator off
    report = json.loads((out / "evaluation.json").read_text())
    np.testing.assert_allclose(
        [report["metrics"][n]["kop_followup"]["mean"] for n in result.names],
        result.traces["kop"][:, :, -5:].mean(axis=(1, 2)),
    )
    tuned = json.loads((sweep / "sweep.json").read_text())["tuned"]["1ms"]
    assert report["controllers"]["ftsts-tuned-1ms"]["amplitude"] == tuned["amplitude_mv"]
    assert (out / "sweep.json").read_text() == (sweep / "sweep.json").read_text()

    figure = energy_synchrony_figure(result, json.loads((out / "sweep.json").read_text()))
    ax = figure.axes[0]
    metrics = result.network_metrics()
    grid = np.concatenate([c.get_offsets() for c in ax.collections[:2]])
    points = json.loads((sweep / "sweep.json").read_text())["points"]
    expected = sorted((p["metrics"]["energy_mv2ms"]["mean"], p["metrics"]["kop_followup"]["mean"]) for p in points)
    assert sorted(map(tuple, grid.tolist())) == pytest.approx(expected)
    means = [bar.lines[0].get_xydata()[0] for bar in ax.containers]  # one errorbar per controller, in order
    assert np.allclose(
        means,
        [(metrics["energy_mv2ms"][k].mean(), metrics["kop_followup"][k].mean()) for k in range(len(result.names))],
    )
    assert "follow-up" in ax.get_ylabel()


def test_latch_level_reaches_training_and_the_lasting_evaluation(tmp_path):
    run = tmp_path / "train"
    main(
        [
            "train",
            *TINY,
            "--task",
            "lasting",
            "--latch",
            "95",
            "--networks",
            "2",
            "--budget",
            "0.2",
            "--followup",
            "0.1",
            "--windows-per-batch",
            "5",
            "--frames",
            "10",
            "--minibatch",
            "10",
            "--out",
            str(run),
        ]
    )
    assert torch.load(run / "checkpoint.pt", weights_only=False)["config"]["latch_mv"] == 95.0
    out = tmp_path / "evaluate"
    main(
        [
            "evaluate",
            *TINY,
            "--task",
            "lasting",
            "--latch",
            "259",
            "--controllers",
            "ftsts",
            "--policy",
            "",
            "--seeds",
            "2",
            "--onset",
            "0.1",
            "--budget",
            "0.2",
            "--followup",
            "0.1",
            "--out",
            str(out),
        ]
    )
    report = json.loads((out / "evaluation.json").read_text())
    assert report["config"]["latch_mv"] == 259.0 and report["config"]["latch_ends_stimulation"]
    traces = np.load(out / "evaluation.npz")
    weight, on = traces["trace_weight_mv"][0], traces["trace_stimulating"][0].astype(bool)
    for s in range(2):  # no window stimulates after one that ended below the latch
        below = np.flatnonzero((weight[s] < 259.0) & (np.arange(weight.shape[1]) >= 5))
        if below.size:
            assert not on[s, below[0] + 1 :].any()


def test_simulate_model_published_code_is_the_variant_of_the_library(tmp_path):
    from neuroloop_gpu.network import NetworkBatch
    from neuroloop_gpu.open_loop import MODELS, run_open_loop

    main(
        [
            "simulate",
            "--num-e",
            "40",
            "--num-i",
            "10",
            "--duration",
            "2.1",
            "--model",
            "published-code",
            "--latch",
            "-1",
            "--device",
            "cpu",
            "--out",
            str(tmp_path),
            "--quiet",
        ]
    )
    summary = json.loads((tmp_path / "summary.json").read_text())
    network = summary["network"]
    assert (network["model"], network["stim_noise_e"], network["stim_noise_i"], network["plasticity_onset_ms"]) == (
        "published-code",
        10.0,
        0.0,
        80.0,
    )
    assert summary["protocol"]["onset"] == 1980.0
    variant = MODELS["published-code"]
    net = NetworkBatch(
        1, variant.network(NetworkParams(num_e=40, num_i=10)), SimConfig(duration=2100.0, seed=0), device="cpu"
    )
    run = run_open_loop(net, variant.protocol(latch_mv=None), 105, progress=False)
    assert summary["networks"][0]["final_weight_mv"] == float(run.stats["weight_mv"][-1, 0])


def test_train_and_evaluate_take_the_model_variant(tmp_path):
    from neuroloop_gpu.control.checkpoint import load_checkpoint
    from neuroloop_gpu.control.ppo import PPOConfig

    main(
        [
            "train",
            *TINY,
            "--model",
            "published-code",
            "--networks",
            "2",
            "--episode",
            "0.1",
            "--windows-per-batch",
            "5",
            "--frames",
            "10",
            "--minibatch",
            "10",
            "--hidden",
            "8",
            "--out",
            str(tmp_path / "train"),
        ]
    )
    config = PPOConfig.from_dict(load_checkpoint(tmp_path / "train" / "checkpoint.pt")["config"])
    network = config.network
    assert (config.model, network.stim_noise_e, network.stim_noise_i, network.plasticity.onset) == (
        "published-code",
        10.0,
        0.0,
        80.0,
    )
    main(
        [
            "evaluate",
            *TINY,
            "--model",
            "published-code",
            "--controllers",
            "none",
            "--policy",
            "",
            "--seeds",
            "1",
            "--duration",
            "0.2",
            "--onset",
            "0.1",
            "--out",
            str(tmp_path / "eval"),
        ]
    )
    evaluated = json.loads((tmp_path / "eval" / "evaluation.json").read_text())["config"]["network"]
    assert (evaluated["stim_noise_e"], evaluated["plasticity"]["onset"]) == (10.0, 80.0)


def test_train_imitate_params_are_parsed_and_checked_before_any_window(tmp_path, capsys):
    args = build_parser().parse_args(
        ["train", "--imitate", "ftsts-scheduled", "--imitate-params", "amplitude=20", "pulse_width=1e3"]
    )
    assert args.imitate == "ftsts-scheduled" and args.imitate_params == [("amplitude", 20.0), ("pulse_width", 1000.0)]
    assert "--imitate-params: must be NAME=NUMBER, got 'amplitude=x'" in refusal(
        ["train", "--imitate", "ftsts-scheduled", "--imitate-params", "amplitude=x"], capsys
    )
    out = tmp_path / "refused"
    message = refusal(
        [
            "train",
            *TINY,
            "--task",
            "lasting",
            "--imitate",
            "ftsts-scheduled",
            "--imitate-params",
            "nope=1",
            "--out",
            str(out),
        ],
        capsys,
    )
    assert "ftsts-scheduled parameter must be one of ['amplitude'" in message and not out.exists()


def test_train_start_weights_published_or_a_range(tmp_path, capsys):
    parse = build_parser().parse_args
    assert parse(["train", "--start-weights", "published"]).start_weights == "published"
    assert parse(["train", "--start-weights", "100,200"]).start_weights == (100.0, 200.0)
    assert "--start-weights: must be LOW,HIGH in mV or 'published', got '100'" in refusal(
        ["train", "--start-weights", "100"], capsys
    )
    assert "episode.start_weight_mv must be" in refusal(
        ["train", *TINY, "--task", "lasting", "--start-weights", "200,100", "--out", str(tmp_path / "x")], capsys
    )
    common = [*TINY, "--task", "lasting", "--networks", "2", "--onset", "0.1", "--budget", "0.1", "--followup", "0.1"]
    common += ["--windows-per-batch", "5", "--frames", "10", "--minibatch", "10"]
    for option, expected in ((["--start-weights", "published"], None), ([], [80.0, 260.0])):
        out = tmp_path / f"run{len(option)}"
        main(["train", *common, *option, "--out", str(out)])
        assert load_checkpoint(out / "checkpoint.pt")["config"]["start_weight_mv"] == expected
