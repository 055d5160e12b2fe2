"""The batched simulator: independence, resets, continuity, recording, memory."""

import copy
import dataclasses
import os
import subprocess
import sys

import pytest
import torch

from neuroloop_gpu.config import NetworkParams, RecordConfig, SimConfig
from neuroloop_gpu.network import NetworkBatch, connectivity
from neuroloop_gpu.network.connectivity import Connectivity
from neuroloop_gpu.network.simulator import backend_problem, compiled_backend_problem
from neuroloop_gpu.stimulus import PulseTrain, StimulatorState, render_window

SMALL = NetworkParams(num_e=60, num_i=15, connection_prob=0.2)
NO_COMPILER = compiled_backend_problem(torch.device("cpu"))
needs_compiler = pytest.mark.skipif(NO_COMPILER is not None, reason=f"compiled backend: {NO_COMPILER}")
NO_FUSED = backend_problem("fused", torch.device("cpu"))
needs_fused = pytest.mark.skipif(NO_FUSED is not None, reason=f"fused backend unavailable: {NO_FUSED}")


def snapshot(net: NetworkBatch) -> dict[str, torch.Tensor]:
    return {f.name: getattr(net.state, f.name).clone() for f in dataclasses.fields(net.state)}


def test_network_in_a_batch_follows_its_solo_trajectory():
    batch = NetworkBatch(3, SMALL, seeds=[5, 6, 7], device="cpu", record=RecordConfig(spikes_e=True))
    alone = NetworkBatch(1, SMALL, seeds=[6], device="cpu", record=RecordConfig(spikes_e=True))
    for w in range(6):
        train = PulseTrain.constant(3, 80.0 + 20 * w, 130.0, 90.0)
        train.amplitude[0] = 0.0
        train.frequency[2] = 40.0
        solo_train = PulseTrain.constant(1, 80.0 + 20 * w, 130.0, 90.0)
        together = batch.run_window(train)
        solo = alone.run_window(solo_train)
        assert torch.equal(together.recording.spikes_e[1], solo.recording.spikes_e[0])
    for name, value in snapshot(alone).items():
        ours = value[:, 0] if name.startswith("ring_") else value[0]
        theirs = getattr(batch.state, name)
        theirs = theirs[:, 1] if name.startswith("ring_") else theirs[1]
        assert torch.equal(ours, theirs), name


def test_window_length_leaves_the_trajectory_unchanged():
    """The delay line and the noise stream run straight through window boundaries."""
    long = NetworkBatch(2, SMALL, SimConfig(sample_duration=20.0, seed=0), device="cpu")
    short = NetworkBatch(2, SMALL, SimConfig(sample_duration=5.0, seed=0), device="cpu")
    for _ in range(10):
        long.run_window()
    for _ in range(40):
        short.run_window()
    assert int(long.state.step[0]) == 2000
    for name, value in snapshot(long).items():
        if not name.startswith("ring_"):
            assert torch.equal(value, getattr(short.state, name)), name


def test_pulse_train_is_the_same_whatever_the_window_length():
    train = PulseTrain.constant(1, 100.0, 77.0, 300.0)
    pieces = {}
    for steps in (200, 50):
        state, currents = StimulatorState.initial(1, "cpu"), []
        for _ in range(2000 // steps):
            stim, state = render_window(train, state, steps, 0.1)
            currents.append(stim.current_i)
        pieces[steps] = torch.cat(currents, dim=1)
    assert torch.allclose(pieces[200], pieces[50], atol=1e-9)


def test_masked_reset_touches_only_the_masked_networks():
    net = NetworkBatch(3, SMALL, device="cpu")
    initial = snapshot(net)
    for _ in range(3):
        net.run_window(PulseTrain.constant(3, 100.0))
    before = snapshot(net)
    net.reset(torch.tensor([False, True, False]))
    after = snapshot(net)
    for name in before:
        dim = 1 if name.startswith("ring_") else 0
        for b in (0, 2):
            assert torch.equal(before[name].select(dim, b), after[name].select(dim, b)), name
        expected = initial[name].select(dim, 1)
        if name == "episode":
            expected = expected + 1
        assert torch.equal(after[name].select(dim, 1), expected), name
    assert float(net.stimulator.since_onset[1]) == float("inf")


def test_reseeding_rebuilds_the_network_of_that_seed_and_plain_reset_changes_the_noise():
    net = NetworkBatch(2, SMALL, seeds=[1, 2], device="cpu", record=RecordConfig(spikes_e=True))
    first = [net.run_window().recording.spikes_e.clone() for _ in range(3)]
    net.reset(torch.tensor([False, True]), seeds=[0, 77])
    fresh = NetworkBatch(1, SMALL, seeds=[77], device="cpu", record=RecordConfig(spikes_e=True))
    for _ in range(3):
        assert torch.equal(net.run_window().recording.spikes_e[1], fresh.run_window().recording.spikes_e[0])
    assert torch.equal(
        net.connectivity.ei_post[1] - net.connectivity.ei_post[1].min(),
        fresh.connectivity.ei_post[0] - fresh.connectivity.ei_post[0].min(),
    )
    net.reset()  # new episode, same networks: fresh noise, so a different trajectory
    again = [net.run_window().recording.spikes_e[0].clone() for _ in range(3)]
    assert not all(torch.equal(a[0], b) for a, b in zip(first, again))


def test_seeded_runs_are_reproducible():
    runs = []
    for _ in range(2):
        net = NetworkBatch(2, SMALL, SimConfig(seed=123), device="cpu")
        for _ in range(3):
            net.run_window(PulseTrain.constant(2, 150.0, 100.0, 200.0))
        runs.append(snapshot(net))
    for name in runs[0]:
        assert torch.equal(runs[0][name], runs[1][name]), name


def test_recording_agrees_with_the_window_statistics():
    net = NetworkBatch(2, SMALL, device="cpu", record=RecordConfig(spikes_e=True, traces=True))
    result = net.run_window()
    steps = net.steps_per_window
    rec, stats = result.recording, result.stats
    assert rec.spikes_e.shape == (2, steps, SMALL.num_e) and rec.spikes_e.dtype == torch.bool
    seconds = steps * net.sim.step_size * 1e-3
    assert torch.allclose(rec.spikes_e.sum((1, 2)).float() / (SMALL.num_e * seconds), stats.rate_e)
    assert torch.allclose(rec.v_e_mean.mean(1), stats.v_e_mean, atol=1e-4)
    assert torch.allclose(rec.weight_mv[:, -1], stats.weight_mv)
    assert torch.allclose(net.mean_weight_mv(), stats.weight_mv)
    plain = NetworkBatch(2, SMALL, device="cpu").run_window()
    assert plain.recording.spikes_e is None and plain.recording.v_e_mean is None


def test_float64_runs_and_weights_stay_within_bounds():
    params = dataclasses.replace(SMALL, plasticity=dataclasses.replace(SMALL.plasticity, onset=0.0))
    net = NetworkBatch(2, params, device="cpu", dtype=torch.float64)
    for _ in range(5):
        net.run_window(PulseTrain.constant(2, 200.0))
    w = net.state.weight
    assert w.dtype == torch.float64
    assert float(w.min()) >= 10.0 / 260 - 1e-12 and float(w.max()) <= 290.0 / 260 + 1e-12
    assert not torch.equal(w, torch.ones_like(w))


def test_full_size_memory_per_network_is_within_budget():
    net = NetworkBatch(2, NetworkParams(), device="cpu")
    assert net.bytes_per_network() <= 1.5e6
    counts = net.connectivity.ei_count.double()
    assert float((counts / (1600 * 400)).sub(0.1).abs().max()) < 0.005


def test_connectivity_is_sorted_and_matches_the_probability():
    net = NetworkBatch(4, NetworkParams(num_e=400, num_i=100), device="cpu")
    pre = net.connectivity.local("ei_pre", 401)
    post = net.connectivity.local("ei_post", 101)
    key = pre * 1000 + post
    real = post < 100
    for b in range(4):
        k = key[b][real[b]]
        assert torch.all(k[1:] > k[:-1])  # strictly increasing: sorted by (pre, post), no duplicates
    p = real.sum(1).double() / (400 * 100)
    assert float((p - 0.1).abs().max()) < 0.01
    assert not torch.equal(pre[0], pre[1])


def test_connectivity_drawn_in_parts_equals_one_draw(monkeypatch):
    seeds, slots = torch.tensor([3, 9, 4, 7, 1]), torch.tensor([2, 0, 4, 1, 3])  # a reset draws for some slots
    whole = Connectivity.draw(seeds, 60, 15, 0.2, slots)
    monkeypatch.setattr(connectivity, "_SYNAPSES_PER_PART", 2 * connectivity.synapse_capacity(60, 15, 0.2))
    parts = Connectivity.draw(seeds, 60, 15, 0.2, slots)  # parts of 2, 2 and 1 networks
    for name, value in vars(whole).items():
        assert value.dtype == getattr(parts, name).dtype and torch.equal(value, getattr(parts, name)), name


def _plastic_small(mode: str) -> NetworkParams:
    return dataclasses.replace(SMALL, synaptic_input=mode, plasticity=dataclasses.replace(SMALL.plasticity, onset=5.0))


def assert_identical_runs(first: NetworkBatch, second: NetworkBatch, *, stimulator_off_in_turn: bool = False) -> None:
    """Six windows of strong pulse trains (mass spikes, STDP) with a plain reset and a
    re-seeding in the middle: the same spikes (when recorded), weights, window statistics and
    final state, bit for bit. ``stimulator_off_in_turn``: network w % 3 gets no train in window w
    (the stimulation-locked noise then acts in some networks and windows, not in others)."""
    spikes = 0
    for w in range(6):
        if w == 3:
            for net in (first, second):
                net.reset(torch.tensor([True, False, True]), seeds=[9, 0, 10])
                net.reset(torch.tensor([False, True, False]))
        train = PulseTrain.constant(3, 60.0 + 40 * w, 90.0, 300.0)
        if stimulator_off_in_turn:
            train.amplitude[w % 3] = 0.0
        a, b = first.run_window(train), second.run_window(train)
        if first.record.spikes_e:
            assert torch.equal(a.recording.spikes_e, b.recording.spikes_e)
            assert torch.equal(a.recording.weight_mv, b.recording.weight_mv)
        for stat in dataclasses.fields(a.stats):  # what a controller observes
            assert torch.equal(getattr(a.stats, stat.name), getattr(b.stats, stat.name)), stat.name
        spikes += float(a.stats.rate_e.sum()) * first.params.num_e * first.sim.sample_duration / 1000
    for name, value in snapshot(first).items():
        assert torch.equal(value, getattr(second.state, name)), name
    assert spikes > 500
    assert (first.state.weight != first.params.plasticity.w_init).any()


def _recorded(params: NetworkParams, **options) -> NetworkBatch:
    return NetworkBatch(
        3, params, seeds=[4, 5, 6], device="cpu", record=RecordConfig(spikes_e=True, traces=True), **options
    )


@pytest.mark.parametrize("mode", ["published", "summed"])
def test_event_driven_and_dense_synapse_updates_agree_exactly(mode):
    """Touching only the synapses of spiking neurons gives the same bits as sweeping them all."""
    params = _plastic_small(mode)
    assert_identical_runs(_recorded(params, synapses="event", backend="eager"), _recorded(params, synapses="dense"))


@needs_compiler
@pytest.mark.parametrize(("mode", "synapses"), [("published", "event"), ("summed", "event"), ("published", "dense")])
def test_compiled_backend_gives_the_same_bits_as_eager(mode, synapses):
    """torch.compile'd kernels (noise words, membrane, filters, STDP passes) change no result."""
    params = _plastic_small(mode)
    assert_identical_runs(
        _recorded(params, synapses=synapses, backend="eager"), _recorded(params, synapses=synapses, backend="compiled")
    )


@needs_fused
@pytest.mark.parametrize(
    ("mode", "dtype"), [("published", torch.float32), ("summed", torch.float32), ("published", torch.float64)]
)
def test_fused_backend_gives_the_same_bits_as_eager(mode, dtype):
    """One C++ loop per network and step (and its Philox words) change no result."""
    params = _plastic_small(mode)
    assert_identical_runs(
        _recorded(params, dtype=dtype, backend="eager"), _recorded(params, dtype=dtype, backend="fused")
    )


@needs_fused
@pytest.mark.parametrize(
    ("mode", "torch_math_in_kernel"), [("published", True), ("summed", True), ("published", False)]
)
def test_fused_backend_gives_the_same_bits_as_eager_over_several_steps_per_call(
    mode, torch_math_in_kernel, monkeypatch
):
    """Unrecorded, one kernel call runs a whole window and takes the causal Kuramoto samples itself;
    without torch's vector math in the kernel library, a call runs kop_sample_interval worth of steps
    and the monitor takes them between calls."""
    from neuroloop_gpu.network import fused as fused_module

    if not torch_math_in_kernel:
        monkeypatch.setattr(fused_module, "torch_math_in_kernel", lambda dtype: False)
    elif not fused_module.torch_math_in_kernel(torch.float32):
        pytest.skip("the kernel library has no torch vector math here")
    params = _plastic_small(mode)
    fused = NetworkBatch(3, params, seeds=[4, 5, 6], device="cpu", backend="fused", kop_sample_interval=2.0)
    assert fused._steps_per_call() == (200 if torch_math_in_kernel else 20)
    assert_identical_runs(
        NetworkBatch(3, params, seeds=[4, 5, 6], device="cpu", backend="eager", kop_sample_interval=2.0), fused
    )


STIM_NOISY = {"stim_noise_e": 10.0, "stim_noise_i": 5.0}  # mV, stimulation-locked noise on both populations


@pytest.mark.parametrize(
    ("backend", "dtype", "steps_per_call"),
    [
        pytest.param("compiled", torch.float32, 1, marks=needs_compiler),
        pytest.param("fused", torch.float32, 1, marks=needs_fused),
        pytest.param("fused", torch.float64, 1, marks=needs_fused),
        pytest.param("fused", torch.float32, 200, marks=needs_fused),
    ],
)
def test_stim_locked_noise_gives_the_same_bits_on_every_cpu_backend(backend, dtype, steps_per_call):
    """The stimulation-locked term (its own draws, gated per network and window) on the compiled and
    fused backends, one step per call (recorded) or a whole window per kernel call: eager's bits."""
    params = dataclasses.replace(_plastic_small("published"), **STIM_NOISY)
    record = RecordConfig(spikes_e=True, traces=True) if steps_per_call == 1 else None
    first, second = (
        NetworkBatch(3, params, seeds=[4, 5, 6], device="cpu", dtype=dtype, record=record, backend=b)
        for b in ("eager", backend)
    )
    if backend == "fused" and steps_per_call > 1 and not second._stepper.samples_kuramoto:
        pytest.skip("the kernel library has no torch vector math here")
    assert second._steps_per_call() == steps_per_call
    assert_identical_runs(first, second, stimulator_off_in_turn=True)


def _one_step_apart(params: NetworkParams, amplitude: list[float], noise: dict, windows: int = 1):
    """Two batches of the same seeds, without and with ``noise`` (NetworkParams fields), after
    ``windows`` windows of one Euler step each under the same trains (per-network ``amplitude``)."""
    sim = SimConfig(duration=0.1 * windows, sample_duration=0.1, seed=0)
    quiet, noisy = (
        NetworkBatch(
            len(amplitude),
            dataclasses.replace(params, **extra),
            sim,
            device="cpu",
            backend="eager",
            kop_sample_interval=0.1,
        )
        for extra in ({}, noise)
    )
    for _ in range(windows):
        train = PulseTrain.constant(len(amplitude), 0.0)
        train.amplitude = torch.tensor(amplitude, dtype=torch.float64)
        quiet.run_window(train), noisy.run_window(train)
    return quiet, noisy


def test_stim_locked_noise_acts_while_the_stimulator_is_on_and_only_then():
    """Networks whose stimulator is off (amplitude 0) follow the noiseless trajectory bit for bit;
    a network whose stimulator is on gets exactly stim_noise * dt / tau_m * xi' more in V, xi' from
    the noise's own stream (rng.STREAM_STIM_NOISE at counter (step, episode))."""
    from neuroloop_gpu.rng import STREAM_STIM_NOISE, standard_normal

    params = NetworkParams(num_e=400, num_i=100)
    quiet, noisy = _one_step_apart(params, [0.0, 50.0, 0.0, 50.0], STIM_NOISY)
    for b in (0, 2):
        for name, value in snapshot(quiet).items():
            assert torch.equal(value[b], getattr(noisy.state, name)[b]), (name, b)
    xi = standard_normal(
        quiet.state.seed[[1, 3]].view(-1, 1),
        STREAM_STIM_NOISE,
        torch.zeros(1, 1, dtype=torch.int64),
        torch.zeros(1, 1, dtype=torch.int64),
        500,
        torch.float32,
    )[:, 0]
    gain = torch.tensor([10.0] * 400 + [5.0] * 100) * 0.1 / 10.0  # mV per draw: stim_noise * dt / tau_m
    # from V = 14 mV no neuron reaches threshold or the floor in one step: the difference is the term
    added = noisy.state.v[[1, 3]].double() - quiet.state.v[[1, 3]].double()
    torch.testing.assert_close(added, (gain * xi).double(), rtol=0, atol=2e-6)  # float32 rounding of V ~ 14 mV
    assert (added != 0).float().mean() > 0.99


def test_stim_locked_noise_is_off_in_a_window_whose_train_is_off_even_while_a_pulse_runs_on():
    """The flag is the window's (the published per-sample ON): a pulse that straddles into an off
    window is completed there without the noise. After an on window, a noiseless copy of the noisy
    network (same state, stimulator, ring position) runs the off windows to the same bits."""
    params = NetworkParams(num_e=100, num_i=25)
    sim = SimConfig(duration=1.0, sample_duration=0.1, seed=0)  # one step per window: the 2 ms pulse straddles 20
    quiet, noisy = (
        NetworkBatch(
            1, dataclasses.replace(params, **extra), sim, device="cpu", backend="eager", kop_sample_interval=0.1
        )
        for extra in ({}, STIM_NOISY)
    )
    on = PulseTrain.constant(1, 50.0, pulse_width=1000.0)
    before = noisy.state.v.clone()
    noisy.run_window(on)
    quiet.run_window(on)
    assert (noisy.state.v != quiet.state.v).float().mean() > 0.99  # on: the noise acts
    assert not torch.equal(before, noisy.state.v)
    quiet.state, quiet.stimulator = copy.deepcopy(noisy.state), copy.deepcopy(noisy.stimulator)
    quiet._ring_position = noisy._ring_position
    for _ in range(5):
        off = PulseTrain.constant(1, 0.0)
        delivered = quiet.run_window(off).stats.charge
        noisy.run_window(off)
        assert float(delivered[0]) > 0  # the carried pulse still runs
        for name, value in snapshot(quiet).items():
            assert torch.equal(value, getattr(noisy.state, name)), name


@pytest.mark.parametrize(
    ("scaling", "sd_e", "sd_i"), [("published", 0.1, 0.03), ("euler_maruyama", 0.1**0.5, 0.03 / 0.1**0.5)]
)
def test_stim_locked_noise_has_the_specified_spread(scaling, sd_e, sd_i):
    """The added voltage increment per step has s.d. stim_noise * dt / tau_m (model spec: 10 mV ->
    0.1 mV per 0.1 ms step; Euler-Maruyama: sqrt(dt) for dt) and mean 0: 8 x 1600 E and 8 x 400 I draws."""
    params = NetworkParams(noise_scaling=scaling)
    quiet, noisy = _one_step_apart(params, [50.0] * 8, {"stim_noise_e": 10.0, "stim_noise_i": 3.0})
    added = noisy.state.v.double() - quiet.state.v.double()
    for values, sd in ((added[:, :1600], sd_e), (added[:, 1600:], sd_i)):
        assert abs(float(values.std()) / sd - 1) < 0.04  # s.e. of the s.d.: 0.6 % (E), 1.3 % (I)
        assert abs(float(values.mean())) < 4 * sd / values.numel() ** 0.5


@needs_fused
def test_fused_noise_draws_are_the_torch_ones():
    """The kernel library's normal draws (its own Box-Muller where it finds torch's vector math,
    else torch's on its Philox words) equal rng.standard_normal's; the transform is checked on
    every float32 uniform the generator can give."""
    from neuroloop_gpu.network import fused
    from neuroloop_gpu.rng import box_muller_polar, standard_normal

    noise = fused.noise_function(torch.float32)
    if torch.ops.neuroloop_fused.standard_normal_available(torch.float32):
        assert noise is fused.standard_normal  # torch's CPU math is MKL's here: the fast path must be taken
        uniform = (torch.arange(1 << 23, dtype=torch.float32) + 0.5) * 2.0**-23  # exact: below 2**24
        cosine, sine = torch.ops.neuroloop_fused.box_muller(uniform, uniform)
        radius, angle = box_muller_polar(uniform.clone(), uniform.clone())
        assert torch.equal(cosine, radius * torch.cos(angle)) and torch.equal(sine, radius * angle.sin_())
    seed = torch.tensor([[0, 5, 2**40 + 7]])
    steps, episode = torch.arange(4).view(4, 1), torch.tensor([[0, 3, 1]])
    for dtype in (torch.float32, torch.float64):
        for count in (1, 7, 200, 2001):
            ours = fused.noise_function(dtype)(seed, 0, steps, episode, count, dtype)
            assert ours.shape == (4, 3, count)
            assert torch.equal(ours, standard_normal(seed, 0, steps, episode, count, dtype))


@needs_fused
def test_fused_noise_falls_back_to_torch_math_where_the_library_disagrees(monkeypatch):
    from neuroloop_gpu.network import fused
    from neuroloop_gpu.rng import standard_normal

    monkeypatch.setattr(fused, "box_muller_agrees_with_torch", lambda dtype: False)
    assert not fused.torch_math_in_kernel.__wrapped__(torch.float32)
    monkeypatch.setattr(fused, "torch_math_in_kernel", lambda dtype: False)
    noise = fused.noise_function(torch.float32)
    assert noise is not fused.standard_normal
    seed, steps, episode = torch.tensor([[3, 4]]), torch.arange(2).view(2, 1), torch.zeros(1, 2, dtype=torch.int64)
    assert torch.equal(
        noise(seed, 0, steps, episode, 50, torch.float32), standard_normal(seed, 0, steps, episode, 50, torch.float32)
    )


_DEFAULT_CAPABILITY_CHECK = """
import torch
from neuroloop_gpu.config import NetworkParams
from neuroloop_gpu.network import NetworkBatch
from neuroloop_gpu.stimulus import PulseTrain
assert torch.backends.cpu.get_cpu_capability() == "DEFAULT"
params = NetworkParams(num_e=60, num_i=15, connection_prob=0.2)
eager, fused = (NetworkBatch(2, params, seeds=[4, 5], device="cpu", backend=b) for b in ("eager", "fused"))
for w in range(3):
    train = PulseTrain.constant(2, 60.0 + 40 * w, 90.0, 300.0)
    a, b = eager.run_window(train).stats, fused.run_window(train).stats
    for name, value in vars(a).items():
        assert torch.equal(value, getattr(b, name)), name
"""


@needs_fused
def test_fused_backend_matches_torch_running_its_portable_kernels():
    """Under ATEN_CPU_CAPABILITY=default torch's addcmul_ rounds twice: the kernel's monitor sums must too."""
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "default"}
    done = subprocess.run([sys.executable, "-c", _DEFAULT_CAPABILITY_CHECK], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_failing_compiler_is_a_build_error(monkeypatch):
    """A compiler that exists but fails to run is reported like any failed build (auto then runs eager)."""
    from torch.utils import cpp_extension

    from neuroloop_gpu.network import fused

    def broken(**_):
        raise subprocess.CalledProcessError(1, ["c++", "--version"])

    monkeypatch.setattr(cpp_extension, "load", broken)
    with pytest.raises(RuntimeError, match="building the fused kernel .* failed; backend='eager' or 'compiled'"):
        fused.load_kernel.__wrapped__()


def test_fused_backend_is_refused_on_a_gpu_device():
    with pytest.raises(
        ValueError, match="backend must be 'eager', 'compiled' or 'triton' on cuda \\(the fused kernel is C"
    ):
        NetworkBatch(1, SMALL, device="cuda", backend="fused")


@needs_fused
def test_fused_backend_needs_event_synapses_and_its_build_tools(monkeypatch):
    with pytest.raises(ValueError, match="synapses must be 'event' with backend='fused'"):
        NetworkBatch(1, SMALL, device="cpu", synapses="dense", backend="fused")
    from torch.utils import cpp_extension

    monkeypatch.setattr(cpp_extension, "is_ninja_available", lambda: False)
    with pytest.raises(ValueError, match="backend must be 'eager' here: no ninja build tool for the fused kernel"):
        NetworkBatch(1, SMALL, device="cpu", backend="fused")
    monkeypatch.setenv("CXX", "no-such-compiler-here")
    with pytest.raises(ValueError, match="backend must be 'eager' here: no C\\+\\+ compiler"):
        NetworkBatch(1, SMALL, device="cpu", backend="fused")


def test_auto_backend_is_fused_where_it_can_run_else_eager():
    assert NetworkBatch(1, SMALL, device="cpu").backend == ("fused" if NO_FUSED is None else "eager")
    assert NetworkBatch(1, SMALL, device="cpu", synapses="dense").backend == "eager"


def test_unknown_backend_is_refused():
    with pytest.raises(
        ValueError, match="backend must be 'auto', 'eager', 'compiled', 'fused' or 'triton', got 'cuda'"
    ):
        NetworkBatch(1, SMALL, device="cpu", backend="cuda")


def test_compiled_backend_without_a_compiler_is_a_clear_error(monkeypatch):
    from torch._inductor import config as inductor

    monkeypatch.setattr(inductor.cpp, "cxx", ("no-such-compiler-here",))
    with pytest.raises(ValueError, match="backend must be 'eager' here: no C\\+\\+ compiler for torch.compile"):
        NetworkBatch(1, SMALL, device="cpu", backend="compiled")


def test_synapse_lists_by_pre_and_by_post_describe_the_same_synapses():
    net = NetworkBatch(3, NetworkParams(num_e=50, num_i=20, connection_prob=0.3), device="cpu")
    conn, capacity = net.connectivity, net.connectivity.ei_post.shape[1]
    pre, post = conn.local("ei_pre", 51), conn.local("ei_post", 21)
    by_post = conn.ei_by_post.long()
    assert torch.equal(conn.ei_pre_by_post.long(), pre.gather(1, by_post))
    assert torch.equal(torch.sort(by_post, dim=1).values, torch.arange(capacity).expand(3, -1))  # a permutation
    key = post.gather(1, by_post) * 100 + pre.gather(1, by_post)
    assert torch.all(key[:, 1:] >= key[:, :-1])  # sorted by (post, pre)
    for name, local_rows, rows in (
        ("ei", pre, 51),
        ("ie", conn.local("ie_pre", 21), 21),
        ("ei_post", post.gather(1, by_post), 21),
    ):
        start, degree = getattr(conn, f"{name}_start"), getattr(conn, f"{name}_degree")
        assert torch.equal(degree, torch.stack([torch.bincount(r, minlength=rows) for r in local_rows]))
        assert torch.equal(start[:, 0], torch.arange(3) * local_rows.shape[1])
        assert torch.equal(start[:, 1:], start[:, :-1] + degree[:, :-1])


@pytest.mark.parametrize("backend", ["eager"] + ([] if NO_FUSED else ["fused"]))
@pytest.mark.parametrize(
    "field,value,message",
    [
        ("amplitude", float("nan"), "amplitude must be finite"),
        ("pulse_width", 9000.0, "pulse_width must be > 0 us and at most half"),
        ("frequency", None, r"frequency must be a floating-point tensor of shape \(2,\)"),
    ],
)
def test_a_bad_pulse_train_leaves_the_networks_untouched(backend, field, value, message):
    """The train is rejected before anything is committed: state, stimulator carry-over, ring position."""
    net = NetworkBatch(2, SMALL, device="cpu", backend=backend)
    net.run_window(PulseTrain.constant(2, 100.0))  # a pulse that straddles into the next window
    before = snapshot(net)
    carry = {f.name: getattr(net.stimulator, f.name).clone() for f in dataclasses.fields(net.stimulator)}
    ring = net._ring_position
    bad = PulseTrain.constant(2, 100.0)
    if value is None:
        bad.frequency = bad.frequency[:1]
    else:
        getattr(bad, field)[1] = value
    with pytest.raises(ValueError, match=message):
        net.run_window(bad)
    assert all(torch.equal(before[name], value) for name, value in snapshot(net).items())
    assert all(torch.equal(carry[f.name], getattr(net.stimulator, f.name)) for f in dataclasses.fields(net.stimulator))
    assert net._ring_position == ring


def test_model_variants_are_the_defaults_and_the_published_code():
    """MODELS["paper"] is every default; MODELS["published-code"] adds 10 mV of stimulation-locked E
    noise, plasticity from 80 ms and stimulation from the window that covers 1980-2000 ms (the published
    code's ON = (i * 20 >= 2000) for 1-based 20 ms samples i)."""
    from neuroloop_gpu.open_loop import MODELS, OpenLoopProtocol, run_open_loop

    assert MODELS["paper"].network() == NetworkParams() and MODELS["paper"].protocol() == OpenLoopProtocol()
    small = NetworkParams.small()
    params = MODELS["published-code"].network(small)
    assert (params.stim_noise_e, params.stim_noise_i, params.plasticity.onset) == (10.0, 0.0, 80.0)
    assert dataclasses.replace(params, stim_noise_e=0.0, plasticity=small.plasticity) == small
    net = NetworkBatch(1, params, SimConfig(duration=2040.0), device="cpu")
    run = run_open_loop(net, MODELS["published-code"].protocol(), 102, progress=False)
    samples = [i for i in range(1, 103) if i * 20 >= 2000]  # the published flag, sample by sample
    assert run.stimulating[:, 0].nonzero()[0].tolist() == [i - 1 for i in samples]
