"""The ``"fused"`` CPU backend: a run of Euler steps as one C++ loop per network.

The batched tensor ops of :func:`~neuroloop_gpu.network.dynamics.euler_step` each
sweep the whole batch (or a spike list built for it) through memory; on a
CPU most of a step's time goes into building those intermediate tensors. The
kernel in ``csrc/fused_step.cpp`` runs the same step as the loops those ops
stand for, network by network in parallel, with each network's state in one
core's cache, and gives the same bits as the eager path (the tests check it);
``csrc/noise.cpp`` draws the membrane noise and ``csrc/stimulus.cpp`` renders each window's pulse
train onto its steps.
Torch builds it with its C++-extension tooling on first use (a C++ compiler
and ninja; about a minute) and caches the build on disk.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import torch

from .. import rng
from ..rng import uniform_words, words_to_uniform
from ..stimulus import PulseTrain, StimulatorState, WindowStimulus
from ..stimulus import render_window as render_window_in_torch
from .connectivity import Connectivity
from .dynamics import NeuronVectors, StepConstants
from .monitors import WindowMonitor
from .state import NetworkState

CSRC = Path(__file__).with_name("csrc")
SOURCES = [CSRC / "fused_step.cpp", CSRC / "noise.cpp", CSRC / "stimulus.cpp"]  # common.h: what they share
# -ffp-contract=off: a multiply-add must round twice, as the eager ops do; -fno-trapping-math lets the
# compiler evaluate both sides of a select (so that the loops vectorise) and changes no value
_FLAGS = ["-O3", "-fopenmp", "-ffp-contract=off", "-fno-trapping-math"]


def _pip_ninja_dir() -> str | None:
    """The folder of the pip package's ninja executable, or None without the package.

    ``ninja.BIN_DIR`` is empty in a virtual environment that sees the package in its base's
    site-packages (``--system-site-packages``): the executable then sits in the base's scripts folder,
    which the package's installed-file record still names.
    """
    try:
        import ninja
    except ImportError:
        return None
    if ninja.BIN_DIR and os.path.isfile(os.path.join(ninja.BIN_DIR, "ninja")):
        return ninja.BIN_DIR
    for file in importlib.metadata.files("ninja") or ():
        if file.name in ("ninja", "ninja.exe") and file.parent.name in ("bin", "Scripts"):
            located = Path(file.locate()).resolve()
            if located.is_file():
                return str(located.parent)
    return None


def _ninja_on_path() -> None:
    """Put the ninja of the pip package (a dependency) first on PATH, which torch's extension builder reads.

    Whatever PATH a shell holds, one ninja then builds and checks the kernel: two ninja versions
    disagree about each other's build log, and each switch between them would rebuild it (a minute).
    Without the package a system ninja, if any, builds it; PATH never gains an empty entry (which
    would search the working directory first).
    """
    folder = _pip_ninja_dir()
    if folder is None:
        return
    path = os.environ.get("PATH", "")
    if not path.startswith(folder + os.pathsep):
        os.environ["PATH"] = folder + os.pathsep + path


def fused_backend_problem() -> str | None:
    """Why the fused kernel cannot be built here, or None when it can."""
    from torch.utils import cpp_extension

    _ninja_on_path()
    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None:
        return f"no C++ compiler for the fused kernel ({compiler!r} not found; $CXX names another)"
    if not cpp_extension.is_ninja_available():
        return "no ninja build tool for the fused kernel (pip install ninja)"
    return None


def _build_name() -> str:
    """The build's name, hence its folder under torch's extension cache: one per checkout and source.
    Ninja's build file holds absolute source paths, so two checkouts sharing one folder would rebuild
    each other's kernel on every switch."""
    digest = hashlib.sha256(str(CSRC.resolve()).encode())
    for path in sorted(CSRC.iterdir()):
        digest.update(path.name.encode() + path.read_bytes())
    return f"neuroloop_fused_{digest.hexdigest()[:12]}"


BUILD_WAIT_S = 900  # how long a process waits for another one's build of the kernel before giving up


@functools.cache
def load_kernel() -> None:
    """Build (first use; cached on disk) and register ``torch.ops.neuroloop_fused``.

    Torch guards a build with a plain ``lock`` file that a killed build leaves behind, after which every
    later process waits for it forever. Builds here are serialised by an OS lock instead (filelock: it
    dies with its process), so whoever holds it knows that a ``lock`` file left in the build folder is
    stale and removes it; a process that cannot get the OS lock within BUILD_WAIT_S says so and stops.
    """
    from filelock import FileLock, Timeout
    from torch.utils import cpp_extension

    _ninja_on_path()
    name = _build_name()
    build_dir = Path(cpp_extension.get_default_build_root()) / name
    build_dir.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(build_dir.with_name(name + ".neuroloop.lock"), timeout=BUILD_WAIT_S):
            (build_dir / "lock").unlink(missing_ok=True)  # torch's baton from a killed build: nobody holds it
            if not (build_dir / f"{name}.so").exists():
                print(
                    f"neuroloop_gpu: building the fused CPU kernel (first use, about a minute; cached in {build_dir})",
                    file=sys.stderr,
                    flush=True,
                )
            cpp_extension.load(
                name=name,
                sources=[str(path) for path in SOURCES],
                extra_cflags=_FLAGS,
                extra_ldflags=["-fopenmp", "-ldl"],
                build_directory=str(build_dir),
                is_python_module=False,
            )
    except Timeout:
        raise RuntimeError(
            f"another process has been building the fused kernel for {BUILD_WAIT_S} s (it holds "
            f"{build_dir}.neuroloop.lock); wait for it, or use backend='eager'"
        ) from None
    except (RuntimeError, OSError, subprocess.SubprocessError) as error:  # the last: a compiler that fails to run
        raise RuntimeError(
            f"building the fused kernel ({CSRC}) failed; backend='eager' or 'compiled' run without it. {error}"
        ) from error


def _rows(*counters: torch.Tensor) -> tuple[torch.Size, list[torch.Tensor]]:
    """The broadcast shape of the counter words and each of them flattened to one row per draw row
    (``torch.broadcast_shapes`` would cost a tenth of a millisecond in Python per call)."""
    broadcast = torch.broadcast_tensors(*counters)
    return broadcast[0].shape, [t.contiguous().view(-1) for t in broadcast]


def box_muller_uniforms(
    seed: torch.Tensor, stream: int, c1: torch.Tensor, c2: torch.Tensor, count: int, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`neuroloop_gpu.rng.box_muller_uniforms` in the kernel library (same bits; counter
    words below 2**32): ``seed``, ``c1`` and ``c2`` broadcast to the rows of the result."""
    shape, (seed, c1, c2) = _rows(seed, c1, c2)
    radius, angle = torch.ops.neuroloop_fused.box_muller_uniforms(seed, c1, c2, stream, count, dtype)
    return radius.view(*shape, -1, 2), angle.view(*shape, -1, 2)


def standard_normal(
    seed: torch.Tensor, stream: int, c1: torch.Tensor, c2: torch.Tensor, count: int, dtype: torch.dtype
) -> torch.Tensor:
    """:func:`neuroloop_gpu.rng.standard_normal` in the kernel library: Philox words, Box-Muller with
    the vector-math calls torch's CPU kernels make, draws written in place (same bits, see
    :func:`noise_function`); one pass instead of torch's ~10 over the draws."""
    shape, (seed, c1, c2) = _rows(seed, c1, c2)
    return torch.ops.neuroloop_fused.standard_normal(seed, c1, c2, stream, count, dtype).view(*shape, count)


def render_window(
    train: PulseTrain, state: StimulatorState, steps: int, step_size: float
) -> tuple[WindowStimulus, StimulatorState]:
    """:func:`neuroloop_gpu.stimulus.render_window` in the kernel library: the same bits in one call
    instead of ~80 small torch ops (0.5-0.6 -> ~0.03 ms per window at one network on this
    project's CPU, this wrapper included); trains and states of float64 CPU tensors (what the
    library builds), others in torch."""
    load_kernel()
    tensors = [getattr(train, f.name) for f in fields(train)] + [getattr(state, f.name) for f in fields(state)]
    if any(t.dtype != torch.float64 or t.device.type != "cpu" for t in tensors):
        return render_window_in_torch(train, state, steps, step_size)
    current, energy, charge, net_charge, *carry = torch.ops.neuroloop_fused.render_window(
        *(t.contiguous() for t in tensors), steps, step_size
    )
    return WindowStimulus(current, energy, charge, net_charge), StimulatorState(*carry)


@functools.cache
def torch_math_in_kernel(dtype: torch.dtype) -> bool:
    """Whether the kernel library found the vector math torch's CPU kernels use for ``dtype`` and
    gives their bits here (checked once per process on 2**16 draws; the tests check every float32
    one): then it draws the noise itself (:func:`noise_function`) and, for float32, the kernel
    takes the causal Kuramoto samples between its steps."""
    load_kernel()
    return bool(torch.ops.neuroloop_fused.standard_normal_available(dtype)) and box_muller_agrees_with_torch(dtype)


def noise_function(dtype: torch.dtype):
    """The fused backend's membrane noise: :func:`standard_normal` where :func:`torch_math_in_kernel`,
    else :func:`neuroloop_gpu.rng.standard_normal` on this library's Philox words."""
    if torch_math_in_kernel(dtype):
        return standard_normal
    return functools.partial(rng.standard_normal, uniforms=box_muller_uniforms)


def box_muller_agrees_with_torch(dtype: torch.dtype, draws: int = 1 << 16) -> bool:
    """Whether the kernel library's Box-Muller transform gives torch's bits on ``draws`` generator
    outputs (the tests check every float32 one)."""
    words = uniform_words(torch.tensor([7]), 0, torch.tensor([0]), torch.tensor([0]), 2 * draws)[0]
    radius_u, angle_u = words_to_uniform(words, dtype).view(2, -1)
    ours = torch.ops.neuroloop_fused.box_muller(radius_u, angle_u)
    radius, angle = rng.box_muller_polar(radius_u, angle_u)
    return torch.equal(ours[0], radius * torch.cos(angle)) and torch.equal(ours[1], radius * angle.sin_())


class FusedSteps:
    """Runs a batch of networks through a run of Euler steps in one kernel call (the
    :class:`~neuroloop_gpu.network.triton_step.TritonSteps` interface), with the constants of
    ``c`` in the order of ``enum Real`` and ``enum Integer`` in the kernel."""

    noise_from_torch = True  # drawn before each call (noise_function): its log, sqrt, sin, cos are torch's bits

    def __init__(self, c: StepConstants, batch: int, num_neurons: int, kop_every: int, device: torch.device):
        load_kernel()
        # the kernel samples the causal Kuramoto estimate every kop_every steps (one call can then run a
        # whole window) where it has torch's cosine, sine and square root
        self.samples_kuramoto = torch_math_in_kernel(torch.float32)
        self.kop_every = kop_every if self.samples_kuramoto else 0
        self.reals = [
            c.dt,
            c.v_rest,
            c.v_threshold,
            c.v_reset,
            float(c.refractory_steps),
            c.tau_m,
            c.tau_d,
            c.tau_r,
            c.tau_pre,
            c.tau_post,
            c.trace_increment,
            c.ltd,
            c.ltp,
            c.w_min,
            c.w_max,
        ]
        self.integers = [c.num_e, c.num_i, c.plasticity_onset_steps, int(c.published)]
        self.spiked = torch.zeros(batch, num_neurons, dtype=torch.bool, device=device)  # reused: no page faults
        self.no_stim_noise = torch.empty(0, batch, num_neurons, device=device)  # stands in for absent draws
        self.stim_off = torch.zeros(batch, dtype=torch.bool, device=device)

    def run(
        self,
        n: NeuronVectors,
        conn: Connectivity,
        st: NetworkState,
        current: torch.Tensor,
        ring_base: int,
        monitor: WindowMonitor,
        noise: torch.Tensor,
        first_step: int,
        stim_on: torch.Tensor | None = None,
        stim_noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Advance every network ``current.shape[0]`` steps (``current`` [K, B]: the stimulus into I
        neurons per step; ``ring_base``: the ring slot of the first step; ``noise`` [K, B, N] standard
        normal draws; ``first_step``: the window step of the first step):
        :func:`~neuroloop_gpu.network.dynamics.euler_step` with event-driven synapses, ``st`` updated
        in place, each step added to the running sums of ``monitor`` (:meth:`WindowMonitor.accumulators`;
        with :attr:`samples_kuramoto` also its ``kop_sum``); ``stim_on`` [B] (bool) and ``stim_noise``
        [K, B, N] the stimulation-locked noise (None: none; no draws of it are then read). Returns the
        last step's spikes ``[B, N]`` (bool, E first)."""
        if stim_noise is None:  # an empty tensor tells the kernel there is no such term
            stim_on, stim_noise = self.stim_off, self.no_stim_noise.to(noise.dtype)
        return torch.ops.neuroloop_fused.euler_steps(
            st.v,
            st.refractory,
            st.x,
            st.s,
            st.spiked_pre,
            st.trace_pre,
            st.spiked_post,
            st.trace_post,
            st.weight,
            st.ring_spikes_i,
            st.ring_input_i,
            st.last_spike_e,
            st.last_isi_e,
            st.step,
            current.contiguous(),
            noise.contiguous(),  # rows of N draws sliced from whole Philox blocks
            stim_on.contiguous(),
            stim_noise.contiguous(),
            n.stim_noise_gain,
            n.mu,
            n.coupling,
            n.stim_sign,
            n.noise_gain,
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
            self.spiked,
            *monitor.accumulators(),
            monitor.kop_sum,
            ring_base,
            first_step,
            self.kop_every,
            monitor.shift,
            self.reals,
            self.integers,
        )
