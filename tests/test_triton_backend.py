"""The Triton backend's kernel against the eager path.

On a machine without a GPU the kernel runs in Triton's interpreter on CPU tensors (the CPU's
division, noise drawn by torch): every state variable must match eager bit for bit, the window
statistics that average over neurons to float32 rounding. The CUDA comparison (noise drawn in the
kernel, CUDA's division) is in tests/test_gpu.py.
"""

import importlib.util
import json
import subprocess
import sys

import pytest
import torch

from neuroloop_gpu.config import NetworkParams, PlasticityParams
from neuroloop_gpu.network import NetworkBatch

needs_triton = pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="needs Triton")

# The interpreter is chosen when Triton is first imported and stays for the process: run it in its own.
_CHECK = r"""
import json, sys
from dataclasses import fields
import torch
from neuroloop_gpu.network import triton_step
triton_step.INTERPRET_ON_CPU = True
triton_step.MAX_CHUNK = int(sys.argv[3])  # small: rows of synapses take several passes
from neuroloop_gpu.config import NetworkParams, PlasticityParams, RecordConfig, SimConfig
from neuroloop_gpu.network import NetworkBatch
from neuroloop_gpu.stimulus import PulseTrain

synaptic_input, record = sys.argv[1], sys.argv[2] == "record"
# plasticity from t = 0 and a strong drive, so that STDP and coincident inputs happen within 30 steps
params = NetworkParams(num_e=40, num_i=10, mu_e=40.0, mu_i=40.0, synaptic_input=synaptic_input,
                       plasticity=PlasticityParams(onset=0.0))
sim = SimConfig(duration=30.0, sample_duration=3.0)
out = {}
for backend in ("eager", "triton"):
    net = NetworkBatch(2, params, sim, seeds=[5, 6], device="cpu", backend=backend, synapses="event",
                       kop_sample_interval=0.5, record=RecordConfig(spikes_e=record, traces=record))
    train = PulseTrain.constant(2, 100.0, frequency=250.0, pulse_width=500.0)
    windows = []
    for w in range(2):
        if w == 1:
            net.reset(torch.tensor([False, True]))
        result = net.run_window(train)
        windows.append({f.name: getattr(result.stats, f.name).tolist() for f in fields(result.stats)})
        if record:
            windows[-1]["raster"] = result.recording.spikes_e.int().tolist()
            windows[-1]["traces"] = result.recording.v_e_mean.tolist()
    out[backend] = {"windows": windows, "backend": net.backend,
                    "state": {f.name: getattr(net.state, f.name).double().tolist() for f in fields(net.state)}}
print(json.dumps(out))
"""


def _run_check(synaptic_input: str, record: bool, max_chunk: int) -> dict:
    done = subprocess.run([sys.executable, "-c", _CHECK, synaptic_input, "record" if record else "plain",
                           str(max_chunk)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


@needs_triton
@pytest.mark.parametrize("synaptic_input,record,max_chunk", [("published", False, 4), ("summed", True, 256)])
def test_triton_kernel_matches_eager_in_the_interpreter(synaptic_input, record, max_chunk):
    out = _run_check(synaptic_input, record, max_chunk)
    eager, triton = out["eager"], out["triton"]
    assert triton["backend"] == "triton"
    for name, value in eager["state"].items():
        assert triton["state"][name] == value, f"state.{name} differs"
    exact = {"kop", "weight_mv", "rate_e", "rate_i", "energy", "charge", "net_charge", "raster"}
    for window_e, window_t in zip(eager["windows"], triton["windows"]):
        for name, value in window_e.items():
            if name in exact:
                assert window_t[name] == value, name
            else:  # averages over neurons, summed in the kernel's own order
                torch.testing.assert_close(torch.tensor(window_t[name]), torch.tensor(value), rtol=1e-5, atol=1e-5)
    # the check is not vacuous: weights moved and spikes happened
    assert len(set(sum(eager["state"]["weight"], []))) > 2
    assert any(rate > 0 for window in eager["windows"] for rate in window["rate_i"])


@pytest.mark.parametrize("options,message", [
    (dict(backend="triton", device="cpu"), "backend must be 'eager' here: the Triton kernel runs on CUDA devices"),
])
def test_triton_backend_off_cuda_is_a_clear_error(options, message):
    with pytest.raises(ValueError, match=message):
        NetworkBatch(1, NetworkParams(num_e=40, num_i=10), **options)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("options,message", [
    (dict(synapses="dense"), "synapses must be 'event' with backend='triton'"),
    (dict(dtype=torch.float64), "dtype must be torch.float32 with backend='triton'"),
])
def test_triton_backend_bad_settings_are_clear_errors(options, message):
    with pytest.raises(ValueError, match=message):
        NetworkBatch(1, NetworkParams(num_e=40, num_i=10), backend="triton", device="cuda", **options)
