"""Figures tested by what they draw: the data of every plotted artist against the source arrays, per
panel and per controller, and the titles and labels that name the quantities.

The evaluation is made up (:func:`test_plots.synthetic_result`: 3 controllers x 4 seeds); the expected
curves and intervals are computed here with NumPy (the 95 % t quantile for 3 degrees of freedom is the
tabulated 3.182446305284263).
"""

import io
import math
from dataclasses import replace

import numpy as np
import pytest
from independent import span_x
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.colors import to_rgba
from matplotlib.image import imread
from test_plots import open_loop_run, synthetic_result, write_log

from neuroloop_gpu import plots
from neuroloop_gpu.open_loop import PUBLISHED, offline_kop

T_975_DF3 = 3.182446305284263
T_975_DF1 = 12.706204736174707


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


def assert_png_shows(path, fig, dpi=110):
    """The PNG file at ``path`` is ``fig`` drawn at ``dpi``, pixel for pixel: what a user opens is the
    figure whose artists a test checked. ``fig`` must not have been drawn yet (a second draw of a
    constrained layout moves artists by a pixel): remake it from the same data to compare a saved one."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    buffer.seek(0)
    drawn, saved = imread(buffer), imread(path)
    assert saved.shape == drawn.shape
    np.testing.assert_array_equal(saved, drawn)


def device_name(doc):
    """How a throughput figure names a result document's device: its GPU, or the CPU and its threads."""
    if doc["device_type"] == "cuda":
        return doc["environment"].get("gpu") or "cuda"
    return f"CPU x{doc['environment'].get('torch_threads', '?')}"


def assert_throughput_figure(fig, docs):
    """``plot_results(docs)`` draws every measurement of ``docs`` and nothing else.

    Left panel, per document and per (target, size, backend): a line of the median env-steps/s against
    the batch and a band from the slowest repeat (batch / longest window) to the fastest; each peer a
    marker at one network with a dotted line across at its rate. Right panel: the simulator's peak and
    persistent bytes per network in MB against the batch (the state once per size), the peers' state at
    one network. Artists are matched in the order the documents list them (labels may repeat across
    documents of the same device)."""
    ax_rate, ax_mem = fig.axes[:2]
    rates, memory = list(ax_rate.lines), list(ax_mem.lines)
    bands = [c for c in ax_rate.collections if isinstance(c, PolyCollection)]
    across = [c for c in ax_rate.collections if isinstance(c, LineCollection)]
    batches = sorted({r["batch"] for doc in docs for r in doc["results"] if "env_steps_per_s" in r} | {1})
    for doc in docs:
        name = device_name(doc)
        groups = {}
        for row in doc["results"]:
            if "env_steps_per_s" in row:
                groups.setdefault((row["target"], row["size"], row.get("backend", "eager")), []).append(row)
        states = set()
        for (target, size, backend), rows in groups.items():
            rows = sorted(rows, key=lambda r: r["batch"])
            x = [r["batch"] for r in rows]
            line = rates.pop(0)
            assert line.get_label() == f"{name} {target} {size}" + ("" if backend == "eager" else f" {backend}")
            np.testing.assert_array_equal(line.get_xdata(), x)
            np.testing.assert_allclose(line.get_ydata(), [r["env_steps_per_s"] for r in rows], rtol=1e-12)
            low, high = fill_edges(bands.pop(0), x)
            np.testing.assert_allclose(low, [r["batch"] / max(r["seconds_per_window"]) for r in rows], rtol=1e-12)
            np.testing.assert_allclose(high, [r["env_steps_per_s_best"] for r in rows], rtol=1e-12)
            if target != "simulator":
                continue
            curves = [("peak_bytes_per_network", f"peak {backend}")]
            if size not in states:
                states.add(size)
                curves.append(("persistent_bytes_per_network", "state"))
            for key, what in curves:
                points = [(r["batch"], r["memory"][key] / 1e6) for r in rows if r["memory"].get(key)]
                if points:
                    line = memory.pop(0)
                    assert line.get_label() == f"{name} {size} {what}"
                    np.testing.assert_array_equal(line.get_xdata(), [b for b, _ in points])
                    np.testing.assert_allclose(line.get_ydata(), [mb for _, mb in points], rtol=1e-12)
        for peer in doc.get("peers", []):
            if "env_steps_per_s" not in peer:
                continue
            line = rates.pop(0)
            assert line.get_label() == f"peer {peer['peer']} {peer['size']}"
            assert (list(line.get_xdata()), list(line.get_ydata())) == ([1], [peer["env_steps_per_s"]])
            (segment,) = across.pop(0).get_segments()
            np.testing.assert_allclose(
                segment, [[batches[0], peer["env_steps_per_s"]], [max(batches[-1], 2), peer["env_steps_per_s"]]]
            )
            held = peer.get("memory", {})
            value = held.get("persistent_bytes_per_network") or held.get("peak_bytes_per_network")
            if value:
                line = memory.pop(0)
                assert line.get_label() == f"peer {peer['peer']} {peer['size']}"
                assert (list(line.get_xdata()), list(line.get_ydata())) == ([1], [value / 1e6])
    assert not rates and not memory and not bands and not across, "artists that no measurement accounts for"
    assert ax_rate.get_title() == "throughput (median repeat; band: slowest to fastest)"
    assert ax_rate.get_ylabel() == "env-steps/s (20 ms windows, summed)"
    assert ax_mem.get_title() == "memory per network (simulator: peak, dotted: persistent state)"
    assert ax_mem.get_ylabel() == "MB per network"
    for ax in (ax_rate, ax_mem):
        assert ax.get_xlabel() == "networks in the batch" and ax.get_xscale() == ax.get_yscale() == "log"
        assert list(ax.get_xticks()) == batches
    devices = ", ".join(dict.fromkeys(doc["device"] for doc in docs))
    assert fig.get_suptitle() == f"neuroloop_gpu throughput: {devices}"


def assert_traffic_figure(fig, rows, docs=()):
    """``plot_traffic(rows, docs)`` draws, per model row and per GPU bandwidth, a bar as long as the bound
    (env-steps/s) in that GPU's colour, then per measured GPU and backend a bar as long as the best
    simulator throughput of ``docs`` at the rows' network size, in the colour of that GPU's bound; each bar
    carries its value as text; a dashed line marks the issue-5 target where the size has one."""
    from neuroloop_gpu.bench.workload import GPU_TARGETS

    (ax,) = fig.axes
    size, names = rows[0]["size"], list(rows[0]["bounds"])
    best = {}
    for doc in docs:
        for r in doc["results"] if doc["device_type"] == "cuda" else ():
            if r.get("target") == "simulator" and r.get("size") == size and "env_steps_per_s" in r:
                key = (device_name(doc), r.get("backend", "eager"))
                best[key] = max(best.get(key, 0.0), r["env_steps_per_s"])
    height = 0.8 / len(names)
    expected = [
        (y + (j - (len(names) - 1) / 2) * height, height, row["bounds"][name], f"C{j}")
        for y, row in enumerate(rows)
        for j, name in enumerate(names)
    ]
    for k, ((gpu, _), value) in enumerate(best.items()):
        colour = next((f"C{j}" for j, name in enumerate(names) if name.split()[0] in gpu), "0.5")
        expected.append((len(rows) + k, 0.8, value, colour))
    assert len(ax.patches) == len(ax.texts) == len(expected)
    for bar, text, (y, thick, value, colour) in zip(ax.patches, ax.texts, expected):
        assert (bar.get_x(), bar.get_width()) == (0, pytest.approx(value, rel=1e-12))
        assert bar.get_y() + bar.get_height() / 2 == pytest.approx(y) and bar.get_height() == pytest.approx(thick)
        assert bar.get_facecolor() == to_rgba(colour)
        assert text.get_text() == f" {value:,.0f}" and text.get_position() == pytest.approx((value, y))
    labels = [f"model: {row['synapses']} synapses, {row['scenario']}" for row in rows]
    labels += [f"measured: {gpu}, {backend}" for gpu, backend in best]
    assert [label.get_text() for label in ax.get_yticklabels()] == labels
    assert list(ax.get_yticks()) == list(range(len(labels)))
    if size in GPU_TARGETS:
        (target,) = ax.lines
        assert set(target.get_xdata()) == {GPU_TARGETS[size]}
        assert target.get_label() == f"target {GPU_TARGETS[size]:,} env-steps/s"
    else:
        assert not ax.lines
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "env-steps/s (20 ms windows, summed over networks)"
    assert (
        ax.get_title().startswith(f"{size} networks: memory-traffic bounds")
        and f"B = {rows[0]['batch']}" in ax.get_title()
    )


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
    on = result.traces["stimulating"]
    on[2, 1:, 31] = False  # one network of four stimulating: its settings, not a gap
    plots.plot_actions(result, tmp_path)
    (fig,) = figures
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
            if key != "amplitude_mv" and c == 2:
                assert line.get_ydata()[31] == values[0, 31]
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


def test_up_to_twenty_controllers_get_colours_of_their_own():
    colours = [plots._colour(i) for i in range(20)]
    assert len(set(colours)) == 20
    assert colours[:10] == [plots.plt.get_cmap("tab10")(i) for i in range(10)]  # the usual ten first
    assert colours[10:] == [plots.plt.get_cmap("tab20")(2 * i + 1) for i in range(10)]  # then their light shades
    assert plots._colour(20) == colours[0]


def controllers(result, n):
    """``result`` with ``n`` controllers, the made-up ones repeated in turn."""
    index = np.arange(n) % len(result.names)
    return replace(
        result,
        controllers={f"controller {c}": {} for c in range(n)},
        traces={key: values[index] for key, values in result.traces.items()},
        rasters={moment: values[index] for moment, values in result.rasters.items()},
    )


def test_each_controller_keeps_its_colour_in_every_figure(figures, tmp_path):
    """Beyond the ten of the default colour cycle too: controller c's line, band, points, means and raster
    are all drawn in ``_colour(c)``."""
    result = controllers(synthetic_result(), 12)
    plots.plot_evaluation(result, tmp_path)
    kop, weight, rasters, actions, energy = figures
    for fig in (kop, weight):
        (ax,) = fig.axes
        lines = [line for line in ax.lines if line.get_label() in result.names]
        bands = [c for c in ax.collections if isinstance(c, PolyCollection) and len(c.get_paths()[0].vertices) > 4]
        for c, (line, band_) in enumerate(zip(lines, bands, strict=True)):
            assert to_rgba(line.get_color()) == plots._colour(c)
            assert tuple(band_.get_facecolor()[0]) == to_rgba(plots._colour(c), 0.2)
    for ax in actions.axes:
        lines = [line for line in ax.lines if line.get_label() in result.names]
        assert [to_rgba(line.get_color()) for line in lines] == [plots._colour(c) for c in range(12)]
    for c, row in enumerate(np.array(rasters.axes).reshape(12, 2)):
        for ax in row:
            assert tuple(ax.collections[0].get_facecolor()[0]) == plots._colour(c)
    (ax,) = energy.axes
    points = [p for p in ax.collections if p.get_offsets().shape[0] == len(result.config.seeds)]
    assert [tuple(p.get_facecolor()[0]) for p in points] == [to_rgba(plots._colour(c), 0.35) for c in range(12)]
    means = [container.lines[0] for container in ax.containers]
    assert [to_rgba(m.get_color()) for m in means] == [plots._colour(c) for c in range(12)]


def test_evaluation_figures_shade_the_baseline_and_the_follow_up(figures, tmp_path):
    """Grey from 0 to the onset (none when stimulation starts at 0 s), green over the follow-up."""
    result = synthetic_result()
    for onset, budget in ((0.2, 0.4), (0.0, 0.6)):
        lasting = replace(
            result, config=replace(result.config, stim_onset_s=onset, stim_budget_s=budget, followup_s=0.4)
        )
        plots.plot_kop(lasting, tmp_path)
        plots.plot_actions(lasting, tmp_path)
        for ax in figures[-2].axes + figures[-1].axes:
            spans = {p.get_label(): p for p in ax.patches}
            assert sorted(spans) == sorted(
                ["follow-up (stimulation off)"] + ["no stimulation (baseline)"] * (onset > 0)
            )
            assert span_x(spans["follow-up (stimulation off)"]) == pytest.approx((0.6, 1.0))
            assert spans["follow-up (stimulation off)"].get_facecolor() == to_rgba("tab:green", 0.12)
            if onset > 0:
                assert span_x(spans["no stimulation (baseline)"]) == pytest.approx((0.0, onset))


def test_intervals_of_one_and_two_networks():
    """One network: no interval (width 0, one per window); two: the t quantile of one degree of freedom."""
    mean, half = plots._band(np.array([[1.0, 2.0, 3.0]]))
    np.testing.assert_array_equal(mean, [1.0, 2.0, 3.0])
    assert half.shape == (3,) and half.dtype == np.float64
    np.testing.assert_array_equal(half, [0.0, 0.0, 0.0])
    mean, half = plots._band(np.array([[1.0, 2.0], [3.0, 6.0]]))
    np.testing.assert_allclose(mean, [2.0, 4.0])
    np.testing.assert_allclose(half, [T_975_DF1, 2 * T_975_DF1], rtol=1e-7)  # std sqrt(2) and sqrt(8) over sqrt(2)


def test_saving_a_figure_closes_that_figure_and_no_other(tmp_path):
    fig = plots.plt.figure()
    current = plots.plt.figure()
    assert plots._save(fig, tmp_path / "f.png") == tmp_path / "f.png" and (tmp_path / "f.png").is_file()
    assert not plots.plt.fignum_exists(fig.number) and plots.plt.fignum_exists(current.number)
    plots.plt.close(current)


def raster_offsets(run, network, start_ms, length_ms=200.0):
    """(time in s, neuron) of every E spike of ``network`` in [start_ms, start_ms + length_ms)."""
    raster = np.unpackbits(np.concatenate([w[network] for w in run.spikes_e]), axis=-1, count=run.num_e)
    first = round(start_ms / run.step_ms)
    steps, neurons = np.nonzero(raster[first : first + round(length_ms / run.step_ms)])
    return np.c_[(first + steps) * run.step_ms / 1000.0, neurons]


@pytest.mark.parametrize("off_s", [0.8, None])
def test_open_loop_figure_draws_the_run(figures, tmp_path, off_s):
    """R(t) at its samples and its 1 s means, the weight per window, the stimulation span, the latch, and
    200 ms rasters before the onset, in the middle of the stimulation and at the end (when it stopped).
    1 ms windows, so that a raster placed one millisecond off starts at another window."""
    run, summary = open_loop_run(window_ms=1.0, duration_s=1.0, off_s=off_s)
    assert plots.plot_open_loop(run, summary, tmp_path, sample_ms=2.0) == tmp_path / "open_loop.png"
    (fig,) = figures
    ax_kop, ax_w, *rasters = fig.axes
    (r_line, published) = ax_kop.lines
    kop = offline_kop(run, 0, 2.0)
    assert kop.size == 500
    np.testing.assert_allclose(r_line.get_xdata(), np.arange(500) * 0.002)
    np.testing.assert_array_equal(r_line.get_ydata(), kop)
    assert r_line.get_label() == "R(t), 2 ms samples"
    (stairs,) = [p for p in ax_kop.patches if p.get_label() == "1 s mean"]
    values, edges, _ = stairs.get_data()
    assert list(values) == [0.5] and list(edges) == [0.0, 1.0]
    assert set(published.get_ydata()) == {PUBLISHED["kop_before"]}
    (weight, latch) = ax_w.lines
    np.testing.assert_allclose(weight.get_xdata(), np.arange(1, 1001) / 1000.0)
    np.testing.assert_array_equal(weight.get_ydata(), run.stats["weight_mv"][:, 0])
    assert set(latch.get_ydata()) == {200.0} and latch.get_label() == "latch 200 mV"
    end_s = 1.0 if off_s is None else off_s
    for ax in (ax_kop, ax_w):
        (span,) = [p for p in ax.patches if p.get_label() == "stimulation on"]
        assert span_x(span) == pytest.approx((0.1, end_s))
    moments = [("before", 0.0), ("during", (100.0 + end_s * 1000) / 2)] + [("after", 800.0)] * (off_s is not None)
    assert len(rasters) == len(moments)
    for ax, (label, start_ms) in zip(rasters, moments):
        np.testing.assert_allclose(ax.collections[0].get_offsets(), raster_offsets(run, 0, start_ms), atol=1e-12)
        assert ax.get_title() == f"E raster {label} ({start_ms / 1000:.1f} s)"
    assert rasters[1].get_title() == ("E raster during (0.5 s)" if off_s else "E raster during (0.6 s)")
    assert fig._suptitle.get_text() == f"Open-loop ftsts (seed 5): stimulation off at {off_s or 'never'} s"


def test_one_network_is_drawn_without_an_interval(figures, tmp_path):
    result = synthetic_result()
    one = replace(
        result,
        config=replace(result.config, seeds=(1,)),
        traces={key: values[:, :1] for key, values in result.traces.items()},
    )
    plots.plot_kop(one, tmp_path)
    (ax,) = figures[0].axes
    assert ax.get_title() == "Synchrony: one network"
    lines = [line for line in ax.lines if line.get_label() in result.names]
    for c, line in enumerate(lines):
        np.testing.assert_array_equal(line.get_ydata(), result.traces["kop"][c, 0])
