"""The sweep figure (plots.sweep_figure) tested by what it draws and how, on made-up sweep results."""

import math
from dataclasses import replace

import numpy as np
import pytest
from test_sweep import CONFIG

from neuroloop_gpu.plots import sweep_figure
from neuroloop_gpu.sweep import SWEEP_METRICS, SweepResult

# per point of CONFIG (60/200 mV x 100/600 Hz x 500/1000 us, 600 Hz x 1000 us left out): mean energy and
# latched networks of 2. The least and the most energy lie in the 1000 us column, so the colour scale must
# span both columns; tuned: 200 mV, 100 Hz, 500 us in NeuroLoop's box, 60 mV, 100 Hz, 1000 us in the 1 ms box.
ENERGY = [3e6, 1e6, 2.5e6, 2e6, 6e6, 1.5e6]
LATCHED = [2, 2, 0, 2, 2, 2]


def made_up(latched=LATCHED):
    points = len(CONFIG.points)
    assert points == len(ENERGY)
    rng = np.random.default_rng(4)
    per_network = {m: rng.uniform(0.05, 0.95, (points, 2)) for m in SWEEP_METRICS}
    per_network["energy_mv2ms"] = np.array(ENERGY)[:, None] * np.array([[0.9, 1.1]])
    per_network["latch_reached"] = (np.arange(2)[None, :] < np.array(latched)[:, None]).astype(float)
    return SweepResult(CONFIG, per_network, "cpu", "eager", {}, 0.0)


def test_heatmaps_read_as_documented():
    """Every cell's colour scale, printed value and position, the ticks, titles, frames and colour bars."""
    result = made_up()
    fig = sweep_figure(result)
    assert tuple(fig.get_size_inches()) == pytest.approx((3.2 * 2 + 1, 6.6)) and fig.get_layout_engine() is not None
    means = {m: result.per_network[m].mean(1) for m in ("energy_mv2ms", "kop_followup", "latch_reached")}
    latched = means["latch_reached"] >= 0.9
    energies = means["energy_mv2ms"][latched] / 1e6
    assert energies.size and not latched.all()  # some cells coloured, some blank
    heat_axes = fig.axes[:4]
    for r, c in [(r, c) for r in range(2) for c in range(2)]:
        ax, width = heat_axes[2 * r + c], CONFIG.pulse_widths_us[c]
        image = ax.images[0]
        assert image.origin == "lower" and ax.get_aspect() == "auto"
        if r == 0:
            assert image.get_cmap().name == "viridis" and type(image.norm).__name__ == "LogNorm"
            assert (image.norm.vmin, image.norm.vmax) == (energies.min(), energies.max())
            title, fmt = f"energy to latch (10⁶ mV²·ms), {width:g} µs", ".2g"
        else:
            assert image.get_cmap().name == "magma_r" and (image.norm.vmin, image.norm.vmax) == (0, 1)
            title, fmt = f"R in the {CONFIG.followup_s:g} s follow-up, {width:g} µs", ".2f"
        assert ax.get_title() == title and ax.title.get_fontsize() == 9
        assert [t.get_text() for t in ax.get_xticklabels()] == ["100", "600"]
        assert [t.get_text() for t in ax.get_yticklabels()] == ["60", "200"]
        assert list(ax.get_xticks()) == [0, 1] and list(ax.get_yticks()) == [0, 1]
        expected_texts = []
        for p, (a, f, w) in enumerate(CONFIG.points):
            if w != width:
                continue
            value = (means["energy_mv2ms"][p] / 1e6 if latched[p] else math.nan) if r == 0 else means["kop_followup"][p]
            if math.isfinite(value):
                i, j = CONFIG.amplitudes_mv.index(a), CONFIG.frequencies_hz.index(f)
                expected_texts.append(((j, i), format(value, fmt)))
        drawn = [(t.get_position(), t.get_text()) for t in ax.texts]
        assert sorted(drawn) == sorted(expected_texts)
        assert all((t.get_ha(), t.get_va(), t.get_fontsize()) == ("center", "center", 6.5) for t in ax.texts)
    tuned = {name: point for name, point in result.tuned().items() if point is not None}
    assert [(p["amplitude_mv"], p["frequency_hz"], p["pulse_width_us"]) for p in tuned.values()] == [
        (200.0, 100.0, 500.0),
        (60.0, 100.0, 1000.0),
    ]  # a frame in each column
    for r in range(2):
        for c, width in enumerate(CONFIG.pulse_widths_us):
            frames = [
                (p.get_xy(), p.get_width(), p.get_height(), p.get_edgecolor(), p.get_linewidth(), p.get_fill())
                for p in heat_axes[2 * r + c].patches
            ]
            expected = []
            for point in tuned.values():
                if point["pulse_width_us"] == width:
                    i = CONFIG.amplitudes_mv.index(point["amplitude_mv"])
                    j = CONFIG.frequencies_hz.index(point["frequency_hz"])
                    expected.append(((j - 0.48, i - 0.48), 0.96, 0.96, (1.0, 0.0, 0.0, 1.0), 1.8, False))
            assert sorted(frames) == sorted(expected)
    colour_bars = fig.axes[4:]
    assert [ax.get_ylabel() for ax in colour_bars] == ["10⁶ mV²·ms", "R"]
    framed = "; ".join(
        f"{name} bounds: {p['amplitude_mv']:g} mV, {p['frequency_hz']:.3g} Hz, {p['pulse_width_us']:g} µs"
        for name, p in tuned.items()
    )
    assert fig._suptitle.get_text() == (
        "FTSTS waveform sweep, 40 E / 10 I, 2 seeds per point\n"
        f"blank energy: latched on < 90% of networks within 0.3 s; red: the tuned points ({framed})"
    )
    assert fig._suptitle.get_fontsize() == 10


def test_heatmaps_of_a_sweep_where_nothing_latches():
    result = made_up(latched=[0] * len(CONFIG.points))
    result.per_network["kop_followup"][:] = 0.5
    fig = sweep_figure(result)
    for c, width in enumerate(CONFIG.pulse_widths_us):
        assert np.isnan(np.ma.filled(fig.axes[c].images[0].get_array(), np.nan)).all()
        assert not fig.axes[c].texts and not fig.axes[c].patches  # nothing printed, nothing framed
        drawn = [t.get_text() for t in fig.axes[2 + c].texts]
        assert drawn == ["0.50"] * sum(w == width for _, _, w in CONFIG.points)
    assert [ax.get_ylabel() for ax in fig.axes[4:]] == ["R"]  # no energy colour bar without an energy
    assert fig._suptitle.get_text().endswith("red: the tuned points (none)")


def test_axis_labels_colour_bars_and_a_box_without_a_tuned_point():
    # NeuroLoop's box (<= 500 us, <= 180 Hz) has no point that latches; the 1 ms box has 60 mV, 100 Hz, 1000 us
    result = made_up(latched=[0, 2, 0, 0, 1, 2])
    result.per_network["energy_mv2ms"][1] = 2.5e8  # 250 x 10^6 mV^2 ms: printed in exponent notation
    assert result.tuned()["neuroloop"] is None and result.tuned()["1ms"]["pulse_width_us"] == 1000.0
    fig = sweep_figure(result)
    fig.canvas.draw()  # the constrained layout places the colour bars
    heat = fig.axes[:4]
    assert [ax.get_xlabel() for ax in heat] == ["", "", "frequency (Hz)", "frequency (Hz)"]
    assert [ax.get_ylabel() for ax in heat] == ["amplitude (mV)", "", "amplitude (mV)", ""]
    assert [t.get_text() for t in heat[1].texts] == ["2.5e+02"]
    assert not heat[0].patches and len(heat[1].patches) == len(heat[3].patches) == 1
    assert fig._suptitle.get_text().endswith("red: the tuned points (1ms bounds: 60 mV, 100 Hz, 1000 µs)")
    for bar, row in zip(fig.axes[4:], (heat[:2], heat[2:])):
        assert any(bar._colorbar.mappable is ax.images[0] for ax in row)  # the scale of the row beside it
        top, bottom = row[0].get_position().y1, row[0].get_position().y0
        box = bar.get_position()
        assert box.x0 > row[1].get_position().x1  # right of the row
        assert box.height == pytest.approx(0.8 * (top - bottom), rel=0.05)  # shrunk to 80 % of it
        assert row[0].get_position().width == pytest.approx(row[1].get_position().width, abs=1e-3)  # room from both
        assert (box.y0 + box.y1) / 2 == pytest.approx((top + bottom) / 2, abs=0.02)


def test_a_sweep_of_one_pulse_width_draws_one_column():
    config = replace(CONFIG, pulse_widths_us=(500.0,))
    per_network = {m: np.full((len(config.points), 2), 0.5) for m in SWEEP_METRICS}
    per_network["latch_reached"][:] = 1.0
    fig = sweep_figure(SweepResult(config, per_network, "cpu", "eager", {}, 0.0))
    titles = [ax.get_title() for ax in fig.axes[:2]]
    assert titles == ["energy to latch (10⁶ mV²·ms), 500 µs", "R in the 0.1 s follow-up, 500 µs"]
    assert [ax.get_ylabel() for ax in fig.axes[2:]] == ["10⁶ mV²·ms", "R"]


def test_a_point_latching_on_exactly_the_required_fraction_is_coloured():
    result = made_up(latched=[1, 2, 0, 2, 2, 2])  # 60 mV, 100 Hz, 500 us: 1 of 2 networks
    result = SweepResult(replace(CONFIG, latch_fraction=0.5), result.per_network, "cpu", "eager", {}, 0.0)
    drawn = np.ma.filled(sweep_figure(result).axes[0].images[0].get_array(), np.nan)
    assert drawn[0, 0] == pytest.approx(ENERGY[0] / 1e6)
