"""NeuroLoop's single-network API (envs/single_env.py): what its constructor passes on and what its refusals say."""

import numpy as np
import pytest

from neuroloop_gpu.config import SimConfig
from neuroloop_gpu.envs import FTSTSEnv
from neuroloop_gpu.envs.actions import ActionBounds

TINY = {"num_e": 40, "num_i": 10}
EPISODE = SimConfig(duration=40.0)  # two 20 ms windows


def env(**kwargs):
    return FTSTSEnv(EPISODE, model_params=TINY, device="cpu", **kwargs)


def refusal(call) -> str:
    with pytest.raises((ValueError, RuntimeError)) as caught:
        call()
    return str(caught.value)


def test_the_constructor_passes_its_options_to_the_core():
    bounds = ActionBounds(amplitude=(20.0, 60.0), frequency=(10.0, 100.0), pulse_width=(100.0, 300.0))
    single = env(bounds=bounds, backend="eager", render_mode="rgb_array")
    assert single.core.bounds == bounds and single.core.net.backend == "eager"
    assert single.render_mode == "rgb_array"
    single.reset(seed=1)
    info = single.step(np.ones(3, dtype=np.float32))[4]  # +1 is the top of each range of these bounds
    assert (info["amplitude_mv"], info["frequency_hz"], info["pulse_width_us"]) == (60.0, 100.0, 300.0)


def test_spikes_are_kept_only_when_asked_for():
    quiet = env()
    quiet.reset(seed=2)
    quiet.step(np.zeros(3, dtype=np.float32))
    assert quiet.last_spikes_e is None
    recording = env(record_spikes=True)
    recording.reset(seed=2)
    recording.step(np.zeros(3, dtype=np.float32))
    assert recording.last_spikes_e.shape == (recording.core.sim.steps_per_window, 40)


def test_refusals_name_the_parameter_and_the_value():
    assert refusal(lambda: FTSTSEnv(EPISODE, model_class=dict)) == (
        "model_class must be neuroloop_gpu.config.NetworkParams, got <class 'dict'>"
    )
    single = env()
    assert refusal(lambda: single.reset(options={"w": 1})) == (
        "options must be None or {} (FTSTSEnv takes no reset options), got {'w': 1}"
    )
    assert refusal(lambda: single.reset(seed=-1)) == "seed must be None or an integer in [0, 2**63), got -1"
    single.reset(seed=3)
    assert refusal(lambda: single.step(np.zeros(2))) == "action must be an array of shape (3,), got (2,)"


def test_stepping_past_the_end_names_the_env():
    single = env()
    single.reset(seed=4)
    for _ in range(2):
        terminated, truncated = single.step(np.zeros(3, dtype=np.float32))[2:4]
    assert truncated and not terminated
    assert refusal(lambda: single.step(np.zeros(3, dtype=np.float32))) == (
        "FTSTSEnv: the episode has ended (terminated or truncated); call reset() before step()"
    )
    single.reset(seed=4)  # and a reset starts the next episode
    assert single.step(np.zeros(3, dtype=np.float32))[3] is False
