"""What mutation testing of ``open_loop.py`` found unchecked (tests/mutation_report.json): the protocol's
validation and published latches, the model variants, the run's bookkeeping (no waveform, zero amplitude,
the swapped latch, wall time, progress bar) and the summary's phases at their edges, each against values
written here from the documentation or computed a second way (``offline_kuramoto``: a plain loop over
spike times)."""

import dataclasses
import time

import numpy as np
import pytest
import torch
from test_open_loop_values import offline_kuramoto

from neuroloop_gpu.config import NetworkParams, RecordConfig, SimConfig
from neuroloop_gpu.network import NetworkBatch
from neuroloop_gpu.open_loop import (
    MODELS,
    PUBLISHED,
    OpenLoopProtocol,
    OpenLoopRun,
    offline_kop,
    run_open_loop,
    summarize,
)

SMALL = NetworkParams(num_e=11, num_i=3)  # num_e not a multiple of 8: the packed raster has padding bits


def test_protocol_published_latches_and_validation():
    assert OpenLoopProtocol().latch_mv == 75.0
    assert OpenLoopProtocol(waveform="swapped").latch_mv == 125.0
    assert OpenLoopProtocol(waveform="none").latch_mv is None
    assert OpenLoopProtocol(latch_mv=None).latch_mv is None
    assert OpenLoopProtocol(amplitude=0.0, onset=0.0, latch_mv=1e-3).latch_mv == 1e-3
    bad = [
        ({"waveform": "FTSTS"}, "waveform must be 'ftsts', 'swapped' or 'none', got 'FTSTS'"),
        ({"amplitude": -1.0}, "amplitude must be a finite number >= 0 (mV), got -1.0"),
        ({"amplitude": float("nan")}, "amplitude must be a finite number >= 0 (mV), got nan"),
        ({"onset": -1.0}, "onset must be a finite number >= 0 (ms), got -1.0"),
        ({"onset": float("inf")}, "onset must be a finite number >= 0 (ms), got inf"),
        ({"latch_mv": 0.0}, "latch_mv must be a finite number > 0, got 0.0"),
    ]
    for kwargs, message in bad:
        with pytest.raises(ValueError) as err:
            OpenLoopProtocol(**kwargs)
        assert str(err.value) == message


def test_model_variants():
    """The two variants as the module docstring states them, applied to a given network."""
    base = dataclasses.replace(
        SMALL, stim_noise_e=3.0, stim_noise_i=4.0, plasticity=dataclasses.replace(SMALL.plasticity, tau_pre=7.0)
    )
    code = MODELS["published-code"].network(base)
    assert (code.stim_noise_e, code.stim_noise_i, code.plasticity.onset) == (10.0, 0.0, 80.0)
    assert (code.num_e, code.num_i, code.plasticity.tau_pre) == (11, 3, 7.0)
    paper = MODELS["paper"].network()
    assert (paper.stim_noise_e, paper.stim_noise_i, paper.plasticity.onset) == (0.0, 0.0, 100.0)
    assert paper.num_e == NetworkParams().num_e
    assert MODELS["published-code"].protocol(waveform="swapped") == OpenLoopProtocol(waveform="swapped", onset=1980.0)
    assert MODELS["paper"].protocol().onset == 2000.0


def small_run(protocol, windows=12, *, progress=False, record=True):
    net = NetworkBatch(
        2,
        SMALL,
        SimConfig(duration=windows * 20.0),
        seeds=[3, 4],
        device="cpu",
        dtype=torch.float64,
        record=RecordConfig(spikes_e=record),
    )
    return run_open_loop(net, protocol, windows, progress=progress)


def test_no_waveform_and_zero_amplitude_never_stimulate():
    for protocol in (
        OpenLoopProtocol(waveform="none", onset=0.0, latch_mv=1e6),
        OpenLoopProtocol(amplitude=0.0, onset=0.0, latch_mv=1e6),
    ):
        run = small_run(protocol, windows=3)
        assert not run.stimulating.any()
        assert run.stim_off_time_ms == [None, None]  # nothing delivered: the latch never trips
        assert not run.stats["energy"].any() and not run.stats["charge"].any()
    run = small_run(OpenLoopProtocol(amplitude=0.5, onset=0.0, latch_mv=None), windows=1)  # any amplitude > 0
    assert run.stimulating.all() and run.stats["energy"].all()


def test_latch_rule_per_polarity():
    """FTSTS stops once J_I w is below the latch, the swapped waveform once it is above: the end of the first
    stimulated window (from 60 ms) where that holds; never where it does not."""
    for waveform, latch in (("ftsts", 1e6), ("swapped", 1e-3)):
        run = small_run(OpenLoopProtocol(waveform=waveform, onset=60.0, latch_mv=latch), windows=6)
        assert run.stim_off_time_ms == [80.0, 80.0]
        np.testing.assert_array_equal(run.stimulating[:, 0], [False, False, False, True, False, False])
        assert run.stats["energy"][3].all() and not run.stats["energy"][4:].any()
    for waveform, latch in (("ftsts", 1e-3), ("swapped", 1e6)):
        run = small_run(OpenLoopProtocol(waveform=waveform, onset=60.0, latch_mv=latch), windows=6)
        assert run.stim_off_time_ms == [None, None]
        assert run.stimulating[3:].all() and not run.stimulating[:3].any()
    # a weight exactly at the latch does not trip it ("crosses": strictly below / above)
    for waveform, sign in (("ftsts", 1.0), ("swapped", -1.0)):
        free = small_run(OpenLoopProtocol(waveform=waveform, onset=60.0, latch_mv=None), windows=6)
        latch = float(free.stats["weight_mv"][3, 0])
        run = small_run(OpenLoopProtocol(waveform=waveform, onset=60.0, latch_mv=latch), windows=6)
        crossed = [w for w in range(3, 6) if sign * (free.stats["weight_mv"][w, 0] - latch) < 0]
        assert run.stim_off_time_ms[0] == (20.0 * (crossed[0] + 1) if crossed else None)
        assert run.stimulating[3, 0] and (run.stim_off_time_ms[0] != 80.0)


def test_run_bookkeeping_and_progress_bar(capsys):
    before = time.perf_counter()
    run = small_run(OpenLoopProtocol(onset=100.0, latch_mv=None), windows=20, progress=True)
    elapsed = time.perf_counter() - before
    assert 0.0 < run.wall_time_s <= elapsed
    assert (run.window_ms, run.step_ms, run.seeds, run.num_e) == (20.0, 0.1, [3, 4], 11)
    assert len(run.spikes_e) == 20 and run.spikes_e[0].shape == (2, 200, 2)
    err = capsys.readouterr().err
    assert "simulate ftsts" in err and "20/20" in err and "window/s" in err
    kop, weight = run.stats["kop"][19].mean(), run.stats["weight_mv"][19].mean()
    assert f"kop={kop:.2f}, w_mV={weight:.0f}" in err.split("\r")[-1]  # set after every 10th window
    small_run(OpenLoopProtocol(onset=100.0), windows=1, progress=False)
    assert capsys.readouterr().err == ""
    net = NetworkBatch(1, SMALL, SimConfig(duration=20.0), seeds=[3], device="cpu")
    run = run_open_loop(net, OpenLoopProtocol(), 1)  # the bar is on by default; float32 stats come back float64
    assert net.dtype == torch.float32 and all(v.dtype == np.float64 for v in run.stats.values())
    assert "simulate ftsts" in capsys.readouterr().err


def made_up_run(windows=110, num_e=11, wall_time_s=0.0, off=(None, 1500.0)):
    """A run whose window statistics and E rasters are random: 20 ms windows of 200 steps."""
    rng = np.random.default_rng(7)
    stats = {
        name: rng.uniform(0, 300, (windows, 2))
        for name in ("weight_mv", "chi", "rate_e", "rate_i", "energy", "charge", "kop")
    }
    rasters = rng.random((2, windows * 200, num_e)) < 0.01
    packed = [np.packbits(rasters[:, w * 200 : (w + 1) * 200], axis=-1) for w in range(windows)]
    run = OpenLoopRun(
        window_ms=20.0,
        step_ms=0.1,
        seeds=[5, 6],
        stats=stats,
        stimulating=np.zeros((windows, 2), bool),
        stim_off_time_ms=list(off),
        spikes_e=packed,
        num_e=num_e,
        wall_time_s=wall_time_s,
    )
    return run, rasters


def test_offline_kop_against_spike_times():
    run, rasters = made_up_run(windows=6)
    np.testing.assert_allclose(offline_kop(run, 1), offline_kuramoto(rasters[1], 10), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(offline_kop(run, 0, 0.5), offline_kuramoto(rasters[0], 5), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(offline_kop(run, 0, 0.1), offline_kuramoto(rasters[0], 1), rtol=1e-12, atol=1e-15)
    assert sorted(run.kop_cache) == [(0, 0.1), (0, 0.5), (1, 1.0)]
    empty = dataclasses.replace(run, spikes_e=[])
    with pytest.raises(ValueError) as err:
        offline_kop(empty, 0)
    assert str(err.value) == "the run has no E spike raster: build the NetworkBatch with RecordConfig(spikes_e=True)"


def test_summary_phases_with_2_ms_samples():
    """kop_* from the raster sampled every 2 ms: before the onset, from the onset to the stimulation-off time (or
    the end), after it (None if never switched off); per second: means over each whole second's samples."""
    run, rasters = made_up_run()
    protocol = OpenLoopProtocol(onset=500.0)
    summary = summarize(run, protocol, device="made-up", sample_ms=2.0)
    for b, off in ((0, None), (1, 1500.0)):
        kop = offline_kuramoto(rasters[b], 20)
        net = summary["networks"][b]
        assert net["kop_per_second"] == pytest.approx([kop[:500].mean(), kop[500:1000].mean()], rel=1e-12)
        assert net["kop_before"] == pytest.approx(kop[:250].mean(), rel=1e-12)
        stop = 1100 if off is None else 750
        assert net["kop_during"] == pytest.approx(kop[250:stop].mean(), rel=1e-12)
        assert net["kop_after"] == (None if off is None else pytest.approx(kop[750:].mean(), rel=1e-12))
        assert net["seed"] == [5, 6][b]
    coarse = summarize(run, protocol, device="cpu", sample_ms=400.0)  # round(1000 / 400) = 2 samples a second
    for b in range(2):
        kop = offline_kuramoto(rasters[b], 4000)
        assert coarse["networks"][b]["kop_per_second"] == pytest.approx(kop.reshape(3, 2).mean(axis=1), rel=1e-12)
    assert summary["kop_during"] == summary["networks"][0]["kop_during"]
    assert summary["kop_per_second"] == summary["networks"][0]["kop_per_second"]
    # the top level: network 0's curves and phases, the protocol, and what ran where
    assert set(summary) == {
        *(set(summary["networks"][0]) - {"seed"}),
        "protocol",
        "num_networks",
        "duration_s",
        "wall_time_s",
        "simulated_s_per_wall_s",
        "device",
        "networks",
        "published",
    }
    assert summary["protocol"] == {
        "waveform": "ftsts",
        "amplitude": protocol.amplitude,
        "frequency": protocol.frequency,
        "pulse_width": protocol.pulse_width,
        "onset": 500.0,
        "latch_mv": 75.0,
    }
    assert summary["device"] == "made-up" and summary["num_networks"] == 2 and summary["duration_s"] == 2.2
    assert summary["published"] == PUBLISHED
    assert summary["wall_time_s"] == 0.0
    assert summary["simulated_s_per_wall_s"] == pytest.approx(2 * 2.2 / 1e-9, rel=1e-12)  # a 0 s wall time
    summary = summarize(dataclasses.replace(run, wall_time_s=4.0), protocol, device="cpu", sample_ms=2.0)
    assert summary["simulated_s_per_wall_s"] == pytest.approx(2 * 2.2 / 4.0, rel=1e-12)


def test_summary_phases_without_stimulation():
    """No stimulation period (no waveform, or the onset at or after the end): kop_before is the whole run,
    kop_during and kop_after None; switched off at the very end: kop_after None (nothing after it)."""
    run, rasters = made_up_run(windows=10, off=(None, None))
    kop = [offline_kuramoto(rasters[b], 10) for b in range(2)]
    for protocol in (
        OpenLoopProtocol(waveform="none", onset=0.0),
        OpenLoopProtocol(onset=200.0),
        OpenLoopProtocol(onset=1000.0),
    ):
        for b, net in enumerate(summarize(run, protocol, device="cpu")["networks"]):
            assert net["kop_before"] == pytest.approx(kop[b].mean(), rel=1e-12)
            assert net["kop_during"] is None and net["kop_after"] is None
    ended = dataclasses.replace(run, stim_off_time_ms=[200.0, 120.0])
    nets = summarize(ended, OpenLoopProtocol(onset=100.0), device="cpu")["networks"]
    assert nets[0]["kop_after"] is None and nets[0]["kop_during"] == pytest.approx(kop[0][100:].mean(), rel=1e-12)
    assert nets[1]["kop_after"] == pytest.approx(kop[1][120:].mean(), rel=1e-12)
    assert nets[0]["kop_before"] == pytest.approx(kop[0][:100].mean(), rel=1e-12)


@pytest.mark.parametrize("window_ms, per_second", [(1000.0, 1), (400.0, 2), (2000.0, 1)])
def test_per_second_curves_with_long_windows(window_ms, per_second):
    """A second holds round(1000 / window_ms) windows, at least one."""
    run, _ = made_up_run(windows=10)
    run = dataclasses.replace(run, window_ms=window_ms, spikes_e=[])
    summary = summarize(run, OpenLoopProtocol(onset=0.0), device="cpu")
    seconds = 10 // per_second
    for b in range(2):
        for key, name in (("mean_weight_per_second", "weight_mv"), ("chi_per_second", "chi")):
            expected = run.stats[name][: seconds * per_second, b].reshape(seconds, per_second).mean(axis=1)
            assert summary["networks"][b][key] == pytest.approx(expected, rel=1e-12)
    assert summary["duration_s"] == 10 * window_ms / 1000.0
