"""Figures: written, non-empty, and redrawn from a run folder's files alone."""

import warnings
from dataclasses import replace

import numpy as np
import pytest

from neuroloop_gpu import plots
from neuroloop_gpu.config import NetworkParams
from neuroloop_gpu.evaluation import TRACES, EvaluationConfig, EvaluationResult
from neuroloop_gpu.open_loop import OpenLoopRun
from neuroloop_gpu.plots import plot_evaluation, plot_run, plot_training

LOG_HEADER = (
    "iteration,frames,wall_s,fps,lr,reward_mean,episode_reward_mean,kop_mean,weight_mv_mean,energy_mean,"
    "loss_objective,loss_critic,loss_entropy"
)


def synthetic_result() -> EvaluationResult:
    """3 controllers x 4 seeds x 50 windows of made-up traces (no simulation)."""
    config = EvaluationConfig(
        seeds=(1, 2, 3, 4), network=NetworkParams(num_e=40, num_i=10), duration_s=1.0, stim_onset_s=0.2, raster_ms=100.0
    )
    rng = np.random.default_rng(0)
    shape = (3, 4, config.num_windows)
    on = np.zeros(shape, dtype=bool)
    on[1:, :, config.onset_window :] = True
    on[2, :, ::3] = False  # an on-demand controller
    traces = {key: rng.uniform(0, 1, shape) for key in TRACES}
    traces.update(
        stimulating=on,
        amplitude_mv=100.0 * on,
        frequency_hz=np.where(on, 130.0, 83.3),
        pulse_width_us=np.where(on, 60.0, 1000.0),
        energy_mv2ms=on * 50.0,
        charge_mvms=on * 1.0,
        weight_mv=260.0 - on.cumsum(-1) * 5.0,
    )
    rasters = {k: rng.uniform(size=(3, 1000, 40)) < 0.01 for k in ("before", "after")}
    return EvaluationResult(
        config,
        {"none": {}, "ftsts": {}, "threshold": {}},
        traces,
        rasters,
        {"before": 0.1, "after": 0.9},
        "cpu:test",
        {"torch": "x"},
        0.0,
    )


def open_loop_run(window_ms=20.0, duration_s=0.6, off_s=0.4):
    """Two networks of 40 E neurons in 0.1 ms steps: made-up packed E spikes and weights over ``duration_s``,
    stimulated from 100 ms, the first network switched off at ``off_s`` (None: never), the second never."""
    rng = np.random.default_rng(1)
    windows, steps = round(duration_s * 1000 / window_ms), round(window_ms / 0.1)
    spikes = [np.packbits(rng.uniform(size=(2, steps, 40)) < 0.02, axis=-1) for _ in range(windows)]
    stats = {"weight_mv": 260.0 - np.arange(windows)[:, None] * np.array([[3.0, 1.0]]) * (window_ms / 20.0)}
    off_ms = None if off_s is None else off_s * 1000
    run = OpenLoopRun(window_ms, 0.1, [5, 6], stats, np.ones((windows, 2), bool), [off_ms, None], spikes, 40)
    summary = {
        "duration_s": duration_s,
        "protocol": {"onset": 100.0, "waveform": "ftsts", "latch_mv": 200.0},
        "networks": [{"seed": 5, "stim_off_time_s": off_s, "kop_per_second": [0.5] * max(1, int(duration_s))}],
    }
    return run, summary


def write_log(path, rows=6):
    lines = [LOG_HEADER]
    for i in range(rows):
        episode = "nan" if i % 2 == 0 else f"{-100 + 5 * i}"
        lines.append(
            f"{i},{(i + 1) * 512},{i * 1.5},{340.0},{3e-4 * (1 - i / rows)},{-0.8 + 0.05 * i},{episode},"
            f"{0.3 - 0.01 * i},{259 - i},{40.0},{0.01 * (-1) ** i},{1.0 / (i + 1)},{-0.004}"
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def png_size(path):
    """(width, height) in pixels of a PNG file, read from its header."""
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


# the figures' sizes in inches at the 110 dpi they are written with (3 controllers in synthetic_result)
EVALUATION_SIZES = {
    "kop.png": (10, 4.5),
    "weight.png": (10, 4.5),
    "rasters.png": (11, 1.9 * 3 + 0.8),
    "actions.png": (10, 8),
    "energy_vs_synchrony.png": (8, 5.8),
}


def test_evaluation_figures_are_written(tmp_path):
    """Each figure a whole PNG of its size (what they draw: tests/test_figures.py)."""
    paths = plot_evaluation(synthetic_result(), tmp_path / "run" / "figures")  # folders made as needed
    assert paths == [tmp_path / "run" / "figures" / name for name in EVALUATION_SIZES]
    for path in paths:
        width, height = EVALUATION_SIZES[path.name]
        assert png_size(path) == (round(width * 110), round(height * 110)), path.name


def test_stimulation_from_the_start_draws_no_empty_before_raster(tmp_path):
    result = synthetic_result()
    result.config = replace(result.config, stim_onset_s=0.0)
    result.rasters["before"] = result.rasters["before"][:, :0]  # what evaluate records with no time before onset
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns about the empty x range of an empty raster
        assert [p.name for p in plot_evaluation(result, tmp_path)] == list(EVALUATION_SIZES)


def test_every_training_panel_has_a_y_label_with_units(tmp_path, monkeypatch):
    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig) or path)
    plot_training(write_log(tmp_path / "train_log.csv"), tmp_path)
    labels = [ax.get_ylabel() for ax in figures[0].axes]
    plots.plt.close(figures[0])
    assert len(labels) == 8 and all(label.endswith(")") for label in labels), labels


def test_training_figure_tolerates_nan_episode_rewards(tmp_path):
    path = plot_training(write_log(tmp_path / "train_log.csv"), tmp_path / "run" / "figures")
    assert path == tmp_path / "run" / "figures" / "training.png" and png_size(path) == (15 * 110, round(6.5 * 110))
    (tmp_path / "empty.csv").write_text(LOG_HEADER + "\n")
    with pytest.raises(ValueError, match="has no rows"):
        plot_training(tmp_path / "empty.csv", tmp_path)


def test_plot_run_redraws_everything_from_the_files(tmp_path):
    write_log(tmp_path / "train_log.csv")
    synthetic_result().save(tmp_path / "evaluation")
    paths = plot_run(tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in paths) == sorted(
        ["training.png"]
        + [f"evaluation/{n}.png" for n in ("kop", "weight", "rasters", "actions", "energy_vs_synchrony")]
    )
    assert all(png_size(p)[0] > 800 for p in paths)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="nothing to plot"):
        plot_run(empty)


def test_plot_run_finds_each_source_and_names_a_damaged_file(tmp_path, monkeypatch):
    from test_sweep_figure import made_up

    drawn = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: drawn.append(fig) or path)
    (tmp_path / "a_training").mkdir()
    write_log(tmp_path / "a_training" / "train_log.csv")
    synthetic_result().save(tmp_path / "b_evaluation")
    sweep = made_up()
    sweep.save(tmp_path / "b_evaluation")  # beside an evaluation: its points join the energy plane
    sweep.save(tmp_path / "c_sweep")  # alone: its heatmaps
    paths = plot_run(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == [
        "a_training/training.png",
        *[f"b_evaluation/{n}.png" for n in ("kop", "weight", "rasters", "actions", "energy_vs_synchrony")],
        "c_sweep/sweep.png",
    ]
    energy_plane, heatmaps = drawn[5], drawn[6]
    labels = [c.get_label() for c in energy_plane.axes[0].collections]
    assert labels[:2] == ["sweep point, latched on ≥ 90%", "sweep point, latched less often"]
    assert heatmaps.axes[0].get_title().startswith("energy to latch")
    for fig in drawn:
        plots.plt.close(fig)

    (tmp_path / "a_training" / "train_log.csv").write_text("step,loss\n1,0.5\n")  # not a training log
    with pytest.raises(ValueError) as caught:
        plot_run(tmp_path / "a_training")
    log = tmp_path / "a_training" / "train_log.csv"
    assert str(caught.value) == (
        f"{log}: ValueError: {log} lacks the columns ['frames', 'reward_mean']: not a training log"
    )
    (tmp_path / "b_evaluation" / "evaluation.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError) as caught:
        plot_run(tmp_path / "b_evaluation")
    assert str(caught.value).startswith(
        f"{tmp_path / 'b_evaluation'}/evaluation.json, evaluation.npz or sweep.json: ValueError: "
    )
    (tmp_path / "c_sweep" / "sweep.json").write_text("{")
    with pytest.raises(ValueError) as caught:
        plot_run(tmp_path / "c_sweep")
    assert str(caught.value).startswith(f"{tmp_path / 'c_sweep' / 'sweep.json'}: JSONDecodeError: ")
    with pytest.raises(FileNotFoundError) as caught:
        plot_run(tmp_path / "nowhere")
    assert str(caught.value) == f"{tmp_path / 'nowhere'} is not a folder"


def test_a_training_log_of_one_row_is_drawn(tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: drawn.append(fig) or path)
    plot_training(write_log(tmp_path / "train_log.csv", rows=1), tmp_path)
    (line,) = drawn[0].axes[0].lines  # reward per window; the one episode reward is NaN: not drawn
    assert list(line.get_xdata()) == [512.0] and list(line.get_ydata()) == [-0.8]
    plots.plt.close(drawn[0])
