"""Evaluation: metrics with known answers, one batched run, files that round-trip."""

import csv
import json
import math

import numpy as np
import pytest

from neuroloop_gpu.config import NetworkParams
from neuroloop_gpu.control import NoStimulation, OpenLoopFTSTS
from neuroloop_gpu.evaluation import (
    FILES,
    METRICS,
    EvaluationConfig,
    EvaluationResult,
    evaluate,
    mean_interval,
    network_metrics,
    t_quantile,
)

TINY = NetworkParams(num_e=40, num_i=10)


@pytest.mark.parametrize(
    ("df", "expected"), [(1, 12.706205), (2, 4.302653), (9, 2.262157), (31, 2.039513), (1000, 1.962339)]
)
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
    stimulating[1, onset : onset + 6] = True
    traces = {
        "kop": kop,
        "chi": 2 * kop,
        "weight_mv": weight,
        "stimulating": stimulating,
        "energy_mv2ms": stimulating * 100.0,
        "charge_mvms": stimulating * 2.0,
    }
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
    ramp = np.linspace(0.0, 0.95, windows)
    assert m["kop_before"] == pytest.approx([0.5, ramp[:onset].mean()])  # < 1 s of baseline: all of it
    assert math.isnan(m["kop_stimulating"][0]) and m["kop_stimulating"][1] == pytest.approx(ramp[5:11].mean())
    assert np.isnan(m["kop_followup"]).all()  # no follow-up asked for
    with_followup = network_metrics(traces, window_ms=20.0, onset_window=onset, latch_mv=75.0, followup_windows=4)
    assert with_followup["kop_followup"] == pytest.approx([0.5, ramp[-4:].mean()])
    long_baseline = network_metrics(traces, window_ms=2.0, onset_window=onset, latch_mv=75.0)
    assert long_baseline["kop_before"][1] == pytest.approx(ramp[:onset].mean())
    short_second = network_metrics(traces, window_ms=500.0, onset_window=onset, latch_mv=75.0)  # 1 s = 2 windows
    assert short_second["kop_before"][1] == pytest.approx(ramp[3:5].mean())
    no_baseline = network_metrics(traces, window_ms=20.0, onset_window=0, latch_mv=75.0)
    assert np.isnan(no_baseline["kop_before"]).all()
    with pytest.raises(ValueError, match="followup_windows must be in"):
        network_metrics(traces, window_ms=20.0, onset_window=onset, latch_mv=75.0, followup_windows=15)


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
    with pytest.raises(ValueError, match="duration_s must be stim_onset_s \\+ stim_budget_s \\+ followup_s = 12 s"):
        EvaluationConfig(duration_s=10.0, stim_onset_s=1.0, stim_budget_s=10.0, followup_s=1.0)
    with pytest.raises(ValueError, match="duration_s must be .* with a follow-up \\(stim_budget_s set\\)"):
        EvaluationConfig(duration_s=10.0, followup_s=1.0)
    with pytest.raises(ValueError, match="stim_budget_s must be None or a positive whole number of 20 ms windows"):
        EvaluationConfig(stim_budget_s=0.01)
    with pytest.raises(ValueError, match="followup_s must be a whole number"):
        EvaluationConfig(followup_s=-1.0)
    with pytest.raises(ValueError, match="controllers must be distinct names"):
        evaluate(
            ["none", NoStimulation()],
            EvaluationConfig(seeds=(0,), network=TINY, duration_s=0.04, stim_onset_s=0.0, raster_ms=0.0),
        )
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
    before, after = tiny_run.rasters["before"], tiny_run.rasters["after"]
    assert before[0].sum() > 10 and after[0].sum() > 10  # spikes to compare, not two empty arrays
    assert np.array_equal(after[0], after[1]) and not np.array_equal(after[0], after[2])  # twins alike, FTSTS not
    assert not np.array_equal(before[0], after[0])


def test_results_round_trip_through_their_files(tiny_run, tmp_path):
    out = tmp_path / "runs" / "tiny"  # folders made as needed
    paths = tiny_run.save(out)
    assert sorted(path.name for path in paths.values()) == sorted(FILES.values())
    assert paths["json"].read_text().startswith('{\n "config": {\n  "seeds": [\n   11,')  # one space per level
    document = json.loads(paths["json"].read_text())  # strict JSON: NaN written as null
    assert document["metric_definitions"] == METRICS and list(METRICS) == list(document["metrics"]["ftsts"])
    assert document["interval"] == "95 % two-sided Student-t interval of the mean over networks (NaNs left out)"
    assert document["raster_start_s"] == {"before": pytest.approx(0.06), "after": pytest.approx(0.16)}
    assert document["config"]["seeds"] == [11, 12, 13] and document["device"].startswith("cpu")
    assert document["backend"] == tiny_run.backend in ("eager", "fused")
    assert set(document["versions"]) >= {"torch", "numpy", "neuroloop_gpu"} and document["wall_time_s"] > 0
    assert document["metrics"]["ftsts"]["time_to_latch_s"]["mean"] is None  # never reached in 0.1 s
    assert document["metrics"]["ftsts"]["stimulating_fraction"]["mean"] == 1.0
    rows = list(csv.DictReader(paths["csv"].open()))
    assert [row["controller"] for row in rows] == ["none", "none-twin", "ftsts"]
    assert float(rows[2]["energy_mv2ms_mean"]) > 0 and float(rows[0]["energy_mv2ms_mean"]) == 0
    assert "| ftsts |" in paths["markdown"].read_text()
    loaded = EvaluationResult.load(out)
    assert loaded.config == tiny_run.config and loaded.names == tiny_run.names and loaded.backend == tiny_run.backend
    assert (loaded.raster_start_s, loaded.device) == (tiny_run.raster_start_s, tiny_run.device)
    assert (loaded.versions, loaded.wall_time_s) == (tiny_run.versions, tiny_run.wall_time_s)
    assert all(np.array_equal(loaded.traces[k], v) for k, v in tiny_run.traces.items())
    assert np.array_equal(loaded.rasters["after"], tiny_run.rasters["after"])
    assert json.dumps(loaded.summary(), default=str) == json.dumps(tiny_run.summary(), default=str)
    del document["backend"]  # written before the backend was recorded
    paths["json"].write_text(json.dumps(document))
    assert EvaluationResult.load(out).backend == "unknown"
    with pytest.raises(FileNotFoundError, match="not an evaluation folder"):
        EvaluationResult.load(tmp_path / "missing")


@pytest.mark.parametrize("backend", ["eager", "fused"])
def test_rasters_hold_every_spike_of_their_windows(backend):
    """Recording is switched on only for the raster windows, after the batch was built: every Euler step
    of those windows must be in the raster (the kernel backends ran whole windows per call when built
    unrecorded), so the raster's spikes per window equal the E rate the monitor counted in that window."""
    from neuroloop_gpu.network.fused import fused_backend_problem

    if backend == "fused" and fused_backend_problem() is not None:
        pytest.skip(f"fused backend unavailable: {fused_backend_problem()}")
    config = EvaluationConfig(seeds=(5, 6), network=TINY, duration_s=0.3, stim_onset_s=0.1, raster_ms=60.0)
    result = evaluate(
        {"none": NoStimulation(), "ftsts": OpenLoopFTSTS()}, config, device="cpu", backend=backend, progress=False
    )
    assert result.backend == backend
    steps, windows = round(config.window_ms / config.step_ms), round(config.raster_ms / config.window_ms)
    for kind, start_s in result.raster_start_s.items():
        first = round(start_s * 1000.0 / config.window_ms)
        raster = result.rasters[kind].reshape(2, windows, steps, TINY.num_e)  # controllers, windows, steps, E
        counted = raster.sum(axis=(2, 3))
        rate = result.traces["rate_e_hz"][:, 0, first : first + windows]  # first seed of each controller
        expected = rate * TINY.num_e * config.window_ms / 1000.0
        np.testing.assert_allclose(counted, expected, rtol=0, atol=1e-6)
        assert counted.min() > 10  # every window of this network fires: the comparison has something to count


def test_lasting_protocol_gates_every_controller_and_measures_the_followup():
    """Budget and latch act on every controller through the core; the follow-up metric is the mean R of
    exactly the last followup_s, recomputed here from the traces."""
    config = EvaluationConfig(
        seeds=(3, 4),
        network=TINY,
        duration_s=0.3,
        stim_onset_s=0.1,
        stim_budget_s=0.1,
        followup_s=0.1,
        latch_mv=259.0,
        latch_ends_stimulation=True,
        raster_ms=0.0,
    )
    result = evaluate(
        {"none": NoStimulation(), "ftsts": OpenLoopFTSTS(latch_mv=None)}, config, device="cpu", progress=False
    )
    on, weight, kop = (result.traces[k] for k in ("stimulating", "weight_mv", "kop"))
    onset, end = 5, 10  # windows: stimulation may run in [5, 10), then 5 windows of follow-up
    assert not on[:, :, :onset].any() and not on[:, :, end:].any() and not on[0].any()
    tripped = 0
    for s in range(2):  # ftsts ignores the latch itself; the core stops it after the first window below 259 mV
        first = onset + int(np.argmax(weight[1, s, onset:] < 259.0))
        stop = min(first + 1, end) if weight[1, s, first] < 259.0 else end
        expected = (np.arange(15) >= onset) & (np.arange(15) < stop)
        assert on[1, s].tolist() == expected.tolist()
        tripped += stop < end
    assert tripped >= 1  # the latch, not only the budget, ended a stimulation phase
    metrics = result.network_metrics()
    np.testing.assert_allclose(metrics["kop_followup"], kop[:, :, -5:].mean(-1))
    np.testing.assert_allclose(metrics["kop_before"], kop[:, :, :onset].mean(-1))
    assert "then 0.1 s of follow-up with every stimulator off" in result.markdown()
