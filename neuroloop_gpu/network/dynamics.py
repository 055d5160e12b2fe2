"""One forward-Euler step of a batch of FTSTS networks.

The equations of the model spec sit next to the lines that implement them.
Everything is a batched tensor op over ``[B, ...]``: no Python loop over
neurons, synapses or networks.

Synapses are updated one of two ways, with identical results. The
event-driven update touches only the synapses of neurons that spiked (about
0.5% of neurons per step): their synapse lists are found from per-neuron
ranges, so the work per step scales with the spikes, not with the ~1.3e5
synapses of a full-size network; the list sizes depend on the data, which is
free on a CPU but makes a GPU wait for the host. The dense update sweeps
every synapse with fixed shapes and never synchronises (the GPU default).
Both apply the same formulas; the sweep leaves a synapse whose neurons did
not spike exactly unchanged, which is why skipping it changes nothing.
Either way the per-neuron arithmetic and the STDP passes can run eagerly or
compiled (:class:`StepKernels`), with the same bits.

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

import functools
import math
import warnings
from dataclasses import dataclass

import torch

from ..config import NetworkParams, steps_in
from ..rng import compiled_box_muller_uniforms, standard_normal
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
    stim_noise_gain: torch.Tensor  # mV per unit normal draw of the stimulation-locked noise


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
    stim_noise_gain_e: float  # mV per unit normal draw while the stimulator is on
    stim_noise_gain_i: float
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

    @property
    def stim_noise(self) -> bool:
        """Whether the stimulation-locked noise is on at all (else nothing is drawn for it)."""
        return self.stim_noise_gain_e != 0.0 or self.stim_noise_gain_i != 0.0

    def neuron_vectors(self, device: torch.device, dtype: torch.dtype) -> "NeuronVectors":
        """Per-neuron parameters ``[N]`` (E neurons first) for one batched membrane update."""

        def halves(e: float, i: float) -> torch.Tensor:
            return torch.tensor([e] * self.num_e + [i] * self.num_i, dtype=dtype, device=device)

        return NeuronVectors(
            mu=halves(self.mu_e, self.mu_i),
            coupling=halves(self.coupling_e, self.coupling_i),
            stim_sign=halves(-1.0, 1.0),
            noise_gain=halves(self.noise_gain_e, self.noise_gain_i),
            stim_noise_gain=halves(self.stim_noise_gain_e, self.stim_noise_gain_i),
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
        taus = {
            "tau_m": params.tau_m,
            "tau_d": params.tau_d,
            "tau_r": params.tau_r,
            "plasticity.tau_pre": stdp.tau_pre,
            "plasticity.tau_post": stdp.tau_post,
        }
        fast = {name: tau for name, tau in taus.items() if tau < dt}
        if fast:  # allowed (the model is still defined), but rarely what anyone means
            warnings.warn(
                f"step_size={dt} ms exceeds {', '.join(f'{k}={v}' for k, v in fast.items())} ms: forward "
                "Euler then multiplies that variable by 1 - dt/tau < 0 each step, so it changes sign "
                "every step instead of decaying; use a step_size below every time constant",
                RuntimeWarning,
                stacklevel=3,
            )
        # Published: dt * sigma * sqrt(tau) * xi / tau; Euler-Maruyama: sqrt(dt) instead of dt.
        noise_dt = dt if params.noise_scaling == "published" else math.sqrt(dt)
        gain = noise_dt * math.sqrt(params.tau_m) / params.tau_m
        # The published "Figure 6" term, dt * (10 * randn) / tau_m: the same step scaling, no sqrt(tau_m).
        stim_gain = noise_dt / params.tau_m
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
            stim_noise_gain_e=params.stim_noise_e * stim_gain,
            stim_noise_gain_i=params.stim_noise_i * stim_gain,
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


def _trace(spiked: torch.Tensor, trace: torch.Tensor, tau: float, c: StepConstants) -> None:
    """STDP trace (in place): tau dA/dt = -A, A += increment on a spike (published: the
    increment replaces that step's decay)."""
    decayed = trace.neg().mul_(c.dt).div_(tau).add_(trace)  # A + dt * (-A) / tau
    bumped = trace.add_(c.trace_increment) if c.published else decayed + c.trace_increment
    torch.where(spiked, bumped, decayed, out=trace)


def stdp(
    c: StepConstants,
    weight: torch.Tensor,
    pre_spiked: torch.Tensor,
    pre_trace: torch.Tensor,
    post_spiked: torch.Tensor,
    post_trace: torch.Tensor,
    plastic: torch.Tensor,
) -> torch.Tensor:
    """New E->I weights (eq. 7-11) from each synapse's weight and its neurons' spikes (bool)
    and traces: E (pre) spike: w += eta a_LTD A_post; I (post) spike: w += eta a_LTP A_pre;
    bounds w_min..w_max; ``plastic`` is 1 from plasticity onset on, else 0. A synapse whose
    neurons did not spike keeps its weight exactly."""
    if c.published:  # an I spike's potentiation overwrites a same-step E spike's depression
        depressed = (weight + plastic * c.ltd * post_trace).clamp_(min=c.w_min)
        potentiated = (weight + plastic * c.ltp * pre_trace).clamp_(max=c.w_max)
        return torch.where(post_spiked, potentiated, torch.where(pre_spiked, depressed, weight))
    change = c.ltd * post_trace * pre_spiked + c.ltp * pre_trace * post_spiked
    return (weight + plastic * change).clamp_(c.w_min, c.w_max)


def _ranges(start: torch.Tensor, degree: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenated id ranges ``start[r] .. start[r] + degree[r] - 1`` of ``rows`` (int64, in
    order), and for each id the position in ``rows`` of the row it came from.

    Reads the total on the host (free on the CPU, a sync on a GPU). The owner of entry j is
    the number of rows that begin at or before j, minus one (``repeat_interleave`` would do
    it, but is ~100x slower on the CPU)."""
    if not rows.numel():
        return rows, rows
    first, count = start.view(-1).index_select(0, rows), degree.view(-1).index_select(0, rows)
    end = count.cumsum(0)
    total = int(end[-1])
    before = end - count  # entries of earlier rows
    owner = torch.bincount(before, minlength=total + 1)[:total].cumsum_(0).sub_(1)
    return torch.arange(total, device=rows.device).add_(first.sub_(before).index_select(0, owner)), owner


def _synapses_dense(c, conn, st, arriving_i, synapse_rank, plastic, dense_rows):
    """Synaptic traffic and STDP by sweeping every synapse: fixed shapes, no host sync.
    ``dense_rows`` = (I->E, E->I) presynaptic row of every synapse (``Connectivity.pre_rows``)."""
    batch, ne, ni = st.v.shape[0], c.num_e, c.num_i
    dtype, device = st.v.dtype, st.v.device
    # I -> E: each connected I spike adds -1 to X_E (published: once, however many coincide).
    ie_pre_rows, pre_rows = dense_rows
    per_synapse = arriving_i.to(dtype).view(-1).index_select(0, ie_pre_rows)
    count_e = torch.zeros(batch * (ne + 1), dtype=dtype, device=device)
    count_e.index_add_(0, conn.ie_post.view(-1), per_synapse)
    # E -> I, computed at spike time with the weight then.
    post_rows = conn.ei_post.view(-1)
    pre_spiked, pre_trace, post_spiked, post_trace = (
        table.view(-1).index_select(0, rows).view(batch, -1)
        for table, rows in (
            (st.spiked_pre, pre_rows),
            (st.trace_pre, pre_rows),
            (st.spiked_post, post_rows),
            (st.trace_post, post_rows),
        )
    )
    if c.published:
        # The last (highest-index) spiking presynaptic E neuron wins; synapses are sorted
        # by (pre, post), so that is the highest-ranked active synapse of each I neuron.
        rank = torch.where(pre_spiked, synapse_rank, -1.0).view(-1)
        winner = torch.full((batch * (ni + 1),), -1.0, dtype=dtype, device=device)
        winner.index_reduce_(0, post_rows, rank, "amax", include_self=True)
        winner = winner.view(batch, ni + 1)
        sent = st.weight.gather(1, winner.clamp(min=0).long()).masked_fill_(winner < 0, 0.0)
    else:
        sent = torch.zeros(batch * (ni + 1), dtype=dtype, device=device)
        sent.index_add_(0, post_rows, (pre_spiked * st.weight).view(-1))
    st.weight = stdp(c, st.weight, pre_spiked, pre_trace, post_spiked, post_trace, plastic.unsqueeze(1))
    return count_e.view(batch, ne + 1)[:, :ne], sent.view(batch, ni + 1)[:, :ni]


def stdp_entering_i(
    c,
    weight,
    position,
    owner,
    spiking_i,
    capacity,
    by_post,
    pre_by_post,
    spiked_pre,
    trace_pre,
    spiked_post,
    trace_post,
    plastic,
):
    """STDP (in place on the flat ``weight``) of the synapses entering this step's I spikes:
    ``position`` lists their places in the by-post view, ``owner`` the spike each came from.
    Network offsets come from the spike's row (int64 division per synapse is slow on a CPU)."""
    network = spiking_i.div(c.num_i + 1, rounding_mode="floor").index_select(0, owner)
    into = by_post.index_select(0, position) + network * capacity
    pre_rows = pre_by_post.index_select(0, position) + network * (c.num_e + 1)
    post_rows = spiking_i.index_select(0, owner)
    new = stdp(
        c,
        weight.index_select(0, into),
        spiked_pre.index_select(0, pre_rows),
        trace_pre.index_select(0, pre_rows),
        spiked_post.index_select(0, post_rows),
        trace_post.index_select(0, post_rows),
        plastic.index_select(0, network),
    )
    weight.index_copy_(0, into, new)


def stdp_leaving_e(c, weight, out, owner, spiking_e, out_post, spiked_pre, trace_pre, spiked_post, trace_post, plastic):
    """STDP (in place) of the synapses ``out`` leaving this step's E spikes (``owner``: the spike
    each came from; ``out_post``: their I rows), except those whose I neuron spiked: the
    entering pass gave them their final value."""
    network = spiking_e.div(c.num_e + 1, rounding_mode="floor").index_select(0, owner)
    pre_rows = spiking_e.index_select(0, owner)
    post_spiked = spiked_post.index_select(0, out_post)
    old = weight.index_select(0, out)
    new = stdp(
        c,
        old,
        spiked_pre.index_select(0, pre_rows),
        trace_pre.index_select(0, pre_rows),
        post_spiked,
        trace_post.index_select(0, out_post),
        plastic.index_select(0, network),
    )
    weight.index_copy_(0, out, torch.where(post_spiked, old, new))


def _synapses_event(c, conn, st, arriving_i, plastic, kernels):
    """Synaptic traffic and STDP touching only the synapses of neurons that spiked: the same
    numbers as :func:`_synapses_dense`, whose sweep leaves every other synapse unchanged."""
    batch, ne, ni = st.v.shape[0], c.num_e, c.num_i
    dtype, device = st.v.dtype, st.v.device
    capacity = conn.ei_post.shape[1]
    # I -> E: the synapses leaving the I spikes emitted d ago.
    into_e, _ = _ranges(conn.ie_start, conn.ie_degree, arriving_i.view(-1).nonzero().view(-1))
    # counts stay int64 here: the (compiled) filter kernel converts them in its own loop
    count_e = torch.bincount(conn.ie_post.view(-1).index_select(0, into_e), minlength=batch * (ne + 1))
    # E -> I: the synapses leaving this step's E spikes (ascending ids), with the weight now.
    spiking_e = st.spiked_pre.view(-1).nonzero().view(-1)
    out, owner_e = _ranges(conn.ei_start, conn.ei_degree, spiking_e)
    out_post = conn.ei_post.view(-1).index_select(0, out).long()
    weight = st.weight.view(-1)
    sent = torch.zeros(batch * (ni + 1), dtype=dtype, device=device)
    if out.numel():
        if c.published:  # the highest-ranked active synapse of each I neuron wins (see the dense sweep)
            winner = torch.full((batch * (ni + 1),), -1, dtype=torch.int64, device=device)
            winner.scatter_reduce_(0, out_post, out, "amax")
            sent = torch.where(winner >= 0, weight.index_select(0, winner.clamp_(min=0)), sent)
        else:
            sent.index_add_(0, out_post, weight.index_select(0, out))

    # STDP in two passes, each applying stdp() to the synapse's old weight: first every synapse
    # entering an I spike (its final value, whether or not its E neuron spiked too), then the
    # synapses leaving an E spike whose I neuron did not spike.
    spiking_i = st.spiked_post.view(-1).nonzero().view(-1)
    position, owner_i = _ranges(conn.ei_post_start, conn.ei_post_degree, spiking_i)
    tables = (st.spiked_pre.view(-1), st.trace_pre.view(-1), st.spiked_post.view(-1), st.trace_post.view(-1), plastic)
    if position.numel():
        kernels.stdp_entering_i(
            c,
            weight,
            position,
            owner_i,
            spiking_i,
            capacity,
            conn.ei_by_post.view(-1),
            conn.ei_pre_by_post.view(-1),
            *tables,
        )
    if out.numel():
        kernels.stdp_leaving_e(c, weight, out, owner_e, spiking_e, out_post, *tables)
    return count_e.view(batch, ne + 1)[:, :ne], sent.view(batch, ni + 1)[:, :ni]


def integrate_neurons(
    c: StepConstants,
    n: NeuronVectors,
    v: torch.Tensor,
    s: torch.Tensor,
    refractory: torch.Tensor,
    stim_i: torch.Tensor,
    noise: torch.Tensor,
    stim_on: torch.Tensor | None = None,
    stim_noise: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Membrane step (eq. 1-2), then threshold, reset, refractory hold and floor in the
    published order. Returns V(t+dt), the refractory counters and the spikes as 0/1 in the
    working dtype (compiled CPU code stores floats several times faster than bools).

    tau_m dV/dt = (V_rest - V) + Z + mu + sigma sqrt(tau_m) xi + U_stim with
    Z_E = J_E / C_E * S_E(t - d), Z_I = J_I / C_I * S_I(t - d) (S is stored delayed).
    Spike when V(t) < V_th <= V(t+dt); then V := V_reset and the neuron is held at V_reset
    for ``refractory_steps`` steps; otherwise V below V_rest is clamped to V_rest.

    Stimulation-locked noise (``stim_noise`` [B, N] standard normal draws, or None when
    ``NetworkParams.stim_noise_e`` and ``_i`` are 0): in the networks whose stimulator is on
    (``stim_on`` [B] bool) the numerator gets stim_noise_e (_i) * xi' as well, added after the
    sigma term; elsewhere V is left exactly as without it.
    """
    # V + dt * (V_rest - V + coupling * S + mu + sign * stim) / tau_m + gain * xi
    v_new = torch.rsub(v, c.v_rest).add_(n.coupling * s).add_(n.mu).add_(n.stim_sign * stim_i.unsqueeze(1))
    v_new.mul_(c.dt).div_(c.tau_m).add_(v).add_(n.noise_gain * noise)
    if stim_noise is not None:  # ... + stim_gain * xi' while the stimulator is on
        v_new = torch.where(stim_on.unsqueeze(1), v_new + n.stim_noise_gain * stim_noise, v_new)
    held_before = (refractory - 1.0).clamp_(min=-1.0)
    spiked = (v < c.v_threshold) & (v_new >= c.v_threshold)
    held = (held_before >= 0) | spiked
    v_new = torch.where(held, c.v_reset, v_new.clamp_(min=c.v_rest))
    refractory = torch.where(spiked, float(c.refractory_steps), held_before)
    return v_new, refractory, spiked.to(v.dtype)


def integrate_synapses_and_traces(
    c: StepConstants,
    x: torch.Tensor,
    s: torch.Tensor,
    count_e: torch.Tensor,
    input_i: torch.Tensor,
    spiked_pre: torch.Tensor,
    trace_pre: torch.Tensor,
    spiked_post: torch.Tensor,
    trace_post: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two-stage synaptic filter fed by the inputs arriving now, and the STDP traces (in place).
    Returns X and S one step later.

    Inputs emitted d ago: -1 per I spike into X_E (``count_e``; published: once however many
    coincide) and the E->I input ``input_i`` computed at spike time.
    tau_d dS/dt = -S + X, tau_r dX/dt = -X + input.
    """
    count_e = count_e.to(x.dtype)
    arrived = torch.cat((count_e.clamp(max=1.0) if c.published else count_e, input_i), dim=1)
    arrived[:, : c.num_e].neg_()
    s_next = (x - s).mul_(c.dt).div_(c.tau_d).add_(s)  # S + dt * (-S + X) / tau_d
    x_decayed = x.neg().mul_(c.dt).div_(c.tau_r).add_(x)  # X + dt * (-X) / tau_r
    if c.published:  # X(t+dt) = X(t) + input: decay skipped for receivers
        x_next = torch.where(arrived != 0, x + arrived, x_decayed)
    else:
        x_next = x_decayed.add_(arrived)
    _trace(spiked_pre, trace_pre, c.tau_pre, c)
    _trace(spiked_post, trace_post, c.tau_post, c)
    return x_next, s_next


@dataclass(frozen=True)
class StepKernels:
    """The fusable parts of a step: the membrane noise (a :func:`~neuroloop_gpu.rng.standard_normal`),
    neuron update, synaptic filter and traces, and the two event-driven STDP passes; eager (the plain
    functions) or compiled (``torch.compile`` fuses each into one loop over the batch or the synapse list
    instead of ~10 passes over memory; for the noise, its Philox words). On the CPU the compiled code
    keeps the same IEEE operations in the same order (Inductor neither contracts multiply-adds into
    FMAs nor turns divisions into products), so both give the same bits (tested); on CUDA Inductor's
    Triton code rounds some of them differently (last bits of V; tests/test_gpu.py states the tolerance).
    Transcendental functions are never compiled (see :func:`~neuroloop_gpu.rng.standard_normal`)."""

    noise: object = standard_normal
    neurons: object = integrate_neurons
    synapses_and_traces: object = integrate_synapses_and_traces
    stdp_entering_i: object = stdp_entering_i
    stdp_leaving_e: object = stdp_leaving_e

    @classmethod
    def compiled(cls) -> "StepKernels":
        # the STDP passes see a different number of synapses every step: one dynamic-shape kernel each
        return cls(
            functools.partial(standard_normal, uniforms=compiled_box_muller_uniforms()),
            torch.compile(integrate_neurons),
            torch.compile(integrate_synapses_and_traces),
            _any_length(stdp_entering_i),
            _any_length(stdp_leaving_e),
        )


def _any_length(pass_fn):
    """One compiled kernel for synapse lists of every length. Dynamic shapes alone would still
    specialise a list of one element and recompile for it (seconds, mid-run); size-oblivious
    tracing treats 0 and 1 like any other length."""
    compiled = torch.compile(pass_fn, dynamic=True)

    def run(*args):
        with torch.fx.experimental._config.patch(backed_size_oblivious=True):
            return compiled(*args)

    return run


def euler_step(
    c: StepConstants,
    n: NeuronVectors,
    conn: Connectivity,
    st: NetworkState,
    stim_i: torch.Tensor,
    noise: torch.Tensor,
    slot: int,
    synapse_rank: torch.Tensor,
    dense_rows: tuple[torch.Tensor, torch.Tensor] | None,
    kernels: StepKernels = StepKernels(),
    stim_on: torch.Tensor | None = None,
    stim_noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """Advance every network of the batch by one step dt (updates ``st`` in place).

    ``stim_i`` [B] is this step's stimulus into I neurons (E neurons get
    ``-stim_i``); ``noise`` [B, N] are standard normal draws; ``slot`` is the
    ring-buffer slot of this step (shared by the batch); ``synapse_rank``
    [S_ei] is ``arange(S_ei)`` in the working dtype. ``dense_rows`` selects
    the synapse update: ``None``, only the synapses of neurons that spiked
    (fast, but list sizes depend on the data, which costs a host sync on a
    GPU); else a sweep over all synapses (fixed shapes, no sync) using these
    (I->E, E->I) presynaptic rows, expanded once per window by the caller.
    Both give the same numbers. ``kernels`` runs the per-neuron parts.
    ``stim_on`` [B] (bool: the stimulator is on in this window) and ``stim_noise``
    [B, N] (standard normal draws) give the stimulation-locked noise; None: none.
    Returns the spikes ``[B, N]`` (bool, E neurons first).

    In-place updates keep the operations (and so every rounding) of the plain
    expressions in the comments: IEEE addition and multiplication commute.
    """
    ne, ni = c.num_e, c.num_i
    dtype = st.v.dtype
    st.v, st.refractory, fired = kernels.neurons(c, n, st.v, st.s, st.refractory, stim_i, noise, stim_on, stim_noise)
    spiked = fired.bool()
    spiked_e, spiked_i = spiked[:, :ne], spiked[:, ne:]

    # Synaptic traffic: I spikes emitted d ago arrive at E neurons; this step's spikes (into the
    # spike tables; the STDP traces are still those of the last step) leave E neurons and update
    # E->I weights (eq. 7-11) from plasticity onset on.
    st.spiked_pre[:, :ne] = spiked_e
    st.spiked_post[:, :ni] = spiked_i
    plastic = ((st.step >= c.plasticity_onset_steps) & (c.plasticity_onset_steps >= 0)).to(dtype)
    if dense_rows is None:
        count_e, sent = _synapses_event(c, conn, st, st.ring_spikes_i[slot], plastic, kernels)
    else:
        count_e, sent = _synapses_dense(c, conn, st, st.ring_spikes_i[slot], synapse_rank, plastic, dense_rows)
    st.ring_spikes_i[slot, :, :ni] = spiked_i  # this step's I spikes leave for E neurons, d from now

    st.x, st.s = kernels.synapses_and_traces(
        c, st.x, st.s, count_e, st.ring_input_i[slot], st.spiked_pre, st.trace_pre, st.spiked_post, st.trace_post
    )
    st.ring_input_i[slot] = sent  # this step's E->I input leaves for I neurons, d from now

    # Causal phase bookkeeping for the online Kuramoto estimate.
    now = (st.step + 1).to(torch.int32).unsqueeze(1)
    st.last_isi_e = torch.where(spiked_e & (st.last_spike_e >= 0), now - st.last_spike_e, st.last_isi_e)
    st.last_spike_e = torch.where(spiked_e, now, st.last_spike_e)
    st.step = st.step + 1
    return spiked
