"""The batched FTSTS simulator: B independent networks advanced window by window."""

from __future__ import annotations

import reprlib
import secrets
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..config import NetworkParams, RecordConfig, SimConfig, require, require_count, steps_in
from ..rng import STREAM_MEMBRANE_NOISE, STREAM_STIM_NOISE
from ..stimulus import PulseTrain, StimulatorState, WindowStimulus, render_window
from .connectivity import Connectivity
from .dynamics import StepConstants, StepKernels, euler_step
from .fused import FusedSteps, fused_backend_problem, load_kernel
from .fused import noise_function as fused_noise_function
from .fused import render_window as fused_render_window
from .monitors import WindowMonitor, WindowRecording, WindowStats, mean_weight_mv
from .state import NetworkState
from .triton_step import TritonSteps, triton_backend_problem

BACKENDS = ("eager", "compiled", "fused", "triton")
BACKEND_CHOICES = ("auto", *BACKENDS)  # auto: fused (CPU) or triton (CUDA) where it can run, else eager
_NOISE_ELEMENTS = 1 << 18  # draws generated at once (several Euler steps when the batch is small)
_BLOCK_NOISE_ELEMENTS = 1 << 23  # at most, for the several steps one call of the fused kernel takes


def compiled_backend_problem(device: torch.device) -> str | None:
    """Why ``backend="compiled"`` cannot run on ``device`` here, or None when it can. On the CPU
    ``torch.compile`` builds C++ kernels and needs the compiler it looks for (``$CXX`` or g++)."""
    if torch.device(device).type != "cpu":
        return None
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler

        get_cpp_compiler()
    except Exception as error:  # noqa: BLE001 - any failure to find one means the same thing here
        return f"no C++ compiler for torch.compile ({type(error).__name__}: {str(error).splitlines()[0]})"
    return None


def backend_problem(backend: str, device: torch.device) -> str | None:
    """Why ``backend`` cannot run on ``device`` here, phrased as what ``backend`` must be
    instead (the allowed values first), or None when it can."""
    device = torch.device(device)
    if backend == "fused" and device.type != "cpu":
        return f"'eager', 'compiled' or 'triton' on {device.type} (the fused kernel is C++ for the CPU)"
    problem = None
    if backend == "compiled":
        problem = compiled_backend_problem(device)
    elif backend == "fused":  # its Philox words are in its own library: no torch.compile involved
        problem = fused_backend_problem()
    elif backend == "triton":
        problem = triton_backend_problem(device)
    return None if problem is None else f"'eager' here: {problem}"


def default_device() -> torch.device:
    """CUDA when available, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class WindowResult:
    stats: WindowStats
    recording: WindowRecording


class NetworkBatch:
    """``num_networks`` independent FTSTS networks as batched tensors on one device.

    Each network has its own seed (default ``sim.seed + b``; ``sim.seed=None`` draws a fresh base seed
    from OS entropy, recorded in ``state.seed``), which fixes its
    connectivity and its noise: network b follows the same trajectory whether
    it runs alone or inside any batch. Call :meth:`run_window` to advance all
    networks by one decision window (``sim.sample_duration``) under their own
    pulse trains; :meth:`reset` restarts any subset.

    Arguments:
        num_networks: batch size B.
        params: network parameters (defaults: the published full-size model).
        sim: timing (step size, window length) and the base seed.
        seeds: one seed per network (overrides ``sim.seed + b``).
        device: torch device; default CUDA when available, else CPU.
        dtype: ``torch.float32`` (default) or ``torch.float64``.
        record: what to record per step (nothing by default).
        kop_sample_interval: ms between samples of the causal Kuramoto estimate.
        synapses: ``"event"`` updates only the synapses of neurons that spiked
            (the fast choice on a CPU; with the eager or compiled backend its
            data-dependent list sizes make a GPU wait for the host every step,
            while the Triton kernel builds its lists on the GPU), ``"dense"``
            sweeps every synapse every step with fixed shapes (no host sync);
            default ``"event"`` on the CPU or with ``backend="triton"``,
            ``"dense"`` elsewhere. Both give identical results.
        backend: ``"auto"`` (default) picks ``"fused"`` where it can run (CPU,
            event-driven synapses, a C++ compiler and ninja), ``"triton"``
            where it can (CUDA, float32, event-driven synapses, Triton), else
            ``"eager"``. ``"eager"`` runs every op as it comes; ``"compiled"``
            fuses the per-neuron work and the random-number generator with
            ``torch.compile`` (needs a C++ compiler on the CPU, Triton on
            CUDA; the first windows pay the compilation, cached on disk
            afterwards); ``"fused"`` (CPU only, event-driven synapses) runs a
            whole window of Euler steps as one C++ loop per network (built on
            first use with a C++ compiler and ninja, then cached), Philox
            words of the noise included; ``"triton"`` (CUDA, float32,
            event-driven synapses) runs a whole window of every network in
            one Triton kernel launch, noise and Kuramoto samples included
            (both run one step per call while a recording is on; see
            :mod:`~neuroloop_gpu.network.triton_step`). Same results, bit for
            bit, whichever backend, with two stated exceptions: ``"triton"``
            sums the window statistics that average over neurons (chi, mean
            and spread of V) in its own order (equal to float32 rounding; all
            state, spikes, weights, rates and Kuramoto values bit for bit),
            and ``"compiled"`` on CUDA rounds some float ops as Inductor's
            Triton code does (potentials differ in the last bits; tested to a
            tolerance). On the CPU only integer ops and exact or identically
            ordered float ops are compiled or fused.
    """

    def __init__(
        self,
        num_networks: int,
        params: NetworkParams | None = None,
        sim: SimConfig | None = None,
        *,
        seeds: Sequence[int] | torch.Tensor | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        record: RecordConfig | None = None,
        kop_sample_interval: float = 1.0,
        synapses: str | None = None,
        backend: str = "auto",
    ):
        require_count("num_networks", num_networks)
        require(dtype in (torch.float32, torch.float64), "dtype", "torch.float32 or torch.float64", dtype)
        for name, value, kind in (
            ("params", params, NetworkParams),
            ("sim", sim, SimConfig),
            ("record", record, RecordConfig),
        ):
            require(value is None or isinstance(value, kind), name, f"a {kind.__name__} or None", value)
        self.params = params or NetworkParams()
        self.sim = sim or SimConfig()
        self.record = record or RecordConfig()
        rows = max(self.params.num_e, self.params.num_i) + 1  # the synapse tables' 32-bit rows span the batch
        require(
            num_networks * rows < 2**31,
            "num_networks",
            f"below {-(-(2**31) // rows)} for networks of this size",
            num_networks,
        )
        self.num_networks = num_networks
        self.device = torch.device(device) if device is not None else default_device()
        self.dtype = dtype
        require(synapses in (None, "event", "dense"), "synapses", "'event' or 'dense'", synapses)
        self.backend = self._resolve_backend(backend, synapses)
        self.synapses = synapses or ("event" if self.device.type == "cpu" or self.backend == "triton" else "dense")
        self._render = render_window  # the pulse train of a window onto its steps
        if self.backend == "fused":
            self._kernels = StepKernels(noise=fused_noise_function(dtype))
            self._render = fused_render_window
        else:
            self._kernels = StepKernels.compiled() if self.backend == "compiled" else StepKernels()
        self.constants = StepConstants.from_params(self.params, self.sim.step_size)
        self.neurons = self.constants.neuron_vectors(self.device, dtype)
        self.steps_per_window = self.sim.steps_per_window
        self.kop_every = steps_in(kop_sample_interval, self.sim.step_size, "kop_sample_interval")
        require(
            self.steps_per_window % self.kop_every == 0,
            "kop_sample_interval",
            f"a divisor of sample_duration={self.sim.sample_duration} ms",
            kop_sample_interval,
        )
        seeds = self._seed_tensor(seeds, num_networks, "seeds")
        if seeds is None:
            # SimConfig(seed=None): fresh entropy, recorded in state.seed (62 bits: seed + b stays below 2**63)
            base = secrets.randbits(62) if self.sim.seed is None else self.sim.seed
            require(
                base + num_networks <= 2**63,
                "sim.seed",
                f"an integer in [0, 2**63 - num_networks] = [0, {2**63 - num_networks}] (network b uses seed + b)",
                self.sim.seed,
            )
            seeds = base + torch.arange(num_networks, dtype=torch.int64, device=self.device)
        self.connectivity = Connectivity.draw(seeds, self.params.num_e, self.params.num_i, self.params.connection_prob)
        self._require_ei_synapses(self.connectivity, seeds)
        self.state = self._fresh_state(seeds)
        self.stimulator = StimulatorState.initial(num_networks, self.device)
        self._synapse_rank = torch.arange(self.connectivity.ei_post.shape[1], dtype=dtype, device=self.device)
        self._ring_position = 0
        # the kernel backends advance every network several steps per call
        self._stepper = None
        if self.backend == "triton":
            self._stepper = TritonSteps(
                self.constants,
                self.params.connection_prob,
                num_networks,
                self.connectivity.ei_post.shape[1],
                self.kop_every,
                self.device,
            )
        elif self.backend == "fused":
            self._stepper = FusedSteps(
                self.constants, num_networks, self.params.num_e + self.params.num_i, self.kop_every, self.device
            )
        self._noise_steps = max(
            1, min(self.steps_per_window, _NOISE_ELEMENTS // (num_networks * (self.params.num_e + self.params.num_i)))
        )

    # ----------------------------------------------------------------- setup
    def _resolve_backend(self, backend: str, synapses: str | None) -> str:
        """The backend to run (``"auto"`` resolved), its kernel library loaded; a clear error for
        one that cannot run here. ``synapses`` as given (None: event-driven wherever a kernel backend runs)."""
        require(
            backend in BACKEND_CHOICES,
            "backend",
            ", ".join(map(repr, BACKEND_CHOICES[:-1])) + f" or {BACKEND_CHOICES[-1]!r}",
            backend,
        )
        event = synapses in (None, "event")
        if backend == "auto":  # the fastest backend that runs here (CPU: the same bits whichever)
            if self.device.type == "cuda":
                fits = event and self.dtype == torch.float32 and triton_backend_problem(self.device) is None
                return "triton" if fits else "eager"
            if not event or backend_problem("fused", self.device) is not None:
                return "eager"
            try:
                load_kernel()
            except RuntimeError as error:
                warnings.warn(f"backend='auto' runs 'eager': {error}", RuntimeWarning, stacklevel=3)
                return "eager"
            return "fused"
        problem = backend_problem(backend, self.device)
        require(problem is None, "backend", problem, backend)
        require(
            backend not in ("fused", "triton") or event,
            "synapses",
            f"'event' with backend={backend!r} (its loops visit the synapses of spiking neurons only)",
            synapses,
        )
        require(
            backend != "triton" or self.dtype == torch.float32,
            "dtype",
            "torch.float32 with backend='triton'",
            self.dtype,
        )
        if backend == "fused":
            load_kernel()
        return backend

    def _seed_tensor(self, seeds, count: int, name: str) -> torch.Tensor | None:
        if seeds is None:
            return None
        try:
            tensor = torch.as_tensor(seeds)
        except (TypeError, ValueError, RuntimeError, OverflowError):  # e.g. 2**64, or not numbers at all
            tensor = None
        integer = (
            tensor is not None
            and not tensor.is_floating_point()
            and not tensor.is_complex()
            and tensor.dtype != torch.bool
        )
        require(
            integer,
            name,
            f"{count} integers in [0, 2**63)",
            tensor.dtype if tensor is not None else reprlib.repr(seeds),
        )
        tensor = tensor.to(self.device, torch.int64).reshape(-1)
        require(tensor.numel() == count, name, f"{count} integers", tuple(tensor.shape))
        negative = tensor[tensor < 0]
        require(negative.numel() == 0, name, "non-negative integers", negative[:5].tolist())
        return tensor

    def _fresh_state(self, seeds: torch.Tensor) -> NetworkState:
        return NetworkState.initial(
            self.params, seeds, self.connectivity.ei_post.shape[1], self.constants.delay_steps, self.dtype
        )

    def _require_ei_synapses(self, connectivity: Connectivity, seeds: torch.Tensor) -> None:
        """A network without a single E->I synapse has no E->I weight to measure, report or latch on."""
        empty = (connectivity.ei_count == 0).nonzero().view(-1).tolist()
        if empty:
            p = self.params
            raise ValueError(
                f"num_e={p.num_e}, num_i={p.num_i}, connection_prob={p.connection_prob}: the networks "
                f"of seeds {seeds[empty].tolist()[:8]} have no E->I synapse, hence no mean E->I weight "
                "to observe or latch on; use more neurons, a larger connection_prob or other seeds"
            )

    # ----------------------------------------------------------------- reset
    def reset(self, mask: torch.Tensor | None = None, seeds: Sequence[int] | torch.Tensor | None = None) -> None:
        """Restart the networks where ``mask`` (``[B]`` bool; default all).

        Without ``seeds`` a restarted network keeps its connectivity and moves
        on to a fresh noise stream (next episode); this path is pure tensor
        ops with no host sync. ``seeds`` (``[B]``, all valid seeds; entries outside the
        mask are not used) re-seed the masked networks: new connectivity, noise stream
        from the start, exactly as a network built with that seed.
        """
        batch = self.num_networks
        if mask is None:
            mask = torch.ones(batch, dtype=torch.bool, device=self.device)
        mask = torch.as_tensor(mask, device=self.device)
        require(
            mask.dtype == torch.bool and mask.shape == (batch,),
            "mask",
            f"a bool tensor of shape ({batch},)",
            f"{mask.dtype} {tuple(mask.shape)}",
        )
        new_seeds = self._seed_tensor(seeds, batch, "seeds")
        seeds = self.state.seed if new_seeds is None else torch.where(mask, new_seeds, self.state.seed)
        fresh = self._fresh_state(seeds)
        if new_seeds is None:
            fresh.episode = self.state.episode + 1
        else:
            slots = mask.nonzero().view(-1)  # host-side re-seeding, never inside the Euler loop
            if slots.numel():  # nothing to draw for an empty mask
                drawn = Connectivity.draw(
                    new_seeds[slots], self.params.num_e, self.params.num_i, self.params.connection_prob, slots=slots
                )
                self._require_ei_synapses(drawn, new_seeds[slots])  # before anything changes
                self.connectivity.replace(slots, drawn)
        self.state.merge(mask, fresh)
        self.stimulator.reset(mask)

    # ------------------------------------------------------------------- run
    def run_window(self, train: PulseTrain | None = None, *, validate: bool = True) -> WindowResult:
        """Advance every network by one window under its pulse train (default: no stimulation)."""
        train = train if train is not None else PulseTrain.off(self.num_networks, self.device)
        if validate:
            train.check_shapes(self.num_networks, self.device)
        # rendered before the values are checked: on a GPU its ~80 small kernels are queued while the
        # previous window still runs, and the check's host read then waits for them as well
        stimulus, stimulator = self._render(train, self.stimulator, self.steps_per_window, self.sim.step_size)
        if validate:
            train.check_values()  # before anything is committed
        self.stimulator = stimulator
        # The stimulator is "on" in a window where its train has amplitude > 0 (stimulus.py: 0 = off), as
        # the published code's per-sample ON flag gates both the pulse and its "Figure 6" noise: the
        # stimulation-locked noise follows this flag for the whole window, whether or not a pulse falls
        # in it, and not a pulse carried over from an earlier window into an off one.
        stim_on = train.amplitude > 0 if self.constants.stim_noise else None
        return self._integrate(stimulus, stim_on)

    def _integrate(self, stimulus: WindowStimulus, stim_on: torch.Tensor | None = None) -> WindowResult:
        current = stimulus.current_i.to(self.dtype).t().contiguous()  # [steps, B]: one row per step
        monitor = WindowMonitor(
            self.state,
            self.steps_per_window,
            self.kop_every,
            self.record,
            self.params.v_reset,
            self.synapse_valid(),
            self.params.j_i,
        )
        if self._stepper is not None:
            self._integrate_blocks(current, monitor, stim_on)
        else:
            self._integrate_steps(current, monitor, stim_on)
        stats, recording = monitor.finish(
            self.state, self.sim.step_size, stimulus.energy, stimulus.charge, stimulus.net_charge
        )
        return WindowResult(stats, recording)

    def _integrate_steps(self, current: torch.Tensor, monitor: WindowMonitor, stim_on: torch.Tensor | None) -> None:
        """The window step by step with batched torch ops (eager or compiled backend)."""
        c, st, conn = self.constants, self.state, self.connectivity
        steps = self.steps_per_window
        # The dense sweep's per-synapse presynaptic rows: expanded once per window (connectivity
        # only changes at resets) rather than kept, which would cost ~1 MB per full-size network.
        dense_rows = None if self.synapses == "event" else (conn.pre_rows("ie"), conn.pre_rows("ei"))
        for start in range(0, steps, self._noise_steps):
            count = min(self._noise_steps, steps - start)
            noise = self.membrane_noise(count)
            stim_noise = self.stim_noise(count) if stim_on is not None else None
            for k in range(count):
                slot = self._ring_position % c.delay_steps
                self._ring_position += 1
                spiked = euler_step(
                    c,
                    self.neurons,
                    conn,
                    st,
                    current[start + k],
                    noise[k],
                    slot,
                    self._synapse_rank,
                    dense_rows,
                    self._kernels,
                    stim_on,
                    None if stim_noise is None else stim_noise[k],
                )
                monitor.observe(start + k, st, spiked)

    def _steps_per_call(self) -> int:
        """Steps per call of a kernel backend: one when recording (the recordings are taken between
        calls; ``record`` is read per window, so recording may be switched on at any window); a divisor
        of the window (of ``kop_every`` when the monitor takes the causal Kuramoto
        samples between calls), and with noise drawn by torch as many as keep a call's draws under
        ``_BLOCK_NOISE_ELEMENTS``."""
        if self._stepper is None or self.record.spikes_e or self.record.traces:
            return 1
        span = self.steps_per_window if self._stepper.samples_kuramoto else self.kop_every
        if not self._stepper.noise_from_torch:
            return span
        per_step = self.num_networks * (self.params.num_e + self.params.num_i)
        return max(d for d in range(1, span + 1) if span % d == 0 and (d == 1 or d * per_step <= _BLOCK_NOISE_ELEMENTS))

    def _integrate_blocks(self, current: torch.Tensor, monitor: WindowMonitor, stim_on: torch.Tensor | None) -> None:
        """The window in kernel calls of :meth:`_steps_per_call` steps each; every call adds its steps
        to the monitor's running sums, and between calls the monitor takes what the kernel does not
        (the Kuramoto samples unless it :attr:`samples_kuramoto`). Noise drawn by torch comes in
        chunks of whole calls, as many as fit in ``_NOISE_ELEMENTS`` draws."""
        block, steps = self._steps_per_call(), self.steps_per_window
        per_call = block * self.num_networks * (self.params.num_e + self.params.num_i)
        chunk = block * max(1, min(steps // block, _NOISE_ELEMENTS // per_call))
        for first in range(0, steps, chunk):
            count = min(chunk, steps - first)
            noise = self.membrane_noise(count) if self._stepper.noise_from_torch else None
            stim_noise = self.stim_noise(count) if stim_on is not None and self._stepper.noise_from_torch else None
            for start in range(first, first + count, block):
                rows = current[start : start + block]
                here = slice(start - first, start - first + block)
                spiked = self._stepper.run(
                    self.neurons,
                    self.connectivity,
                    self.state,
                    rows,
                    self._ring_position % self.constants.delay_steps,
                    monitor,
                    None if noise is None else noise[here],
                    start,
                    stim_on,
                    None if stim_noise is None else stim_noise[here],
                )
                self._ring_position += block
                monitor.observe(
                    start + block - 1,
                    self.state,
                    spiked,
                    accumulated=True,
                    sampled_from=start if self._stepper.samples_kuramoto else None,
                )

    def membrane_noise(self, count: int) -> torch.Tensor:
        """Standard normal draws ``[count, B, num_e + num_i]`` for the next ``count`` steps
        (step-major, so that each step's ``[B, N]`` is contiguous).

        Draw (network, step, neuron) is Philox block ``neuron // 4`` of
        counter (step since reset, episode, stream) under the network's seed.
        """
        return self._draws(count, STREAM_MEMBRANE_NOISE)

    def stim_noise(self, count: int) -> torch.Tensor:
        """The stimulation-locked noise's standard normal draws, laid out as :meth:`membrane_noise`'s
        from their own stream (``rng.STREAM_STIM_NOISE``): a run without that term draws none of them,
        and the membrane noise, hence every trajectory without it, stays as it was."""
        return self._draws(count, STREAM_STIM_NOISE)

    def _draws(self, count: int, stream: int) -> torch.Tensor:
        st = self.state
        steps = st.step + torch.arange(count, device=self.device).unsqueeze(1)
        return self._kernels.noise(
            st.seed.view(1, -1),
            stream,
            steps,
            st.episode.view(1, -1),
            self.params.num_e + self.params.num_i,
            self.dtype,
        )

    # ------------------------------------------------------------- queries
    def synapse_valid(self) -> torch.Tensor:
        """[B, S_ei] bool, False for padding synapses (real synapses come first in each row)."""
        return self._synapse_rank < self.connectivity.ei_count.to(self.dtype).unsqueeze(1)

    def mean_weight_mv(self) -> torch.Tensor:
        """[B] mean J_I * w over each network's E->I synapses, mV."""
        return mean_weight_mv(self.state.weight, self.synapse_valid(), self.params.j_i)

    @property
    def time_ms(self) -> torch.Tensor:
        """[B] network time since reset, ms."""
        return self.state.step.to(torch.float64) * self.sim.step_size

    def bytes_per_network(self) -> float:
        """Persistent device memory of each network's own state, connectivity and stimulator. Not in it:
        the kernel backends' scratch (Triton: about 83 KB per full-size network; fused: a few KB), tables
        the whole batch shares, and per-window buffers (the dense sweep's rows, noise blocks, recordings),
        which the benchmarks' peak memory includes."""
        stimulator = sum(t.element_size() * t.numel() for t in vars(self.stimulator).values())
        return (self.state.nbytes() + self.connectivity.nbytes() + stimulator) / self.num_networks
