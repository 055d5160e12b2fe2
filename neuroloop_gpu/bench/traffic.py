"""How many bytes one Euler step of the pure-torch path moves through device memory, and the throughput
bound that puts on a GPU, counted without a GPU.

:func:`traffic_model` runs one decision window of the benchmark workload (the FTSTS pulse train, after one
warm-up window) with ``backend="eager"`` under a ``TorchDispatchMode`` that sees every aten operator, and
models each operator's memory traffic: it reads its operands and writes its results once (a gather reads
only the elements it takes, a scatter touches only the elements it sends; views move nothing), and nothing
stays in a cache from one operator to the next. The operators are the ones a GPU runs (same code; the
event path's list lengths depend on the spikes of the window). Three fusion scenarios (:data:`SCENARIOS`):

* ``eager``: every operator is its own kernel (what ``backend="eager"`` launches).
* ``fused functions``: each :class:`~neuroloop_gpu.network.dynamics.StepKernels` function (the membrane
  noise, the neuron update, the synaptic filter and traces, the two STDP passes) is one kernel that reads
  what it needs from outside once and writes what outlives it once: the most ``backend="compiled"`` could
  fuse (it fuses less: the noise's logarithm, sine and cosine stay eager).
* ``fused steps``: each Euler step with its monitoring is one kernel (the noise one more, for the steps it
  is drawn for): the floor for any design that keeps the networks' state in device memory from one step to
  the next, CUDA graphs included. The Triton backend escapes it by keeping the state on chip for a window.

The bound is ``bandwidth / (bytes per network-step x steps per window)`` env-steps/s at the peak DRAM
bandwidths of :data:`BANDWIDTHS` (vendor figures). A model, not a measurement of a GPU: caches make real
traffic lower, and kernels reach only part of the peak bandwidth.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import weakref
from collections import Counter
from unittest import mock

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from tqdm.auto import tqdm

from ..config import require_count
from ..network import NetworkBatch, simulator
from ..network.monitors import WindowMonitor
from ..stimulus import PulseTrain
from .harness import resolve_device
from .workload import STIM_AMPLITUDE_MV, STIM_FREQUENCY_HZ, STIM_PULSE_WIDTH_US, parse_size

aten = torch.ops.aten
BANDWIDTHS = {"H100 SXM (3.35 TB/s)": 3.35e12, "H200 (4.8 TB/s)": 4.8e12}  # peak DRAM bandwidth, bytes/s
SCENARIOS = ("eager", "fused functions", "fused steps")
GATHERS = {aten.index_select, aten.gather, aten.index, aten.take}  # read only the elements they take
SCATTERS = {
    aten.index_add_,
    aten.index_copy_,
    aten.index_reduce_,
    aten.scatter_,
    aten.scatter_add_,
    aten.scatter_reduce_,
    aten.index_put_,
    aten._index_put_impl_,
}  # touch only the elements they send
OVERWRITES = {aten.fill_, aten.zero_, aten.copy_, aten.index_copy_, aten.scatter_}  # write without reading
UNWRITTEN = {aten.empty, aten.empty_like, aten.empty_strided, aten.new_empty}  # allocate, move nothing
# a GPU waits for these (bincount: for its max); a ``tolist`` is no operator, so the one read per window
# that checks the pulse train's values is not counted
HOST_READS = {aten._local_scalar_dense, aten.nonzero, aten.bincount}


def footprint(tensor: torch.Tensor) -> int:
    """Bytes of the distinct elements a tensor addresses (a broadcast dimension counts once)."""
    elements = 1
    for size, stride in zip(tensor.shape, tensor.stride()):
        elements *= size if stride else 1
    return elements * tensor.element_size() if tensor.numel() else 0


def _operands(func, args, kwargs):
    """(schema argument, tensor) for every tensor operand, lists of tensors unpacked."""
    for position, argument in enumerate(func._schema.arguments):
        value = args[position] if position < len(args) else kwargs.get(argument.name)
        for item in value if isinstance(value, (list, tuple)) else (value,):
            if isinstance(item, torch.Tensor):
                yield argument, item


def op_traffic(func, args, kwargs, result):
    """The modelled (tensor, bytes) reads and writes of one operator call, and the tensors it created."""
    kind = func.overloadpacket
    tensors = list(_operands(func, args, kwargs))
    returned = [t for t in (result if isinstance(result, (list, tuple)) else (result,)) if isinstance(t, torch.Tensor)]
    touched = max((t.numel() for arg, t in tensors if arg.name != "self"), default=0)  # scatter: elements sent
    reads, writes = [], []
    for argument, tensor in tensors:
        written = argument.alias_info is not None and argument.alias_info.is_write
        if kind in SCATTERS and argument.name == "self":
            size = min(footprint(tensor), touched * tensor.element_size())
            writes.append((tensor, size))
            if kind not in OVERWRITES:
                reads.append((tensor, size))
        elif written:  # in place (add_: also read) or out= (written only)
            writes.append((tensor, footprint(tensor)))
            if argument.name == "self" and kind not in OVERWRITES:
                reads.append((tensor, footprint(tensor)))
        elif kind in GATHERS and argument.name == "self":
            taken = sum(t.numel() for t in returned) * tensor.element_size()
            reads.append((tensor, min(footprint(tensor), taken)))
        else:
            reads.append((tensor, footprint(tensor)))
    fresh = [t for t, out in zip(returned, func._schema.returns) if out.alias_info is None]
    if kind not in UNWRITTEN:
        writes.extend((t, footprint(t)) for t in fresh)
    return reads, writes, fresh


def _storage(tensor: torch.Tensor) -> int:
    return tensor.untyped_storage().data_ptr()


class _Region:
    """One fused kernel: reads what comes from outside once, writes in place to outside tensors, and
    writes what it created only if it outlives the region."""

    def __init__(self):
        self.reads, self.writes, self.created = Counter(), Counter(), {}

    def add(self, reads, writes, fresh):
        for tensor, size in reads:
            key = _storage(tensor)
            if key not in self.created:
                self.reads[key] = min(self.reads[key] + size, tensor.untyped_storage().nbytes())
        for tensor in fresh:  # created here: written only if it survives the region
            self.created[_storage(tensor)] = weakref.ref(tensor)
        for tensor, size in writes:
            key = _storage(tensor)
            if key not in self.created:
                self.writes[key] = min(self.writes[key] + size, tensor.untyped_storage().nbytes())

    def close(self) -> tuple[int, int]:
        survivors = (ref() for ref in self.created.values())
        written = sum(self.writes.values()) + sum(t.untyped_storage().nbytes() for t in survivors if t is not None)
        return sum(self.reads.values()), written


class TrafficCounter(TorchDispatchMode):
    """Operators, modelled bytes read and written, and host reads of everything that runs under it; the
    operators of a :meth:`fused` function count as one kernel."""

    def __init__(self):
        super().__init__()
        self.ops = self.read = self.written = self.host_reads = 0
        self._region: _Region | None = None
        self.part = "the rest"  # what runs now (see :meth:`labelled`)
        self.ops_by_part, self.bytes_by_part = Counter(), Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        if func.is_view or func.overloadpacket in (aten.detach, aten.lift_fresh):
            return result
        self.host_reads += func.overloadpacket in HOST_READS
        reads, writes, fresh = op_traffic(func, args, kwargs, result)
        if self._region is not None:
            self._region.add(reads, writes, fresh)
        else:
            self.ops += 1
            self.read += sum(size for _, size in reads)
            self.written += sum(size for _, size in writes)
            self.ops_by_part[self.part] += 1
            self.bytes_by_part[self.part] += sum(size for _, size in reads + writes)
        return result

    def open_region(self) -> None:
        if self._region is None:
            self._region = _Region()
            self.ops += 1

    def close_region(self) -> None:
        if self._region is not None:
            read, written = self._region.close()
            self._region = None
            self.read += read
            self.written += written

    def fused(self, function):
        """``function`` counted as one kernel."""

        def run(*args, **kwargs):
            self.open_region()
            try:
                return function(*args, **kwargs)
            finally:
                self.close_region()

        return run

    def labelled(self, name: str, function):
        """``function`` with its operators counted under ``name`` in ``*_by_part``."""

        def run(*args, **kwargs):
            outer, self.part = self.part, name
            try:
                return function(*args, **kwargs)
            finally:
                self.part = outer

        return run


def count_window(net: NetworkBatch, train: PulseTrain, scenario: str) -> TrafficCounter:
    """The traffic of one window of ``net`` (``backend="eager"``) under ``scenario``; ``net`` is left as
    it was, so that every scenario counts the same window. Under ``"eager"`` the counter also splits the
    traffic by part: the StepKernels functions, the window monitor and the rest."""
    saved = copy.deepcopy((net.state, net.stimulator, net._ring_position))
    counter, kernels = TrafficCounter(), net._kernels
    names = [field.name for field in dataclasses.fields(kernels)]
    patches = contextlib.ExitStack()
    if scenario == "eager":
        net._kernels = dataclasses.replace(kernels, **{n: counter.labelled(n, getattr(kernels, n)) for n in names})
        monitored = counter.labelled("monitor", WindowMonitor.observe)
        patches.enter_context(mock.patch.object(WindowMonitor, "observe", monitored))
    elif scenario == "fused functions":
        net._kernels = dataclasses.replace(kernels, **{n: counter.fused(getattr(kernels, n)) for n in names})
    else:  # each step and its monitoring in one region; the noise in its own
        net._kernels = dataclasses.replace(kernels, noise=counter.fused(kernels.noise))
        step, observe = simulator.euler_step, WindowMonitor.observe

        def step_opening(*args, **kwargs):
            counter.open_region()
            return step(*args, **kwargs)

        def observe_closing(*args, **kwargs):
            try:
                return observe(*args, **kwargs)
            finally:
                counter.close_region()

        patches.enter_context(mock.patch.object(simulator, "euler_step", step_opening))
        patches.enter_context(mock.patch.object(WindowMonitor, "observe", observe_closing))
    try:
        with patches, counter:
            net.run_window(train)
    finally:
        net._kernels, (net.state, net.stimulator, net._ring_position) = kernels, saved
    return counter


def traffic_model(
    size: str = "full", batch: int = 32, synapses=("event", "dense"), device: str = "cpu", progress: bool = True
) -> list[dict]:
    """One row per synaptic update and scenario: ``synapses``, ``scenario``, ``ops_per_step``,
    ``read_mb`` and ``written_mb`` (per network-step), ``host_reads_per_step``, ``bounds`` (env-steps/s
    per entry of :data:`BANDWIDTHS`) and, for ``"eager"``, ``parts`` ({part: (ops, MB) per network-step},
    largest first). ``device``: ``"cpu"``, ``"cuda"`` or ``"auto"`` (the operators are the same)."""
    require_count("batch", batch)
    size, device = parse_size(size), resolve_device(device)
    rows = []
    with tqdm(
        total=len(synapses) * (1 + len(SCENARIOS)), desc=f"traffic model, {size.name}", disable=not progress
    ) as bar:
        for mode in synapses:
            net = NetworkBatch(batch, size.params(), device=device, backend="eager", synapses=mode)
            train = PulseTrain.constant(batch, STIM_AMPLITUDE_MV, STIM_FREQUENCY_HZ, STIM_PULSE_WIDTH_US, device=device)
            net.run_window(train)  # warm-up: plasticity and the pulse train under way, as in the benchmark
            bar.update()
            per_step = batch * net.steps_per_window  # network-steps in the window
            for scenario in SCENARIOS:
                counter = count_window(net, train, scenario)
                moved = (counter.read + counter.written) / per_step
                row = {
                    "synapses": mode,
                    "scenario": scenario,
                    "size": size.name,
                    "batch": batch,
                    "ops_per_step": counter.ops / net.steps_per_window,
                    "read_mb": counter.read / per_step / 1e6,
                    "written_mb": counter.written / per_step / 1e6,
                    "host_reads_per_step": counter.host_reads / net.steps_per_window,
                    "bounds": {
                        name: bandwidth / (moved * net.steps_per_window) for name, bandwidth in BANDWIDTHS.items()
                    },
                }
                if scenario == "eager":
                    row["parts"] = {
                        part: (counter.ops_by_part[part] / net.steps_per_window, nbytes / per_step / 1e6)
                        for part, nbytes in counter.bytes_by_part.most_common()
                    }
                rows.append(row)
                bar.update()
    return rows


def format_traffic(rows: list[dict]) -> str:
    """The rows of :func:`traffic_model` as two Markdown tables: the scenarios, and the eager step by part."""
    first = rows[0]
    names = list(first["bounds"])
    lines = [
        f"{first['size']}, B = {first['batch']}, one window under the FTSTS pulse train; MB per "
        f"network-step (modelled DRAM traffic), bounds in env-steps/s",
        "",
        "| synapses | scenario | ops per step | MB read | MB written | host reads per step | "
        + " | ".join(f"bound, {name}" for name in names)
        + " |",
        "|---|---|---|---|---|---|" + "---|" * len(names),
    ]
    lines += [
        f"| {r['synapses']} | {r['scenario']} | {r['ops_per_step']:.1f} | {r['read_mb']:.3f} | "
        f"{r['written_mb']:.3f} | {r['host_reads_per_step']:.1f} | "
        + " | ".join(f"{r['bounds'][name]:,.0f}" for name in names)
        + " |"
        for r in rows
    ]
    lines += [
        "",
        "Where the eager step's traffic goes (the StepKernels functions, the window monitor, the rest):",
        "",
        "| synapses | part | ops per step | MB per step | share of the bytes |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        total = sum(mb for _, mb in r.get("parts", {}).values())
        lines += [
            f"| {r['synapses']} | {part} | {ops:.1f} | {mb:.3f} | {mb / total:.0%} |"
            for part, (ops, mb) in r.get("parts", {}).items()
        ]
    return "\n".join(lines)
