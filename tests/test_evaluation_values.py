"""The evaluation's traces, rasters, metrics (each over its own period) and tables, against the plain
reference network and NumPy formulas written from the metric definitions.

A small float64 evaluation: 2 controllers x 3 seeds x 10 windows of 20 ms; onset after 3 windows,
4 windows of stimulation budget, 3 of follow-up. The periods are written out as window numbers below,
not derived the way :func:`neuroloop_gpu.evaluation.network_metrics` derives them.
"""

import csv
import functools
import json
import math

import numpy as np
import pytest
from independent import Train, run_schedule

from neuroloop_gpu.config import NetworkParams, PlasticityParams, SimConfig
from neuroloop_gpu.evaluation import METRICS, EvaluationConfig, EvaluationResult, evaluate
from neuroloop_gpu.network import NetworkBatch

PARAMS = NetworkParams(num_e=40, num_i=10, connection_prob=0.2, plasticity=PlasticityParams(onset=10.0))
SEEDS = (31, 32, 33)
CONTROLLERS = ("none", "ftsts")
LATCH_MV = 260.1
CONFIG = EvaluationConfig(
    seeds=SEEDS,
    network=PARAMS,
    duration_s=0.2,
    stim_onset_s=0.06,
    latch_mv=LATCH_MV,
    final_fraction=0.2,
    raster_ms=40.0,
    dtype="float64",
    stim_budget_s=0.08,
    followup_s=0.06,
)
WINDOWS = 10
ONSET, STIM, FOLLOWUP, FINAL = range(3, 10), range(3, 7), range(7, 10), range(8, 10)  # window numbers
BEFORE = range(0, 3)  # the last second before the onset: all three windows
FTSTS = Train(100.0, 1000.0 / 12.0, 1000.0)
T_975 = {2: 4.302652729749462, 1: 12.706204736174694}  # Student-t 97.5 % quantiles by degrees of freedom (scipy)


@functools.lru_cache(maxsize=1)
def run() -> EvaluationResult:
    return evaluate(list(CONTROLLERS), CONFIG, device="cpu", progress=False)


@functools.lru_cache(maxsize=1)
def reference():
    """[controller][seed] -> dict of per-window arrays, and the per-window records."""
    seeds = list(SEEDS) * 2
    net = NetworkBatch(len(seeds), PARAMS, SimConfig(duration=200.0), seeds=seeds, device="cpu", backend="eager")
    on = [w in STIM for w in range(WINDOWS)]
    records = run_schedule(net, seeds, [None] * 3 + [FTSTS] * 3, [[False] * WINDOWS] * 3 + [on] * 3, WINDOWS)
    traces = {}
    for c in range(2):
        for s in range(3):
            b = 3 * c + s
            per = {key: np.array([records[w][b].stats[key] for w in range(WINDOWS)]) for key in records[0][0].stats}
            stimulating = np.array(on) if c == 1 else np.zeros(WINDOWS, bool)
            per.update(
                stimulating=stimulating,
                amplitude_mv=100.0 * stimulating,
                frequency_hz=np.full(WINDOWS, 1000.0 / 12.0),
                pulse_width_us=np.full(WINDOWS, 1000.0),
            )
            traces[c, s] = per
    return traces, records


def metrics_from(t) -> dict[str, float]:
    """METRICS of one network from its per-window arrays, periods as window numbers."""
    kop, chi, weight = t["kop"], t["chi"], t["weight_mv"]
    below = [w for w in ONSET if weight[w] < LATCH_MV]
    stimulated = [w for w in range(WINDOWS) if t["stimulating"][w]]
    mean = lambda x, ws: float(np.mean([x[w] for w in ws])) if ws else math.nan  # noqa: E731
    return {
        "kop_before": mean(kop, BEFORE),
        "kop_mean": mean(kop, ONSET),
        "kop_stimulating": mean(kop, stimulated),
        "kop_followup": mean(kop, FOLLOWUP),
        "kop_final": mean(kop, FINAL),
        "chi_mean": mean(chi, ONSET),
        "chi_final": mean(chi, FINAL),
        "weight_final_mv": float(weight[-1]),
        "time_to_latch_s": (below[0] - 3 + 1) * 0.02 if below else math.nan,
        "latch_reached": float(bool(below)),
        "energy_mv2ms": float(t["energy_mv2ms"].sum()),
        "charge_mvms": float(t["charge_mvms"].sum()),
        "stimulating_fraction": mean(t["stimulating"].astype(float), ONSET),
    }


def interval(values) -> dict[str, float]:
    v = np.array([x for x in values if math.isfinite(x)])
    if v.size < 2:
        return {"mean": float(v.mean()) if v.size else math.nan, "low": math.nan, "high": math.nan, "n": v.size}
    half = T_975[v.size - 1] * v.std(ddof=1) / math.sqrt(v.size)
    return {"mean": v.mean(), "low": v.mean() - half, "high": v.mean() + half, "n": v.size}


def expected_summary():
    traces, _ = reference()
    return {
        name: {m: interval([metrics_from(traces[c, s])[m] for s in range(3)]) for m in METRICS}
        for c, name in enumerate(CONTROLLERS)
    }


def same(a, b, tol=1e-9):
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=tol, abs=tol)


def test_the_run_exercises_what_it_checks():
    traces, _ = reference()
    reached = [metrics_from(traces[c, s])["latch_reached"] for c in range(2) for s in range(3)]
    assert 0 < sum(reached) < 6  # time_to_latch_s has values and NaNs
    chi = traces[1, 0]["chi"]
    assert abs(np.mean(chi[3:]) - np.mean(chi)) > 1e-3  # chi over the controlled period vs the whole episode
    kop = traces[1, 0]["kop"]
    assert abs(np.mean(kop[3:7]) - np.mean(kop[3:])) > 1e-3 and abs(np.mean(kop[7:]) - np.mean(kop[8:])) > 1e-3


def test_traces_match_the_reference():
    result = run()
    traces, _ = reference()
    assert result.names == list(CONTROLLERS)
    for key, values in result.traces.items():
        assert values.shape == (2, 3, WINDOWS), key
        for c in range(2):
            for s in range(3):
                tol = 2e-6 if key == "kop" else 1e-9
                np.testing.assert_allclose(
                    values[c, s].astype(float),
                    traces[c, s][key].astype(float),
                    rtol=tol,
                    atol=tol,
                    err_msg=f"{key} controller {c} seed {s}",
                )


def test_rasters_are_the_first_seeds_spikes_before_the_onset_and_at_the_end():
    result = run()
    _, records = reference()
    assert result.raster_start_s == pytest.approx({"before": 0.02, "after": 0.16})
    for c in range(2):
        b = 3 * c  # the first seed of controller c
        before = np.concatenate([records[w][b].spikes_e for w in (1, 2)])
        after = np.concatenate([records[w][b].spikes_e for w in (8, 9)])
        np.testing.assert_array_equal(result.rasters["before"][c], before)
        np.testing.assert_array_equal(result.rasters["after"][c], after)
        assert before.sum() > 10 and after.sum() > 10 and not np.array_equal(before, after)


def test_metrics_each_over_its_period():
    result = run()
    traces, _ = reference()
    per_network = result.network_metrics()
    assert set(per_network) == set(METRICS)
    for c in range(2):
        for s in range(3):
            exp = metrics_from(traces[c, s])
            for metric, value in exp.items():
                tol = 2e-6 if metric.startswith("kop") else 1e-9
                assert same(float(per_network[metric][c, s]), value, tol), f"{metric} controller {c} seed {s}"


def test_summary_and_tables(tmp_path):
    """Mean and 95 % interval per controller and metric: in summary(), the JSON, the CSV and the Markdown
    table, whose cells read mean [low, high] with low <= high."""
    result = run()
    exp = expected_summary()
    summary = result.summary()
    for name in CONTROLLERS:
        for metric in METRICS:
            for key in ("mean", "low", "high"):
                tol = 2e-6 if metric.startswith("kop") or key != "mean" else 1e-9  # t quantile: to ~1e-7
                assert same(summary[name][metric][key], exp[name][metric][key], tol), (name, metric, key)
            assert summary[name][metric]["n"] == exp[name][metric]["n"]
    paths = result.save(tmp_path)
    document = json.loads(paths["json"].read_text())
    with paths["csv"].open() as handle:
        rows = {row["controller"]: row for row in csv.DictReader(handle)}
    lines = [line for line in paths["markdown"].read_text().splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert header == ["controller", *METRICS]
    table = {
        cells[0]: dict(zip(header[1:], cells[1:]))
        for cells in ([cell.strip() for cell in line.strip("|").split("|")] for line in lines[1:])
    }
    assert list(table) == list(CONTROLLERS)
    for name in CONTROLLERS:
        for metric in METRICS:
            e = exp[name][metric]
            stored = document["metrics"][name][metric]
            for key in ("mean", "low", "high"):
                tol = 2e-6 if metric.startswith("kop") or key != "mean" else 1e-9
                assert same(math.nan if stored[key] is None else stored[key], e[key], tol), (name, metric, key)
                assert same(float(rows[name][f"{metric}_{key}"]), e[key], tol), (name, metric, key)
            cell = table[name][metric]
            if math.isnan(e["mean"]):
                assert cell == "n/a"
                continue
            numbers = [float(x.replace(",", "")) for x in cell.replace("[", " ").replace("]", " ").split()]
            digits = 3 if abs(e["mean"]) < 10 else 1 if abs(e["mean"]) < 1000 else 0
            if math.isnan(e["low"]):
                assert numbers == [pytest.approx(e["mean"], abs=0.51 * 10**-digits)], (name, metric, cell)
                continue
            assert numbers == [pytest.approx(e[k], abs=0.51 * 10**-digits) for k in ("mean", "low", "high")], (
                name,
                metric,
                cell,
            )
            assert numbers[1] <= numbers[0] <= numbers[2], (name, metric, cell)
    for metric, values in document["per_network"].items():
        np.testing.assert_allclose(np.array(values, dtype=float), result.network_metrics()[metric], rtol=1e-12)
    loaded = EvaluationResult.load(tmp_path)
    for key, values in result.traces.items():
        np.testing.assert_array_equal(loaded.traces[key], values)
    for key, values in result.rasters.items():
        np.testing.assert_array_equal(loaded.rasters[key], values)


def test_default_backend_gives_the_eager_values():
    """The default (fused where built) backend and eager, float32 as evaluated by default: equal traces
    and rasters."""
    config = EvaluationConfig(
        seeds=SEEDS,
        network=PARAMS,
        duration_s=0.2,
        stim_onset_s=0.06,
        raster_ms=40.0,
        stim_budget_s=0.08,
        followup_s=0.06,
    )
    default = evaluate(list(CONTROLLERS), config, device="cpu", progress=False)
    eager = evaluate(list(CONTROLLERS), config, device="cpu", backend="eager", progress=False)
    for key in default.traces:
        np.testing.assert_array_equal(default.traces[key], eager.traces[key], err_msg=key)
    for key in default.rasters:
        np.testing.assert_array_equal(default.rasters[key], eager.rasters[key], err_msg=key)
    assert default.rasters["after"].sum() > 10


def test_float32_evaluation_agrees_with_the_reference():
    traces, _ = reference()
    config = EvaluationConfig(
        seeds=SEEDS,
        network=PARAMS,
        duration_s=0.2,
        stim_onset_s=0.06,
        raster_ms=40.0,
        stim_budget_s=0.08,
        followup_s=0.06,
    )
    result = evaluate(list(CONTROLLERS), config, device="cpu", progress=False)
    # float32 may flip a late spike; the first windows must agree closely
    for c in range(2):
        for s in range(3):
            np.testing.assert_allclose(result.traces["weight_mv"][c, s, :3], traces[c, s]["weight_mv"][:3], rtol=1e-5)
            np.testing.assert_allclose(result.traces["energy_mv2ms"][c, s], traces[c, s]["energy_mv2ms"], rtol=1e-6)
