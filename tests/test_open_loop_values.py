"""The open-loop run, its summary (``neuroloop simulate``'s summary.json) and figure, against the plain
reference network, the latch rule written from the protocol's documentation and NumPy formulas.

Two networks of 40 E / 10 I (the CLI's seeds 0 and 1, float64) for 0.3 s: FTSTS from 0.1 s, latch at
259 mV, which network 1 crosses in window 8 and network 0 in window 10.
"""

import functools
import json
import math

import numpy as np
import pytest
import torch
from independent import FTSTS_TRAIN, ReferenceBatch, onsets_between, span_x, window_stimulus

from neuroloop_gpu import plots
from neuroloop_gpu.cli import main
from neuroloop_gpu.config import NetworkParams, RecordConfig, SimConfig
from neuroloop_gpu.network import NetworkBatch
from neuroloop_gpu.open_loop import OpenLoopProtocol, OpenLoopRun, run_open_loop, summarize

PARAMS = NetworkParams(num_e=40, num_i=10)  # what `simulate --num-e 40 --num-i 10` builds
SEEDS = [0, 1]
WINDOWS, ONSET_MS, LATCH_MV = 15, 100.0, 259.0
STATS = {
    "kop": "kop",
    "chi": "chi",
    "v_e_mean": "v_e_mean_mv",
    "v_e_std": "v_e_std_mv",
    "v_i_mean": "v_i_mean_mv",
    "v_i_std": "v_i_std_mv",
    "weight_mv": "weight_mv",
    "rate_e": "rate_e_hz",
    "rate_i": "rate_i_hz",
    "energy": "energy_mv2ms",
    "charge": "charge_mvms",
}  # WindowStats field -> independent name


def offline_kuramoto(raster: np.ndarray, every: int) -> np.ndarray:
    """R at steps 0, every, ... of a [steps, neurons] raster: phase 2 pi (t - t_n) / (t_{n+1} - t_n) between a
    neuron's spikes t_n <= t < t_{n+1}; neurons without both left out; 0 where none is defined."""
    out = []
    for t in range(0, raster.shape[0], every):
        phases = []
        for k in range(raster.shape[1]):
            spikes = np.flatnonzero(raster[:, k])
            before, after = spikes[spikes <= t], spikes[spikes > t]
            if before.size and after.size:
                phases.append(2 * math.pi * (t - before[-1]) / (after[0] - before[-1]))
        out.append(abs(np.exp(1j * np.array(phases)).mean()) if phases else 0.0)
    return np.array(out)


@functools.lru_cache(maxsize=1)
def reference():
    """Per network: per-window stats, stimulating flags, the stimulation-off time (ms), the raster."""
    net = NetworkBatch(
        len(SEEDS), PARAMS, SimConfig(duration=WINDOWS * 20.0), seeds=SEEDS, device="cpu", backend="eager"
    )
    ref = ReferenceBatch(net, SEEDS, total_steps=WINDOWS * net.steps_per_window)
    latched, off = [False, False], [None, None]
    stats, stimulating, rasters = [], [], [[], []]
    for w in range(WINDOWS):
        start = w * 20.0
        active = [start >= ONSET_MS and not latched[b] for b in range(2)]
        currents, energies, charges = [], [], []
        for b in range(2):
            stop = min(start + 20.0, off[b] if off[b] is not None else math.inf)
            onsets = onsets_between(FTSTS_TRAIN, ONSET_MS, stop) if start + 20.0 > ONSET_MS else []
            current, energy, charge = window_stimulus(FTSTS_TRAIN, onsets, start, ref.steps, ref.dt)
            currents.append(current)
            energies.append(energy)
            charges.append(charge)
        records = ref.run_window(currents, energies, charges)
        for b, rec in enumerate(records):
            rasters[b].append(rec.spikes_e)
            if active[b] and rec.stats["weight_mv"] < LATCH_MV:  # checked at the end of every window
                latched[b], off[b] = True, start + 20.0
        stats.append([rec.stats for rec in records])
        stimulating.append(active)
    return stats, np.array(stimulating), off, [np.concatenate(r) for r in rasters]


def test_the_run_exercises_what_it_checks():
    _, stimulating, off, rasters = reference()
    assert off == [220.0, 180.0]
    assert stimulating[:, 0].sum() == 6 and stimulating[:, 1].sum() == 4
    assert all(r.sum() > 100 for r in rasters)


@functools.lru_cache(maxsize=1)
def api_run() -> OpenLoopRun:
    net = NetworkBatch(
        len(SEEDS),
        PARAMS,
        SimConfig(duration=WINDOWS * 20.0),
        seeds=SEEDS,
        device="cpu",
        dtype=torch.float64,
        record=RecordConfig(spikes_e=True),
    )
    return run_open_loop(net, OpenLoopProtocol(onset=ONSET_MS, latch_mv=LATCH_MV), WINDOWS, progress=False)


def test_run_open_loop_matches_the_reference():
    """Every window statistic, the stimulating flags, the stimulation-off time exact to the window, and the
    recorded raster (default backend, recording on)."""
    stats, stimulating, off, rasters = reference()
    run = api_run()
    assert run.stim_off_time_ms == off
    np.testing.assert_array_equal(run.stimulating, stimulating)
    for field, name in STATS.items():
        expected = np.array([[s[b][name] for b in range(2)] for s in stats])
        tol = 2e-6 if field == "kop" else 1e-9
        np.testing.assert_allclose(run.stats[field], expected, rtol=tol, atol=tol, err_msg=field)
    for b in range(2):
        raster = np.concatenate([np.unpackbits(w[b], axis=-1, count=PARAMS.num_e) for w in run.spikes_e])
        np.testing.assert_array_equal(raster.astype(bool), rasters[b])


def expected_network(b):
    stats, _, off, rasters = reference()
    kop = offline_kuramoto(rasters[b], 10)  # 1 ms samples
    column = lambda name: np.array([s[b][name] for s in stats])  # noqa: E731
    return {
        "seed": SEEDS[b],
        "stim_off_time_s": off[b] / 1000.0,
        "rate_e_hz": column("rate_e_hz").mean(),
        "rate_i_hz": column("rate_i_hz").mean(),
        "energy_mv2ms": column("energy_mv2ms").sum(),
        "charge_mvms": column("charge_mvms").sum(),
        "final_weight_mv": column("weight_mv")[-1],
        "kop_before": kop[:100].mean(),
        "kop_during": kop[100 : round(off[b])].mean(),
        "kop_after": kop[round(off[b]) :].mean(),
        "mean_weight_per_second": [],
        "chi_per_second": [],
        "kop_per_second": [],  # under a second
    }


def check_summary(summary):
    for b in range(2):
        got, exp = summary["networks"][b], expected_network(b)
        for key, value in exp.items():
            assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), (b, key)
    for key in ("stim_off_time_s", "kop_before", "kop_during", "kop_after"):  # network 0's, the figure's
        assert summary[key] == pytest.approx(expected_network(0)[key], rel=1e-9), key
    for key in ("rate_e_hz", "rate_i_hz", "energy_mv2ms", "charge_mvms", "final_weight_mv"):  # means over networks
        assert summary[key] == pytest.approx((expected_network(0)[key] + expected_network(1)[key]) / 2, rel=1e-9)
    assert summary["duration_s"] == pytest.approx(0.3) and summary["num_networks"] == 2


def test_summary_fields():
    check_summary(summarize(api_run(), OpenLoopProtocol(onset=ONSET_MS, latch_mv=LATCH_MV), device="cpu"))


def test_cli_simulate_summary(tmp_path, monkeypatch):
    """`neuroloop simulate` end to end: summary.json holds the reference's values (stimulation-off times exact)
    and the figure draws network 0's weight, its stimulation period and its rasters."""
    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig) or path)
    main(
        [
            "simulate",
            "--num-e",
            "40",
            "--num-i",
            "10",
            "--duration",
            "0.3",
            "--onset",
            "0.1",
            "--networks",
            "2",
            "--latch",
            "259",
            "--dtype",
            "float64",
            "--device",
            "cpu",
            "--out",
            str(tmp_path),
            "--quiet",
        ]
    )
    summary = json.loads((tmp_path / "summary.json").read_text())
    check_summary(summary)
    stats, _, off, rasters = reference()
    (fig,) = figures
    ax_kop, ax_w, *raster_axes = fig.axes
    line = ax_w.lines[0]
    np.testing.assert_allclose(line.get_xdata(), np.arange(1, WINDOWS + 1) * 0.02)
    np.testing.assert_allclose(line.get_ydata(), [s[0]["weight_mv"] for s in stats], rtol=1e-12)
    span = [p for p in ax_w.patches if p.get_label() == "stimulation on"][0]
    assert span_x(span) == pytest.approx((0.1, off[0] / 1000.0))
    kop_line = ax_kop.lines[0]
    np.testing.assert_allclose(kop_line.get_ydata(), offline_kuramoto(rasters[0], 10), rtol=1e-9, atol=1e-12)
    assert "Kuramoto" in ax_kop.get_ylabel() and "J_I w" in ax_w.get_ylabel()
    assert [ax.get_title().split(" (")[0] for ax in raster_axes] == [
        "E raster before",
        "E raster during",
        "E raster after",
    ]
    # before: the 200 ms ending 100 ms before the onset (from 0 here); during: from the middle of the
    # stimulation period (100 + 220) / 2 ms; after: the last 200 ms; each from the start of its window
    for ax, start_ms in zip(raster_axes, (0.0, 160.0, 100.0)):
        first = int(start_ms // 20.0) * 200  # step
        steps, neurons = np.nonzero(rasters[0][first : first + 2000])
        np.testing.assert_allclose(ax.collections[0].get_offsets(), np.c_[(first + steps) * 1e-4, neurons], atol=1e-12)


def test_per_second_curves_and_network_means_of_a_made_up_run():
    """summarize's per-second curves are means over each whole second's windows (a partial last second
    dropped), its top-level rates, energy, charge and final weight are means over the networks."""
    rng = np.random.default_rng(3)
    windows = 110  # 2.2 s of 20 ms windows
    stats = {
        name: rng.uniform(0, 300, (windows, 2))
        for name in ("weight_mv", "chi", "rate_e", "rate_i", "energy", "charge", "kop")
    }
    run = OpenLoopRun(
        window_ms=20.0,
        step_ms=0.1,
        seeds=[5, 6],
        stats=stats,
        stimulating=np.zeros((windows, 2), bool),
        stim_off_time_ms=[None, 1500.0],
    )
    summary = summarize(run, OpenLoopProtocol(onset=500.0), device="cpu")
    for b in range(2):
        net = summary["networks"][b]
        for key, name in (("mean_weight_per_second", "weight_mv"), ("chi_per_second", "chi")):
            assert net[key] == pytest.approx([stats[name][:50, b].mean(), stats[name][50:100, b].mean()], rel=1e-12)
        assert net["rate_e_hz"] == pytest.approx(stats["rate_e"][:, b].mean(), rel=1e-12)
        assert net["rate_i_hz"] == pytest.approx(stats["rate_i"][:, b].mean(), rel=1e-12)
        assert net["energy_mv2ms"] == pytest.approx(stats["energy"][:, b].sum(), rel=1e-12)
        assert net["final_weight_mv"] == stats["weight_mv"][-1, b]
    assert [n["stim_off_time_s"] for n in summary["networks"]] == [None, 1.5]
    assert summary["rate_i_hz"] == pytest.approx(stats["rate_i"].mean(), rel=1e-12)
    assert summary["charge_mvms"] == pytest.approx(stats["charge"].sum(0).mean(), rel=1e-12)
    assert summary["mean_weight_per_second"] == summary["networks"][0]["mean_weight_per_second"]
