"""The synchronising reward with chi as synchrony, as the core's step wires it, against the reference
network and the formula of :mod:`neuroloop_gpu.envs.reward`'s docstring:

    r = -(s * (1 - S) + coupling_weight * (1 - W) + energy_weight * E) + weight_credit * (W - W_prev)

(the desynchronising reward with the causal R: ``tests/test_values.py``)."""

import numpy as np
import pytest
import torch
from independent import Train, run_schedule

from neuroloop_gpu.config import NetworkParams, PlasticityParams, SimConfig
from neuroloop_gpu.envs import DBSCore, RewardConfig

PARAMS = NetworkParams(num_e=40, num_i=10, connection_prob=0.2, j_i=75.0, plasticity=PlasticityParams(onset=10.0))
WINDOWS = 8
REWARD = RewardConfig(target="synchronise", synchrony="chi", synchrony_weight=0.8, coupling_weight=0.6,
                      energy_weight=0.4, weight_credit=7.0, energy_scale_mv2ms=2000.0)


def test_synchronise_reward_with_chi():
    core = DBSCore(1, PARAMS, SimConfig(duration=WINDOWS * 20.0), reward_config=REWARD, device="cpu",
                   dtype=torch.float64)
    core.reset(seeds=torch.tensor([5]))
    action = torch.tensor([[0.5, 0.25, -0.5]], dtype=torch.float64)  # 152.5 mV, 114.375 Hz, 162.5 us
    train = Train(10 + 0.75 * 190, 5 + 0.625 * 175, 50 + 0.25 * 450)
    records = run_schedule(core.net, [5], [train], [[True] * WINDOWS], WINDOWS)
    stdp = PARAMS.plasticity
    fraction = lambda mv: (mv - stdp.w_min_mv) / (stdp.w_max_mv - stdp.w_min_mv)  # noqa: E731
    previous = fraction(stdp.w_init * PARAMS.j_i)
    chis = []
    for w in range(WINDOWS):
        step = core.step(action)
        s = records[w][0].stats
        weight = fraction(s["weight_mv"])
        expected = (-(0.8 * (1 - s["chi"]) + 0.6 * (1 - weight) + 0.4 * s["energy_mv2ms"] / 2000.0)
                    + 7.0 * (weight - previous))
        previous = weight
        assert float(step.reward[0]) == pytest.approx(expected, rel=1e-6, abs=1e-6), w
        assert float(step.observation[0, 0]) == pytest.approx(s["chi"], rel=1e-6), w  # feature 0: chi
        chis.append(s["chi"])
    assert np.ptp(chis) > 0.05 and records[-1][0].stats["energy_mv2ms"] > 0
