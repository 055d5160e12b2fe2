"""The native vector env (envs/vector_env.py) beyond the core: action conversion, refusals by name, the
dtypes of its info, rendering and closing."""

import warnings

import numpy as np
import pytest
import torch

from neuroloop_gpu.config import SimConfig
from neuroloop_gpu.envs import FTSTSVectorEnv, vector_env

TINY = {"num_e": 40, "num_i": 10}
EPISODE = SimConfig(duration=60.0)  # three 20 ms windows


def env(**kwargs):
    return FTSTSVectorEnv(2, EPISODE, TINY, device="cpu", backend="eager", **kwargs)


def stepped(action, seed=9):
    e = env()
    e.reset(seed=seed)
    return e.step(action)


def test_torch_float32_and_float64_actions_act_alike():
    values = np.array([[0.3, -0.7, 0.1], [-0.2, 0.9, 0.55]], dtype=np.float32)
    reference = stepped(values.astype(np.float64))
    for action in (values, torch.from_numpy(values), torch.from_numpy(values.astype(np.float64))):
        observation, reward, terminated, truncated, info = stepped(action)
        np.testing.assert_array_equal(observation, reference[0])
        np.testing.assert_array_equal(reward, reference[1])
        for key in ("amplitude_mv", "frequency_hz", "pulse_width_us", "energy_mv2ms"):
            np.testing.assert_array_equal(info[key], reference[4][key], err_msg=key)


def test_info_keeps_each_values_dtype():
    e = env()
    e.reset(seed=3)
    core_info = e.core.step(torch.zeros(2, 3)).info  # one window of the core, for its dtypes
    e.reset(seed=3)
    info = e.step(np.zeros((2, 3)))[4]
    for key, value in core_info.items():
        assert info[key].dtype == value.cpu().numpy().dtype, key
        assert info[f"_{key}"].dtype == np.bool_ and info[f"_{key}"].all()
    assert info["stimulating"].dtype == np.bool_  # not promoted to a float by the copy to the host


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (np.zeros((2, 3), dtype=np.int64), "action must be a floating-point array, got dtype('int64')"),
        (np.array([["a", "b", "c"]] * 2), "action must be a floating-point array, got dtype('<U1')"),
    ],
)
def test_non_float_actions_refused_by_name(action, message):
    e = env()
    e.reset(seed=1)
    with pytest.raises(ValueError) as caught:
        e.step(action)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("mask", "got"),
    [
        (np.ones(2, dtype=np.int64), "int64 (2,)"),
        (np.ones(3, dtype=bool), "bool (3,)"),
        (np.ones((2, 1), bool), "bool (2, 1)"),
    ],
)
def test_reset_masks_refused_by_name(mask, got):
    e = env(autoreset_mode="Disabled")
    e.reset(seed=1)
    with pytest.raises(ValueError) as caught:
        e.reset(options={"reset_mask": mask})
    assert str(caught.value) == f"options['reset_mask'] must be a bool array of shape (2,), got {got!r}"


def test_render_without_a_mode_warns_and_draws_the_chosen_env(monkeypatch):
    e = env()
    e.reset(seed=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert e.render() is None
    (warning,) = caught  # gymnasium's logger: "WARN: <message>" in yellow
    assert "WARN: render() called without render_mode; pass render_mode='rgb_array' or 'human'\x1b" in str(
        warning.message
    )
    drawn = []
    monkeypatch.setattr(vector_env, "render_frame", lambda history, title, step: drawn.append((title, step)) or "frame")
    e = env(render_mode="rgb_array", render_env=1)
    e.reset(seed=1)
    e.step(np.zeros((2, 3)))
    assert e.render() == "frame" and drawn == [("env 1", 0.1)]


def test_refusals_before_a_reset_after_an_end_and_of_unknown_options():
    e = env(autoreset_mode="Disabled")
    with pytest.raises(RuntimeError) as caught:
        e.step(np.zeros((2, 3)))
    assert str(caught.value) == "FTSTSVectorEnv: call reset() before step()"
    with pytest.raises(ValueError) as caught:
        e.reset(options={"seed": 1})
    assert str(caught.value) == ("options must be None or a dict whose only key may be 'reset_mask', got {'seed': 1}")
    e.reset(seed=2)
    for _ in range(3):  # the third window ends both episodes
        e.step(np.zeros((2, 3)))
    with pytest.raises(RuntimeError) as caught:
        e.step(np.zeros((2, 3)))
    assert str(caught.value) == (
        "FTSTSVectorEnv: envs [0, 1] ended in the last step and autoreset is disabled; "
        "reset them (options={'reset_mask': mask}) before step()"
    )


def test_a_seeded_reset_seeds_the_envs_own_generator():
    e = env()
    e.reset(seed=5)
    assert e.np_random_seed == 5  # gymnasium's VectorEnv.np_random, as SyncVectorEnv seeds it
    first = e.np_random.integers(1 << 30)
    e.reset(seed=5)
    assert e.np_random.integers(1 << 30) == first
    e.reset(seed=[7, 8])  # one seed per env: no single seed for the env's own generator
    assert e.np_random_seed == 5


def test_the_render_history_follows_the_rewards_synchrony_measure():
    from neuroloop_gpu.envs import RewardConfig

    for measure in ("kop", "chi"):
        e = env(render_mode="rgb_array", render_env=1, reward=RewardConfig(synchrony=measure))
        e.reset(seed=4)
        infos = [e.step(np.zeros((2, 3)))[4] for _ in range(2)]
        assert list(e._history.synchrony) == [float(info[measure][1]) for info in infos]
        assert list(e._history.weight_mv) == [float(info["weight_mv"][1]) for info in infos]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_episode_steps": 0}, "max_episode_steps must be an integer >= 1, got 0"),
        ({"max_episode_steps": 1.5}, "max_episode_steps must be an integer >= 1, got 1.5"),
        ({"num_envs": 0}, "num_envs must be an integer >= 1, got 0"),
        (
            {"autoreset_mode": "sometimes"},
            "autoreset_mode must be an AutoresetMode or one of ['NextStep', 'SameStep', 'Disabled'], got 'sometimes'",
        ),
        ({"render_mode": "video"}, "render_mode must be None, 'rgb_array' or 'human', got 'video'"),
    ],
)
def test_constructor_refusals_name_the_parameter(kwargs, message):
    with pytest.raises(ValueError) as caught:
        FTSTSVectorEnv(**{"num_envs": 2, "sim_config": EPISODE, "model_params": TINY, "device": "cpu", **kwargs})
    assert str(caught.value) == message


@pytest.mark.parametrize("steps", [1, 2])
def test_max_episode_steps_sets_the_episode_length(steps):
    e = env(max_episode_steps=steps, autoreset_mode="Disabled")
    e.reset(seed=1)
    truncated = [e.step(np.zeros((2, 3)))[3].tolist() for _ in range(steps)]
    assert truncated == [[False, False]] * (steps - 1) + [[True, True]]  # 3 windows in EPISODE, cut to steps


def test_defaults_one_env_and_no_raster_unless_asked():
    e = FTSTSVectorEnv(sim_config=EPISODE, model_params=TINY, device="cpu")
    assert e.num_envs == 1 and e.action_space.shape == (1, 3)
    e.reset(seed=1)
    e.step(np.zeros((1, 3)))
    assert e.last_spikes_e is None
    e = env(record_spikes=True)
    e.reset(seed=1)
    e.step(np.zeros((2, 3)))
    assert e.last_spikes_e.shape == (2, 200, 40) and e.last_spikes_e.dtype == np.bool_


def test_spaces_bounds_reach_the_core_and_no_history_without_a_render_mode():
    from neuroloop_gpu.envs import ActionBounds

    e = env(bounds=ActionBounds(amplitude=(20.0, 60.0), frequency=(10.0, 100.0), pulse_width=(100.0, 300.0)))
    for space, low, high, size in ((e.single_action_space, -1.0, 1.0, 3), (e.single_observation_space, 0.0, 1.0, 6)):
        assert space.dtype == np.float32 and space.shape == (size,)
        assert (space.low == low).all() and (space.high == high).all()
    assert e.action_space.shape == (2, 3) and e.observation_space.shape == (2, 6)
    e.reset(seed=1)
    info = e.step(np.ones((2, 3)))[4]
    assert (info["amplitude_mv"].tolist(), info["frequency_hz"].tolist(), info["pulse_width_us"].tolist()) == (
        [60.0, 60.0],
        [100.0, 100.0],
        [300.0, 300.0],
    )
    assert e._history is None  # nothing kept for a render nobody asked for
    with pytest.raises(ValueError) as caught:
        env(render_mode="rgb_array", render_env=2)
    assert str(caught.value) == "render_env must be an integer in [0, 2), got 2"
    with pytest.raises(ValueError) as caught:
        e.reset(seed=-1)
    assert str(caught.value) == (
        "seed must be an integer in [0, 2**63 - 2] or a list of 2 integers in [0, 2**63), got -1"
    )


def test_seed_lists_take_the_whole_int64_range_and_bad_ones_are_refused_by_name():
    e = env()
    e.reset(seed=[0, 2**63 - 1])  # both ends of a network seed
    assert e.core.net.state.seed.tolist() == [0, 2**63 - 1]
    e.reset(seed=[200, 7])
    assert e.core.net.state.seed.tolist() == [200, 7]
    with pytest.raises(ValueError) as caught:
        e.reset(seed=[1])
    assert str(caught.value) == (
        "seed must be an integer in [0, 2**63 - 2] or a list of 2 integers in [0, 2**63), got [1]"
    )
    with pytest.raises(ValueError) as caught:
        FTSTSVectorEnv(2, EPISODE, 5, device="cpu")
    assert (
        str(caught.value) == "model_params must be None, a dict of NetworkParams fields or a NetworkParams, got 'int'"
    )
