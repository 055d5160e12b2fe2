"""Figures tested by what they draw: the data of every plotted artist against the source arrays, per
panel and per controller, and the titles and labels that name the quantities.

The evaluation is made up (:func:`test_plots.synthetic_result`: 3 controllers x 4 seeds); the expected
curves and intervals are computed here with NumPy (the 95 % t quantile for 3 degrees of freedom is the
tabulated 3.182446305284263).
"""

import math

import numpy as np
import pytest
from independent import span_x
from test_plots import synthetic_result, write_log

from neuroloop_gpu import plots

T_975_DF3 = 3.182446305284263


@pytest.fixture
def figures(monkeypatch):
    drawn = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: drawn.append(fig) or path)
    yield drawn
    for fig in drawn:
        plots.plt.close(fig)


def band(values):
    """Mean over seeds and the 95 % t half width, [seeds, windows] -> [windows] x 2."""
    return values.mean(0), T_975_DF3 * values.std(0, ddof=1) / math.sqrt(values.shape[0])


def fill_edges(collection, x):
    """(lower, upper) y of a fill_between at each x."""
    vertices = collection.get_paths()[0].vertices
    low, high = [], []
    for xi in x:
        ys = vertices[np.isclose(vertices[:, 0], xi, rtol=0, atol=1e-12), 1]
        low.append(ys.min())
        high.append(ys.max())
    return np.array(low), np.array(high)


@pytest.mark.parametrize(
    "plot,key,ylabel,title",
    [
        (plots.plot_kop, "kop", "Kuramoto order R (E)", "Synchrony"),
        (plots.plot_weight, "weight_mv", "mean E→I weight $J_I w$ (mV)", "Coupling"),
    ],
)
def test_traces_over_time_draw_each_controllers_mean_and_interval(figures, tmp_path, plot, key, ylabel, title):
    result = synthetic_result()
    plot(result, tmp_path)
    (fig,) = figures
    (ax,) = fig.axes
    t = np.arange(1, result.config.num_windows + 1) * result.config.window_ms / 1000.0
    lines = [line for line in ax.lines if line.get_label() in result.names]
    assert [line.get_label() for line in lines] == result.names
    fills = [c for c in ax.collections if len(c.get_paths()) and c.get_paths()[0].vertices.shape[0] > 2 * t.size]
    assert len(fills) == len(result.names)
    for c, (line, fill) in enumerate(zip(lines, fills)):
        mean, half = band(result.traces[key][c])
        np.testing.assert_allclose(line.get_xdata(), t)
        np.testing.assert_allclose(line.get_ydata(), mean, rtol=1e-12)
        low, high = fill_edges(fill, t)
        np.testing.assert_allclose(low, mean - half, rtol=0, atol=1e-6)  # the package's t quantile: to ~1e-7
        np.testing.assert_allclose(high, mean + half, rtol=0, atol=1e-6)
    assert ax.get_ylabel() == ylabel and ax.get_title().startswith(title) and "4 networks" in ax.get_title()
    assert ax.get_xlabel() == "time (s)"
    baseline = [p for p in ax.patches if p.get_label() == "no stimulation (baseline)"]
    assert len(baseline) == 1 and span_x(baseline[0]) == pytest.approx((0.0, 0.2))
    if key == "weight_mv":
        latch = [line for line in ax.lines if line.get_label() == "75 mV"]
        assert len(latch) == 1 and set(latch[0].get_ydata()) == {75.0}


def test_rasters_draw_each_controllers_before_and_after(figures, tmp_path):
    """Column 0 draws the "before" raster, column 1 the "after" raster, row c controller c's first seed."""
    result = synthetic_result()
    plots.plot_rasters(result, tmp_path)
    (fig,) = figures
    axes = np.array(fig.axes).reshape(len(result.names), 2)
    step_s = result.config.step_ms / 1000.0
    for c, name in enumerate(result.names):
        for col, (moment, label) in enumerate((("before", "before stimulation"), ("after", "end of episode"))):
            ax = axes[c, col]
            steps, neurons = np.nonzero(result.rasters[moment][c])
            start = result.raster_start_s[moment]
            np.testing.assert_allclose(ax.collections[0].get_offsets(), np.c_[start + steps * step_s, neurons])
            assert ax.get_title() == f"{name}: {label}"
            assert ax.get_xlim() == pytest.approx((start, start + result.rasters[moment].shape[1] * step_s))
    assert axes[0, 0].get_ylabel() == "E neuron" and axes[-1, 0].get_xlabel() == "time (s)"
    assert fig._suptitle.get_text() == "E spike rasters, network seed 1"


def test_actions_draw_the_delivered_settings(figures, tmp_path):
    """Amplitude: mean over all networks (off = 0); frequency and width: mean over the networks stimulating
    in the window, NaN where none does."""
    result = synthetic_result()
    plots.plot_actions(result, tmp_path)
    (fig,) = figures
    on = result.traces["stimulating"]
    rows = (
        ("amplitude_mv", "amplitude (mV)"),
        ("frequency_hz", "frequency (Hz)"),
        ("pulse_width_us", "pulse width per phase (µs)"),
    )
    for ax, (key, label) in zip(fig.axes, rows):
        assert ax.get_ylabel() == label
        lines = [line for line in ax.lines if line.get_label() in result.names]
        assert [line.get_label() for line in lines] == result.names
        for c, line in enumerate(lines):
            values = result.traces[key][c]
            if key == "amplitude_mv":
                expected = values.mean(0)
            else:
                with np.errstate(invalid="ignore"):
                    expected = (values * on[c]).sum(0) / on[c].sum(0)
            np.testing.assert_allclose(line.get_ydata(), expected, rtol=1e-12)
            np.testing.assert_allclose(line.get_xdata(), result.time_s)
    assert fig.axes[2].get_yscale() == "log"


def test_energy_against_synchrony_draws_each_network_and_the_means(figures, tmp_path):
    result = synthetic_result()
    plots.plot_energy_vs_synchrony(result, tmp_path)
    (fig,) = figures
    (ax,) = fig.axes
    final = max(1, round(result.config.final_fraction * result.config.num_windows))
    points = [c for c in ax.collections if c.get_offsets().shape[0] == len(result.config.seeds)]
    assert len(points) == len(result.names)
    for c, name in enumerate(result.names):
        energy = result.traces["energy_mv2ms"][c].sum(-1)
        kop = result.traces["kop"][c][:, -final:].mean(-1)
        np.testing.assert_allclose(points[c].get_offsets(), np.c_[energy, kop], rtol=1e-12)
        (bar,) = [container for container in ax.containers if container.get_label() == name]
        marker, _, (xerr, yerr) = bar
        np.testing.assert_allclose([marker.get_xdata()[0], marker.get_ydata()[0]], [energy.mean(), kop.mean()])
        k_half = T_975_DF3 * kop.std(ddof=1) / 2  # sqrt(4 seeds)
        np.testing.assert_allclose(yerr.get_segments()[0][:, 1], [kop.mean() - k_half, kop.mean() + k_half], atol=1e-6)
        e_half = T_975_DF3 * energy.std(ddof=1) / 2
        np.testing.assert_allclose(
            xerr.get_segments()[0][:, 0], [energy.mean() - e_half, energy.mean() + e_half], rtol=1e-6
        )
    assert ax.get_xlabel() == "stimulation energy over the episode (mV²·ms)"
    assert ax.get_ylabel() == "final Kuramoto order R (last 10%)"


def test_training_panels_draw_their_columns(figures, tmp_path):
    log = write_log(tmp_path / "train_log.csv")
    plots.plot_training(log, tmp_path)
    (fig,) = figures
    columns = plots.read_training_log(log)
    frames = columns["frames"]
    panels = {
        "reward": ["reward_mean", "episode_reward_mean"],
        "synchrony": ["kop_mean"],
        "mean E→I weight": ["weight_mv_mean"],
        "energy per window": ["energy_mean"],
        "loss: objective": ["loss_objective"],
        "loss: critic": ["loss_critic"],
        "loss: entropy": ["loss_entropy"],
        "learning rate": ["lr"],
    }
    assert [ax.get_title() for ax in fig.axes] == list(panels)
    for ax, keys in zip(fig.axes, panels.values()):
        assert len(ax.lines) == len(keys)
        for line, key in zip(ax.lines, keys):
            finite = np.isfinite(columns[key])
            assert finite.sum() >= 3
            np.testing.assert_allclose(line.get_xdata(), frames[finite])
            np.testing.assert_allclose(line.get_ydata(), columns[key][finite])


def test_throughput_figure_draws_the_measurements():
    """`neuroloop bench`'s figure: each target's median rate against the batch, its band from the slowest
    to the fastest repeat, the simulator's memory per network in MB and the peer at one network."""
    from neuroloop_gpu.bench.plot import plot_results

    def row(target, batch, seconds, best, peak):
        return {
            "target": target,
            "size": "20/5",
            "batch": batch,
            "backend": "eager",
            "env_steps_per_s": batch / sorted(seconds)[1],
            "seconds_per_window": seconds,
            "env_steps_per_s_best": best,
            "memory": {"peak_bytes_per_network": peak, "persistent_bytes_per_network": 2e5},
        }

    rows = [row("simulator", 4, [0.5, 0.2, 0.4], 25.0, 3e6), row("simulator", 1, [0.1, 0.3, 0.2], 12.0, 5e6)]
    doc = {
        "device_type": "cpu",
        "device": "cpu:test",
        "environment": {"torch_threads": 2},
        "results": rows,
        "peers": [
            {
                "peer": "reference",
                "size": "20/5",
                "batch": 1,
                "env_steps_per_s": 0.7,
                "memory": {"persistent_bytes_per_network": 1e6},
            }
        ],
    }
    fig = plot_results(doc)
    ax_rate, ax_mem = fig.axes[:2]
    line = next(line for line in ax_rate.lines if line.get_label() == "CPU x2 simulator 20/5")
    np.testing.assert_allclose(line.get_xdata(), [1, 4])
    np.testing.assert_allclose(line.get_ydata(), [1 / 0.2, 4 / 0.4])
    low, high = fill_edges(ax_rate.collections[0], [1, 4])
    np.testing.assert_allclose(low, [1 / 0.3, 4 / 0.5])
    np.testing.assert_allclose(high, [12.0, 25.0])
    peer = next(line for line in ax_rate.lines if line.get_label() == "peer reference 20/5")
    assert (list(peer.get_xdata()), list(peer.get_ydata())) == ([1], [0.7])
    peak = next(line for line in ax_mem.lines if line.get_label() == "CPU x2 20/5 peak eager")
    np.testing.assert_allclose(peak.get_ydata(), [5.0, 3.0])
    state = next(line for line in ax_mem.lines if line.get_label() == "CPU x2 20/5 state")
    np.testing.assert_allclose(state.get_ydata(), [0.2, 0.2])
    assert ax_rate.get_ylabel() == "env-steps/s (20 ms windows, summed)" and ax_mem.get_ylabel() == "MB per network"
