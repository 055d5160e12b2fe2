"""RL libraries this project did not write, driving its environments at tiny size.

Stable-Baselines3, gymnasium's vector tooling, TorchRL's GymWrapper and skrl: each must run its own
checks and loops on our envs and see the values the envs compute. The `clients` extra installs them
(the dev extra includes it); a missing library skips its tests.
"""

import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode

from neuroloop_gpu.config import SimConfig
from neuroloop_gpu.envs import FTSTSEnv, FTSTSVectorEnv

TINY = {"num_e": 20, "num_i": 5}
EPISODE = SimConfig(duration=100.0, seed=0)  # 5 windows per episode


def single(seed: int | None = 0, **kwargs) -> FTSTSEnv:
    return FTSTSEnv(SimConfig(duration=100.0, seed=seed), model_params=TINY, device="cpu", **kwargs)


def constant_actions(num_envs: int) -> np.ndarray:
    return np.tile(np.array([[0.2, -0.3, 0.5]], np.float32), (num_envs, 1))


def test_sb3_check_env_with_its_render_check():
    env_checker = pytest.importorskip("stable_baselines3.common.env_checker")
    env = single(render_mode="rgb_array")
    env_checker.check_env(env, warn=True, skip_render_check=False)  # closes the env, then resets it
    obs, _ = env.reset(seed=3)
    assert env.observation_space.contains(obs)


@pytest.mark.parametrize("vec_env", ["DummyVecEnv", "SubprocVecEnv"])
def test_sb3_ppo_vecnormalize_save_and_load(tmp_path, vec_env):
    sb3 = pytest.importorskip("stable_baselines3")
    from stable_baselines3.common import vec_env as vec

    make = [lambda s=s: single(s) for s in (0, 1)]
    venv = vec.VecNormalize(getattr(vec, vec_env)(make), norm_reward=False)
    model = sb3.PPO("MlpPolicy", venv, n_steps=10, batch_size=10, n_epochs=1, seed=0, device="cpu")
    model.learn(20)
    model.save(tmp_path / "ppo")
    venv.save(tmp_path / "vecnormalize.pkl")
    saved_mean = venv.obs_rms.mean.copy()
    loaded = sb3.PPO.load(tmp_path / "ppo", device="cpu")
    obs = venv.reset()
    assert np.array_equal(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
    restored = vec.VecNormalize.load(tmp_path / "vecnormalize.pkl", vec.DummyVecEnv(make))
    assert np.array_equal(restored.obs_rms.mean, saved_mean)
    venv.close()


def test_sb3_dummy_vec_env_sees_the_env_values():
    pytest.importorskip("stable_baselines3")
    from stable_baselines3.common.vec_env import DummyVecEnv

    venv = DummyVecEnv([lambda s=s: single(s) for s in (0, 1)])
    twins = [single(s) for s in (0, 1)]
    obs = venv.reset()
    assert np.array_equal(obs, np.stack([t.reset()[0] for t in twins]))
    for _ in range(7):  # past the 5-window episode: DummyVecEnv resets each env itself
        obs, reward, done, _ = venv.step(constant_actions(2))
        expected = [t.step(constant_actions(1)[0]) for t in twins]
        assert np.allclose(reward, [e[1] for e in expected])
        for b, twin in enumerate(twins):
            if done[b]:
                twin.reset()
            else:
                assert np.array_equal(obs[b], expected[b][0])


def test_gymnasium_numpy_to_torch_wrapper():
    pytest.importorskip("array_api_compat")
    from gymnasium.wrappers.vector import NumpyToTorch

    wrapped = NumpyToTorch(FTSTSVectorEnv(2, EPISODE, TINY, device="cpu"))
    plain = FTSTSVectorEnv(2, EPISODE, TINY, device="cpu")
    obs, _ = wrapped.reset(seed=4)
    assert torch.equal(obs, torch.from_numpy(plain.reset(seed=4)[0]))
    obs, reward, *_ = wrapped.step(torch.from_numpy(constant_actions(2)))
    expected, expected_reward, *_ = plain.step(constant_actions(2))
    assert torch.equal(obs, torch.from_numpy(expected)) and torch.equal(reward, torch.from_numpy(expected_reward))


@pytest.mark.parametrize("mode", [AutoresetMode.SAME_STEP, AutoresetMode.DISABLED])
def test_torchrl_gym_wrapper_of_the_native_vector_env(mode):
    from torchrl.envs import GymWrapper

    env = GymWrapper(FTSTSVectorEnv(2, EPISODE, TINY, device="cpu", autoreset_mode=mode))
    env.set_seed(0)
    rollout = env.rollout(12, break_when_any_done=False)
    done = rollout["next", "done"].squeeze(-1)
    assert done.sum(0).tolist() == [0, 0, 0, 0, 2, 0, 0, 0, 0, 2, 0, 0]  # 5-window episodes, reset by TorchRL


def test_torchrl_gym_wrapper_refuses_next_step_autoreset():
    """TorchRL needs SAME_STEP or DISABLED (docs: environments.md); gymnasium's default NEXT_STEP is refused."""
    from torchrl.envs import GymWrapper

    with pytest.raises(RuntimeError, match="SAME_STEP or DISABLED"):
        GymWrapper(FTSTSVectorEnv(2, EPISODE, TINY, device="cpu"))


def test_skrl_wraps_the_native_vector_env():
    wrappers = pytest.importorskip("skrl.envs.wrappers.torch")
    env = wrappers.wrap_env(FTSTSVectorEnv(2, EPISODE, TINY, device="cpu"), wrapper="gymnasium")
    plain = FTSTSVectorEnv(2, EPISODE, TINY, device="cpu")
    obs, _ = env.reset()
    assert env.num_envs == 2 and np.allclose(obs.cpu().numpy(), plain.reset(seed=0)[0])
    obs, reward, *_ = env.step(torch.from_numpy(constant_actions(2)))
    expected, expected_reward, *_ = plain.step(constant_actions(2))
    assert np.allclose(obs.cpu().numpy(), expected) and np.allclose(reward.cpu().numpy().ravel(), expected_reward)


def test_disabled_autoreset_refuses_to_step_past_the_end_like_gymnasium():
    env = FTSTSVectorEnv(2, EPISODE, TINY, device="cpu", autoreset_mode=AutoresetMode.DISABLED)
    env.reset(seed=0)
    for _ in range(5):
        *_, truncated, _ = env.step(constant_actions(2))
    assert truncated.all()
    before = env.core.net.state.v.clone()
    with pytest.raises(RuntimeError, match=r"envs \[0, 1\] ended in the last step and autoreset is disabled"):
        env.step(constant_actions(2))
    assert torch.equal(env.core.net.state.v, before)
    env.reset(options={"reset_mask": np.array([True, True])})
    env.step(constant_actions(2))  # reset: steps again
    one = single()
    one.reset()
    for _ in range(5):
        one.step(constant_actions(1)[0])
    with pytest.raises(RuntimeError, match="the episode has ended"):
        one.step(constant_actions(1)[0])
