"""Pictures of one environment for ``render()``: its last window's E raster and
the recent course of synchrony and mean E->I weight."""

from __future__ import annotations

from collections import deque

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure  # not pyplot: the user's backend and figure list stay untouched

HISTORY_WINDOWS = 250


class RenderHistory:
    """Host-side trace of one env, kept only when rendering is on."""

    def __init__(self) -> None:
        self.time_s: deque[float] = deque(maxlen=HISTORY_WINDOWS)
        self.synchrony: deque[float] = deque(maxlen=HISTORY_WINDOWS)
        self.weight_mv: deque[float] = deque(maxlen=HISTORY_WINDOWS)
        self.raster: np.ndarray | None = None

    def clear(self) -> None:
        self.time_s.clear()
        self.synchrony.clear()
        self.weight_mv.clear()
        self.raster = None

    def add(self, time_s: float, synchrony: float, weight_mv: float, raster: np.ndarray | None) -> None:
        self.time_s.append(time_s)
        self.synchrony.append(synchrony)
        self.weight_mv.append(weight_mv)
        self.raster = raster


def draw_frame(history: RenderHistory, title: str, step_ms: float) -> Figure:
    """The frame's figure: the last window's E raster, synchrony and mean weight over the kept windows."""
    fig = Figure(figsize=(6.4, 6.4), layout="constrained")
    FigureCanvasAgg(fig)
    ax_raster, ax_sync, ax_weight = fig.subplots(3, 1)
    if history.raster is not None:
        steps, neurons = np.nonzero(history.raster)
        ax_raster.scatter(steps * step_ms, neurons, s=1, c="k", marker=".", linewidths=0)
        ax_raster.set_xlim(0, history.raster.shape[0] * step_ms)
    ax_raster.set(title=title, xlabel="time in last window (ms)", ylabel="E neuron")
    ax_sync.plot(history.time_s, history.synchrony, color="tab:blue")
    ax_sync.set(ylabel="synchrony", ylim=(0, 1))
    ax_weight.plot(history.time_s, history.weight_mv, color="tab:red")
    ax_weight.set(xlabel="time (s)", ylabel="mean $J_I w$ (mV)")
    return fig


def render_frame(history: RenderHistory, title: str, step_ms: float) -> np.ndarray:
    """[H, W, 3] uint8 image of :func:`draw_frame`."""
    fig = draw_frame(history, title, step_ms)
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
