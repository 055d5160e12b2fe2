"""The TorchRL env (envs/torchrl_env.py): options passed to the core, non-finite actions, refusals."""

import math

import pytest
import torch

from neuroloop_gpu.config import SimConfig
from neuroloop_gpu.envs import FTSTSTorchEnv
from neuroloop_gpu.envs.actions import ActionBounds

TINY = {"num_e": 40, "num_i": 10}
EPISODE = SimConfig(duration=40.0)  # two 20 ms windows
BOUNDS = ActionBounds(amplitude=(20.0, 60.0), frequency=(10.0, 100.0), pulse_width=(100.0, 300.0))


def test_one_network_by_default_and_the_bounds_reach_the_core():
    env = FTSTSTorchEnv(sim_config=EPISODE, model_params=TINY, bounds=BOUNDS, device="cpu")
    assert env.batch_size == torch.Size([1]) and env.core.bounds == BOUNDS
    env.set_seed(5)
    info = env.step(env.reset().set("action", torch.ones(1, 3)))["next", "info"]
    assert (info["amplitude_mv"].item(), info["frequency_hz"].item(), info["pulse_width_us"].item()) == (
        60.0,
        100.0,
        300.0,
    )


def test_unchecked_non_finite_actions_become_the_centre_or_the_edges_of_the_box():
    env = FTSTSTorchEnv(1, EPISODE, TINY, bounds=BOUNDS, device="cpu", check_actions=False)
    env.set_seed(6)
    td = env.reset()
    td["action"] = torch.tensor([[math.nan, math.inf, -math.inf]])
    info = env.step(td)["next", "info"]
    # NaN -> 0, the centre; +inf -> +1, the top; -inf -> -1, the bottom
    assert (info["amplitude_mv"].item(), info["frequency_hz"].item(), info["pulse_width_us"].item()) == (
        40.0,
        100.0,
        100.0,
    )
    assert info["invalid_action"].item() == 1.0


def test_stepping_before_a_reset_is_refused_by_name():
    env = FTSTSTorchEnv(1, EPISODE, TINY, device="cpu")
    td = env.full_action_spec.zero()
    with pytest.raises(RuntimeError) as caught:
        env.step(td)
    assert str(caught.value) == "FTSTSTorchEnv: call reset() before step()"
