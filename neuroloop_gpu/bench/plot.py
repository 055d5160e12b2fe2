"""Throughput and memory per network against the number of networks, from result documents.

Uses matplotlib's object API (no pyplot, no backend switch), so it works the
same in a script, in the CLI and inline in a notebook (``display(fig)``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import NullLocator

from .workload import GPU_TARGETS

_PEER_MARKERS = {"reference": "s", "brian2-runtime": "^", "brian2-cpp": "v"}
_TARGET_MARKERS = {"simulator": "o", "vector-env": "D", "torchrl-env": "P"}
_LINESTYLES = ["-", "--", "-.", ":"]

_BACKEND_WIDTHS = {"eager": 1.2, "compiled": 2.2, "fused": 3.4, "triton": 3.4}  # thicker: more fused


def _device_label(doc: Mapping) -> str:
    if doc["device_type"] == "cuda":
        return doc["environment"].get("gpu") or "cuda"
    return f"CPU x{doc['environment'].get('torch_threads', '?')}"


def plot_results(docs: Sequence[Mapping] | Mapping, path: str | Path | None = None) -> Figure:
    """Two panels: env-steps/s and memory per network against the number of networks (log-log).

    Colour: network size; marker: target (or peer); line style: device (one
    per result document); the compiled and fused backends are drawn with
    filled markers on thicker lines (fused and triton thickest). Throughput is the median repeat with a band from the
    slowest to the fastest repeat; peers (one network each) are an open marker
    at one network with a dotted line across. Memory is drawn for the
    simulator target (peak and persistent state) and the peers (their state).
    """
    docs = [docs] if isinstance(docs, Mapping) else list(docs)
    fig = Figure(figsize=(12, 6.5), layout="constrained")
    ax_rate, ax_mem = fig.subplots(1, 2)
    sizes = list(dict.fromkeys(r["size"] for doc in docs for r in [*doc["results"], *doc.get("peers", [])]))
    colors = {size: f"C{i % 10}" for i, size in enumerate(sizes)}  # one colour per network size
    batches = sorted({r["batch"] for doc in docs for r in doc["results"] if "env_steps_per_s" in r} | {1})
    span = (batches[0], max(batches[-1], 2))
    for d, doc in enumerate(docs):
        label, style = _device_label(doc), _LINESTYLES[d % len(_LINESTYLES)]
        groups: dict[tuple[str, str, str], list[Mapping]] = {}
        drawn: set[tuple[str, str]] = set()
        for row in doc["results"]:
            if "env_steps_per_s" in row:
                groups.setdefault((row["target"], row["size"], row.get("backend", "eager")), []).append(row)
        for (target, size, backend), rows in groups.items():
            rows = sorted(rows, key=lambda r: r["batch"])
            x, color, marker = [r["batch"] for r in rows], colors[size], _TARGET_MARKERS.get(target, "o")
            compiled = backend != "eager"
            ax_rate.plot(
                x,
                [r["env_steps_per_s"] for r in rows],
                linestyle=style,
                marker=marker,
                color=color,
                linewidth=_BACKEND_WIDTHS.get(backend, 1.2),
                markerfacecolor=color if compiled else "white",
                label=f"{label} {target} {size}" + (f" {backend}" if compiled else ""),
            )
            ax_rate.fill_between(
                x,
                [r["batch"] / max(r["seconds_per_window"]) for r in rows],
                [r["env_steps_per_s_best"] for r in rows],
                color=color,
                alpha=0.12,
                linewidth=0,
            )
            if target != "simulator":
                continue  # the same batch in every target: the simulator's memory curves are enough
            for key, line, what in (
                ("peak_bytes_per_network", style, f"peak {backend}"),
                ("persistent_bytes_per_network", ":", "state"),
            ):
                if what == "state" and (size, what) in drawn:
                    continue  # the same state whichever backend
                drawn.add((size, what))
                points = [(r["batch"], r["memory"].get(key)) for r in rows]
                points = [(b, m / 1e6) for b, m in points if m]
                if points:
                    ax_mem.plot(
                        *zip(*points),
                        linestyle=line,
                        marker=marker if what != "state" else None,
                        linewidth=_BACKEND_WIDTHS.get(backend, 1.2) if what != "state" else 1.2,
                        color=color,
                        alpha=1.0 if what != "state" else 0.7,
                        label=f"{label} {size} {what}",
                    )
        for peer in doc.get("peers", []):
            if "env_steps_per_s" not in peer:
                continue
            color, marker = colors[peer["size"]], _PEER_MARKERS.get(peer["peer"], "x")
            name = f"peer {peer['peer']} {peer['size']}"
            ax_rate.plot(
                [1],
                [peer["env_steps_per_s"]],
                marker=marker,
                color=color,
                markerfacecolor="white",
                linestyle="none",
                markersize=9,
                label=name,
            )
            ax_rate.hlines(peer["env_steps_per_s"], *span, colors=color, linestyles="dotted", linewidth=1)
            memory = peer.get("memory", {})
            value = memory.get("persistent_bytes_per_network") or memory.get("peak_bytes_per_network")
            if value:
                ax_mem.plot(
                    [1],
                    [value / 1e6],
                    marker=marker,
                    color=color,
                    markerfacecolor="white",
                    linestyle="none",
                    markersize=9,
                    label=name,
                )
    ax_rate.set(
        xscale="log",
        yscale="log",
        xlabel="networks in the batch",
        ylabel="env-steps/s (20 ms windows, summed)",
        title="throughput (median repeat; band: slowest to fastest)",
    )
    ax_mem.set(
        xscale="log",
        yscale="log",
        xlabel="networks in the batch",
        ylabel="MB per network",
        title="memory per network (simulator: peak, dotted: persistent state)",
    )
    for ax in (ax_rate, ax_mem):
        ax.set_xticks(batches, [f"{b // 1024}k" if b >= 1024 and b % 1024 == 0 else str(b) for b in batches])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.grid(True, which="major", alpha=0.3)
        # one entry per label: a device's runs of other batch sweeps draw the same kinds of line
        entries = dict(zip(*reversed(ax.get_legend_handles_labels())))
        if entries:
            ax.legend(
                entries.values(),
                entries.keys(),
                fontsize=7,
                loc="upper center",
                bbox_to_anchor=(0.5, -0.12),
                ncols=2,
                frameon=False,
            )
    devices = ", ".join(dict.fromkeys(doc["device"] for doc in docs))
    fig.suptitle(f"neuroloop_gpu throughput: {devices}", fontsize=9)
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def plot_traffic(rows: Sequence[Mapping], docs: Sequence[Mapping] = (), path: str | Path | None = None) -> Figure:
    """The pure-torch step's bandwidth bounds (rows of :func:`~neuroloop_gpu.bench.traffic.traffic_model`)
    beside the GPU throughput measured at the same network size (the best batch of each device and backend
    in ``docs``, simulator target) and the issue-5 target, as horizontal bars on a log axis. A measured bar
    takes the colour of the bound for its GPU."""
    size = rows[0]["size"]
    names = list(rows[0]["bounds"])
    measured: dict[tuple[str, str], float] = {}
    for doc in docs:
        for r in doc["results"] if doc["device_type"] == "cuda" else ():
            if r.get("target") == "simulator" and r.get("size") == size and "env_steps_per_s" in r:
                key = (_device_label(doc), r.get("backend", "eager"))
                measured[key] = max(measured.get(key, 0.0), r["env_steps_per_s"])
    fig = Figure(figsize=(10, 2.2 + 0.42 * (len(rows) + len(measured))), layout="constrained")
    ax = fig.subplots()
    height = 0.8 / len(names)
    ticks, labels = [], []
    for y, row in enumerate(rows):
        for j, name in enumerate(names):
            value = row["bounds"][name]
            ax.barh(y + (j - (len(names) - 1) / 2) * height, value, height, color=f"C{j}", label=f"bound at {name}")
            ax.text(value, y + (j - (len(names) - 1) / 2) * height, f" {value:,.0f}", va="center", fontsize=7)
        ticks.append(y)
        labels.append(f"model: {row['synapses']} synapses, {row['scenario']}")
    for y, ((device, backend), value) in enumerate(measured.items(), start=len(rows)):
        color = next((f"C{j}" for j, name in enumerate(names) if name.split()[0] in device), "0.5")
        ax.barh(y, value, 0.8, color=color, hatch="//", edgecolor="white")
        ax.text(value, y, f" {value:,.0f}", va="center", fontsize=7)
        ticks.append(y)
        labels.append(f"measured: {device}, {backend}")
    if size in GPU_TARGETS:
        ax.axvline(
            GPU_TARGETS[size], color="k", linestyle="--", linewidth=1, label=f"target {GPU_TARGETS[size]:,} env-steps/s"
        )
    ax.set_yticks(ticks, labels, fontsize=8)
    ax.invert_yaxis()
    smallest = min([*measured.values(), *(v for row in rows for v in row["bounds"].values())])
    ax.set_xlim(left=10 ** math.floor(math.log10(smallest / 2)))  # log bars start at the left edge
    ax.set(
        xscale="log",
        xlabel="env-steps/s (20 ms windows, summed over networks)",
        title=f"{size} networks: memory-traffic bounds of the pure-torch step (model, B = {rows[0]['batch']}) "
        "and measured GPU throughput",
    )
    ax.title.set_fontsize(9)
    ax.grid(True, axis="x", alpha=0.3)
    entries = dict(zip(*reversed(ax.get_legend_handles_labels())))
    if measured:
        entries["measured (hatched; best batch, colour of its GPU)"] = Patch(
            facecolor="0.6", hatch="//", edgecolor="white"
        )
    ax.legend(
        entries.values(),
        entries.keys(),
        fontsize=7,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.14),
        ncols=2,
        frameon=False,
    )
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig
