"""The ported dbsenv example runs and computes the right R(t); the migration helpers give hand-computed values."""

from __future__ import annotations

import difflib
import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from test_figures import assert_png_shows

from neuroloop_gpu import ENV_ID, ActionBounds, EpisodeConfig, FTSTSEnv, NetworkParams, SimConfig
from neuroloop_gpu.dbsenv_compat import kop, spike_time_matrix
from neuroloop_gpu.envs.actions import to_physical
from neuroloop_gpu.synchrony import kuramoto_order

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "run_ftsts_open_loop.py"
DBSENV_REPO = Path(os.environ.get("DBSENV_REPO", "/work/.mirror/ftsts+dbsenv/repo"))


def assert_example_figure_draws(png, t, values):
    """The example's figure plots R against time in s with its labels, and its PNG is that figure."""
    spec = importlib.util.spec_from_file_location("run_ftsts_open_loop", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    plt.close("all")
    example.plot_kop(t, values, show=False)
    fig = plt.gcf()
    try:
        (axes,) = fig.axes
        (line,) = axes.get_lines()
        np.testing.assert_array_equal(line.get_xdata(), t / 1000)
        np.testing.assert_array_equal(line.get_ydata(), values)
        assert (axes.get_xlabel(), axes.get_ylabel()) == ("Time (s)", "KOP")
        assert axes.get_title() == "Time Series Kuramoto Order Parameter"
        assert axes.get_xlim() == (0.0, t[-1] / 1000) and axes.get_ylim() == (0.0, 1.1)
        assert [text.get_text() for text in axes.get_legend().get_texts()] == ["Kuramoto Order Parameter"]
        assert_png_shows(png, fig, dpi=100)
    finally:
        plt.close(fig)


def test_open_loop_example_computes_the_order_parameter_of_its_run(tmp_path):
    """The example at 20 E / 5 I for 0.2 s, headless: its saved R(t) equals R recomputed here from an
    independent run of the same seeded env (the example's action and stimulation onset written out by hand)."""
    command = [
        sys.executable,
        str(EXAMPLE),
        "--duration",
        "0.2",
        "--num-e",
        "20",
        "--num-i",
        "5",
        "--seed",
        "3",
        "--out",
        str(tmp_path / "kop.png"),
        "--save",
        str(tmp_path / "kop.npz"),
    ]
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    saved = np.load(tmp_path / "kop.npz")
    assert_example_figure_draws(tmp_path / "kop.png", saved["t"], saved["kop"])
    np.testing.assert_allclose(saved["t"], 0.1 * np.arange(1, 2001))  # dbsenv's time axis (ms)

    # 100 mV, 1000/12 Hz, 500 us in the default box: 2 * (x - low) / (high - low) - 1
    action = np.array([2 * 90 / 190 - 1, 2 * (1000 / 12 - 5) / 175 - 1, 1.0], dtype=np.float32)
    single = FTSTSEnv(
        SimConfig(duration=200.0),
        NetworkParams,
        {"num_e": 20, "num_i": 5},
        episode=EpisodeConfig(stim_onset=16.0),
        record_spikes=True,
    )  # 8 % of 200 ms
    single.reset(seed=3)
    rasters, stimulating = [], []
    for _ in range(10):
        *_, info = single.step(action)
        rasters.append(single.last_spikes_e)
        stimulating.append(bool(info["stimulating"]))
    assert stimulating == [False] + [True] * 9  # onset 16 ms: the second 20 ms window is the first stimulated
    raster = np.concatenate(rasters)
    expected = kuramoto_order(torch.from_numpy(raster)[None])[0].numpy()
    assert raster.sum() > 20 and 0.05 < expected.mean() < 0.95  # the comparison is not between zeros
    np.testing.assert_allclose(saved["kop"], expected, rtol=0, atol=1e-12)
    assert f"mean KOP {expected.mean():.4f}" in proc.stdout


def test_example_states_its_true_diff_against_dbsenv():
    """The docstring's count of lines changed from dbsenv's example (where dbsenv's source is at hand)."""
    if not (DBSENV_REPO / "HEAD").exists() and not (DBSENV_REPO / ".git").exists():
        pytest.skip("dbsenv's repository is not available (set DBSENV_REPO)")
    original = subprocess.run(
        ["git", "-C", str(DBSENV_REPO), "show", "8b6f429:examples/run_ftsts_open_loop.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    port = EXAMPLE.read_text(encoding="utf-8").splitlines()
    diff = list(difflib.ndiff(original, port))
    removed, added = (sum(line.startswith(mark) for line in diff) for mark in ("- ", "+ "))
    assert f"{removed} of its {len(original)} lines changed or removed, {added} lines added" in " ".join(
        EXAMPLE.read_text(encoding="utf-8").split()
    )


def test_spike_time_matrix_of_a_hand_built_raster():
    raster = np.zeros((5, 3), dtype=bool)
    raster[1, 0] = raster[3, 0] = True  # neuron 0 spikes in steps 1 and 3: at 0.2 and 0.4 ms (end of step)
    raster[0, 2] = True  # neuron 2 in step 0 (0.1 ms); neuron 1 never
    expected = np.array([[0.0, 0, 0.1], [0.2, 0, 0.1], [0.2, 0, 0.1], [0.4, 0, 0.1], [0.4, 0, 0.1]])
    np.testing.assert_allclose(spike_time_matrix(raster, 0.1), expected, rtol=0, atol=1e-12)
    shifted = spike_time_matrix(raster, 0.1, start_ms=10.0)
    np.testing.assert_allclose(shifted, np.where(expected > 0, expected + 10.0, 0.0), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="raster"):
        spike_time_matrix(np.zeros(4, dtype=bool), 0.1)


def test_kop_of_a_hand_built_spike_time_matrix():
    """Neuron A spikes in steps 0 and 4, B in steps 1 and 5 (8 steps of 0.1 ms). A's phase is 2 pi t / 4 for
    t = 0..3, B's 2 pi (t - 1) / 4 for t = 1..4; elsewhere a neuron has no phase and is left out."""
    sptime = np.array(
        [[0.1, 0.0], [0.1, 0.2], [0.1, 0.2], [0.1, 0.2], [0.5, 0.2], [0.5, 0.6], [0.5, 0.6], [0.5, 0.6]]
    )  # dbsenv's layout, written out by hand
    t = np.arange(0.1, 0.8 + 0.1, 0.1)
    half = math.sqrt(0.5)  # |exp(i x) + exp(i (x + pi / 2))| / 2
    expected = [1.0, half, half, half, 1.0, 0.0, 0.0, 0.0]  # t = 0: A alone; t = 4: B alone; t >= 5: nobody
    np.testing.assert_allclose(kop(sptime, t, 0.1, 0.8, 2), expected, rtol=0, atol=1e-12)
    raster = np.zeros((8, 2), dtype=bool)
    raster[[0, 4], 0] = raster[[1, 5], 1] = True
    np.testing.assert_allclose(spike_time_matrix(raster, 0.1), sptime, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="t must be"):
        kop(sptime, t[:-1], 0.1, 0.8, 2)


def test_action_bounds_round_trip_against_the_envs_mapping():
    bounds = ActionBounds()
    np.testing.assert_allclose(bounds.normalised(10, 5, 50), [-1, -1, -1])
    np.testing.assert_allclose(bounds.normalised(200, 180, 500), [1, 1, 1])
    np.testing.assert_allclose(bounds.normalised(105, 92.5, 275), [0, 0, 0], atol=1e-7)
    np.testing.assert_allclose(bounds.normalised(100, 1000 / 12, 500), [-1 / 19, -11 / 105, 1], rtol=1e-6)
    with pytest.raises(ValueError, match="within the bounds"):
        bounds.normalised(100, 1000 / 12, 1000)  # the published 1 ms phase lies outside the default box

    actions = np.random.default_rng(0).uniform(-1.3, 1.3, size=(64, 3))  # some outside the box: clipped
    for box in (bounds, ActionBounds(amplitude=(0.0, 100.0), pulse_width=(60.0, 1000.0))):
        low, high = box.lows_highs("cpu")
        env_physical = to_physical(torch.from_numpy(actions), low, high).numpy()
        np.testing.assert_allclose(box.physical(actions), env_physical, rtol=1e-12, atol=0)
        np.testing.assert_allclose(box.normalised(*env_physical.T), np.clip(actions, -1, 1), atol=1e-6)


def test_the_env_id_is_registered_by_the_package_import():
    import gymnasium as gym

    assert ENV_ID == "neuroloop/FTSTS-v0" and ENV_ID in gym.registry
