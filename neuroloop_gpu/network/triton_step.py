"""The ``"triton"`` CUDA backend: many Euler steps of a network in one kernel program.

The eager path runs 150-170 torch operators per Euler step, waits for the host about six times
(the lengths of the event-driven synapse lists) and streams every network's state through device
memory each step (``benchmarks/gpu_tuning/torch_traffic.py`` counts all three). Here one
Triton program advances one network (its neuron state in registers) through a run of steps (a
whole window; one step when recording, see :meth:`NetworkBatch._integrate_blocks`): its noise
(Philox and Box-Muller, as :mod:`neuroloop_gpu.rng` draws it), membranes, I->E arrivals, E->I
transmission, both STDP passes, filters, traces and phase bookkeeping, the window monitor's
running sums and its causal Kuramoto samples. Spike lists are compacted in the kernel (a prefix
sum over the spike mask), so only the synapses of neurons that spiked are visited.

Same bits as the eager path on the same device for every state variable (spikes, potentials,
weights, traces, ...): each expression applies the eager op's IEEE operations in the same order
(CUDA's eager division by a Python scalar is a product with the float32 reciprocal, which the
kernel mirrors on CUDA; divisions and square roots are correctly rounded, multiply-adds are not
contracted, and ``tl.log/sin/cos`` give CUDA's eager bits, which the GPU tests check). The
window statistics that average over neurons (chi, the causal Kuramoto estimate, the mean and
spread of V) are summed in the kernel's own order: they agree with eager to float32 rounding
(the tests allow 1e-5 relative), not bit for bit. E->I inputs that coincide under
``synaptic_input="summed"`` are added in arrival order by atomics on CUDA, as eager's
``index_add_`` adds them: not reproducible there to the last bit either way. float32 only.

On a machine without a GPU the same kernel runs in Triton's interpreter (``TRITON_INTERPRET``
semantics, on CPU tensors, with the CPU's eager division and noise drawn by torch), which is
how the CPU test suite checks its logic against the eager path bit for bit.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import math
import os

import numpy as np
import torch

from ..config import require
from ..rng import STREAM_MEMBRANE_NOISE, STREAM_STIM_NOISE
from .connectivity import Connectivity
from .dynamics import NeuronVectors, StepConstants
from .monitors import WindowMonitor
from .state import NetworkState

_PHILOX = dict(M0=0xD2511F53, M1=0xCD9E8D57, W0=0x9E3779B9, W1=0xBB67AE85)


INTERPRET_ON_CPU = False  # tests set it: run the kernel in Triton's interpreter on CPU tensors
MAX_CHUNK = 256  # most synapses of one spike per pass (tests lower it to walk rows in several passes)


def triton_backend_problem(device: torch.device) -> str | None:
    """Why the Triton kernel cannot run on ``device`` here, or None when it can."""
    if torch.device(device).type != "cuda" and not INTERPRET_ON_CPU:
        return "the Triton kernel runs on CUDA devices"
    if importlib.util.find_spec("triton") is None:  # found, not imported: see load_kernel
        return "Triton is not installed (it ships with CUDA builds of torch)"
    if torch.device(device).type == "cuda" and torch.cuda.get_device_capability(device) < (7, 0):
        return "the Triton kernel needs a GPU of compute capability 7.0 or newer (Triton's own minimum)"
    return None


@functools.cache
def load_kernel(interpret: bool):
    """The compiled kernel, or (``interpret``) its interpreted twin for CPU tensors. Triton reads
    ``TRITON_INTERPRET`` when the kernel module is imported and again while it runs, so the
    interpreter, once chosen, stays set for the process (only CPU-only test processes choose it)."""
    if interpret:
        os.environ["TRITON_INTERPRET"] = "1"
    return importlib.import_module(".triton_kernel", __package__).steps_kernel


def _float32(value: float) -> float:
    """A Python float that converts to float32 exactly (torch rounds a Python scalar to the tensor's dtype)."""
    return float(np.float32(value))


class TritonSteps:
    """Runs a batch of networks through a run of Euler steps in one kernel launch.

    Holds the kernel's per-network scratch (spike lists, arrival counts, E->I winners) and its
    constants, rounded to float32 as eager torch rounds them; divisors become float32 reciprocals
    on CUDA (see the kernel module)."""

    samples_kuramoto = True  # every kop_every steps of the window, into the monitor's kop_sum

    def __init__(
        self, c: StepConstants, connection_prob: float, batch: int, capacity: int, kop_every: int, device: torch.device
    ):
        # a spike list's entry packs a neuron index and a row length (2 x FIELD bits) with a global
        # synapse id (below batch x capacity) into one int64 (see the kernel)
        field = max(c.num_e.bit_length(), c.num_i.bit_length())
        require(
            2 * field + (batch * capacity).bit_length() <= 63,
            "num_networks",
            f"at most {(1 << (63 - 2 * field)) // capacity} networks of this size with backend='triton'",
            batch,
        )
        self.interpret = device.type != "cuda"
        self.kernel = load_kernel(self.interpret)
        self.noise_from_torch = self.interpret  # the interpreter's log/sin/cos are NumPy's, not the device's
        divisor = (lambda tau: _float32(np.float32(1.0) / np.float32(tau))) if not self.interpret else _float32
        self.constants = dict(
            dt=_float32(c.dt),
            v_rest=_float32(c.v_rest),
            v_threshold=_float32(c.v_threshold),
            v_reset=_float32(c.v_reset),
            refractory_steps=_float32(c.refractory_steps),
            tau_m=divisor(c.tau_m),
            tau_d=divisor(c.tau_d),
            tau_r=divisor(c.tau_r),
            tau_pre=divisor(c.tau_pre),
            tau_post=divisor(c.tau_post),
            trace_increment=_float32(c.trace_increment),
            ltd=_float32(c.ltd),
            ltp=_float32(c.ltp),
            w_min=_float32(c.w_min),
            w_max=_float32(c.w_max),
            onset=c.plasticity_onset_steps,
            two_pi=_float32(2.0 * math.pi),
            mu_e=_float32(c.mu_e),
            mu_i=_float32(c.mu_i),
            coupling_e=_float32(c.coupling_e),
            coupling_i=_float32(c.coupling_i),
            gain_e=_float32(c.noise_gain_e),
            gain_i=_float32(c.noise_gain_i),
            stim_gain_e=_float32(c.stim_noise_gain_e),
            stim_gain_i=_float32(c.stim_noise_gain_i),
        )
        ne, ni = c.num_e, c.num_i
        # spike tiles: a chunk covers a typical synapse row (longer ones take more passes); about half
        # as many synapses as neurons, since few of a network's neurons fire in one step and a tile's
        # masked-off lanes still cost registers (small size: 128, full: 1024). The walks over I spikes
        # take twice that in networks of over 1024 neurons: I neurons fire in bursts (full size, FTSTS
        # workload: 3.6 spikes per step on average, 142 at the 99th percentile) and a chunk of an I
        # spike's row is 4x an E spike's, so a tile holds 4x fewer I spikes. On an H200 that gave 1.07x
        # at full size (4x: 0.99x, 8x: 0.89x) and 0.97x at small size (benchmarks/results).
        tile = min(1024, max(128, _pow2(ne + ni) // 2))
        tile_i = 2 * tile if ne + ni > 1024 else tile
        chunk_e, chunk_i = _chunk(ni * connection_prob), _chunk(ne * connection_prob)
        # FIELD_*: bits of a count of E (I) neurons, fields of the kernel's packed prefix sum; BLOCK_N
        # lanes, at least a warp's 32 (see check_threads)
        self.shape = dict(
            NE=ne,
            NI=ni,
            FIELD_E=ne.bit_length(),
            FIELD_I=ni.bit_length(),
            DELAY=c.delay_steps,
            BLOCK_N=max(32, _pow2(ne + ni)),
            CHUNK_E=chunk_e,
            CHUNK_I=chunk_i,
            **spike_tiles(tile, tile_i, chunk_e, chunk_i),
            PUBLISHED=c.published,
            RECIPROCAL=not self.interpret,
            SCRATCH_LOADS=".cg",
            NOISE_IN_KERNEL=not self.noise_from_torch,
            STREAM_NOISE=STREAM_MEMBRANE_NOISE,
            STIM_NOISE=c.stim_noise,
            STREAM_STIM_NOISE=STREAM_STIM_NOISE,
            **_PHILOX,
        )
        self.launch = {} if self.interpret else launch_options(self.shape["BLOCK_N"])
        self.batch, self.capacity, self.kop_every = batch, capacity, kop_every
        # scratch tables of two parities (see the kernel): spike flags and STDP traces [E | I], spike
        # lists (E spikes, I spikes, I arrivals; each entry a neuron and its synapse row in one int64),
        # I->E arrival counts, E->I winners (synapse id and weight in one int64) or summed inputs
        self.flags = torch.empty(2, batch, ne + ni, dtype=torch.uint8, device=device)
        self.traces = torch.empty(2, batch, ne + ni, dtype=torch.float32, device=device)
        self.lists = torch.empty(2, batch, ne + 2 * ni, dtype=torch.int64, device=device)
        self.count_e = torch.empty(2, batch, ne, dtype=torch.int32, device=device)
        self.winner = torch.empty(2, batch, ni, dtype=torch.int64, device=device)
        self.sent = torch.empty(2, batch, ni, dtype=torch.float32, device=device)
        self.spiked = torch.zeros(batch, ne + ni, dtype=torch.uint8, device=device)
        self.stim_off = torch.zeros(batch, dtype=torch.uint8, device=device)

    def run(
        self,
        n: NeuronVectors,
        conn: Connectivity,
        st: NetworkState,
        current: torch.Tensor,
        ring_base: int,
        monitor: WindowMonitor,
        noise: torch.Tensor | None,
        first_step: int,
        stim_on: torch.Tensor | None = None,
        stim_noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Advance every network ``current.shape[0]`` steps (``current`` [K, B]: the stimulus into I
        neurons per step; ``ring_base``: the ring slot of the first step; ``noise`` [K, B, N] when
        :attr:`noise_from_torch`, else None; ``first_step``, the window step of the first step, only
        says which steps take a Kuramoto sample; ``n`` is not read: the kernel takes the two
        per-population values these vectors hold from the constants; ``stim_on`` [B] bool, the stimulator
        on in this window, and ``stim_noise`` [K, B, N] the stimulation-locked noise's draws where
        :attr:`noise_from_torch`, read only when that noise is on). Updates ``st`` and the running
        sums of ``monitor`` (``kop_sum`` included) in place; returns the last step's spikes ``[B, N]``
        (bool, E first)."""
        arguments, options = self.arguments(
            conn, st, current, ring_base, monitor, noise, first_step, stim_on, stim_noise
        )
        check_threads(options)
        # Triton launches on the current device: make it the one that holds the networks (cuda:1 ...)
        with contextlib.nullcontext() if self.interpret else torch.cuda.device(st.v.device):
            self.kernel[(self.batch,)](*arguments, **options)
        return self.spiked.view(torch.bool)

    def arguments(
        self,
        conn: Connectivity,
        st: NetworkState,
        current: torch.Tensor,
        ring_base: int,
        monitor: WindowMonitor,
        noise: torch.Tensor | None,
        first_step: int,
        stim_on: torch.Tensor | None = None,
        stim_noise: torch.Tensor | None = None,
    ) -> tuple[tuple, dict]:
        """The kernel's positional arguments for a launch (see :meth:`run`) and its keywords: the
        constants, the compile-time shape and the launch options."""
        noise = noise.contiguous() if noise is not None else self.spiked  # unused when drawn in the kernel
        stim_noise = stim_noise.contiguous() if stim_noise is not None else self.spiked  # likewise, or no such term
        stim_on = stim_on.view(torch.uint8) if stim_on is not None else self.stim_off
        arguments = (
            st.v,
            st.refractory,
            st.x,
            st.s,
            st.spiked_pre.view(torch.uint8),
            st.trace_pre,
            st.spiked_post.view(torch.uint8),
            st.trace_post,
            st.weight,
            st.ring_spikes_i.view(torch.uint8),
            st.ring_input_i,
            st.last_spike_e,
            st.last_isi_e,
            st.step,
            st.episode,
            st.seed,
            current.contiguous(),
            noise,
            stim_on,
            stim_noise,
            conn.ei_post,
            conn.ei_start,
            conn.ei_degree,
            conn.ei_by_post,
            conn.ei_pre_by_post,
            conn.ei_post_start,
            conn.ei_post_degree,
            conn.ie_post,
            conn.ie_start,
            conn.ie_degree,
            self.flags,
            self.traces,
            self.lists,
            self.count_e,
            self.winner,
            self.sent,
            self.spiked,
            *monitor.accumulators(),
            monitor.kop_sum,
            self.batch,
            self.capacity,
            ring_base,
            current.shape[0],
            first_step,
            self.kop_every,
            _float32(monitor.shift),
        )
        return arguments, {**self.constants, **self.shape, **self.launch}


def spike_tiles(synapses_e: int, synapses_i: int, chunk_e: int, chunk_i: int) -> dict:
    """Spikes per tile (``SPIKES_E``, ``SPIKES_I``: at least one) of the walks over E spikes and over
    I spikes, for tiles of about ``synapses_e`` and ``synapses_i`` synapses: a chunk of each spike's
    row by the spikes."""
    return dict(SPIKES_E=max(1, synapses_e // chunk_e), SPIKES_I=max(1, synapses_i // chunk_i))


def kernel_settings(text: str) -> dict:
    """A tuning script's compile-time settings of the kernel: ``"KEY=VALUE[,KEY=VALUE]"`` (integers or
    strings, e.g. ``SCRATCH_LOADS=``); ``"-"`` none."""
    if text == "-":
        return {}
    pairs = [item.partition("=") for item in text.split(",")]
    if any(not key or not sep for key, sep, _ in pairs):
        raise ValueError(f"settings {text!r}: expected KEY=VALUE[,KEY=VALUE] or -")
    return {key: int(value) if value.lstrip("-").isdigit() else value for key, _, value in pairs}


def tile_setting(text: str) -> tuple[int, int]:
    """A tuning script's spike tile: ``"E"`` (both walks) or ``"E:I"`` synapses; 0 the stepper's own."""
    synapses_e, _, synapses_i = text.partition(":")
    synapses_i = synapses_i or synapses_e
    if not (synapses_e.isdigit() and synapses_i.isdigit()):
        raise ValueError(f"tile {text!r}: expected synapses per tile, E or E:I (non-negative integers)")
    return int(synapses_e), int(synapses_i)


def tuned_shape(shape: dict, tile: str, settings: str) -> dict:
    """A stepper's compile-time ``shape`` under a tuning script's spike tile (``"0"``: the stepper's, see
    :func:`tile_setting`) and settings (:func:`kernel_settings`)."""
    tuned = dict(shape)
    if tile != "0":
        tuned.update(spike_tiles(*tile_setting(tile), shape["CHUNK_E"], shape["CHUNK_I"]))
    tuned.update(kernel_settings(settings))
    return tuned


def check_threads(options: dict) -> None:
    """Refuse a CUDA launch (``options``: the kernel's keywords) whose program has more threads than
    lanes. Triton then gives a lane to two threads, of which only one stores it, and the kernel's
    scratch tables would race: the delay ring's slot, say, is read when a step begins and written
    with the step's I spikes before barrier (a), so the other thread could read what was just stored.
    The kernel's freedom from races between threads holds for one or more lanes per thread only."""
    if "num_warps" in options:  # CUDA launches; the interpreter runs lanes, not threads
        lanes, warps = options["BLOCK_N"], options["num_warps"]
        require(
            32 * warps <= lanes,
            "num_warps",
            f"at most BLOCK_N / 32 = {lanes // 32} for programs of {lanes} lanes (a thread must hold one lane or more)",
            warps,
        )


def launch_options(block_n: int) -> dict:
    """Triton launch options on CUDA for networks of ``block_n`` lanes: four neurons per thread
    (the fastest of 1-32 warps at both sizes on an H200, benchmarks/results); programs of one or two
    warps capped at 128 registers per thread, so that an SM holds 16 warps of them (a small
    network's program alone hides little latency; larger programs stay uncapped, where ptxas
    spills more under the cap); no multiply-add contraction (eager's bits)."""
    num_warps = min(16, max(1, block_n // 128))
    cap = dict(maxnreg=128) if num_warps <= 2 else {}
    return dict(num_warps=num_warps, **cap, enable_fp_fusion=False)


def _pow2(value: int) -> int:
    return 1 << max(0, value - 1).bit_length()


def _chunk(mean_degree: float) -> int:
    """Synapses per spike in one pass: the mean row length plus three standard deviations."""
    return min(MAX_CHUNK, max(16, _pow2(math.ceil(mean_degree + 3 * math.sqrt(mean_degree)))))
