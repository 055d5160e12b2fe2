"""Seeding as gymnasium specifies it, through every front end and the vector wrappers that rely on it.

An env that is never given a seed draws fresh entropy (distinct networks and noise in every copy); envs
seeded alike give identical trajectories (gymnasium's ``Env.reset`` contract; ecosystem notes).
"""

from functools import partial

import gymnasium as gym
import numpy as np
import pytest
import torch

from neuroloop_gpu import NetworkBatch, NetworkParams, SimConfig
from neuroloop_gpu.envs import FTSTSEnv, FTSTSTorchEnv, FTSTSVectorEnv

TINY = {"num_e": 20, "num_i": 5}
ACTION = np.array([0.2, -0.3, 0.5], np.float32)


def make(**kwargs):
    return FTSTSEnv(SimConfig(duration=100.0, **kwargs), model_params=TINY, device="cpu")


def trajectory(step, reset, steps=3) -> np.ndarray:
    """Observations of a reset and ``steps`` windows of the same action."""
    return np.stack([np.asarray(reset())] + [np.asarray(step()) for _ in range(steps)])


def test_sim_config_seed_none_means_fresh_entropy():
    assert SimConfig().seed is None and SimConfig(seed=3).seed == 3
    with pytest.raises(ValueError, match="seed must be None or an integer in"):
        SimConfig(seed=-1)
    params = NetworkParams(**TINY)
    first, second = (NetworkBatch(2, params, SimConfig(duration=20.0), device="cpu") for _ in range(2))
    seeds = first.state.seed.tolist()
    assert seeds[1] == seeds[0] + 1 and seeds != second.state.seed.tolist()  # drawn, and recorded
    again = NetworkBatch(2, params, SimConfig(duration=20.0, seed=seeds[0]), device="cpu")
    assert torch.equal(again.connectivity.ei_post, first.connectivity.ei_post)  # a drawn seed reproduces its run


def test_unseeded_envs_are_distinct_and_seeded_envs_identical():
    one, two = make(), make()
    assert not np.array_equal(
        trajectory(lambda: one.step(ACTION)[0], lambda: one.reset()[0]),
        trajectory(lambda: two.step(ACTION)[0], lambda: two.reset()[0]),
    )
    assert np.array_equal(
        trajectory(lambda: one.step(ACTION)[0], lambda: one.reset(seed=7)[0]),
        trajectory(lambda: two.step(ACTION)[0], lambda: two.reset(seed=7)[0]),
    )
    vec = FTSTSVectorEnv(2, SimConfig(duration=100.0), TINY, device="cpu")
    obs, _ = vec.reset()
    for _ in range(3):
        obs, *_ = vec.step(np.stack([ACTION, ACTION]))
    assert not np.array_equal(obs[0], obs[1])
    torchrl = [FTSTSTorchEnv(2, SimConfig(duration=100.0), TINY, device="cpu") for _ in range(2)]
    assert torchrl[0].core.net.state.seed.tolist() != torchrl[1].core.net.state.seed.tolist()


@pytest.mark.parametrize("vector_class", [gym.vector.SyncVectorEnv, gym.vector.AsyncVectorEnv])
def test_gymnasium_vector_envs_of_single_envs(vector_class):
    def run(seed):
        envs = vector_class([make] * 2)
        try:
            return trajectory(lambda: envs.step(np.stack([ACTION, ACTION]))[0], lambda: envs.reset(seed=seed)[0])
        finally:
            envs.close()

    unseeded = run(None)
    assert not np.array_equal(unseeded[:, 0], unseeded[:, 1])  # two copies, two networks
    assert np.array_equal(run(11), run(11))


def test_sb3_vec_envs_of_single_envs():
    vec_env = pytest.importorskip("stable_baselines3.common.vec_env")

    def run(seed):
        venv = vec_env.DummyVecEnv([make] * 2)
        if seed is not None:
            venv.seed(seed)
        return trajectory(lambda: venv.step(np.stack([ACTION, ACTION]))[0], venv.reset)

    unseeded = run(None)
    assert not np.array_equal(unseeded[:, 0], unseeded[:, 1])
    assert np.array_equal(run(5), run(5))


@pytest.mark.parametrize("batched", ["SerialEnv", "ParallelEnv"])
def test_torchrl_batched_envs(batched):
    from torchrl import envs as torchrl_envs

    def run(seed):
        env = getattr(torchrl_envs, batched)(
            2, partial(FTSTSTorchEnv, 1, SimConfig(duration=100.0), TINY, device="cpu")
        )
        try:
            if seed is not None:
                env.set_seed(seed)
            return env.rollout(
                3,
                policy=lambda td: td.set("action", torch.from_numpy(ACTION).expand(2, 1, 3)),
                break_when_any_done=False,
            )["next", "observation"].numpy()
        finally:
            env.close()

    unseeded = run(None)
    assert not np.array_equal(unseeded[0], unseeded[1])
    assert np.array_equal(run(3), run(3))
