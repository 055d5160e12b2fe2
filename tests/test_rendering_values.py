"""``render()``'s frame by what it draws: the raster's dots are the last window's spikes at their
times, the two traces are the kept history, the axes name their quantities, and the image returned
is that figure's pixels."""

import numpy as np
import pytest
from matplotlib.colors import to_rgba
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.markers import MarkerStyle

from neuroloop_gpu.envs.rendering import HISTORY_WINDOWS, RenderHistory, draw_frame, render_frame


def filled_history(windows: int) -> RenderHistory:
    history = RenderHistory()
    for k in range(windows):
        raster = np.zeros((200, 12), dtype=bool)
        raster[[3, 3, 150, 199], [0, 11, 5, 7]] = True  # steps 3 (two neurons), 150 and 199
        history.add(0.02 * (k + 1), 0.01 * k, 260.0 - k, raster)
    return history


def test_frame_draws_the_last_window_and_the_kept_history():
    history = filled_history(3)
    fig = draw_frame(history, "env 1", step_ms=0.1)
    raster_ax, sync_ax, weight_ax = fig.axes
    (dots,) = raster_ax.collections
    expected = sorted([(0.3, 0), (0.3, 11), (15.0, 5), (19.9, 7)])  # step * 0.1 ms, neuron
    np.testing.assert_allclose(sorted(map(tuple, dots.get_offsets())), expected)
    assert raster_ax.get_xlim() == pytest.approx((0.0, 20.0))  # the whole 200-step window
    assert (raster_ax.get_title(), raster_ax.get_xlabel(), raster_ax.get_ylabel()) == (
        "env 1",
        "time in last window (ms)",
        "E neuron",
    )
    (sync,) = sync_ax.lines
    np.testing.assert_allclose(sync.get_xdata(), [0.02, 0.04, 0.06])
    np.testing.assert_allclose(sync.get_ydata(), [0.0, 0.01, 0.02])
    assert sync_ax.get_ylabel() == "synchrony" and sync_ax.get_ylim() == (0.0, 1.0)
    (weight,) = weight_ax.lines
    np.testing.assert_allclose(weight.get_xdata(), [0.02, 0.04, 0.06])
    np.testing.assert_allclose(weight.get_ydata(), [260.0, 259.0, 258.0])
    assert (weight_ax.get_xlabel(), weight_ax.get_ylabel()) == ("time (s)", "mean $J_I w$ (mV)")
    # the style: small black dots without edges, a blue synchrony and a red weight trace, a constrained layout
    assert dots.get_sizes().tolist() == [1.0] and dots.get_linewidths().tolist() == [0.0]
    np.testing.assert_array_equal(dots.get_facecolors(), [to_rgba("k")])
    dot = MarkerStyle(".")
    np.testing.assert_allclose(dots.get_paths()[0].vertices, dot.get_path().transformed(dot.get_transform()).vertices)
    assert to_rgba(sync.get_color()) == to_rgba("tab:blue") and to_rgba(weight.get_color()) == to_rgba("tab:red")
    assert isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine)


def test_history_keeps_the_last_windows_and_clears():
    history = filled_history(HISTORY_WINDOWS + 7)
    assert len(history.time_s) == len(history.synchrony) == len(history.weight_mv) == HISTORY_WINDOWS == 250
    assert history.time_s[0] == pytest.approx(0.02 * 8) and history.weight_mv[-1] == 260.0 - (HISTORY_WINDOWS + 6)
    assert not draw_frame(RenderHistory(), "env 0", step_ms=0.1).axes[0].collections  # a fresh history: no raster
    history.clear()
    assert not history.time_s and not history.synchrony and not history.weight_mv and history.raster is None
    fig = draw_frame(history, "env 0", step_ms=0.1)  # nothing yet: no dots, empty traces
    assert not fig.axes[0].collections and all(len(ax.lines[0].get_xdata()) == 0 for ax in fig.axes[1:])


def test_render_frame_is_the_drawn_figure_in_rgb():
    history = filled_history(4)
    image = render_frame(history, "env 1", step_ms=0.1)
    fig = draw_frame(history, "env 1", step_ms=0.1)
    fig.canvas.draw()
    expected = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    assert image.dtype == np.uint8 and image.shape == (640, 640, 3)  # 6.4 in at 100 dpi
    np.testing.assert_array_equal(image, expected)
    other = render_frame(filled_history(5), "env 1", step_ms=0.1)
    assert (other != image).any()  # one more window changes the picture
