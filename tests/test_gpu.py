"""CUDA checks (run with `pytest -m gpu` on a machine with a GPU)."""

import pytest
import torch

from neuroloop_gpu.config import NetworkParams, RecordConfig
from neuroloop_gpu.network import NetworkBatch
from neuroloop_gpu.stimulus import PulseTrain

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]
SMALL = NetworkParams(num_e=160, num_i=40)


def test_euler_loop_never_waits_for_the_host():
    net = NetworkBatch(8, SMALL, device="cuda")
    train = PulseTrain.constant(8, 100.0, device="cuda")
    net.run_window(train)  # warm-up (allocator, kernels)
    torch.cuda.set_sync_debug_mode("error")
    try:
        net.run_window(train, validate=False)
        net.reset(torch.zeros(8, dtype=torch.bool, device="cuda").index_fill_(0, torch.tensor([3], device="cuda"),
                                                                              True))
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_cuda_matches_cpu_spike_for_spike_in_float64():
    """Counter-based noise and connectivity make both devices see the same inputs."""
    results = {}
    for device in ("cpu", "cuda"):
        net = NetworkBatch(2, SMALL, device=device, dtype=torch.float64, record=RecordConfig(spikes_e=True))
        rasters = [net.run_window(PulseTrain.constant(2, 100.0, device=device)).recording.spikes_e.cpu()
                   for _ in range(5)]
        results[device] = (torch.stack(rasters), net.state.v_e.cpu())
    assert torch.equal(results["cpu"][0], results["cuda"][0])
    assert torch.allclose(results["cpu"][1], results["cuda"][1], atol=1e-9)


def test_batch_independence_on_cuda():
    batch = NetworkBatch(4, SMALL, seeds=[9, 10, 11, 12], device="cuda", record=RecordConfig(spikes_e=True))
    alone = NetworkBatch(1, SMALL, seeds=[11], device="cuda", record=RecordConfig(spikes_e=True))
    for _ in range(5):
        a = batch.run_window(PulseTrain.constant(4, 100.0, device="cuda")).recording.spikes_e[2]
        b = alone.run_window(PulseTrain.constant(1, 100.0, device="cuda")).recording.spikes_e[0]
        assert torch.equal(a, b)


def test_torchrl_env_step_and_partial_reset_never_wait_for_the_host():
    from neuroloop_gpu.config import SimConfig
    from neuroloop_gpu.envs import FTSTSTorchEnv

    env = FTSTSTorchEnv(16, SimConfig(duration=60.0), {"num_e": 160, "num_i": 40}, device="cuda",
                        check_actions=False)
    td = env.reset()
    td["action"] = torch.zeros(16, 3, device="cuda")
    env.step(td)  # warm-up
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = env.step(td)["next"]
        out["_reset"] = torch.zeros(16, 1, dtype=torch.bool, device="cuda")
        env.reset(out)
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.parametrize("synapses", ["dense", "event"])
def test_compiled_backend_matches_eager_on_cuda(synapses):
    """Triton kernels may contract multiply-adds into FMAs; this states whether they change any bit."""
    runs = {}
    for backend in ("eager", "compiled"):
        net = NetworkBatch(4, SMALL, device="cuda", synapses=synapses, backend=backend,
                           record=RecordConfig(spikes_e=True))
        rasters = [net.run_window(PulseTrain.constant(4, 100.0, device="cuda")).recording.spikes_e.cpu()
                   for _ in range(5)]
        runs[backend] = (torch.stack(rasters), net.state.v.cpu(), net.state.weight.cpu())
    for eager, compiled in zip(runs["eager"], runs["compiled"]):
        assert torch.equal(eager, compiled)
