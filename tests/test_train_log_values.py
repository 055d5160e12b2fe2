"""The PPO training log's columns against a recomputation from the rollouts: the rollout's actions are
replayed on a fresh core (whose values ``tests/test_values.py`` holds against the reference network) and
the columns are recomputed with NumPy from the replayed rewards and infos. The losses are not recomputed."""

import csv
import math

import numpy as np
import pytest
import torch

from neuroloop_gpu.config import SimConfig
from neuroloop_gpu.control import ppo
from neuroloop_gpu.envs import DBSCore

CONFIG = ppo.PPOConfig(
    num_envs=4,
    num_e=20,
    num_i=5,
    episode_s=0.1,
    windows_per_batch=5,
    total_frames=4 * 5 * 3,
    epochs=1,
    minibatch_size=10,
    lr=1e-3,
    lr_schedule="linear",
    checkpoint_every=10,
)


def test_train_log_columns_are_the_rollouts_means(tmp_path, monkeypatch):
    batches = []
    original = ppo._log_row

    def capture(batch, *args, **kwargs):
        batches.append(batch.detach().clone())
        return original(batch, *args, **kwargs)

    monkeypatch.setattr(ppo, "_log_row", capture)
    result = ppo.train(CONFIG, tmp_path / "run", device="cpu", progress=False)
    with result.log.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(batches) == 3
    # the env's networks: seeds 0..3; set_seed, then every batch (one whole 5-window episode) is the next episode
    core = DBSCore(
        CONFIG.num_envs,
        CONFIG.network,
        SimConfig(duration=CONFIG.episode_s * 1000.0),
        bounds=CONFIG.bounds,
        reward_config=CONFIG.reward,
        episode=CONFIG.episode,
        device="cpu",
    )
    core.reset(seeds=torch.arange(CONFIG.num_envs))
    for i, (batch, row) in enumerate(zip(batches, rows)):
        core.reset()
        actions = batch["action"]  # [envs, windows, 3]
        rewards, kop, weight, energy = [], [], [], []
        for w in range(CONFIG.windows_per_batch):
            step = core.step(actions[:, w].to(torch.float32))
            rewards.append(step.reward.numpy())
            kop.append(step.info["kop"].numpy())
            weight.append(step.info["weight_mv"].numpy())
            energy.append(step.info["energy_mv2ms"].numpy())
        rewards = np.array(rewards)  # [windows, envs]
        np.testing.assert_allclose(batch["next", "reward"][..., 0].numpy().T, rewards, rtol=1e-6, atol=1e-7)
        assert step.truncated.all()  # each batch is one whole episode per env
        expected = {
            "iteration": i + 1,
            "frames": (i + 1) * 20,
            "lr": 1e-3 * (1 - i / 3),  # linear to 0 over the 3 iterations, the rate of the update just made
            "reward_mean": rewards.mean(),
            "episode_reward_mean": rewards.sum(0).mean(),
            "kop_mean": np.mean(kop),
            "weight_mv_mean": np.mean(weight),
            "energy_mean": np.mean(energy),
        }
        for key, value in expected.items():
            assert float(row[key]) == pytest.approx(value, rel=1e-5, abs=1e-7), (i, key)
        assert float(row["fps"]) == pytest.approx(20 * (i + 1) / float(row["wall_s"]), rel=0.05)
        for key in ("loss_objective", "loss_critic", "loss_entropy"):
            assert math.isfinite(float(row[key]))
    assert abs(float(rows[0]["kop_mean"]) - float(rows[0]["reward_mean"])) > 1e-3
    assert np.mean(energy) > 0
