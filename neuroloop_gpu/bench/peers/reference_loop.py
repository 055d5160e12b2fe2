"""Peer: the port-faithful one-network loop (:class:`neuroloop_gpu.reference.ReferenceNetwork`).

NumPy, float64, Python loops over neurons and spiking neurons' synapses, the
per-synapse STDP traces of the published code: the speed of a plain port of
the original simulator. Its connectivity (p = 0.1 per ordered pair) and noise
(one standard normal per neuron per step) come from ``numpy.random`` with the
given seed, drawn inside the timed loop as the original does; its stimulus is
the workload's pulse train (:func:`~neuroloop_gpu.bench.workload.pulse_train_per_step`).
"""

from __future__ import annotations

import numpy as np

from ...reference import ReferenceNetwork
from ..measure import MemoryProbe, summarize_times, time_windows
from ..workload import STEP_MS, WINDOW_MS, Size, pulse_train_per_step


def state_bytes(net: ReferenceNetwork) -> int:
    """Bytes of the arrays a reference network holds (state, weights, per-synapse traces, delay histories)."""
    total = 0
    for value in vars(net).values():
        items = value if isinstance(value, list) else [value]
        total += sum(item.nbytes for item in items if isinstance(item, np.ndarray))
    return total


def run_reference(
    size: Size, *, windows: int, repeats: int, warmup: int, seed: int = 0, synaptic_input: str = "published"
) -> dict:
    """Time one reference network on the workload; returns a peer record (see the harness)."""
    params = size.params(synaptic_input=synaptic_input)
    steps = round(WINDOW_MS / STEP_MS)
    probe = MemoryProbe().start()
    rng = np.random.default_rng(seed)
    ei = rng.random((params.num_e, params.num_i)) < params.connection_prob
    ie = rng.random((params.num_i, params.num_e)) < params.connection_prob
    net = ReferenceNetwork(params, STEP_MS, ei, ie)
    stimulus = pulse_train_per_step(steps * (warmup + windows * repeats), STEP_MS)
    spikes = np.zeros(2, dtype=np.int64)

    def window() -> None:
        for _ in range(steps):
            noise = rng.standard_normal(params.num_e + params.num_i)
            spiked_e, spiked_i = net.step(float(stimulus[net.n]), noise[: params.num_e], noise[params.num_e :])
            spikes[0] += spiked_e.sum()
            spikes[1] += spiked_i.sum()

    times = time_windows(window, windows, repeats, warmup)
    seconds = net.n * STEP_MS / 1000.0
    return {
        "peer": "reference",
        "size": size.name,
        "num_e": size.num_e,
        "num_i": size.num_i,
        "batch": 1,
        "device": "cpu",
        "windows": windows,
        "repeats": repeats,
        "warmup": warmup,
        **summarize_times(times, 1, WINDOW_MS),
        "memory": {
            "peak_bytes_per_network": probe.peak_bytes(),
            "persistent_bytes_per_network": state_bytes(net),
            "method": probe.method + "; persistent: the NumPy arrays the network holds, S/X histories included",
        },
        "activity": {
            "simulated_s": seconds,
            "rate_e_hz": float(spikes[0]) / (params.num_e * seconds),
            "rate_i_hz": float(spikes[1]) / (params.num_i * seconds),
            "mean_weight_mv": float(net.w[ei].mean()) * params.j_i,
        },
        "notes": "neuroloop_gpu.reference.ReferenceNetwork, NumPy float64, one core, synaptic_input="
        f"{params.synaptic_input!r}",
    }
