"""A plain, one-network FTSTS simulator written straight from the model spec.

NumPy, float64, explicit loops over spiking neurons and their synapses, the
literal delay Z(t) = J / C * S(t - d) read from the full history of S, and
per-synapse STDP traces exactly as the published code keeps them. It is slow
on purpose: it exists to be obviously right, and the batched simulator must
match it spike for spike. Noise, connectivity and the per-step stimulus are
injected so that both simulators see the same inputs.

Two users: ``tests/test_equivalence.py`` (spike-for-spike equivalence) and
the throughput harness, where it is the port-faithful one-network loop
baseline (``neuroloop bench --peers reference``,
:mod:`neuroloop_gpu.bench.peers.reference_loop`). It lives in the package so
that an installed ``neuroloop bench`` can import it.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from neuroloop_gpu.config import NetworkParams


class ReferenceNetwork:
    def __init__(self, params: NetworkParams, dt: float, ei: np.ndarray, ie: np.ndarray):
        """``ei[k, j]``: E neuron k -> I neuron j connected; ``ie[j, k]``: I j -> E k."""
        self.p, self.dt = params, dt
        ne, ni = params.num_e, params.num_i
        self.ei_posts = [np.flatnonzero(ei[k]) for k in range(ne)]
        self.ie_posts = [np.flatnonzero(ie[j]) for j in range(ni)]
        self.ei_pres = [np.flatnonzero(ei[:, j]) for j in range(ni)]
        self.ei = ei
        self.delay = round(params.delay / dt)
        self.refractory_steps = round(params.refractory / dt)
        stdp = params.plasticity
        self.onset = round(stdp.onset / dt) if stdp.enabled else None
        self.w_min, self.w_max = stdp.w_min_mv / params.j_i, stdp.w_max_mv / params.j_i
        self.n = 0  # steps taken
        self.v_e = np.full(ne, params.v_reset)
        self.v_i = np.full(ni, params.v_reset)
        self.held_e = np.zeros(ne, dtype=int)  # refractory steps still to hold
        self.held_i = np.zeros(ni, dtype=int)
        self.x_e, self.s_e = np.zeros(ne), np.zeros(ne)
        self.x_i, self.s_i = np.zeros(ni), np.zeros(ni)
        # the last delay + 1 values of each, newest last: enough for t - d, and memory stays flat
        self.s_e_history, self.s_i_history, self.x_e_history, self.x_i_history = (
            deque([value.copy()], maxlen=self.delay + 1) for value in (self.s_e, self.s_i, self.x_e, self.x_i)
        )
        self.w = np.where(ei, stdp.w_init, 0.0)  # [ne, ni], used where ei
        self.a_pre = np.zeros((ne, ni))  # one trace per synapse, as in the published code
        self.a_post = np.zeros((ne, ni))

    def delayed(self, history: deque) -> np.ndarray:
        """S(t - d) at the current step; zero before the network has run for d."""
        return history[0] if self.n >= self.delay else np.zeros_like(history[0])

    def _membrane(self, v, s_delayed, coupling, mu, sigma, stim, noise, stim_noise_mv, stim_noise):
        p = self.p
        noise_dt = self.dt if p.noise_scaling == "published" else math.sqrt(self.dt)
        # tau_m dV/dt = (V_rest - V) + Z + mu + sigma sqrt(tau_m) xi + U_stim [+ stim_noise xi' while stimulating]
        v_new = (
            v
            + self.dt * (p.v_rest - v + coupling * s_delayed + mu + stim) / p.tau_m
            + noise_dt * sigma * math.sqrt(p.tau_m) * noise / p.tau_m
        )
        if stim_noise is not None:  # the published code's "Figure 6" term: no sqrt(tau_m)
            v_new = v_new + noise_dt * stim_noise_mv * stim_noise / p.tau_m
        return v_new

    def _fire(self, v_old, v_new, held):
        """Spike on an upward threshold crossing; else hold while refractory; else floor at V_rest."""
        p = self.p
        spiked = np.zeros(v_old.shape, dtype=bool)
        for k in range(v_old.size):
            held[k] -= 1
            if v_old[k] < p.v_threshold <= v_new[k]:
                spiked[k] = True
                v_new[k] = p.v_reset
                held[k] = self.refractory_steps
            elif held[k] >= 0:
                v_new[k] = p.v_reset
            elif v_new[k] < p.v_rest:
                v_new[k] = p.v_rest
        return spiked

    def step(
        self,
        stim_i: float,
        noise_e: np.ndarray,
        noise_i: np.ndarray,
        stim_noise_e: np.ndarray | None = None,
        stim_noise_i: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """One Euler step: ``stim_i`` into I (E gets ``-stim_i``), ``noise_*`` the sigma term's draws,
        ``stim_noise_*`` the stimulation-locked term's draws when the stimulator is on (None: off)."""
        p, dt = self.p, self.dt
        stdp = p.plasticity
        published = p.synaptic_input == "published"
        c = p.coupling_norm
        v_e = self._membrane(
            self.v_e,
            self.delayed(self.s_e_history),
            p.j_e / c,
            p.mu_e,
            p.sigma_e,
            -stim_i,
            noise_e,
            p.stim_noise_e,
            stim_noise_e,
        )
        v_i = self._membrane(
            self.v_i,
            self.delayed(self.s_i_history),
            p.j_i / c,
            p.mu_i,
            p.sigma_i,
            stim_i,
            noise_i,
            p.stim_noise_i,
            stim_noise_i,
        )
        spiked_e = self._fire(self.v_e, v_e, self.held_e)
        spiked_i = self._fire(self.v_i, v_i, self.held_i)

        # tau_d dS/dt = -S + X ; tau_r dX/dt = -X + input
        s_e = self.s_e + dt * (-self.s_e + self.x_e) / p.tau_d
        s_i = self.s_i + dt * (-self.s_i + self.x_i) / p.tau_d
        x_e = self.x_e + dt * (-self.x_e) / p.tau_r
        x_i = self.x_i + dt * (-self.x_i) / p.tau_r
        for j in np.flatnonzero(spiked_i):  # I -> E, fixed weight -1
            for k in self.ie_posts[j]:
                x_e[k] = self.x_e[k] - 1.0 if published else x_e[k] - 1.0
        for k in np.flatnonzero(spiked_e):  # E -> I, plastic weight, in ascending k
            for j in self.ei_posts[k]:
                x_i[j] = self.x_i[j] + self.w[k, j] if published else x_i[j] + self.w[k, j]

        # STDP traces and weights (per synapse)
        plastic = self.onset is not None and self.n >= self.onset
        ltd = stdp.eta * stdp.a_ltd * plastic
        ltp = stdp.eta * stdp.a_ltp * plastic
        a_pre = self.a_pre + dt * (-self.a_pre) / stdp.tau_pre
        a_post = self.a_post + dt * (-self.a_post) / stdp.tau_post
        w = self.w.copy()
        for k in np.flatnonzero(spiked_e):
            for j in self.ei_posts[k]:
                if published:
                    a_pre[k, j] = self.a_pre[k, j] + stdp.trace_increment
                    w[k, j] = max(self.w[k, j] + ltd * self.a_post[k, j], self.w_min)
                else:
                    a_pre[k, j] += stdp.trace_increment
                    w[k, j] += ltd * self.a_post[k, j]
        for j in np.flatnonzero(spiked_i):
            for k in self.ei_pres[j]:
                if published:  # the post-spike update overwrites a same-step pre-spike update
                    a_post[k, j] = self.a_post[k, j] + stdp.trace_increment
                    w[k, j] = min(self.w[k, j] + ltp * self.a_pre[k, j], self.w_max)
                else:
                    a_post[k, j] += stdp.trace_increment
                    w[k, j] += ltp * self.a_pre[k, j]
        if not published:
            w = np.where(self.ei, np.clip(w, self.w_min, self.w_max), 0.0)

        self.v_e, self.v_i = v_e, v_i
        self.x_e, self.s_e, self.x_i, self.s_i = x_e, s_e, x_i, s_i
        self.a_pre, self.a_post, self.w = a_pre, a_post, w
        self.n += 1
        for history, value in (
            (self.s_e_history, s_e),
            (self.s_i_history, s_i),
            (self.x_e_history, x_e),
            (self.x_i_history, x_i),
        ):
            history.append(value.copy())
        return spiked_e, spiked_i

    def trace_pre(self) -> np.ndarray:
        """Per-neuron presynaptic trace (all synapses of an E neuron agree)."""
        return np.array(
            [self.a_pre[k, self.ei_posts[k][0]] if self.ei_posts[k].size else np.nan for k in range(self.p.num_e)]
        )

    def trace_post(self) -> np.ndarray:
        return np.array(
            [self.a_post[self.ei_pres[j][0], j] if self.ei_pres[j].size else np.nan for j in range(self.p.num_i)]
        )
