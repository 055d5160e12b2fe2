"""Evaluation: metrics with known answers, one batched run, files that round-trip."""

import csv
import json
import math

import numpy as np
import pytest

from neuroloop_gpu.config import NetworkParams
from neuroloop_gpu.control import NoStimulation, OpenLoopFTSTS
from neuroloop_gpu.evaluation import (
    METRICS,
    EvaluationConfig,
    EvaluationResult,
    evaluate,
    mean_interval,
    network_metrics,
    t_quantile,
)

TINY = NetworkParams(num_e=40, num_i=10)


@pytest.mark.parametrize(("df", "expected"), [(1, 12.706205), (2, 4.302653), (9, 2.262157), (31, 2.039513),
                                              (1000, 1.962339)])
def test_t_quantile_matches_the_tables(df, expected):
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=2e-6)


def test_mean_interval_known_answers():
    stat = mean_interval(np.array([1.0, 2.0, 3.0]))
    half = 4.302653 * 1.0 / math.sqrt(3)  # t(0.975, 2) * sd / sqrt(n)
    assert stat["mean"] == 2.0 and stat["n"] == 3
    assert stat["low"] == pytest.approx(2.0 - half, abs=1e-5) and stat["high"] == pytest.approx(2.0 + half, abs=1e-5)
    assert mean_interval(np.full(32, 0.4)) == pytest.approx({"mean": 0.4, "low": 0.4, "high": 0.4, "n": 32})
    nan_left_out = mean_interval(np.array([np.nan, 5.0, np.nan]))
    assert nan_left_out["mean"] == 5.0 and nan_left_out["n"] == 1 and math.isnan(nan_left_out["low"])
    assert math.isnan(mean_interval(np.array([np.nan]))["mean"])


def test_network_metrics_on_synthetic_traces():
    windows, onset = 20, 5  # 20 ms windows: 0.1 s baseline, 0.3 s controlled
    kop = np.stack([np.full(windows, 0.5), np.linspace(0.0, 0.95, windows)])  # 2 networks
    weight = np.stack([np.full(windows, 260.0), 260.0 - 20.0 * np.arange(windows)])  # net 1: 80 at w 9, 60 at w 10
    stimulating = np.zeros((2, windows), dtype=bool)
    stimulating[1, onset:onset + 6] = True
    traces = {"kop": kop, "chi": 2 * kop, "weight_mv": weight, "stimulating": stimulating,
              "energy_mv2ms": stimulating * 100.0, "charge_mvms": stimulating * 2.0}
    m = network_metrics(traces, window_ms=20.0, onset_window=onset, latch_mv=75.0, final_fraction=0.1)
    assert set(m) == set(METRICS)
    assert m["kop_mean"] == pytest.approx([0.5, np.linspace(0.0, 0.95, windows)[onset:].mean()])
    assert m["kop_final"] == pytest.approx([0.5, (0.9 + 0.95) / 2])  # last 10 % = 2 windows
    assert m["chi_final"] == pytest.approx([1.0, 1.85])
    assert m["weight_final_mv"] == pytest.approx([260.0, 260.0 - 20.0 * 19])
    # first window below 75 mV is window 10, which ends 6 windows = 0.12 s after the onset
    assert math.isnan(m["time_to_latch_s"][0]) and m["time_to_latch_s"][1] == pytest.approx(0.12)
    assert m["latch_reached"].tolist() == [0.0, 1.0]
    assert m["energy_mv2ms"].tolist() == [0.0, 600.0] and m["charge_mvms"].tolist() == [0.0, 12.0]
    assert m["stimulating_fraction"] == pytest.approx([0.0, 6 / 15])


def test_config_validation_names_the_parameter():
    with pytest.raises(ValueError, match="seeds must be a non-empty tuple of distinct integers"):
        EvaluationConfig(seeds=())
    with pytest.raises(ValueError, match="seeds must be a non-empty tuple of distinct integers"):
        EvaluationConfig(seeds=(1, 1))
    with pytest.raises(ValueError, match=r"stim_onset_s must be in \[0, duration_s=1.0\) s"):
        EvaluationConfig(duration_s=1.0, stim_onset_s=1.0)
    with pytest.raises(ValueError, match="stim_onset_s must be .* a whole number of 20 ms windows"):
        EvaluationConfig(stim_onset_s=0.015)
    with pytest.raises(ValueError, match="final_fraction must be in"):
        EvaluationConfig(final_fraction=0.0)
    with pytest.raises(ValueError, match="controllers must be distinct names"):
        evaluate(["none", NoStimulation()], EvaluationConfig(seeds=(0,), network=TINY, duration_s=0.04,
                                                              stim_onset_s=0.0, raster_ms=0.0))
    with pytest.raises(ValueError, match="controller must be one of"):
        evaluate(["nothing"])


@pytest.fixture(scope="module")
def tiny_run():
    config = EvaluationConfig(seeds=(11, 12, 13), network=TINY, duration_s=0.2, stim_onset_s=0.1, raster_ms=40.0)
    controllers = {"none": NoStimulation(), "none-twin": NoStimulation(), "ftsts": OpenLoopFTSTS()}
    return evaluate(controllers, config, device="cpu", progress=False)


def test_one_batched_run_gives_every_controller_the_same_networks(tiny_run):
    traces, onset = tiny_run.traces, tiny_run.config.onset_window
    assert traces["kop"].shape == (3, 3, 10)  # controllers x seeds x windows
    for key in ("kop", "chi", "weight_mv", "rate_e_hz"):
        assert np.array_equal(traces[key][0], traces[key][1])  # same seeds, same (no) stimulation
        assert np.array_equal(traces[key][0][:, :onset], traces[key][2][:, :onset])  # identical baselines
    assert not np.array_equal(traces["kop"][0][0], traces["kop"][0][1])  # different seeds differ
    assert not traces["stimulating"][2][:, :onset].any() and traces["stimulating"][2][:, onset:].all()
    assert (traces["energy_mv2ms"][2][:, onset:] > 0).all() and (traces["energy_mv2ms"][:2] == 0).all()
    assert tiny_run.rasters["before"].shape == (3, 400, 40) and tiny_run.rasters["after"].shape == (3, 400, 40)
    assert tiny_run.raster_start_s == {"before": pytest.approx(0.06), "after": pytest.approx(0.16)}
    assert np.array_equal(tiny_run.rasters["before"][0], tiny_run.rasters["before"][2])  # first seed, pre-onset
    assert tiny_run.rasters["after"].any()


def test_results_round_trip_through_their_files(tiny_run, tmp_path):
    paths = tiny_run.save(tmp_path)
    assert all(path.stat().st_size > 0 for path in paths.values())
    document = json.loads(paths["json"].read_text())  # strict JSON: NaN written as null
    assert document["config"]["seeds"] == [11, 12, 13] and document["device"].startswith("cpu")
    assert document["backend"] == tiny_run.backend in ("eager", "fused")
    assert set(document["versions"]) >= {"torch", "numpy", "neuroloop_gpu"} and document["wall_time_s"] > 0
    assert document["metrics"]["ftsts"]["time_to_latch_s"]["mean"] is None  # never reached in 0.1 s
    assert document["metrics"]["ftsts"]["stimulating_fraction"]["mean"] == 1.0
    rows = list(csv.DictReader(paths["csv"].open()))
    assert [row["controller"] for row in rows] == ["none", "none-twin", "ftsts"]
    assert float(rows[2]["energy_mv2ms_mean"]) > 0 and float(rows[0]["energy_mv2ms_mean"]) == 0
    assert "| ftsts |" in paths["markdown"].read_text()
    loaded = EvaluationResult.load(tmp_path)
    assert loaded.config == tiny_run.config and loaded.names == tiny_run.names and loaded.backend == tiny_run.backend
    assert all(np.array_equal(loaded.traces[k], v) for k, v in tiny_run.traces.items())
    assert np.array_equal(loaded.rasters["after"], tiny_run.rasters["after"])
    assert json.dumps(loaded.summary(), default=str) == json.dumps(tiny_run.summary(), default=str)
    with pytest.raises(FileNotFoundError, match="not an evaluation folder"):
        EvaluationResult.load(tmp_path / "missing")
