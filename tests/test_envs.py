"""The three front ends on one core: API checks, autoreset modes, equivalence, bad input."""

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode
from tensordict import TensorDict
from torchrl.envs.utils import check_env_specs

from neuroloop_gpu.config import SimConfig
from neuroloop_gpu.envs import ENV_ID, EpisodeConfig, FTSTSEnv, FTSTSTorchEnv, FTSTSVectorEnv, RewardConfig
from neuroloop_gpu.envs.reward import reward

TINY = {"num_e": 40, "num_i": 10}
EPISODE = SimConfig(duration=60.0)  # three 20 ms windows
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def vector(num_envs=3, mode=AutoresetMode.NEXT_STEP, device="cpu", **kwargs):
    return FTSTSVectorEnv(num_envs, EPISODE, TINY, autoreset_mode=mode, device=device, **kwargs)


def actions(num_envs, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (num_envs, 3)).astype(np.float32)


def state_snapshot(core):
    state = {f.name: getattr(core.net.state, f.name).clone() for f in dataclasses.fields(core.net.state)}
    state.update(steps=core.steps.clone(), latched=core.latched.clone(), observation=core.observation.clone())
    return state


def test_single_env_passes_the_gymnasium_checker():
    env = gym.make(ENV_ID, sim_config=EPISODE, device="cpu")
    check_env(env.unwrapped, skip_render_check=True)
    assert isinstance(env.unwrapped, FTSTSEnv)


def test_registration_gives_the_native_vector_env():
    env = gym.make_vec(ENV_ID, num_envs=3, sim_config=EPISODE, device="cpu")
    assert isinstance(env, FTSTSVectorEnv) and env.num_envs == 3
    assert env.core.params.num_e == 160  # NeuroLoop's RL network by default


@pytest.mark.parametrize("device", DEVICES)
def test_torchrl_env_passes_check_env_specs_and_rolls_over_episodes(device):
    env = FTSTSTorchEnv(4, EPISODE, TINY, device=device)
    check_env_specs(env)
    rollout = env.rollout(9, break_when_any_done=False)
    done = rollout["next", "truncated"].squeeze(-1)
    assert done[:, [2, 5, 8]].all() and done.sum() == 12
    assert rollout["observation"].device.type == device
    # the first observation of each new episode is the reset observation
    first = env.core.reset()[0]
    assert torch.allclose(rollout["observation"][:, 3], first.expand(4, -1))


def test_torchrl_partial_reset_touches_only_the_masked_envs():
    env = FTSTSTorchEnv(3, EPISODE, TINY, device="cpu")
    td = env.reset()
    td["action"] = torch.zeros(3, 3)
    td = env.step(td)["next"]
    before = td["observation"].clone()
    td["_reset"] = torch.tensor([[False], [True], [False]])  # as a collector passes it: current data + mask
    reset = env.reset(td)
    assert torch.equal(reset["observation"][[0, 2]], before[[0, 2]])
    assert torch.equal(reset["observation"][1], env.core.reset(torch.zeros(3, dtype=torch.bool))[1])
    assert env.core.steps.tolist() == [1, 0, 1]
    for key in ("done", "terminated", "truncated"):
        assert not reset[key][1].any()


def test_next_step_autoreset():
    env = vector(2)
    first, _ = env.reset(seed=3)
    for t in range(3):
        obs, rew, term, trunc, _ = env.step(actions(2, t))
    assert trunc.all() and not term.any()
    obs, rew, term, trunc, _ = env.step(actions(2, 9))  # ignored: resets the envs
    assert np.array_equal(obs, first) and (rew == 0).all() and not (term | trunc).any()
    assert env.core.steps.tolist() == [0, 0]
    for _ in range(3):
        obs, rew, term, trunc, _ = env.step(actions(2))
    assert trunc.all()


def test_same_step_autoreset_reports_final_observations():
    env = vector(2, AutoresetMode.SAME_STEP)
    first, _ = env.reset(seed=3)
    assert env.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    for t in range(3):
        obs, rew, term, trunc, info = env.step(actions(2, t))
    assert trunc.all()
    assert info["_final_obs"].all() and info["_final_info"].all()
    assert env.single_observation_space.contains(info["final_obs"][0])
    assert not np.array_equal(info["final_obs"][0], first[0])
    assert "weight_mv" in info["final_info"][1]
    assert np.array_equal(obs, first)  # already reset within the step
    assert env.core.steps.tolist() == [0, 0]


def test_disabled_autoreset_and_reset_mask():
    env = vector(3, AutoresetMode.DISABLED)
    first, _ = env.reset(seed=5)
    for t in range(3):
        obs, *_ = env.step(actions(3, t))
    snapshot = state_snapshot(env.core)
    again, _ = env.reset(options={"reset_mask": np.array([True, False, False])})
    assert np.array_equal(again[0], first[0])
    assert np.array_equal(again[1:], obs[1:])
    assert env.core.steps.tolist() == [0, 3, 3]
    state = env.core.net.state
    for name in ("v", "weight", "x", "s"):
        assert torch.equal(getattr(state, name)[1:], snapshot[name][1:]), name
    assert bool((state.v[0] == env.core.params.v_reset).all()) and not torch.equal(state.v[0], snapshot["v"][0])


def test_vector_env_equals_independent_single_envs():
    seeds = [11, 12, 13]
    vec = vector(3, AutoresetMode.DISABLED)
    vec_obs, _ = vec.reset(seed=seeds)
    singles = [FTSTSEnv(EPISODE, model_params=TINY, device="cpu") for _ in seeds]
    single_obs = [env.reset(seed=s)[0] for env, s in zip(singles, seeds)]
    assert np.array_equal(vec_obs, np.stack(single_obs))
    for t in range(3):
        act = actions(3, t)
        v_obs, v_rew, *_ = vec.step(act)
        for b, env in enumerate(singles):
            s_obs, s_rew, *_ = env.step(act[b])
            assert np.array_equal(v_obs[b], s_obs) and v_rew[b] == np.float32(s_rew)


@pytest.mark.parametrize("device", DEVICES)
def test_spaces_contain_what_the_env_returns(device):
    env = vector(4, device=device)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    for t in range(4):
        obs, rew, term, trunc, info = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs)
        assert rew.shape == (4,) and term.dtype == bool and trunc.dtype == bool
        assert info["amplitude_mv"].shape == (4,) and info["_amplitude_mv"].all()


def test_out_of_range_actions_are_clipped():
    env = vector(2)
    env.reset(seed=0)
    *_, info = env.step(np.array([[5.0, -7.0, 1.0], [-1.0, 1.0, -3.0]], dtype=np.float32))
    np.testing.assert_allclose(info["amplitude_mv"], [200.0, 10.0])
    np.testing.assert_allclose(info["frequency_hz"], [5.0, 180.0])
    np.testing.assert_allclose(info["pulse_width_us"], [500.0, 50.0])


@pytest.mark.parametrize("bad,message", [
    (np.full((2, 3), np.nan, dtype=np.float32), r"action must be finite"),
    (np.array([[0.0, np.inf, 0.0], [0.0, 0.0, 0.0]]), r"action must be finite"),
    (np.zeros((2, 2), dtype=np.float32), r"action must be an array of shape \(2, 3\)"),
    (np.zeros((3, 3), dtype=np.float32), r"action must be an array of shape \(2, 3\)"),
    (np.zeros((2, 3), dtype=np.int64), r"action must be a floating-point array"),
])
def test_bad_actions_raise_and_change_nothing(bad, message):
    env = vector(2)
    env.reset(seed=0)
    env.step(actions(2))
    before = state_snapshot(env.core)
    with pytest.raises(ValueError, match=message):
        env.step(bad)
    after = state_snapshot(env.core)
    for name in before:
        assert torch.equal(before[name], after[name]), name


def test_step_before_reset_raises():
    with pytest.raises(RuntimeError, match="call reset"):
        vector(2).step(actions(2))
    single = FTSTSEnv(EPISODE, model_params=TINY, device="cpu")
    with pytest.raises(RuntimeError, match="FTSTSEnv: call reset"):
        single.step(np.zeros(3, dtype=np.float32))
    torchrl_env = FTSTSTorchEnv(2, EPISODE, TINY, device="cpu")
    with pytest.raises(RuntimeError, match="FTSTSTorchEnv: call reset"):
        torchrl_env.step(TensorDict({"action": torch.zeros(2, 3)}, batch_size=[2]))
    torchrl_env.reset()
    assert torchrl_env.step(TensorDict({"action": torch.zeros(2, 3)}, batch_size=[2]))["next", "reward"].shape == (2, 1)


def test_torchrl_env_bad_actions():
    env = FTSTSTorchEnv(2, EPISODE, TINY, device="cpu")
    td = env.reset()
    td["action"] = torch.tensor([[float("nan"), 0.0, 0.0], [0.0, 0.0, 0.0]])
    before = state_snapshot(env.core)
    with pytest.raises(ValueError, match="action must be finite"):
        env.step(td)
    assert all(torch.equal(v, state_snapshot(env.core)[k]) for k, v in before.items())
    lenient = FTSTSTorchEnv(2, EPISODE, TINY, device="cpu", check_actions=False)
    td = lenient.reset()
    td["action"] = torch.tensor([[float("nan"), 0.0, 0.0], [0.0, 0.0, 0.0]])
    out = lenient.step(td)["next"]
    assert out["info", "invalid_action"].tolist() == [1.0, 0.0]
    assert torch.isfinite(out["observation"]).all()


def test_stimulation_onset_and_latch():
    env = vector(2, episode=EpisodeConfig(stim_onset=40.0, latch_mv=300.0, terminate_on_latch=True))
    env.reset(seed=0)
    stimulating, terminated = [], []
    for _ in range(3):
        *_, term, trunc, info = env.step(np.ones((2, 3), dtype=np.float32))
        stimulating.append(info["stimulating"].copy())
        terminated.append(term.copy())
    assert [s.all() for s in stimulating] == [False, False, True]
    # J_I * w starts at 260 mV < 300 mV: the latch trips in the first stimulated window
    assert [t.all() for t in terminated] == [False, False, True]
    with pytest.raises(ValueError, match="episode.terminate_on_latch must be False unless latch_mv is set"):
        EpisodeConfig(terminate_on_latch=True)


def test_reward_terms():
    config = RewardConfig()
    got = reward(config, torch.tensor([0.5]), torch.tensor([1.0]), torch.tensor([50.0]), 100.0)
    assert float(got) == pytest.approx(-(0.5 + 0.5 * 1.0 + 0.2 * 0.5))
    sync = reward(RewardConfig(target="synchronise"), torch.tensor([0.5]), torch.tensor([1.0]),
                  torch.tensor([0.0]), 100.0)
    assert float(sync) == pytest.approx(-0.5)
    with pytest.raises(ValueError, match="reward.synchrony must be 'kop' or 'chi'"):
        RewardConfig(synchrony="plv")


def test_rgb_array_render():
    env = vector(2, render_mode="rgb_array", render_env=1)
    env.reset(seed=0)
    for _ in range(2):
        env.step(actions(2))
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    assert frame.std() > 5  # not blank
    single = FTSTSEnv(EPISODE, model_params=TINY, render_mode="rgb_array", device="cpu")
    single.reset(seed=0)
    single.step(np.zeros(3, dtype=np.float32))
    assert single.render().shape == frame.shape
