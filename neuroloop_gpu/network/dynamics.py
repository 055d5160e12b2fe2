"""One forward-Euler step of a batch of FTSTS networks.

The equations of the model spec sit next to the lines that implement them.
Everything is a batched tensor op over ``[B, ...]``: no Python loop over
neurons, synapses or networks, no host synchronisation.

Two semantics for events that hit the same variable in one step
(``NetworkParams.synaptic_input``):

* ``"published"`` (default) reproduces the authors' code, which *assigns*
  ``X(t+dt) = X(t) + w`` once per presynaptic spike: the decay of that step is
  skipped for a variable that receives an event, and when several events
  coincide the last one in the code's loop order wins (the highest
  presynaptic index for X; an I spike's potentiation over an E spike's
  depression for w). STDP traces follow the same assignment rule.
* ``"summed"`` is the textbook discretisation: every variable decays every
  step and all coincident contributions add up.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch

from ..config import NetworkParams, steps_in
from .connectivity import Connectivity
from .state import NetworkState

# index_reduce_ is the one sync-free batched "last presynaptic spike wins" reduction torch offers;
# its beta notice says nothing about our use and would greet every CLI user.
warnings.filterwarnings("ignore", message=r"index_reduce\(\) is in beta", category=UserWarning)


@dataclass(frozen=True)
class NeuronVectors:
    """Per-neuron constants ``[N]``: E entries first, then I."""

    mu: torch.Tensor  # mV mean drive
    coupling: torch.Tensor  # J / C of the input the neuron receives
    stim_sign: torch.Tensor  # -1 for E, +1 for I: E gets the mirror image of the I waveform
    noise_gain: torch.Tensor  # mV per unit normal draw


@dataclass(frozen=True)
class StepConstants:
    """Step-size-dependent numbers derived once from the parameters."""

    num_e: int
    num_i: int
    dt: float  # ms
    v_rest: float
    v_threshold: float
    v_reset: float
    refractory_steps: int
    mu_e: float
    mu_i: float
    noise_gain_e: float  # mV per unit normal draw
    noise_gain_i: float
    coupling_e: float  # J_E / C_E
    coupling_i: float  # J_I / C_I
    tau_m: float
    tau_d: float
    tau_r: float
    tau_pre: float
    tau_post: float
    trace_increment: float
    ltd: float  # eta * a_LTD
    ltp: float  # eta * a_LTP
    w_min: float
    w_max: float
    plasticity_onset_steps: int  # -1: plasticity disabled
    delay_steps: int
    published: bool

    def neuron_vectors(self, device: torch.device, dtype: torch.dtype) -> "NeuronVectors":
        """Per-neuron parameters ``[N]`` (E neurons first) for one batched membrane update."""
        def halves(e: float, i: float) -> torch.Tensor:
            return torch.tensor([e] * self.num_e + [i] * self.num_i, dtype=dtype, device=device)

        return NeuronVectors(
            mu=halves(self.mu_e, self.mu_i),
            coupling=halves(self.coupling_e, self.coupling_i),
            stim_sign=halves(-1.0, 1.0),
            noise_gain=halves(self.noise_gain_e, self.noise_gain_i),
        )

    @classmethod
    def from_params(cls, params: NetworkParams, dt: float) -> "StepConstants":
        stdp = params.plasticity
        w_min, w_max = stdp.w_min_mv / params.j_i, stdp.w_max_mv / params.j_i
        if not w_min <= stdp.w_init <= w_max:
            raise ValueError(
                f"plasticity.w_init must be in [w_min_mv / j_i, w_max_mv / j_i] = [{w_min:g}, {w_max:g}], "
                f"got {stdp.w_init!r}"
            )
        # Published: dt * sigma * sqrt(tau) * xi / tau; Euler-Maruyama: sqrt(dt) instead of dt.
        noise_dt = dt if params.noise_scaling == "published" else math.sqrt(dt)
        gain = noise_dt * math.sqrt(params.tau_m) / params.tau_m
        return cls(
            num_e=params.num_e,
            num_i=params.num_i,
            dt=dt,
            v_rest=params.v_rest,
            v_threshold=params.v_threshold,
            v_reset=params.v_reset,
            refractory_steps=steps_in(params.refractory, dt, "refractory"),
            mu_e=params.mu_e,
            mu_i=params.mu_i,
            noise_gain_e=params.sigma_e * gain,
            noise_gain_i=params.sigma_i * gain,
            coupling_e=params.j_e / params.coupling_norm,
            coupling_i=params.j_i / params.coupling_norm,
            tau_m=params.tau_m,
            tau_d=params.tau_d,
            tau_r=params.tau_r,
            tau_pre=stdp.tau_pre,
            tau_post=stdp.tau_post,
            trace_increment=stdp.trace_increment,
            ltd=stdp.eta * stdp.a_ltd,
            ltp=stdp.eta * stdp.a_ltp,
            w_min=w_min,
            w_max=w_max,
            plasticity_onset_steps=steps_in(stdp.onset, dt, "plasticity.onset", allow_zero=True)
            if stdp.enabled
            else -1,
            delay_steps=steps_in(params.delay, dt, "delay"),
            published=params.synaptic_input == "published",
        )


def fire_and_reset(
    v_old: torch.Tensor, v_new: torch.Tensor, refractory: torch.Tensor, c: StepConstants
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Threshold, reset, refractory hold and floor, in the published order.

    Spike when V(t) < V_th <= V(t+dt); then V := V_reset and the neuron is held
    at V_reset for ``refractory_steps`` steps; otherwise V below V_rest is
    clamped to V_rest.
    """
    refractory = (refractory - 1).clamp_(min=-1)
    spiked = (v_old < c.v_threshold) & (v_new >= c.v_threshold)
    held = spiked | (refractory >= 0)
    v = v_new.clamp(min=c.v_rest).masked_fill_(held, c.v_reset)
    refractory = refractory.masked_fill_(spiked, c.refractory_steps)
    return v, refractory, spiked


def _trace(table: torch.Tensor, tau: float, c: StepConstants) -> None:
    """STDP trace in column 1 of a (spiked, trace) table: tau dA/dt = -A, A += increment on a spike."""
    spiked, trace = table[..., 0], table[..., 1]
    decayed = trace + c.dt * (-trace) / tau
    if c.published:
        trace.copy_(torch.where(spiked > 0, trace + c.trace_increment, decayed))
    else:
        trace.copy_(decayed + c.trace_increment * spiked)


def euler_step(
    c: StepConstants,
    n: NeuronVectors,
    conn: Connectivity,
    st: NetworkState,
    stim_i: torch.Tensor,
    noise: torch.Tensor,
    slot: int,
    synapse_rank: torch.Tensor,
) -> torch.Tensor:
    """Advance every network of the batch by one step dt (updates ``st`` in place).

    ``stim_i`` [B] is this step's stimulus into I neurons (E neurons get
    ``-stim_i``); ``noise`` [B, N] are standard normal draws; ``slot`` is the
    ring-buffer slot of this step (shared by the batch); ``synapse_rank``
    [S_ei] is ``arange(S_ei)`` in the working dtype. Returns the spikes
    ``[B, N]`` (bool, E neurons first).
    """
    batch = st.v.shape[0]
    ne, ni = c.num_e, c.num_i
    dtype, device = st.v.dtype, st.v.device

    # Membrane (eq. 1-2): tau_m dV/dt = (V_rest - V) + Z + mu + sigma sqrt(tau_m) xi + U_stim,
    # Z_E = J_E / C_E * S_E(t - d), Z_I = J_I / C_I * S_I(t - d) (S is stored delayed).
    v = st.v + c.dt * (c.v_rest - st.v + n.coupling * st.s + n.mu + n.stim_sign * stim_i.unsqueeze(1)) / c.tau_m \
        + n.noise_gain * noise
    st.v, st.refractory, spiked = fire_and_reset(st.v, v, st.refractory, c)
    spiked_e, spiked_i = spiked[:, :ne], spiked[:, ne:]

    # Inputs arriving now, emitted d ago. I -> E: each connected I spike adds -1 to X_E
    # (published: once, however many coincide). E -> I: computed at spike time, with the weight then.
    per_synapse = st.ring_spikes_i[slot].to(dtype).view(-1).index_select(0, conn.ie_pre.view(-1))
    count_e = torch.zeros(batch * (ne + 1), dtype=dtype, device=device)
    count_e.index_add_(0, conn.ie_post.view(-1), per_synapse)
    count_e = count_e.view(batch, ne + 1)[:, :ne]
    arrived = torch.cat((count_e.clamp(max=1.0) if c.published else count_e, st.ring_input_i[slot]), dim=1)
    arrived[:, :ne].neg_()

    # Two-stage synaptic filter: tau_d dS/dt = -S + X, tau_r dX/dt = -X + input.
    s_next = st.s + c.dt * (-st.s + st.x) / c.tau_d
    x_decayed = st.x + c.dt * (-st.x) / c.tau_r
    if c.published:  # X(t+dt) = X(t) + input: decay skipped for receivers
        st.x = torch.where(arrived != 0, st.x + arrived, x_decayed)
    else:
        st.x = x_decayed + arrived
    st.s = s_next

    # This step's spikes leave for their targets, d from now.
    st.ring_spikes_i[slot, :, :ni] = spiked_i
    st.pre_table[:, :ne, 0] = spiked_e
    st.post_table[:, :ni, 0] = spiked_i
    pre = st.pre_table.view(-1, 2).index_select(0, conn.ei_pre.view(-1)).view(batch, -1, 2)
    post = st.post_table.view(-1, 2).index_select(0, conn.ei_post.view(-1)).view(batch, -1, 2)
    pre_spiked, pre_trace = pre[..., 0], pre[..., 1]
    post_spiked, post_trace = post[..., 0], post[..., 1]
    if c.published:
        # The last (highest-index) spiking presynaptic E neuron wins; synapses are sorted
        # by (pre, post), so that is the highest-ranked active synapse of each I neuron.
        rank = torch.where(pre_spiked > 0, synapse_rank, -1.0).view(-1)
        winner = torch.full((batch * (ni + 1),), -1.0, dtype=dtype, device=device)
        winner.index_reduce_(0, conn.ei_post.view(-1), rank, "amax", include_self=True)
        winner = winner.view(batch, ni + 1)[:, :ni]
        sent = st.weight.gather(1, winner.clamp(min=0).long()).masked_fill_(winner < 0, 0.0)
    else:
        sent = torch.zeros(batch * (ni + 1), dtype=dtype, device=device)
        sent.index_add_(0, conn.ei_post.view(-1), (pre_spiked * st.weight).view(-1))
        sent = sent.view(batch, ni + 1)[:, :ni]
    st.ring_input_i[slot] = sent

    # STDP on E->I (eq. 7-11), from plasticity onset on:
    # E (pre) spike: w += eta a_LTD A_post; I (post) spike: w += eta a_LTP A_pre; bounds w_min..w_max.
    plastic = ((st.step >= c.plasticity_onset_steps) & (c.plasticity_onset_steps >= 0)).to(dtype).unsqueeze(1)
    if c.published:
        depressed = (st.weight + plastic * c.ltd * post_trace).clamp_(min=c.w_min)
        potentiated = (st.weight + plastic * c.ltp * pre_trace).clamp_(max=c.w_max)
        st.weight = torch.where(post_spiked > 0, potentiated, torch.where(pre_spiked > 0, depressed, st.weight))
    else:
        change = c.ltd * post_trace * pre_spiked + c.ltp * pre_trace * post_spiked
        st.weight = (st.weight + plastic * change).clamp_(c.w_min, c.w_max)
    _trace(st.pre_table, c.tau_pre, c)
    _trace(st.post_table, c.tau_post, c)

    # Causal phase bookkeeping for the online Kuramoto estimate.
    now = (st.step + 1).to(torch.int32).unsqueeze(1)
    st.last_isi_e = torch.where(spiked_e & (st.last_spike_e >= 0), now - st.last_spike_e, st.last_isi_e)
    st.last_spike_e = torch.where(spiked_e, now, st.last_spike_e)
    st.step = st.step + 1
    return spiked
