"""The TorchRL env (envs/torchrl_env.py): options passed to the core, non-finite actions, refusals."""

import math

import pytest
import torch
from torchrl.data import Binary, Bounded, Composite, Unbounded
from torchrl.envs.utils import check_env_specs

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


INFO_KEYS = (  # the documented info keys (docs/envs.md), written out here rather than read from the env
    "time_s",
    "kop",
    "chi",
    "v_e_mean_mv",
    "v_e_std_mv",
    "v_i_mean_mv",
    "v_i_std_mv",
    "weight_mv",
    "rate_e_hz",
    "rate_i_hz",
    "energy_mv2ms",
    "charge_mvms",
    "amplitude_mv",
    "frequency_hz",
    "pulse_width_us",
    "stimulating",
    "followup",
    "invalid_action",
)
CPU = torch.device("cpu")


def _assert_box(spec, shape, low, high):
    assert isinstance(spec, Bounded) and spec.shape == torch.Size(shape) and spec.dtype == torch.float32
    assert torch.equal(spec.space.low, torch.full(shape, low)) and torch.equal(spec.space.high, torch.full(shape, high))
    assert spec.device == CPU


def test_specs_name_the_documented_keys_bounds_dtypes_and_device():
    env = FTSTSTorchEnv(2, EPISODE, TINY, device="cpu")
    _assert_box(env.action_spec, (2, 3), -1.0, 1.0)
    _assert_box(env.observation_spec["observation"], (2, 6), 0.0, 1.0)
    info = env.observation_spec["info"]
    assert isinstance(info, Composite) and info.shape == torch.Size([2]) and info.device == CPU
    assert tuple(info.keys()) == INFO_KEYS
    for key in INFO_KEYS:
        leaf = info[key]
        assert isinstance(leaf, Unbounded) and leaf.shape == torch.Size([2]) and leaf.dtype == torch.float32
        assert leaf.device == CPU
    reward = env.reward_spec
    assert isinstance(reward, Unbounded) and reward.shape == torch.Size([2, 1]) and reward.dtype == torch.float32
    done = env.full_done_spec
    assert set(done.keys()) == {"done", "terminated", "truncated"} and done.device == CPU
    for key in ("done", "terminated", "truncated"):
        leaf = done[key]
        assert isinstance(leaf, Binary) and leaf.shape == torch.Size([2, 1]) and leaf.dtype == torch.bool
        assert leaf.space.n == 2 and leaf.device == CPU  # one binary flag per env: two values
    check_env_specs(env, seed=3)  # TorchRL's own check: the data of a rollout fit these specs


def test_reset_and_step_data_have_the_specs_shapes_and_dtypes():
    env = FTSTSTorchEnv(2, EPISODE, TINY, device="cpu")
    env.set_seed(7)
    td = env.reset()
    assert td.batch_size == torch.Size([2]) and td.device == CPU
    for key in ("done", "terminated", "truncated"):
        assert td[key].dtype == torch.bool and torch.equal(td[key], torch.zeros(2, 1, dtype=torch.bool))
    assert tuple(td["info"].keys()) == INFO_KEYS and td["info"].device == CPU
    for key in INFO_KEYS:  # nothing has happened yet: every info value is zero
        assert td["info", key].dtype == torch.float32 and torch.equal(td["info", key], torch.zeros(2))
    nxt = env.step(td.set("action", torch.zeros(2, 3)))["next"]
    assert nxt.batch_size == torch.Size([2]) and nxt.device == CPU
    assert nxt["reward"].shape == (2, 1) and nxt["reward"].dtype == torch.float32
    assert all(nxt["info", key].dtype == torch.float32 for key in INFO_KEYS)
    assert torch.equal(nxt["info", "invalid_action"], torch.zeros(2))


@pytest.mark.parametrize("method", ["reset", "step"])
def test_reset_or_step_after_close_is_refused_by_name(method):
    env = FTSTSTorchEnv(1, EPISODE, TINY, device="cpu")
    td = env.reset().set("action", torch.zeros(1, 3))
    env.close()
    with pytest.raises(RuntimeError) as caught:
        env.reset() if method == "reset" else env.step(td)
    assert str(caught.value) == f"FTSTSTorchEnv.{method}() after close()"


def test_specs_stay_float32_under_a_float64_default_dtype():
    # a float32 simulator hands out float32 data whatever torch's default dtype is; so must its specs
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        env = FTSTSTorchEnv(2, EPISODE, TINY, device="cpu")
    finally:
        torch.set_default_dtype(previous)
    specs = [env.action_spec, env.observation_spec["observation"], env.reward_spec]
    specs += [env.observation_spec["info", key] for key in INFO_KEYS]
    assert [spec.dtype for spec in specs] == [torch.float32] * len(specs)
