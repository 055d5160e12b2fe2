"""CUDA checks (run with `pytest -m gpu` on a machine with a GPU)."""

import pytest
import torch

from neuroloop_gpu.config import NetworkParams, RecordConfig
from neuroloop_gpu.network import NetworkBatch
from neuroloop_gpu.stimulus import PulseTrain

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]
SMALL = NetworkParams(num_e=160, num_i=40)


@pytest.mark.parametrize("backend", ["eager", "triton"])
def test_euler_loop_never_waits_for_the_host(backend):
    net = NetworkBatch(8, SMALL, device="cuda", backend=backend)
    train = PulseTrain.constant(8, 100.0, device="cuda")
    mask = torch.arange(8, device="cuda") == 3  # built before the check: a host-to-device copy waits
    net.run_window(train)  # warm-up (allocator, kernels)
    torch.cuda.set_sync_debug_mode("error")
    try:
        net.run_window(train, validate=False)
        net.reset(mask)
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_cuda_matches_cpu_spike_for_spike_in_float64():
    """Counter-based noise and connectivity make both devices see the same inputs."""
    results = {}
    for device in ("cpu", "cuda"):
        net = NetworkBatch(2, SMALL, device=device, dtype=torch.float64, record=RecordConfig(spikes_e=True))
        rasters = [
            net.run_window(PulseTrain.constant(2, 100.0, device=device)).recording.spikes_e.cpu() for _ in range(5)
        ]
        results[device] = (torch.stack(rasters), net.state.v_e.cpu())
    assert results["cpu"][0].any() and torch.equal(results["cpu"][0], results["cuda"][0])
    assert torch.allclose(results["cpu"][1], results["cuda"][1], atol=1e-9)


def test_batch_independence_on_cuda():
    batch = NetworkBatch(4, SMALL, seeds=[9, 10, 11, 12], device="cuda", record=RecordConfig(spikes_e=True))
    alone = NetworkBatch(1, SMALL, seeds=[11], device="cuda", record=RecordConfig(spikes_e=True))
    from neuroloop_gpu.network.triton_step import triton_backend_problem

    if triton_backend_problem(torch.device("cuda")) is None:  # what backend="auto" then runs on CUDA
        assert batch.backend == alone.backend == "triton"
    for _ in range(5):
        a = batch.run_window(PulseTrain.constant(4, 100.0, device="cuda")).recording.spikes_e[2]
        b = alone.run_window(PulseTrain.constant(1, 100.0, device="cuda")).recording.spikes_e[0]
        assert a.any() and torch.equal(a, b)


def test_batch_independence_of_the_eager_dense_step_on_cuda():
    options = dict(device="cuda", backend="eager", synapses="dense", record=RecordConfig(spikes_e=True))
    batch, alone = NetworkBatch(3, SMALL, seeds=[9, 10, 11], **options), NetworkBatch(1, SMALL, seeds=[10], **options)
    for _ in range(4):
        a = batch.run_window(PulseTrain.constant(3, 100.0, device="cuda")).recording.spikes_e[1]
        b = alone.run_window(PulseTrain.constant(1, 100.0, device="cuda")).recording.spikes_e[0]
        assert a.any() and torch.equal(a, b)


def test_torchrl_env_step_and_partial_reset_never_wait_for_the_host():
    """Our ``_step`` and ``_reset``; TorchRL's ``reset`` wrapper itself reads a partial mask on the host."""
    from neuroloop_gpu.config import SimConfig
    from neuroloop_gpu.envs import FTSTSTorchEnv

    env = FTSTSTorchEnv(16, SimConfig(duration=60.0), {"num_e": 160, "num_i": 40}, device="cuda", check_actions=False)
    td = env.reset()
    td["action"] = torch.zeros(16, 3, device="cuda")
    env.step(td)  # warm-up
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = env.step(td)["next"]
        out["_reset"] = torch.zeros(16, 1, dtype=torch.bool, device="cuda")
        env._reset(out)
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.parametrize("synapses", ["dense", "event"])
def test_compiled_backend_matches_eager_on_cuda(synapses):
    """Inductor's Triton code rounds some float ops differently from eager CUDA (last bits of V
    differ after a few windows, seen on an H200): spikes agree over these five windows, V and the
    weights to float32 rounding. On the CPU the compiled backend gives eager's bits (test_simulator)."""
    runs = {}
    for backend in ("eager", "compiled"):
        net = NetworkBatch(
            4, SMALL, device="cuda", synapses=synapses, backend=backend, record=RecordConfig(spikes_e=True)
        )
        rasters = [
            net.run_window(PulseTrain.constant(4, 100.0, device="cuda")).recording.spikes_e.cpu() for _ in range(5)
        ]
        runs[backend] = (torch.stack(rasters), net.state.v.cpu(), net.state.weight.cpu())
    (raster_e, v_e, w_e), (raster_c, v_c, w_c) = runs["eager"], runs["compiled"]
    assert raster_e.any() and torch.equal(raster_e, raster_c)
    torch.testing.assert_close(v_c, v_e, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(w_c, w_e, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "size,windows,kop_sample_interval", [(SMALL, 8, 1.0), (NetworkParams(), 6, 1.0), (SMALL, 7, 2.0)]
)
def test_triton_backend_matches_eager_on_cuda(size, windows, kop_sample_interval):
    """Noise drawn in the kernel, CUDA's eager division: every state variable bit for bit (STDP is on
    from 100 ms, window 5), through a plain reset and a re-seeding one, statistics averaged over neurons
    to float32 rounding."""
    from dataclasses import fields

    runs = {}
    for backend in ("eager", "triton"):
        net = NetworkBatch(
            3,
            size,
            device="cuda",
            backend=backend,
            synapses="event",
            seeds=[4, 5, 6],
            kop_sample_interval=kop_sample_interval,
        )
        stats = []
        for w in range(windows):
            if w == windows - 3:
                net.reset(torch.tensor([True, False, False], device="cuda"), seeds=[40, 0, 0])
            if w == windows - 2:
                net.reset(torch.tensor([False, True, False], device="cuda"))
            stats.append(net.run_window(PulseTrain.constant(3, 100.0, device="cuda")).stats)
        runs[backend] = (net.state, stats)
    (eager, eager_stats), (triton, triton_stats) = runs["eager"], runs["triton"]
    for item in fields(eager):
        assert torch.equal(getattr(eager, item.name), getattr(triton, item.name)), item.name
    assert eager.weight.unique().numel() > 2  # STDP ran
    for a, b in zip(eager_stats, triton_stats):
        for item in fields(a):
            torch.testing.assert_close(getattr(b, item.name), getattr(a, item.name), rtol=1e-5, atol=1e-5)
        assert torch.equal(a.rate_e, b.rate_e) and torch.equal(a.weight_mv, b.weight_mv)


# THE GPU CHECK OF THE STIMULATION-LOCKED NOISE (NetworkParams.stim_noise_e / _i non-zero): on CUDA the
# Triton kernel draws it itself (triton_kernel.normal_draws with STREAM_STIM_NOISE) and gates it per
# network and window; the CPU suite checks the same kernel only in Triton's interpreter, with the draws
# made by torch (tests/test_triton_backend.py).
@pytest.mark.parametrize("size", [SMALL, NetworkParams()])
def test_triton_backend_matches_eager_on_cuda_with_stim_locked_noise(size):
    """stim_noise_e = 10 mV, stim_noise_i = 5 mV; network b's stimulator is off in every third window
    from window b on, so that the gate is on and off in each: every state variable bit for bit."""
    from dataclasses import fields, replace

    params = replace(size, stim_noise_e=10.0, stim_noise_i=5.0)
    states = {}
    for backend in ("eager", "triton"):
        net = NetworkBatch(3, params, device="cuda", backend=backend, synapses="event", seeds=[4, 5, 6])
        for w in range(7):
            train = PulseTrain.constant(3, 100.0, device="cuda")
            train.amplitude = torch.tensor(
                [0.0 if (w - b) % 3 == 0 else 100.0 for b in range(3)], dtype=torch.float64, device="cuda"
            )
            if w == 5:
                net.reset(torch.tensor([False, True, False], device="cuda"))
            net.run_window(train)
        states[backend] = net.state
    for item in fields(states["eager"]):
        assert torch.equal(getattr(states["eager"], item.name), getattr(states["triton"], item.name)), item.name
    assert states["eager"].weight.unique().numel() > 2  # STDP ran


def test_triton_backend_records_like_eager_on_cuda():
    rasters = {}
    for backend in ("eager", "triton"):
        net = NetworkBatch(
            2, SMALL, device="cuda", backend=backend, synapses="event", record=RecordConfig(spikes_e=True)
        )
        rasters[backend] = torch.stack(
            [net.run_window(PulseTrain.constant(2, 100.0, device="cuda")).recording.spikes_e.cpu() for _ in range(3)]
        )
    assert rasters["eager"].any() and torch.equal(rasters["eager"], rasters["triton"])


def test_triton_backend_with_summed_inputs_follows_eager_on_cuda():
    """Summed coincident inputs are added by atomics in no fixed order on CUDA (eager's index_add too), so
    the two agree to float32 rounding, not bit for bit: rates and weights close over a few windows."""
    params = NetworkParams(num_e=160, num_i=40, synaptic_input="summed")
    stats = {}
    for backend in ("eager", "triton"):
        net = NetworkBatch(4, params, device="cuda", backend=backend, synapses="event", seeds=[1, 2, 3, 4])
        stats[backend] = [net.run_window(PulseTrain.constant(4, 100.0, device="cuda")).stats for _ in range(7)]

    def mean_rate(runs):  # Hz, over the windows: robust to a spike that moves by a step
        return torch.stack([s.rate_e for s in runs]).mean(0)

    assert (mean_rate(stats["eager"]) > 0).all()
    torch.testing.assert_close(mean_rate(stats["triton"]), mean_rate(stats["eager"]), rtol=0.05, atol=1.0)
    torch.testing.assert_close(stats["triton"][-1].weight_mv, stats["eager"][-1].weight_mv, rtol=0.01, atol=0.5)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_triton_backend_runs_on_a_gpu_that_is_not_the_current_one():
    """Triton launches on the current device; the stepper makes it the networks' own."""
    assert torch.cuda.current_device() == 0
    results = {}
    for device in ("cuda:0", "cuda:1"):
        net = NetworkBatch(2, SMALL, device=device, backend="triton")
        results[device] = [
            net.run_window(PulseTrain.constant(2, 100.0, device=device)).stats.rate_e.cpu() for _ in range(3)
        ]
    assert all(torch.equal(a, b) for a, b in zip(results["cuda:0"], results["cuda:1"]))
