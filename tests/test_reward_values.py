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
REWARD = RewardConfig(
    target="synchronise",
    synchrony="chi",
    synchrony_weight=0.8,
    coupling_weight=0.6,
    energy_weight=0.4,
    weight_credit=7.0,
    energy_scale_mv2ms=2000.0,
)


def test_synchronise_reward_with_chi():
    core = DBSCore(
        1, PARAMS, SimConfig(duration=WINDOWS * 20.0), reward_config=REWARD, device="cpu", dtype=torch.float64
    )
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
        expected = -(0.8 * (1 - s["chi"]) + 0.6 * (1 - weight) + 0.4 * s["energy_mv2ms"] / 2000.0) + 7.0 * (
            weight - previous
        )
        previous = weight
        assert float(step.reward[0]) == pytest.approx(expected, rel=1e-6, abs=1e-6), w
        assert float(step.observation[0, 0]) == pytest.approx(s["chi"], rel=1e-6), w  # feature 0: chi
        chis.append(s["chi"])
    assert np.ptp(chis) > 0.05 and records[-1][0].stats["energy_mv2ms"] > 0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"target": "desync"}, "reward.target must be 'desynchronise' or 'synchronise', got 'desync'"),
        ({"synchrony": "plv"}, "reward.synchrony must be 'kop' or 'chi', got 'plv'"),
        ({"synchrony_weight": -1.0}, "reward.synchrony_weight must be a finite number >= 0, got -1.0"),
        ({"coupling_weight": float("inf")}, "reward.coupling_weight must be a finite number >= 0, got inf"),
        ({"energy_weight": "1"}, "reward.energy_weight must be a finite number >= 0, got '1'"),
        ({"weight_credit": -0.5}, "reward.weight_credit must be a finite number >= 0, got -0.5"),
        ({"followup_synchrony_weight": -2}, "reward.followup_synchrony_weight must be a finite number >= 0, got -2"),
        (
            {"energy_scale_mv2ms": 0.0},
            "reward.energy_scale_mv2ms must be None or a finite number > 0 (mV^2 ms), got 0.0",
        ),
        (
            {"energy_scale_mv2ms": float("inf")},
            "reward.energy_scale_mv2ms must be None or a finite number > 0 (mV^2 ms), got inf",
        ),
    ],
)
def test_reward_config_names_the_bad_field(fields, message):
    with pytest.raises(ValueError) as error:
        RewardConfig(**fields)
    assert str(error.value) == message


def test_weight_credit_needs_the_previous_weight():
    from neuroloop_gpu.envs.reward import reward

    with pytest.raises(ValueError) as error:
        reward(RewardConfig(weight_credit=1.0), torch.zeros(1), torch.zeros(1), torch.zeros(1), 1.0)
    assert str(error.value) == (
        "previous_weight must be the [B] weight fractions the window started from (reward.weight_credit > 0), got None"
    )
    with pytest.raises(ValueError, match="previous_weight must be"):  # synchronising: the same check
        reward(
            RewardConfig(target="synchronise", weight_credit=1.0), torch.zeros(1), torch.zeros(1), torch.zeros(1), 1.0
        )
    # without a weight credit no previous weight is needed, whichever the target
    f64 = lambda x: torch.tensor([x], dtype=torch.float64)  # noqa: E731  (as the float64 simulator gives them)
    r = reward(RewardConfig(target="synchronise", synchrony="chi"), f64(0.25), f64(0.5), f64(10.0), 20.0)
    assert float(r) == pytest.approx(-(0.75 + 0.5 * 0.5 + 0.2 * 0.5)) and r.dtype == torch.float32
    for fields in (
        {"energy_scale_mv2ms": 0.5, "synchrony_weight": 0},
        {"target": "synchronise", "synchrony": "chi"},
        {"target": "desynchronise", "synchrony": "kop", "coupling_weight": 1e300},
    ):
        assert {k: getattr(RewardConfig(**fields), k) for k in fields} == fields  # valid: accepted as given


def test_max_window_energy_is_the_strongest_trains_mean_energy():
    """A^2 x (2 pw f) x window: 200 mV, 500 us phases at 180 Hz, 20 ms -> 144,000 mV^2 ms."""
    from neuroloop_gpu.envs import ActionBounds
    from neuroloop_gpu.envs.reward import max_window_energy

    assert max_window_energy(ActionBounds(), 20.0) == pytest.approx(144_000.0, rel=1e-12)
    bounds = ActionBounds(amplitude=(0.0, 50.0), frequency=(1.0, 100.0), pulse_width=(10.0, 300.0))
    assert max_window_energy(bounds, 40.0) == pytest.approx(50.0**2 * 2 * 300e-6 * 100.0 * 40.0, rel=1e-12)


def test_observation_normalisation_and_clamp_of_out_of_range_values():
    """The observation table (envs/observation.py) on made-up window statistics, some outside the
    features' ranges: (V - V_rest) / (V_th - V_rest), std / (V_th - V_rest), (J_I w - w_min) / (w_max - w_min),
    each clamped to [0, 1]; a fresh network's observation clamps a w_init outside the weight bounds."""
    from neuroloop_gpu.envs.observation import initial_observation, observe
    from neuroloop_gpu.network import WindowStats

    params = NetworkParams(v_rest=-2.0, v_threshold=18.0, j_i=100.0, plasticity=PlasticityParams(w_init=3.5))
    t = lambda *values: torch.tensor(values, dtype=torch.float64)  # noqa: E731
    stats = WindowStats(
        chi=t(0.1, 0.2, 0.3),
        kop=t(0.4, 1.5, -0.1),
        v_e_mean=t(3.0, 25.0, -5.0),
        v_e_std=t(1.0, 30.0, 2.0),
        v_i_mean=t(8.0, 0.0, 20.0),
        v_i_std=t(2.0, 0.5, 40.0),
        weight_mv=t(150.0, 300.0, 5.0),
        rate_e=t(1, 1, 1),
        rate_i=t(1, 1, 1),
        energy=t(0, 0, 0),
        charge=t(0, 0, 0),
        net_charge=t(0, 0, 0),
    )
    got = observe(stats, stats.kop, params).numpy()
    raw = np.array(
        [
            [0.4, 5 / 20, 1 / 20, 10 / 20, 2 / 20, 140 / 280],
            [1.5, 27 / 20, 30 / 20, 2 / 20, 0.5 / 20, 290 / 280],
            [-0.1, -3 / 20, 2 / 20, 22 / 20, 40 / 20, -5 / 280],
        ]
    )
    np.testing.assert_allclose(got, np.clip(raw, 0, 1), rtol=1e-6)
    assert got.dtype == np.float32
    fresh = initial_observation(2, params, torch.device("cpu")).numpy()
    np.testing.assert_allclose(fresh, [[0, 16 / 20, 0, 16 / 20, 0, 1.0]] * 2, rtol=1e-6)  # 350 mV -> clamped
    assert fresh.dtype == np.float32
    low = NetworkParams(j_i=100.0, plasticity=PlasticityParams(w_init=0.05))  # 5 mV, below w_min = 10 mV
    np.testing.assert_allclose(initial_observation(1, low, torch.device("cpu")).numpy(), [[0, 0.7, 0, 0.7, 0, 0]])
