"""Evaluation, value by value: table cells, intervals, metric edge cases, the Markdown report, the config's
refusals and boundaries, and the device and versions recorded."""

import importlib.metadata
import math
import platform
import time
import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch

from neuroloop_gpu import evaluation
from neuroloop_gpu.config import NetworkParams
from neuroloop_gpu.control import Controller, NoStimulation
from neuroloop_gpu.envs import DBSCore
from neuroloop_gpu.evaluation import (
    METRICS,
    EvaluationConfig,
    EvaluationResult,
    _cell,
    _versions,
    _whole,
    describe_device,
    evaluate,
    mean_interval,
    network_metrics,
)
from neuroloop_gpu.stimulus import PulseTrain


@pytest.mark.parametrize(
    ("stat", "cell"),
    [
        ({"mean": 5.0, "low": 4.0, "high": 6.0}, "5.000 [4.000, 6.000]"),  # below 10: three decimals
        ({"mean": 9.9994, "low": 9.0, "high": 11.0}, "9.999 [9.000, 11.000]"),
        ({"mean": 10.0, "low": 9.0, "high": 11.0}, "10.0 [9.0, 11.0]"),  # 10 to 1000: one decimal
        ({"mean": -12.5, "low": -13.0, "high": -12.0}, "-12.5 [-13.0, -12.0]"),  # by size, sign kept
        ({"mean": 999.94, "low": 990.0, "high": 1010.0}, "999.9 [990.0, 1010.0]"),
        ({"mean": 1000.0, "low": 900.0, "high": 1100.0}, "1,000 [900, 1,100]"),  # from 1000: thousands, no decimals
        ({"mean": 6.64e6, "low": 6.63e6, "high": 6.65e6}, "6,640,000 [6,630,000, 6,650,000]"),
        ({"mean": 5.0, "low": math.nan, "high": math.nan}, "5.000"),  # one network: no interval
        ({"mean": math.nan, "low": math.nan, "high": math.nan}, "n/a"),
    ],
)
def test_table_cells(stat, cell):
    assert _cell(stat) == cell


def test_mean_interval_of_two_values_and_of_none():
    stat = mean_interval(np.array([1.0, 3.0]))  # sd sqrt(2), n 2: half-width t(0.975, 1) * 1
    assert stat["mean"] == 2.0 and stat["n"] == 2
    assert stat["low"] == pytest.approx(2.0 - 12.706205, abs=1e-5) and stat["high"] == pytest.approx(
        2.0 + 12.706205, abs=1e-5
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "mean of empty slice" for a controller no network reached
        empty = mean_interval(np.array([np.nan, np.nan]))
    assert empty["n"] == 0 and all(math.isnan(empty[k]) for k in ("mean", "low", "high"))


def test_mean_interval_computes_in_float64():
    values = np.array([0.1, 0.2, 0.7, 1e4], dtype=np.float32)  # a float32 trace's per-network metric
    exact = values.astype(np.float64)
    stat = mean_interval(values)
    assert stat["mean"] == exact.mean()
    assert stat["high"] - stat["mean"] == pytest.approx(3.182446 * exact.std(ddof=1) / 2.0, rel=1e-6)


def synthetic(windows=20, networks=2):
    """2 networks, onset at window 5: network 1 stimulated in window 5 only, its weight exactly 75 mV from w 8."""
    ramp = np.linspace(0.0, 0.95, windows)
    kop = np.stack([np.full(windows, 0.5), ramp])[:networks]
    weight = np.stack([np.full(windows, 260.0), np.where(np.arange(windows) >= 8, 75.0, 260.0)])[:networks]
    stimulating = np.zeros((networks, windows), dtype=bool)
    stimulating[1:, 5] = True
    return {
        "kop": kop,
        "chi": 2 * kop,
        "weight_mv": weight,
        "stimulating": stimulating,
        "energy_mv2ms": stimulating * 100.0,
        "charge_mvms": stimulating * 2.0,
    }


def test_network_metrics_edge_cases():
    traces = synthetic()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the NaN of a never-stimulated network comes without a warning
        m = network_metrics(traces, window_ms=20.0, onset_window=5, latch_mv=75.0)
    assert m["kop_stimulating"][1] == traces["kop"][1, 5]  # one stimulated window is enough
    assert m["latch_reached"].tolist() == [0.0, 0.0]  # exactly 75 mV is not below 75 mV
    assert m["kop_final"][1] == pytest.approx((0.9 + 0.95) / 2)  # default final_fraction 0.1: 2 of 20 windows
    tiny_final = network_metrics(traces, window_ms=20.0, onset_window=5, latch_mv=75.0, final_fraction=0.01)
    assert tiny_final["kop_final"][1] == 0.95  # round(0.2) = 0 windows: at least the last one
    # 1 ms windows: the second before the onset is 1000 windows
    ramp = np.linspace(0.0, 1.0, 1500)
    long = {k: np.repeat(v[:, :1], 1500, axis=1) for k, v in traces.items()}
    long["kop"] = np.stack([ramp, ramp])
    before = network_metrics(long, window_ms=1.0, onset_window=1200, latch_mv=75.0)["kop_before"]
    assert before[0] == pytest.approx(ramp[200:1200].mean(), rel=1e-12)


def test_network_metrics_keep_the_leading_shape_without_a_baseline():
    traces = {k: np.stack([v, v, v]) for k, v in synthetic().items()}  # [controllers 3, seeds 2, windows 20]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "mean of empty slice": the NaN is written, not computed
        m = network_metrics(traces, window_ms=20.0, onset_window=0, latch_mv=75.0)
    assert m["kop_before"].shape == m["kop_followup"].shape == m["kop_mean"].shape == (3, 2)
    assert np.isnan(m["kop_before"]).all() and np.isnan(m["kop_followup"]).all()


def test_network_metrics_refuse_periods_outside_the_episode_by_name():
    traces = synthetic()
    with pytest.raises(ValueError) as caught:
        network_metrics(traces, window_ms=20.0, onset_window=20, latch_mv=75.0)
    assert str(caught.value) == "onset_window must be in [0, 20), got 20"
    with pytest.raises(ValueError) as caught:
        network_metrics(traces, window_ms=20.0, onset_window=5, latch_mv=75.0, followup_windows=15)
    assert str(caught.value) == "followup_windows must be in [0, 15) (after the onset), got 15"


def _result(config):
    shape = (1, len(config.seeds), config.num_windows)
    traces = {k: np.zeros(shape) for k in synthetic()}
    return EvaluationResult(config, {"none": NoStimulation().describe()}, traces, {}, {}, "cpu", {}, 0.0)


def test_markdown_report_reads_the_protocol_the_table_and_the_definitions():
    config = EvaluationConfig(
        seeds=(1, 2),
        network=NetworkParams(num_e=40, num_i=10),
        duration_s=3.0,
        stim_onset_s=1.0,
        stim_budget_s=1.2,
        followup_s=0.8,
        latch_ends_stimulation=True,
    )
    text = _result(config).markdown()
    intro, table, notes = text.split("\n\n")
    assert intro == (
        "2 held-out networks (40 E / 10 I), 3 s episodes, stimulation from 1 s for at most 1.2 s, ended for good "
        "once mean J_I*w < 75 mV, then 0.8 s of follow-up with every stimulator off; "
        "mean [95 % Student-t interval] over networks."
    )
    lines = table.split("\n")
    assert lines[0] == "| controller | " + " | ".join(METRICS) + " |"
    assert lines[1] == "|---|" + "---|" * len(METRICS)  # one column per metric and one for the names
    assert lines[2].startswith("| none | 0.000 [0.000, 0.000] | ") and len(lines) == 3
    assert notes == "\n".join(f"* `{m}`: {text}" for m, text in METRICS.items()) + "\n"
    plain = _result(EvaluationConfig(seeds=(1,), network=NetworkParams(num_e=40, num_i=10), duration_s=2.0))
    assert plain.markdown().startswith(
        "1 held-out network (40 E / 10 I), 2 s episodes, stimulation from 1 s; mean [95 % Student-t interval]"
    )


NET = NetworkParams(num_e=40, num_i=10)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"seeds": (1, -2)}, "seeds must be a non-empty tuple of distinct integers >= 0, got (1, -2)"),
        ({"seeds": (True,)}, "seeds must be a non-empty tuple of distinct integers >= 0, got (True,)"),
        ({"network": {"num_e": 40}}, "network must be a NetworkParams, got {'num_e': 40}"),
        (
            {"stim_onset_s": 2.0},
            "stim_onset_s must be in [0, duration_s=2.0) s and a whole number of 20 ms windows, got 2.0",
        ),
        ({"synchrony": "plv"}, "synchrony must be 'kop' or 'chi', got 'plv'"),
        ({"latch_mv": 0.0}, "latch_mv must be a finite number > 0 (mV), got 0.0"),
        ({"latch_mv": math.inf}, "latch_mv must be a finite number > 0 (mV), got inf"),
        ({"final_fraction": 1.5}, "final_fraction must be in (0, 1], got 1.5"),
        ({"raster_ms": 30.0}, "raster_ms must be a whole number of 20 ms windows, at most the episode, got 30.0"),
        ({"raster_ms": 2020.0}, "raster_ms must be a whole number of 20 ms windows, at most the episode, got 2020.0"),
        ({"dtype": "float16"}, "dtype must be 'float32' or 'float64', got 'float16'"),
        ({"stim_budget_s": 0.0}, "stim_budget_s must be None or a positive whole number of 20 ms windows, got 0.0"),
        ({"followup_s": 0.03}, "followup_s must be a whole number (>= 0) of 20 ms windows, got 0.03"),
        (
            {"stim_budget_s": 0.5, "followup_s": 0.2},
            "duration_s must be stim_onset_s + stim_budget_s + followup_s = 1.7 s with a follow-up "
            "(stim_budget_s set), got 2.0",
        ),
        ({"latch_ends_stimulation": 1}, "latch_ends_stimulation must be True or False, got 1"),
    ],
)
def test_config_refusals_name_the_parameter_its_range_and_the_value(change, message):
    with pytest.raises(ValueError) as caught:
        EvaluationConfig(**{"seeds": (1,), "network": NET, "duration_s": 2.0, **change})
    assert str(caught.value) == message


def test_config_accepts_its_boundaries():
    base = {"seeds": (0,), "network": NET, "duration_s": 2.0}
    for change in (
        {"final_fraction": 1.0},
        {"latch_mv": 0.5},
        {"raster_ms": 2000.0},  # the whole episode
        {"raster_ms": 0.0},
        {"synchrony": "chi"},
        {"window_ms": 10.0, "stim_onset_s": 0.5, "stim_budget_s": 1.2, "followup_s": 0.3},  # follow-up of 30 windows
        {"window_ms": 25.0, "stim_onset_s": 0.5, "stim_budget_s": 1.25, "followup_s": 0.25},
        {"duration_s": 12.0, "stim_onset_s": 1.0, "stim_budget_s": 10.0, "followup_s": 1.0},  # 600 windows
    ):
        config = EvaluationConfig(**{**base, **change})
        assert all(getattr(config, k) == v for k, v in change.items())
    assert (
        EvaluationConfig(**base, window_ms=10.0, stim_onset_s=0.5, stim_budget_s=1.2, followup_s=0.3).followup_windows
        == 30
    )


def test_whole_numbers_of_windows_to_a_relative_tolerance():
    assert _whole(3.0) and _whole(1000.0000005)  # 5e-7 off at 1000: within 1e-9 of the value
    assert not _whole(1e-9) and not _whole(1.5e-9) and not _whole(2.5) and not _whole(math.nan)


def test_device_and_versions_in_words(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device: f"H100 at {device}")
    assert describe_device(torch.device("cuda", 1)) == "cuda:H100 at cuda:1"
    threads = torch.get_num_threads()
    monkeypatch.setattr(platform, "processor", lambda: "")
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    assert describe_device(torch.device("cpu")) == f"cpu:x86_64 ({threads} threads)"
    monkeypatch.setattr(platform, "processor", lambda: "Xeon")
    assert describe_device(torch.device("cpu")) == f"cpu:Xeon ({threads} threads)"
    assert _versions() == {
        "neuroloop_gpu": importlib.metadata.version("neuroloop-gpu"),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(evaluation, "version", missing)
    assert _versions()["neuroloop_gpu"] == "unknown"


class Recorder(Controller):
    """Stimulates at a fixed setting and keeps every observation and info it is handed."""

    def __init__(self, name, amplitude=60.0, synchrony=None):
        self.name, self.amplitude, self.synchrony = name, amplitude, synchrony

    def reset(self, num_envs, device):
        self.num_envs, self.seen = num_envs, []

    def act(self, observation, info):
        self.seen.append((observation.clone(), {k: v.clone() for k, v in info.items()}))
        return PulseTrain.constant(observation.shape[0], self.amplitude, 100.0, 200.0)


SHORT = EvaluationConfig(seeds=(3, 4), network=NET, duration_s=0.1, stim_onset_s=0.04, raster_ms=0.0)


def test_each_controller_sees_its_own_networks_observations_and_last_window():
    first, second = Recorder("a", 60.0), Recorder("b", 0.0)
    config = replace(SHORT, synchrony="chi")
    result = evaluate([first, second], config, device="cpu", progress=False)
    assert result.names == ["a", "b"]
    for c, recorder in enumerate((first, second)):
        assert recorder.num_envs == 2 and len(recorder.seen) == config.num_windows
        assert recorder.seen[0][1] == {}  # nothing has happened before the first window
        for w, (observation, info) in enumerate(recorder.seen[1:]):
            assert observation.shape == (2, 6)
            chi = torch.tensor(result.traces["chi"][c, :, w], dtype=torch.float32).clamp(0, 1)
            assert torch.equal(observation[:, 0], chi)  # feature 0 is the evaluation's synchrony: chi
            assert torch.equal(info["weight_mv"], torch.tensor(result.traces["weight_mv"][c, :, w]))
    assert result.traces["stimulating"].dtype == bool and result.traces["stimulating"][0, :, -1].all()


class BadStart(Recorder):
    """A NaN amplitude in the first window only (the one evaluate checks on the host)."""

    def act(self, observation, info):
        train = super().act(observation, info)
        return PulseTrain.constant(observation.shape[0], math.nan) if len(self.seen) == 1 else train


def test_an_invalid_first_train_is_refused_before_it_runs():
    with pytest.raises(ValueError, match="amplitude"):
        evaluate([BadStart("bad")], SHORT, device="cpu", progress=False)


def test_one_controller_the_run_metadata_and_the_rasters_before_an_early_onset():
    config = replace(SHORT, duration_s=0.2, stim_onset_s=0.1, raster_ms=100.0)  # raster from 0 s
    before = time.perf_counter()
    result = evaluate(["none"], config, device="cpu", progress=False)
    elapsed = time.perf_counter() - before
    assert result.names == ["none"] and result.raster_start_s == {"before": 0.0, "after": pytest.approx(0.1)}
    assert result.rasters["before"].dtype == result.rasters["after"].dtype == np.bool_
    assert result.rasters["before"].shape == (1, 1000, 40)
    assert result.device == describe_device(torch.device("cpu")) and result.versions == _versions()
    assert 0 < result.wall_time_s < elapsed


def test_the_simulation_runs_at_the_configured_step():
    config = replace(SHORT, step_ms=0.05)
    result = evaluate(["none"], config, device="cpu", backend="eager", progress=False)
    core = DBSCore(2, NET, config.sim, episode=config.episode, device="cpu", backend="eager")
    core.reset(seeds=torch.tensor([3, 4]))
    for w in range(config.num_windows):
        info = core.step_train(PulseTrain.off(2)).info
        np.testing.assert_array_equal(result.traces["kop"][0, :, w], info["kop"].double().numpy())


@pytest.mark.parametrize(
    ("controllers", "message"),
    [
        ([], "controllers must be at least one Controller (or registered name), got []"),
        ([5], "controllers must be at least one Controller (or registered name), got [5]"),
        (["none", "none"], "controllers must be distinct names (pass a dict to name them), got ['none', 'none']"),
    ],
)
def test_controller_lists_refused_by_name(controllers, message):
    with pytest.raises(ValueError) as caught:
        evaluate(controllers, SHORT, device="cpu", progress=False)
    assert str(caught.value) == message


def test_one_controller_twice_is_refused_and_so_is_a_synchrony_mismatch():
    twice = NoStimulation()
    with pytest.raises(ValueError) as caught:
        evaluate({"a": twice, "b": twice}, SHORT, device="cpu", progress=False)
    assert str(caught.value) == "controllers must be distinct instances (each keeps its own state), got ['a', 'b']"
    with pytest.raises(ValueError) as caught:
        evaluate([Recorder("chi-policy", synchrony="chi")], SHORT, device="cpu", progress=False)
    assert str(caught.value) == (
        "controller 'chi-policy' was trained with synchrony='chi' observations; this evaluation observes "
        "synchrony='kop' (use synchrony='chi', CLI --synchrony chi)"
    )


class RecordingBar(evaluation.tqdm):
    """tqdm that keeps its arguments and each postfix with the window it was set in."""

    made = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.arguments, self.postfixes, self.window = kwargs, [], None
        RecordingBar.made.append(self)

    def __iter__(self):
        for self.window in super().__iter__():
            yield self.window

    def set_postfix(self, postfix=None, **kwargs):
        self.postfixes.append((self.window, dict(postfix)))
        super().set_postfix(postfix, **kwargs)


@pytest.mark.parametrize("count", [2, 8, 9])
def test_progress_bar_shows_each_controllers_synchrony_every_25_windows(monkeypatch, capsys, count):
    monkeypatch.setattr(evaluation, "tqdm", RecordingBar)
    RecordingBar.made.clear()
    config = replace(SHORT, seeds=(3,), duration_s=1.2, stim_onset_s=0.0)  # 60 windows
    controllers = {f"c{i}": NoStimulation() for i in range(count)}
    result = evaluate(controllers, config, device="cpu")  # progress shown by default
    (bar,) = RecordingBar.made
    assert bar.arguments == {"desc": "evaluate", "unit": "window", "disable": False} and bar.total == 60
    assert "evaluate" in capsys.readouterr().err
    kop = result.traces["kop"][:, 0, :]  # [controllers, windows] of the one seed
    if count <= 8:  # one entry per controller
        expected = [(w, {f"c{i}": f"{kop[i, w]:.2f}" for i in range(count)}) for w in (24, 49, 59)]
    else:  # a sweep's worth: one mean over every network
        expected = [(w, {"R, all networks": f"{kop[:, w].mean():.2f}"}) for w in (24, 49, 59)]
    assert bar.postfixes == expected
    evaluate(["none"], config, device="cpu", progress=False)
    assert RecordingBar.made[-1].arguments["disable"] is True and capsys.readouterr().err == ""
