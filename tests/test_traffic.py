"""neuroloop_gpu.bench.traffic: the memory-traffic model of the pure-torch step, and its script."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from matplotlib.colors import to_rgba
from test_figures import assert_png_shows, assert_traffic_figure

from neuroloop_gpu.bench import format_traffic, plot_traffic, traffic, traffic_model
from neuroloop_gpu.config import NetworkParams
from neuroloop_gpu.network import NetworkBatch
from neuroloop_gpu.stimulus import PulseTrain

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "gpu_tuning" / "torch_traffic.py"


def _count(action) -> tuple[int, int, int, int]:
    counter = traffic.TrafficCounter()
    with counter:
        action()
    return counter.ops, counter.read, counter.written, counter.host_reads


def test_each_operator_reads_its_operands_and_writes_its_results():
    a, b, out = torch.ones(1000), torch.ones(1000), torch.empty(1000)
    index, sent = torch.arange(10), torch.ones(10)
    assert _count(lambda: a + b) == (1, 8000, 4000, 0)
    assert _count(lambda: a + torch.ones(1)[0]) == (2, 4004, 4004, 0)  # the scalar's factory is an op too
    assert _count(lambda: a.view(10, 100).t().expand(2, 100, 10)) == (0, 0, 0, 0)  # views move nothing
    assert _count(lambda: a.expand(3, 1000) * 2.0) == (1, 4000, 12000, 0)  # a broadcast operand is read once
    assert _count(lambda: torch.add(a, b, out=out)) == (1, 8000, 4000, 0)  # out=: written, not read
    assert _count(lambda: a.add_(b)) == (1, 8000, 4000, 0)  # in place: read and written
    assert _count(lambda: a.index_select(0, index)) == (1, 80 + 40, 40, 0)  # a gather reads what it takes
    assert _count(lambda: a.index_add_(0, index, sent)) == (1, 80 + 40 + 40, 40, 0)  # a scatter touches what it sends
    assert _count(lambda: a.index_copy_(0, index, sent)) == (1, 80 + 40, 40, 0)  # ... and overwrites without reading
    assert _count(lambda: a.sum().item()) == (2, 4004, 4, 1)  # the item is a host read
    assert _count(lambda: torch.empty(1000)) == (1, 0, 0, 0)


def test_a_fused_region_reads_its_inputs_once_and_writes_what_outlives_it():
    counter = traffic.TrafficCounter()
    a, b, c = torch.ones(1000), torch.ones(1000), torch.ones(1000)
    with counter:
        result = counter.fused(lambda: (a + b) * c * a)()  # two temporaries, a read twice
    assert (counter.ops, counter.read, counter.written) == (1, 12000, 4000)
    counter = traffic.TrafficCounter()
    with counter:
        counter.fused(lambda: a.add_(b * 2.0))()  # in place on an outside tensor: written; b * 2 stays on chip
    assert (counter.ops, counter.read, counter.written) == (1, 8000, 4000)
    assert result.shape == (1000,)


def _network(synapses: str) -> tuple[NetworkBatch, PulseTrain]:
    params = NetworkParams(num_e=40, num_i=10)
    net = NetworkBatch(2, params, seeds=[3, 4], device="cpu", backend="eager", synapses=synapses)
    return net, PulseTrain.constant(2, 100.0, frequency=250.0, pulse_width=500.0)


@pytest.mark.parametrize("synapses", ["event", "dense"])
def test_fusing_more_moves_less_and_the_dense_step_never_reads_on_the_host(synapses):
    net, train = _network(synapses)
    twin, _ = _network(synapses)
    net.run_window(train)
    twin.run_window(train)
    counts = {scenario: traffic.count_window(net, train, scenario) for scenario in traffic.SCENARIOS}
    eager, functions, steps = (counts[s] for s in traffic.SCENARIOS)
    assert eager.ops > functions.ops > steps.ops >= net.steps_per_window
    assert eager.read > functions.read > steps.read > 0 and eager.written > functions.written > steps.written > 0
    assert (eager.host_reads > net.steps_per_window) if synapses == "event" else (eager.host_reads == 0)
    # the eager traffic, part by part, adds up
    assert sum(eager.bytes_by_part.values()) == eager.read + eager.written
    assert sum(eager.ops_by_part.values()) == eager.ops
    assert {"noise", "neurons", "synapses_and_traces", "monitor", "the rest"} <= set(eager.bytes_by_part)
    # counting leaves the networks where they were: the next window matches an uncounted twin's
    after, twin_after = net.run_window(train).stats, twin.run_window(train).stats
    assert torch.equal(after.kop, twin_after.kop) and torch.equal(net.state.v, twin.state.v)


def test_model_rows_tables_and_figure(tmp_path):
    rows = traffic_model("20/5", batch=2, synapses=("event",), progress=False)
    assert [row["scenario"] for row in rows] == list(traffic.SCENARIOS)
    eager = rows[0]
    assert set(eager["bounds"]) == set(traffic.BANDWIDTHS) and all(v > 0 for v in eager["bounds"].values())
    # the bound is the bandwidth over the bytes of a window: twice the bandwidth, twice the bound
    (h100, h200), moved = eager["bounds"].values(), (eager["read_mb"] + eager["written_mb"]) * 1e6 * 200
    assert h200 / h100 == pytest.approx(4.8 / 3.35) and h200 == pytest.approx(4.8e12 / moved)
    assert sum(mb for _, mb in eager["parts"].values()) == pytest.approx(eager["read_mb"] + eager["written_mb"])
    text = format_traffic(rows)
    assert text.count("| event | ") == len(traffic.SCENARIOS) + len(eager["parts"]) and "| event | noise |" in text
    measured = {
        "device_type": "cuda",
        "device": "cuda: NVIDIA H200",
        "environment": {"gpu": "NVIDIA H200"},
        "results": [{"target": "simulator", "size": "20/5", "backend": "triton", "env_steps_per_s": 5e5}],
    }
    figure = plot_traffic(rows, [measured], path=tmp_path / "traffic.png")
    assert_traffic_figure(figure, rows, [measured])  # every bound's bar and value, the measured bar
    labels = [label.get_text() for label in figure.axes[0].get_yticklabels()]
    assert labels[-1] == "measured: NVIDIA H200, triton" and len(labels) == len(rows) + 1
    measured_bar = figure.axes[0].patches[-1]  # 5e5 env-steps/s in the colour of the H200 bound (C1)
    assert measured_bar.get_width() == 5e5 and measured_bar.get_facecolor() == to_rgba("C1")
    assert_png_shows(tmp_path / "traffic.png", plot_traffic(rows, [measured]))  # the file is that figure


@pytest.mark.parametrize(
    "arguments,message",
    [
        (["--size", "40x10"], "sizes must be 'small' (160/40), 'full' (1600/400) or 'NE/NI'"),
        (["--batch", "0"], "batch must be an integer >= 1, got 0"),
    ],
)
def test_script_bad_options_are_clear_errors(arguments, message):
    done = subprocess.run([sys.executable, str(SCRIPT), *arguments], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without CUDA")
def test_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match="CUDA is not available"):
        traffic_model("20/5", batch=1, device="cuda", progress=False)


def test_script_prints_the_tables():
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--size", "40/10", "--batch", "2", "--synapses", "event"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| event")]
    scenarios, parts = rows[: len(traffic.SCENARIOS)], rows[len(traffic.SCENARIOS) :]
    assert [row.split("|")[2].strip() for row in scenarios] == list(traffic.SCENARIOS)
    assert "noise" in {row.split("|")[2].strip() for row in parts}
