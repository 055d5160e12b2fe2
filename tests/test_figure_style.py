"""How every figure looks, held against a recorded description (``tests/figure_style.json``).

``tests/test_figures.py`` checks what the figures draw (the data of every artist against the source
arrays); this file checks how: sizes, layout, colours, line widths and styles, markers, transparency,
font sizes, alignments, colour maps, scales, limits, legends and titles, artist by artist, on made-up
inputs. A deliberate change of style is recorded again with

    NEUROLOOP_UPDATE_FIGURE_STYLE=1 pytest tests/test_figure_style.py

and the difference in ``figure_style.json`` reviewed like code.
"""

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
from matplotlib.colors import to_rgba
from test_plots import open_loop_run, synthetic_result, write_log

from neuroloop_gpu import plots

RECORD = Path(__file__).with_name("figure_style.json")
UPDATE = os.environ.get("NEUROLOOP_UPDATE_FIGURE_STYLE") == "1"


def _number(value):
    return float(f"{float(value):.4g}")


def _colour(value):
    """RGBA of a colour, or of the first of an artist's colours (None when it has none)."""
    if not isinstance(value, str):
        value = np.asarray(value, dtype=float)
        if value.ndim == 2:
            if not value.size:
                return None
            value = value[0]
        value = tuple(value)
    return [_number(c) for c in to_rgba(value)]


def _first(values):
    values = np.atleast_1d(values)
    return _number(values[0]) if values.size else None


def _extent(x, y) -> dict:
    """How many points an artist draws and the range they span (a coarse check of its data)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    finite = np.isfinite(x) & np.isfinite(y)
    if not finite.any():
        return {"points": int(x.size)}
    return {
        "points": int(x.size),
        "x": [_number(x[finite].min()), _number(x[finite].max())],
        "y": [_number(y[finite].min()), _number(y[finite].max())],
    }


def _steps(patch) -> dict:
    values, edges, baseline = patch.get_data()
    return {"values": [_number(v) for v in values], "edges": [_number(e) for e in edges], "baseline": baseline}


def _marker(collection) -> dict:
    """A scatter's marker: its path's vertex count and radius (a '.' is a circle half the size of an 'o')."""
    vertices = collection.get_paths()[0].vertices
    return {"vertices": len(vertices), "radius": _number(np.abs(vertices).max())}


def _text(t):
    return {
        "text": t.get_text(),
        "position": [_number(v) for v in t.get_position()],
        "size": _number(t.get_fontsize()),
        "ha": t.get_ha(),
        "va": t.get_va(),
        "colour": _colour(t.get_color()),
        "in_axes_units": bool(t.get_transform() == t.axes.transAxes) if t.axes else None,
    }


def describe(fig) -> dict:
    """The style of every axes and artist of ``fig`` (data arrays left to test_figures.py)."""
    axes = []
    for ax in fig.axes:
        legend = ax.get_legend()
        spec = ax.get_subplotspec()
        grid = spec.get_gridspec() if spec is not None else None
        axes.append(
            {
                "grid": None
                if grid is None
                else {
                    "shape": list(grid.get_geometry()),
                    "heights": [_number(h) for h in grid.get_height_ratios() or []],
                    "widths": [_number(w) for w in grid.get_width_ratios() or []],
                    "rows": [spec.rowspan.start, spec.rowspan.stop],
                    "columns": [spec.colspan.start, spec.colspan.stop],
                },
                "title": [ax.get_title(), _number(ax.title.get_fontsize())],
                "labels": [ax.get_xlabel(), ax.get_ylabel()],
                "scales": [ax.get_xscale(), ax.get_yscale()],
                "symlog_thresholds": [
                    float(a.get_transform().linthresh) if a.get_scale() == "symlog" else None
                    for a in (ax.xaxis, ax.yaxis)
                ],
                # how many axes share this one's x and y (itself included)
                "shared": [len(ax.get_shared_x_axes().get_siblings(ax)), len(ax.get_shared_y_axes().get_siblings(ax))],
                "limits": [[_number(v) for v in ax.get_xlim()], [_number(v) for v in ax.get_ylim()]],
                "aspect": str(ax.get_aspect()),
                "lines": [
                    {
                        "label": line.get_label(),
                        "colour": _colour(line.get_color()),
                        "width": _number(line.get_linewidth()),
                        "style": line.get_linestyle(),
                        "marker": str(line.get_marker()),
                        "marker_size": _number(line.get_markersize()),
                        "marker_edge": _colour(line.get_markeredgecolor()),
                        "alpha": line.get_alpha(),
                        "extent": _extent(line.get_xdata(), line.get_ydata()),
                    }
                    for line in ax.lines
                ],
                "collections": [
                    {
                        "type": type(c).__name__,
                        "label": c.get_label(),
                        "face": _colour(c.get_facecolor()),
                        "edge": _colour(c.get_edgecolor()),
                        "width": _first(c.get_linewidth()),
                        "alpha": c.get_alpha(),
                        "size": _first(c.get_sizes()) if hasattr(c, "get_sizes") else None,
                        "extent": _extent(*np.asarray(c.get_offsets()).reshape(-1, 2).T)
                        if type(c).__name__ == "PathCollection"
                        else None,
                        "marker": _marker(c) if type(c).__name__ == "PathCollection" else None,
                    }
                    for c in ax.collections
                ],
                "patches": [
                    {
                        "type": type(p).__name__,
                        "label": p.get_label(),
                        "face": _colour(p.get_facecolor()),
                        "edge": _colour(p.get_edgecolor()),
                        "width": _number(p.get_linewidth()),
                        "alpha": p.get_alpha(),
                        "fill": p.get_fill(),
                        # spans: where they start and end (in data units along x, in axes units along y)
                        "x_extent": [_number(p.get_x()), _number(p.get_x() + p.get_width())]
                        if type(p).__name__ == "Rectangle"
                        else None,
                        "steps": _steps(p) if type(p).__name__ == "StepPatch" else None,
                    }
                    for p in ax.patches
                ],
                "texts": [_text(t) for t in ax.texts],
                "images": [
                    {"cmap": i.get_cmap().name, "origin": i.origin, "norm": type(i.norm).__name__} for i in ax.images
                ],
                "legend": None
                if legend is None
                else {
                    "texts": [t.get_text() for t in legend.get_texts()],
                    "size": _number(legend.get_texts()[0].get_fontsize()),
                    "loc": legend._loc,
                    "columns": legend._ncols,
                },
            }
        )
    suptitle = fig._suptitle
    return {
        "size_inches": [_number(v) for v in fig.get_size_inches()],
        "layout": type(fig.get_layout_engine()).__name__ if fig.get_layout_engine() else None,
        "suptitle": None if suptitle is None else [suptitle.get_text(), _number(suptitle.get_fontsize())],
        "axes": axes,
    }


def figures(tmp_path, monkeypatch):
    """Name -> figure, every plot function on made-up inputs (the evaluation's with and without a follow-up)."""
    saved = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: saved.append((Path(path).name, fig)) or path)
    result = synthetic_result()
    plots.plot_evaluation(result, tmp_path)
    drawn = dict(saved)
    lasting = replace(result, config=replace(result.config, stim_budget_s=0.4, followup_s=0.4))
    sweep = {
        "config": {"latch_fraction": 0.9},
        "points": [
            {"metrics": {"latch_reached": {"mean": 1.0}, "energy_mv2ms": {"mean": 2e5}, "kop_followup": {"mean": 0.1}}},
            {"metrics": {"latch_reached": {"mean": 0.5}, "energy_mv2ms": {"mean": 1e5}, "kop_followup": {"mean": 0.6}}},
            # latched on exactly the fraction asked for: a square
            {"metrics": {"latch_reached": {"mean": 0.9}, "energy_mv2ms": {"mean": 3e5}, "kop_followup": {"mean": 0.2}}},
        ],
    }
    drawn["energy_vs_synchrony, follow-up and sweep"] = plots.energy_synchrony_figure(lasting, sweep)
    drawn["energy_vs_synchrony, sweep, no follow-up"] = plots.energy_synchrony_figure(result, sweep)
    plots.plot_rasters(lasting, tmp_path)
    drawn["rasters, follow-up"] = saved[-1][1]
    from_start = replace(lasting, config=replace(lasting.config, stim_onset_s=0.0, stim_budget_s=0.6))
    plots.plot_kop(from_start, tmp_path)  # no baseline span; the follow-up's
    drawn["kop, stimulation from 0 s, follow-up"] = saved[-1][1]
    plots.plot_actions(from_start, tmp_path)
    drawn["actions, stimulation from 0 s, follow-up"] = saved[-1][1]
    from_start.rasters = {**from_start.rasters, "before": from_start.rasters["before"][:, :0]}
    plots.plot_rasters(from_start, tmp_path)  # nothing recorded before the onset
    drawn["rasters, nothing before"] = saved[-1][1]
    one = replace(result, controllers={"ftsts": {}}, rasters={k: v[1:2] for k, v in result.rasters.items()})
    plots.plot_rasters(one, tmp_path)
    drawn["rasters, one controller"] = saved[-1][1]
    plots.plot_training(write_log(tmp_path / "short.csv", rows=6), tmp_path)
    drawn["training, 6 rows"] = saved[-1][1]
    plots.plot_training(write_log(tmp_path / "long.csv", rows=50), tmp_path)  # 50 points: lines without markers
    drawn["training, 50 rows"] = saved[-1][1]
    run, summary = open_loop_run()
    plots.plot_open_loop(run, summary, tmp_path)
    drawn["open_loop.png"] = saved[-1][1]
    unstimulated = {**summary, "protocol": {**summary["protocol"], "waveform": "none"}}
    plots.plot_open_loop(run, unstimulated, tmp_path)  # no stimulation period, no latch, one raster
    drawn["open_loop, no stimulation"] = saved[-1][1]
    never = {**summary, "networks": [{**summary["networks"][0], "stim_off_time_s": None}]}
    plots.plot_open_loop(run, never, tmp_path)  # stimulated to the end: no "after" raster
    drawn["open_loop, never latched"] = saved[-1][1]
    late = {**summary, "protocol": {**summary["protocol"], "onset": 419.8}}  # "before" raster from 119.8 ms
    plots.plot_open_loop(run, late, tmp_path, sample_ms=2.0)
    drawn["open_loop, late onset, 2 ms samples"] = saved[-1][1]
    too_late = {**summary, "protocol": {**summary["protocol"], "onset": 600.0}}  # onset at the end
    plots.plot_open_loop(run, too_late, tmp_path)
    drawn["open_loop, onset at the end"] = saved[-1][1]
    return drawn


def test_every_figure_looks_as_recorded(tmp_path, monkeypatch):
    drawn = figures(tmp_path, monkeypatch)
    styles = json.loads(json.dumps({name: describe(fig) for name, fig in sorted(drawn.items())}))
    for fig in drawn.values():
        plots.plt.close(fig)
    if UPDATE:
        RECORD.write_text(json.dumps(styles, indent=1, ensure_ascii=False) + "\n")
    recorded = json.loads(RECORD.read_text())
    assert sorted(styles) == sorted(recorded)
    for name in recorded:
        for i, (got, want) in enumerate(zip(styles[name]["axes"], recorded[name]["axes"])):
            for key in want:
                assert got[key] == want[key], f"{name}, axes {i}, {key}"
        assert styles[name] == recorded[name], name
