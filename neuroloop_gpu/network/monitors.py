"""Per-window measurements and optional recording, on the device.

Accumulators are running sums updated every Euler step (no history is kept
unless recording is asked for); recording writes into buffers allocated once
per window.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import RecordConfig
from ..synchrony import causal_order, chi_from_moments, ordered_sum
from .state import NetworkState


def population_mean(values: torch.Tensor) -> torch.Tensor:
    """Mean over the last dim, summed in neuron order (:func:`~neuroloop_gpu.synchrony.ordered_sum`)."""
    return ordered_sum(values) / values.shape[-1]


def mean_weight_mv(weight: torch.Tensor, valid: torch.Tensor, j_i: float) -> torch.Tensor:
    """[B] mean J_I * w over the real synapses (``valid`` [B, S] masks out padding), mV."""
    return j_i * torch.where(valid, weight, 0.0).sum(-1) / valid.sum(-1).clamp(min=1)


@dataclass
class WindowStats:
    """One decision window of every network ([B] tensors, physical units)."""

    chi: torch.Tensor  # Golomb voltage synchrony of the E population, 0..1
    kop: torch.Tensor  # causal Kuramoto order parameter of E, mean over the window, 0..1
    v_e_mean: torch.Tensor  # mV, over E neurons and steps
    v_e_std: torch.Tensor  # mV
    v_i_mean: torch.Tensor  # mV
    v_i_std: torch.Tensor  # mV
    weight_mv: torch.Tensor  # mean J_I * w over the E->I synapses at window end, mV
    rate_e: torch.Tensor  # Hz, mean firing rate of E neurons
    rate_i: torch.Tensor  # Hz
    energy: torch.Tensor  # mV^2 ms, integral of the squared stimulus
    charge: torch.Tensor  # mV ms, integral of the absolute stimulus
    net_charge: torch.Tensor  # mV ms, integral of the stimulus (0 for whole pulses)


@dataclass
class WindowRecording:
    """Per-step recordings of one window (present only when enabled)."""

    spikes_e: torch.Tensor | None  # [B, steps, num_e] bool
    v_e_mean: torch.Tensor | None  # [B, steps] mV
    v_i_mean: torch.Tensor | None  # [B, steps] mV
    weight_mv: torch.Tensor | None  # [B, steps] mean J_I * w, mV


class WindowMonitor:
    """Accumulates :class:`WindowStats` (and a :class:`WindowRecording`) over one window."""

    def __init__(
        self,
        state: NetworkState,
        steps: int,
        kop_every: int,
        record: RecordConfig,
        shift: float,
        synapse_valid: torch.Tensor,
        j_i: float,
    ):
        batch, num_e = state.v_e.shape
        dtype, device = state.v_e.dtype, state.v_e.device
        self.steps, self.kop_every, self.shift, self.j_i = steps, kop_every, shift, j_i
        self.synapse_valid = synapse_valid
        zeros = lambda *shape: torch.zeros(*shape, dtype=dtype, device=device)  # noqa: E731
        self.mean_e_sum, self.mean_e_sq_sum = zeros(batch), zeros(batch)
        self.neuron_e_sum, self.neuron_e_sq_sum = zeros(batch, num_e), zeros(batch, num_e)
        self.v_i_sum, self.v_i_sq_sum = zeros(batch), zeros(batch)
        self.spikes_e, self.spikes_i = zeros(batch), zeros(batch)
        self.kop_sum, self.kop_samples = zeros(batch), 0
        self.raster = torch.zeros(batch, steps, num_e, dtype=torch.bool, device=device) if record.spikes_e else None
        self.traces = zeros(3, batch, steps) if record.traces else None

    def accumulators(self) -> tuple[torch.Tensor, ...]:
        """The running sums a fused kernel updates in place, in its order."""
        return (
            self.mean_e_sum,
            self.mean_e_sq_sum,
            self.neuron_e_sum,
            self.neuron_e_sq_sum,
            self.v_i_sum,
            self.v_i_sq_sum,
            self.spikes_e,
            self.spikes_i,
        )

    def observe(
        self,
        k: int,
        state: NetworkState,
        spiked: torch.Tensor,
        accumulated: bool = False,
        sampled_from: int | None = None,
    ) -> None:
        """Account for step ``k`` of the window, after it ran (``spiked`` [B, N], E first);
        ``accumulated``: the steps up to ``k`` already added themselves to :meth:`accumulators` (a
        kernel backend that ran several steps in one call observes once, after its last);
        ``sampled_from``: that call began at step ``sampled_from`` and also added its causal Kuramoto
        samples to ``kop_sum``."""
        num_e = state.num_e
        spiked_e, spiked_i = spiked[:, :num_e], spiked[:, num_e:]
        if not accumulated:
            v_e = state.v_e - self.shift
            mean_e = population_mean(v_e)
            self.mean_e_sum += mean_e
            self.mean_e_sq_sum.addcmul_(mean_e, mean_e)
            self.neuron_e_sum += v_e
            self.neuron_e_sq_sum.addcmul_(v_e, v_e)
            v_i = state.v_i - self.shift
            self.v_i_sum += population_mean(v_i)
            self.v_i_sq_sum += population_mean(v_i * v_i)
            self.spikes_e += spiked_e.sum(-1)
            self.spikes_i += spiked_i.sum(-1)
        if sampled_from is not None:
            self.kop_samples += (k + 1) // self.kop_every - sampled_from // self.kop_every
        elif (k + 1) % self.kop_every == 0:
            self.kop_sum += causal_order(state.last_spike_e, state.last_isi_e, state.step.to(torch.int32))
            self.kop_samples += 1
        if self.raster is not None:
            self.raster[:, k] = spiked_e
        if self.traces is not None:
            self.traces[0, :, k] = state.v_e.mean(-1)
            self.traces[1, :, k] = state.v_i.mean(-1)
            self.traces[2, :, k] = mean_weight_mv(state.weight, self.synapse_valid, self.j_i)

    def finish(
        self, state: NetworkState, step_size: float, energy, charge, net_charge
    ) -> tuple[WindowStats, WindowRecording]:
        n = self.steps
        num_e, num_i = state.v_e.shape[1], state.v_i.shape[1]
        e_mean = self.neuron_e_sum.mean(-1) / n
        e_var = self.neuron_e_sq_sum.mean(-1) / n - e_mean**2
        i_mean = self.v_i_sum / n
        i_var = self.v_i_sq_sum / n - i_mean**2
        seconds = n * step_size * 1e-3
        dtype = state.v_e.dtype
        stats = WindowStats(
            chi=chi_from_moments(self.mean_e_sum, self.mean_e_sq_sum, self.neuron_e_sum, self.neuron_e_sq_sum, n),
            kop=self.kop_sum / max(1, self.kop_samples),
            v_e_mean=e_mean + self.shift,
            v_e_std=e_var.clamp(min=0).sqrt(),
            v_i_mean=i_mean + self.shift,
            v_i_std=i_var.clamp(min=0).sqrt(),
            weight_mv=mean_weight_mv(state.weight, self.synapse_valid, self.j_i),
            rate_e=self.spikes_e / (num_e * seconds),
            rate_i=self.spikes_i / (num_i * seconds),
            energy=energy.to(dtype),
            charge=charge.to(dtype),
            net_charge=net_charge.to(dtype),
        )
        traces = self.traces
        recording = WindowRecording(
            spikes_e=self.raster,
            v_e_mean=None if traces is None else traces[0],
            v_i_mean=None if traces is None else traces[1],
            weight_mv=None if traces is None else traces[2],
        )
        return stats, recording
