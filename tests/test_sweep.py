"""The open-loop sweep: per-point values against separate single-point runs, the tuned-point rule, files,
the heatmaps' data, the CLI and the ftsts-tuned controllers built from a sweep."""

import csv
import json
import math

import numpy as np
import pytest
import torch

from neuroloop_gpu.cli import main
from neuroloop_gpu.config import NetworkParams, SimConfig
from neuroloop_gpu.control import TunedFTSTS, TunedFTSTS1ms, make_controller
from neuroloop_gpu.envs import DBSCore, EpisodeConfig
from neuroloop_gpu.plots import plot_run, sweep_figure
from neuroloop_gpu.stimulus import PulseTrain
from neuroloop_gpu.sweep import SWEEP_METRICS, SweepConfig, SweepResult, run_sweep, tuned_settings

TINY = NetworkParams(num_e=40, num_i=10)
CONFIG = SweepConfig(
    amplitudes_mv=(60.0, 200.0),
    frequencies_hz=(100.0, 600.0),
    pulse_widths_us=(500.0, 1000.0),
    seeds=(21, 22),
    network=TINY,
    stim_onset_s=0.1,
    stim_budget_s=0.3,
    followup_s=0.1,
    latch_mv=259.0,
)


@pytest.fixture(scope="module")
def tiny_sweep():
    return run_sweep(CONFIG, device="cpu", backend="eager", progress=False)


def single_point(amplitude, frequency, width, seed):
    """One point on one network, stepped by hand: the per-window values and metrics recomputed here."""
    episode = EpisodeConfig(stim_onset=100.0, latch_mv=259.0, stim_budget=300.0)
    core = DBSCore(1, TINY, SimConfig(duration=500.0, seed=seed), episode=episode, device="cpu", backend="eager")
    train = PulseTrain.constant(1, amplitude, frequency, width)
    rows = [core.step_train(train).info for _ in range(25)]
    weight = np.array([float(r["weight_mv"][0]) for r in rows])
    kop = np.array([float(r["kop"][0]) for r in rows])
    on = np.array([bool(r["stimulating"][0]) for r in rows])
    below = np.flatnonzero(weight[5:] < 259.0)
    return {
        "latch_reached": float(below.size > 0),
        "time_to_latch_s": (below[0] + 1) * 0.02 if below.size else math.nan,
        "energy_mv2ms": sum(float(r["energy_mv2ms"][0]) for r in rows),
        "charge_mvms": sum(float(r["charge_mvms"][0]) for r in rows),
        "kop_before": kop[:5].mean(),
        "kop_stimulating": kop[on].mean() if on.any() else math.nan,
        "kop_followup": kop[-5:].mean(),
        "weight_final_mv": weight[-1],
    }


def test_points_leave_out_phase_pairs_longer_than_the_period():
    # 2 x 1000 us = 2 ms: fits the 10 ms period of 100 Hz, not the 1.67 ms of 600 Hz
    assert CONFIG.points == [
        (60.0, 100.0, 500.0),
        (60.0, 100.0, 1000.0),
        (60.0, 600.0, 500.0),
        (200.0, 100.0, 500.0),
        (200.0, 100.0, 1000.0),
        (200.0, 600.0, 500.0),
    ]


def test_every_value_equals_a_separate_run_of_its_point(tiny_sweep):
    for p, point in enumerate(CONFIG.points):
        for s, seed in enumerate(CONFIG.seeds):
            expected = single_point(*point, seed)
            for metric in SWEEP_METRICS:
                got = tiny_sweep.per_network[metric][p, s]
                if math.isnan(expected[metric]):
                    assert math.isnan(got), (point, seed, metric)
                else:
                    assert got == pytest.approx(expected[metric], rel=1e-6, abs=1e-9), (point, seed, metric)
    latched = tiny_sweep.per_network["latch_reached"]
    assert 0 < latched.mean() < 1  # the grid holds points that latch and points that do not


def synthetic(energy, latched, config=CONFIG):
    """A result whose per-network energies and latches are given per point ([points, seeds])."""
    shape = (len(config.points), len(config.seeds))
    values = {m: np.zeros(shape) for m in SWEEP_METRICS}
    values["energy_mv2ms"] = np.asarray(energy, dtype=np.float64)
    values["latch_reached"] = np.asarray(latched, dtype=np.float64)
    return SweepResult(config, values, "cpu", "eager", {}, 0.0)


def test_tuned_is_the_cheapest_point_that_latches_often_enough_within_each_bounds():
    config = SweepConfig(**{**CONFIG.__dict__, "seeds": (1, 2, 3)})
    energy = [[5.0] * 3, [1.0] * 3, [3.0] * 3, [0.5] * 3, [9.0] * 3, [4.0] * 3]
    latched = [[1, 1, 1], [1, 1, 1], [1, 1, 1], [1, 1, 0], [1, 1, 1], [1, 1, 1]]
    tuned = synthetic(energy, latched, config).tuned()
    # point 3 is the cheapest but latches on 2 of 3 networks (< 90 %); points 2 and 5 (600 Hz) lie outside
    # both bounds' 180 Hz; point 1 (1000 us) is the cheapest of the rest, outside NeuroLoop's 500 us phases
    settings = {name: (p["amplitude_mv"], p["frequency_hz"], p["pulse_width_us"]) for name, p in tuned.items()}
    assert settings == {"1ms": (60.0, 100.0, 1000.0), "neuroloop": (60.0, 100.0, 500.0)}
    assert tuned_settings({"tuned": tuned}, "1ms") == {"amplitude": 60.0, "frequency": 100.0, "pulse_width": 1000.0}
    none_latch = synthetic(energy, np.zeros((6, 3)), config).tuned()
    assert none_latch == {"neuroloop": None, "1ms": None}
    with pytest.raises(ValueError, match="sweep must be a sweep with a tuned point within the 'neuroloop' bounds"):
        tuned_settings({"tuned": none_latch})


def test_files_round_trip_and_the_heatmaps_draw_the_values(tiny_sweep, tmp_path):
    paths = tiny_sweep.save(tmp_path)
    document = json.loads(paths["json"].read_text())
    assert document["config"]["seeds"] == [21, 22] and document["tuned"] == json.loads(
        json.dumps(tiny_sweep.tuned(), allow_nan=True).replace("NaN", "null")
    )
    rows = list(csv.DictReader(paths["csv"].open()))
    assert len(rows) == len(CONFIG.points)
    for row, point, summary in zip(rows, CONFIG.points, tiny_sweep.summary()):
        assert (float(row["amplitude_mv"]), float(row["frequency_hz"]), float(row["pulse_width_us"])) == point
        assert float(row["energy_mv2ms_mean"]) == pytest.approx(summary["metrics"]["energy_mv2ms"]["mean"])
    loaded = SweepResult.load(tmp_path)
    assert loaded.config == CONFIG
    for metric in SWEEP_METRICS:
        np.testing.assert_array_equal(loaded.per_network[metric], tiny_sweep.per_network[metric])

    fig = sweep_figure(loaded)
    energy_axes, followup_axes = fig.axes[0:2], fig.axes[2:4]  # row 0 then row 1, one column per width
    means = {m: loaded.per_network[m].mean(1) for m in ("energy_mv2ms", "kop_followup", "latch_reached")}
    for c, width in enumerate(CONFIG.pulse_widths_us):
        drawn_energy = np.ma.filled(fig.axes[c].images[0].get_array(), np.nan)
        drawn_followup = np.ma.filled(fig.axes[2 + c].images[0].get_array(), np.nan)
        for p, (a, f, w) in enumerate(CONFIG.points):
            if w != width:
                continue
            i, j = CONFIG.amplitudes_mv.index(a), CONFIG.frequencies_hz.index(f)
            expected = means["energy_mv2ms"][p] / 1e6 if means["latch_reached"][p] >= 0.9 else np.nan
            np.testing.assert_allclose(drawn_energy[i, j], expected)
            np.testing.assert_allclose(drawn_followup[i, j], means["kop_followup"][p])
        assert "energy to latch" in energy_axes[c].get_title() and f"{width:g} µs" in energy_axes[c].get_title()
        assert "follow-up" in followup_axes[c].get_title()
    assert energy_axes[0].get_ylabel() == "amplitude (mV)" and followup_axes[0].get_xlabel() == "frequency (Hz)"
    assert plot_run(tmp_path) == [tmp_path / "sweep.png"]


def test_tuned_controllers_take_their_settings_from_a_sweep(tiny_sweep, tmp_path):
    tiny_sweep.save(tmp_path)
    tuned = tiny_sweep.tuned()
    for cls, bounds in ((TunedFTSTS, "neuroloop"), (TunedFTSTS1ms, "1ms")):
        if tuned[bounds] is None:
            with pytest.raises(ValueError, match=f"within the '{bounds}' bounds"):
                cls(sweep=tmp_path)
            continue
        controller = cls(sweep=tmp_path / "sweep.json")
        p = controller.params
        assert (p.amplitude, p.frequency, p.pulse_width) == (
            tuned[bounds]["amplitude_mv"],
            tuned[bounds]["frequency_hz"],
            tuned[bounds]["pulse_width_us"],
        )
        assert controller.describe()["bounds"] == bounds and p.latch_mv == 75.0
    with pytest.raises(ValueError, match="sweep must be a readable sweep.json"):
        TunedFTSTS(sweep=tmp_path / "missing.json")
    shipped = make_controller("ftsts-tuned")  # the packaged full-size sweep
    assert 10.0 <= shipped.params.amplitude <= 200.0 and 50.0 <= shipped.params.pulse_width <= 500.0
    controller = make_controller("ftsts-tuned-1ms", amplitude=42.0)
    assert controller.params.amplitude == 42.0 and controller.params.pulse_width <= 1000.0
    controller.reset(2, "cpu")
    assert torch.equal(controller.act(torch.zeros(2, 6), {}).amplitude, torch.full((2,), 42.0, dtype=torch.float64))


def test_sweep_command(tmp_path, capsys):
    main(
        [
            "sweep",
            "--num-e",
            "40",
            "--num-i",
            "10",
            "--amplitudes",
            "60",
            "200",
            "--frequencies",
            "100",
            "--pulse-widths",
            "500",
            "--seeds",
            "2",
            "--first-seed",
            "21",
            "--onset",
            "0.1",
            "--budget",
            "0.3",
            "--followup",
            "0.1",
            "--latch",
            "259",
            "--device",
            "cpu",
            "--out",
            str(tmp_path),
        ]
    )
    printed = capsys.readouterr().out
    assert "ftsts-tuned (neuroloop bounds)" in printed and "ftsts-tuned (1ms bounds)" in printed
    document = json.loads((tmp_path / "sweep.json").read_text())
    assert [(p["amplitude_mv"], p["frequency_hz"]) for p in document["points"]] == [(60.0, 100.0), (200.0, 100.0)]
    assert (tmp_path / "sweep.png").is_file() and (tmp_path / "sweep.csv").is_file()
    for bad, message in (
        (["--amplitudes", "-5"], "argument --amplitudes: must be a number > 0"),
        (["--budget", "0.013"], "argument --budget: must be a positive whole number"),
        (["--pulse-widths", "9000", "--frequencies", "180"], "pulse_widths_us must be at least one"),
    ):
        with pytest.raises(SystemExit) as exited:
            main(["sweep", "--num-e", "40", "--device", "cpu", "--out", str(tmp_path / "bad"), *bad])
        assert message in capsys.readouterr().err + str(exited.value)  # argparse prints, our errors exit with it
    assert not (tmp_path / "bad").exists()
