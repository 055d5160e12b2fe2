"""Everything about a batch of networks that changes while it runs.

All tensors are ``[B, ...]`` (ring buffers ``[delay_steps, B, ...]``) on one
device. Neuron tables that synapses index into carry one extra "dummy"
column (index ``num_e`` / ``num_i``) that never spikes; padding synapses
point at it. The synaptic filters X and S are kept *delayed*: the state holds
X(t - d) and S(t - d), fed by a ring buffer of the inputs computed d earlier,
which is exactly the spec's Z(t) = J / C * S(t - d) (the filter is causal and
starts from zero) and stays continuous across decision windows.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from ..config import NetworkParams


@dataclass
class NetworkState:
    """Neuron variables are ``[B, num_e + num_i]``, E neurons first (one op updates both
    populations); the ``*_e`` / ``*_i`` properties are views of the two halves."""

    v: torch.Tensor  # [B, N] mV membrane potential
    refractory: torch.Tensor  # [B, N] held steps left (-1: free), small whole numbers in the working dtype
    x: torch.Tensor  # [B, N] delayed rise variable X of the synaptic input (E: from I, I: from E)
    s: torch.Tensor  # [B, N] delayed synaptic variable S
    spiked_pre: torch.Tensor  # [B, num_e + 1] bool E spikes of the last step (dummy column: never)
    trace_pre: torch.Tensor  # [B, num_e + 1] presynaptic STDP trace A_pre of each E neuron
    spiked_post: torch.Tensor  # [B, num_i + 1] bool I spikes of the last step
    trace_post: torch.Tensor  # [B, num_i + 1] postsynaptic STDP trace A_post of each I neuron
    weight: torch.Tensor  # [B, S_ei] E->I weights w (J_I * w in mV)
    ring_spikes_i: torch.Tensor  # [D, B, num_i + 1] bool, I spikes on their way to E neurons
    ring_input_i: torch.Tensor  # [D, B, num_i] E->I input on its way to I neurons (0: none)
    last_spike_e: torch.Tensor  # [B, num_e] int32 step of the last E spike (-1: none)
    last_isi_e: torch.Tensor  # [B, num_e] int32 last E inter-spike interval in steps (0: none)
    step: torch.Tensor  # [B] int64 Euler steps since reset
    episode: torch.Tensor  # [B] int64 resets since the seed was set (selects the noise stream)
    seed: torch.Tensor  # [B] int64 network seed (connectivity and noise)

    @classmethod
    def initial(
        cls, params: NetworkParams, seeds: torch.Tensor, num_synapses: int, delay_steps: int, dtype: torch.dtype
    ) -> "NetworkState":
        """Published initial condition: every V = v_reset, synaptic variables 0, w = w_init."""
        batch, device = seeds.shape[0], seeds.device
        ne, ni = params.num_e, params.num_i

        def zeros(*shape: int, kind: torch.dtype = dtype) -> torch.Tensor:
            return torch.zeros(*shape, dtype=kind, device=device)

        return cls(
            v=torch.full((batch, ne + ni), params.v_reset, dtype=dtype, device=device),
            refractory=torch.full((batch, ne + ni), -1.0, dtype=dtype, device=device),
            x=zeros(batch, ne + ni),
            s=zeros(batch, ne + ni),
            spiked_pre=zeros(batch, ne + 1, kind=torch.bool),
            trace_pre=zeros(batch, ne + 1),
            spiked_post=zeros(batch, ni + 1, kind=torch.bool),
            trace_post=zeros(batch, ni + 1),
            weight=torch.full((batch, num_synapses), params.plasticity.w_init, dtype=dtype, device=device),
            ring_spikes_i=zeros(delay_steps, batch, ni + 1, kind=torch.bool),
            ring_input_i=zeros(delay_steps, batch, ni),
            last_spike_e=torch.full((batch, ne), -1, dtype=torch.int32, device=device),
            last_isi_e=zeros(batch, ne, kind=torch.int32),
            step=zeros(batch, kind=torch.int64),
            episode=zeros(batch, kind=torch.int64),
            seed=seeds.to(torch.int64).clone(),
        )

    @property
    def num_e(self) -> int:
        return self.trace_pre.shape[1] - 1

    v_e = property(lambda self: self.v[:, : self.num_e])
    v_i = property(lambda self: self.v[:, self.num_e :])
    x_e = property(lambda self: self.x[:, : self.num_e])
    x_i = property(lambda self: self.x[:, self.num_e :])
    s_e = property(lambda self: self.s[:, : self.num_e])
    s_i = property(lambda self: self.s[:, self.num_e :])

    def merge(self, mask: torch.Tensor, fresh: "NetworkState") -> None:
        """Take network b's state from ``fresh`` where ``mask[b]``: one ``torch.where`` per
        tensor, no data-dependent shapes, no host sync."""
        for item in fields(self):
            old, new = getattr(self, item.name), getattr(fresh, item.name)
            batch_dim = 1 if item.name.startswith("ring_") else 0
            shape = [1] * old.dim()
            shape[batch_dim] = -1
            setattr(self, item.name, torch.where(mask.view(shape), new, old))

    def nbytes(self) -> int:
        return sum(getattr(self, item.name).element_size() * getattr(self, item.name).numel() for item in fields(self))
