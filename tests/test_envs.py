"""The three front ends on one core: API checks, autoreset modes, equivalence, bad input."""

import dataclasses
import os
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode
from tensordict import TensorDict
from torchrl.envs.utils import check_env_specs

from neuroloop_gpu.config import NetworkParams, SimConfig
from neuroloop_gpu.envs import ENV_ID, DBSCore, EpisodeConfig, FTSTSEnv, FTSTSTorchEnv, FTSTSVectorEnv, RewardConfig
from neuroloop_gpu.envs.observation import initial_observation
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
    assert torch.equal(reset["observation"][1], initial_observation(3, env.core.params, env.core.device)[1])
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
    # gymnasium's layout: final_obs an object array of observations, final_info a dict of arrays with masks
    assert info["_final_obs"].all() and info["_final_info"].all()
    assert info["final_obs"].dtype == object and env.single_observation_space.contains(info["final_obs"][0])
    assert not np.array_equal(info["final_obs"][0], first[0])
    final_info = info["final_info"]
    assert final_info["weight_mv"].shape == (2,) and final_info["_weight_mv"].all()
    assert "weight_mv" not in info  # both envs restarted: the step's own info describes no env
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
        if t < 3:
            assert info["amplitude_mv"].shape == (4,) and info["_amplitude_mv"].all()
        else:  # NEXT_STEP: every env only restarts in this step, and a reset reports no info
            assert info == {}


def test_out_of_range_actions_are_clipped():
    env = vector(2)
    env.reset(seed=0)
    *_, info = env.step(np.array([[5.0, -7.0, 1.0], [-1.0, 1.0, -3.0]], dtype=np.float32))
    np.testing.assert_allclose(info["amplitude_mv"], [200.0, 10.0])
    np.testing.assert_allclose(info["frequency_hz"], [5.0, 180.0])
    np.testing.assert_allclose(info["pulse_width_us"], [500.0, 50.0])


@pytest.mark.parametrize(
    "bad,message",
    [
        (np.full((2, 3), np.nan, dtype=np.float32), r"action must be finite"),
        (np.array([[0.0, np.inf, 0.0], [0.0, 0.0, 0.0]]), r"action must be finite"),
        (np.zeros((2, 2), dtype=np.float32), r"action must be an array of shape \(2, 3\)"),
        (np.zeros((3, 3), dtype=np.float32), r"action must be an array of shape \(2, 3\)"),
        (np.zeros((2, 3), dtype=np.int64), r"action must be a floating-point array"),
    ],
)
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
    sync = reward(
        RewardConfig(target="synchronise"), torch.tensor([0.5]), torch.tensor([1.0]), torch.tensor([0.0]), 100.0
    )
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


def single_env(**kwargs):
    return FTSTSEnv(EPISODE, model_params=TINY, device="cpu", **kwargs)


def assert_same_info(native, reference):
    """Same keys and masks; same values wherever a mask says the env has them."""
    assert native.keys() == reference.keys()
    for key, value in reference.items():
        if isinstance(value, dict):
            assert_same_info(native[key], value)
        elif key.startswith("_"):
            assert np.array_equal(native[key], value), key
        elif key == "final_obs":
            for got, want in zip(native[key], value):
                assert (got is None and want is None) or np.array_equal(got, want)
        else:
            mask = reference[f"_{key}"]
            assert np.array_equal(native[key][mask].astype(float), value[mask].astype(float)), key


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_vector_env_matches_gymnasium_sync_vector_env(mode):
    # gymnasium's own vector env over single envs is the reference: data, autoreset and info layout
    native = vector(2, mode)
    reference = gym.vector.SyncVectorEnv([single_env, single_env], autoreset_mode=mode)
    outputs = [env.reset(seed=3) for env in (native, reference)]
    assert np.array_equal(outputs[0][0], outputs[1][0]) and outputs[0][1] == outputs[1][1] == {}
    for t in range(8):
        if t == 2:  # env 0 restarts alone: from here the two envs end their episodes in different steps
            mask = np.array([True, False])
            outputs = [env.reset(options={"reset_mask": mask}) for env in (native, reference)]
            assert np.array_equal(outputs[0][0], outputs[1][0])
        got, want = native.step(actions(2, t)), reference.step(actions(2, t))
        for a, b in zip(got[:4], want[:4]):
            assert np.array_equal(a, b), t
        assert_same_info(got[4], want[4])


def test_vector_env_is_batch_size_independent_across_autoreset():
    batch = vector(3)
    alone = [vector(1) for _ in range(3)]
    trajectories = [batch.reset(seed=7)[0]]
    singles = [[env.reset(seed=7 + b)[0][0]] for b, env in enumerate(alone)]
    for t in range(8):  # 3-window episodes: two autoresets
        act = actions(3, t)
        obs, rew, *_ = batch.step(act)
        trajectories.append(obs)
        for b, env in enumerate(alone):
            s_obs, s_rew, *_ = env.step(act[b : b + 1])
            singles[b].append(s_obs[0])
            assert s_rew[0] == rew[b]
    assert np.array_equal(np.stack(trajectories), np.stack(singles, axis=1))


def test_importing_and_rendering_leave_the_matplotlib_backend_alone():
    code = (
        "import matplotlib; import neuroloop_gpu.envs\n"
        "from neuroloop_gpu.envs.rendering import RenderHistory, render_frame\n"
        "render_frame(RenderHistory(), 'env 0', 0.1); print(matplotlib.get_backend())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "MPLBACKEND": "svg"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "svg"


def test_closed_envs_reject_use_and_change_nothing():
    env = vector(2, render_mode="rgb_array")
    env.reset(seed=0)
    env.step(actions(2))
    env.close()
    before = state_snapshot(env.core)
    for call, method in ((lambda: env.step(actions(2)), "step"), (env.render, "render"), (env.reset, "reset")):
        with pytest.raises(RuntimeError, match=rf"FTSTSVectorEnv\.{method}\(\) after close\(\)"):
            call()
    assert all(torch.equal(v, state_snapshot(env.core)[k]) for k, v in before.items())
    single = single_env(render_mode="rgb_array")
    single.reset(seed=0)
    single.close()
    for call, method in ((lambda: single.step(np.zeros(3, np.float32)), "step"), (single.render, "render")):
        with pytest.raises(RuntimeError, match=rf"FTSTSEnv\.{method}\(\) after close\(\)"):
            call()
    # like gymnasium's own envs (and as SB3's check_env expects), a closed single env starts afresh on reset
    fresh = single_env(render_mode="rgb_array")
    assert np.array_equal(single.reset(seed=0)[0], fresh.reset(seed=0)[0])
    assert np.array_equal(single.step(np.zeros(3, np.float32))[0], fresh.step(np.zeros(3, np.float32))[0])
    assert single.render().shape == fresh.render().shape
    torchrl_env = FTSTSTorchEnv(2, EPISODE, TINY, device="cpu")
    td = torchrl_env.reset()
    torchrl_env.close()
    before = state_snapshot(torchrl_env.core)
    td["action"] = torch.zeros(2, 3)
    with pytest.raises(RuntimeError, match=r"FTSTSTorchEnv\.step\(\) after close\(\)"):
        torchrl_env.step(td)
    assert all(torch.equal(v, state_snapshot(torchrl_env.core)[k]) for k, v in before.items())


@pytest.mark.parametrize("seed", [[0, -1], [0, 2**63], 2**63 - 1, -1, 2**64, 1.5, [0]])
def test_a_rejected_seed_changes_nothing_and_step_still_needs_a_reset(seed):
    env = vector(2)
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*63 - 2\]"):
        env.reset(seed=seed)
    assert env.needs_reset
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(actions(2))
    env.reset(seed=2**63 - 2)  # the largest allowed: env 1 gets 2**63 - 1
    env.step(actions(2))
    before = state_snapshot(env.core)
    with pytest.raises(ValueError, match="seed must be"):
        env.reset(seed=seed)
    assert all(torch.equal(v, state_snapshot(env.core)[k]) for k, v in before.items())
    with pytest.raises(ValueError, match=r"seed must be None or an integer in \[0, 2\*\*63\)"):
        single_env().reset(seed=2**63)


def test_returned_observations_are_copies():
    env = vector(2, AutoresetMode.DISABLED)
    first, _ = env.reset(seed=0)
    stepped, *_ = env.step(actions(2))
    kept = stepped.copy()
    first[:] = 0.5
    stepped[:] = 0.5  # a caller writing into what it got must not reach the env
    again, _ = env.reset(options={"reset_mask": np.array([True, False])})
    assert np.array_equal(again[1], kept[1])
    assert np.array_equal(again[0], initial_observation(1, env.core.params, "cpu")[0].numpy())
    torchrl_env = FTSTSTorchEnv(2, EPISODE, TINY, device="cpu")
    torchrl_env.reset()["observation"].fill_(0.5)
    assert not (torchrl_env.core.observation == 0.5).any()


@pytest.mark.parametrize(
    "bad", [torch.tensor([[float("nan"), 0.0, 0.0]] * 2), torch.zeros(2, 2), torch.zeros(2, 3, dtype=torch.int64)]
)
def test_core_step_validates_actions(bad):
    core = DBSCore(2, NetworkParams(**TINY), EPISODE, device="cpu")
    core.reset()
    before = state_snapshot(core)
    with pytest.raises(ValueError, match="action must be"):
        core.step(bad)
    assert all(torch.equal(v, state_snapshot(core)[k]) for k, v in before.items())
    assert core.step(torch.zeros(2, 3), validate=False).observation.shape == (2, 6)


@pytest.mark.parametrize(
    "bad,message",
    [
        (np.array([np.nan, 0.0, 0.0], dtype=np.float32), r"action must be finite"),
        (np.array([0.0, -np.inf, 0.0]), r"action must be finite"),
        (torch.tensor([float("nan"), 0.0, 0.0]), r"action must be finite"),
        (np.zeros(2, dtype=np.float32), r"action must be an array of shape \(3,\)"),
        (np.zeros((1, 3), dtype=np.float32), r"action must be an array of shape \(3,\)"),
        (np.zeros(3, dtype=np.int64), r"action must be a floating-point array"),
        ("abc", r"action must be an array of shape \(3,\)"),
    ],
)
def test_single_env_bad_actions_raise_and_change_nothing(bad, message):
    env = single_env()
    env.reset(seed=0)
    env.step(np.zeros(3, dtype=np.float32))
    before = state_snapshot(env.core)
    with pytest.raises(ValueError, match=message):
        env.step(bad)
    assert all(torch.equal(v, state_snapshot(env.core)[k]) for k, v in before.items())


def test_observation_is_relative_to_v_rest():
    # the same network shifted by -70 mV (the drive mu is relative to V_rest) gives the same observations
    shifted = NetworkParams(**TINY, v_rest=-70.0, v_threshold=-50.0, v_reset=-56.0)
    runs = []
    for params in (NetworkParams(**TINY), shifted):
        env = FTSTSVectorEnv(
            2, EPISODE, params, device="cpu", dtype=torch.float64, autoreset_mode=AutoresetMode.DISABLED
        )
        observations = [env.reset(seed=0)[0]] + [env.step(actions(2, t))[0] for t in range(3)]
        assert all(env.observation_space.contains(o) for o in observations)
        runs.append(np.stack(observations))
    np.testing.assert_allclose(runs[1], runs[0], atol=1e-6)
    assert runs[1][0, 0, 1] == pytest.approx(0.7)  # V_reset 14 mV above V_rest on a 20 mV span


@pytest.mark.parametrize(
    "field,value",
    [
        ("stim_onset", float("inf")),
        ("stim_onset", float("nan")),
        ("stim_onset", "5"),
        ("stim_onset", -1.0),
        ("latch_mv", "5"),
        ("latch_mv", float("inf")),
    ],
)
def test_episode_config_rejects_bad_numbers(field, value):
    with pytest.raises(ValueError, match=rf"episode\.{field} must be .*a finite number"):
        EpisodeConfig(**{field: value})


def test_energy_term_exceeds_one_in_windows_with_an_extra_pulse():
    # 180 Hz gives 3.6 pulses per 20 ms window on average: the normaliser; a window with 4 holds 1/0.9 of it
    env = vector(1)
    env.reset(seed=0)
    fractions = [env.step(np.ones((1, 3), np.float32))[4]["energy_mv2ms"][0] / env.core.energy_scale for _ in range(3)]
    assert max(fractions) == pytest.approx(4 / 3.6, rel=1e-5) and min(fractions) == pytest.approx(3 / 3.6, rel=1e-5)


def test_human_render_prints_each_step_and_restarts_with_the_episode(capsys):
    env = vector(2, render_mode="human", render_env=1)
    env.reset(seed=0)
    for _ in range(3):
        env.step(actions(2))
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[2] for line in lines] == ["t=0.02", "t=0.04", "t=0.06"]
    env.step(actions(2))  # NEXT_STEP: this step only restarts the envs; nothing of it to show
    assert capsys.readouterr().out == ""
    env.step(actions(2))
    assert capsys.readouterr().out.split()[2] == "t=0.02"


def test_next_step_autoreset_gives_no_info_for_restarted_envs():
    env = vector(2, render_mode="rgb_array")
    env.reset(seed=0)
    for _ in range(3):
        env.step(actions(2))
    env.reset(options={"reset_mask": np.array([False, True])})  # env 1 restarted by hand: not autoreset
    _, rew, *_, info = env.step(actions(2))
    assert rew[0] == 0 and rew[1] != 0
    assert info["_weight_mv"].tolist() == [False, True] and info["weight_mv"][0] == 0
    assert env.render().shape[2] == 3


def test_torchrl_set_seed_then_reset_runs_the_seeds_next_episode():
    torchrl_env = FTSTSTorchEnv(2, EPISODE, TINY, device="cpu")
    torchrl_env.set_seed(5)
    td = torchrl_env.reset()
    td["action"] = torch.from_numpy(actions(2))
    gym_env = vector(2)
    gym_env.reset(seed=5)  # episode 0 of seeds 5, 6
    gym_obs, _ = gym_env.reset()  # episode 1, as the TorchRL reset after set_seed
    assert np.array_equal(td["observation"].numpy(), gym_obs)
    gym_obs, *_ = gym_env.step(actions(2))
    assert np.array_equal(torchrl_env.step(td)["next", "observation"].numpy(), gym_obs)


def test_reset_options():
    env = vector(2)
    with pytest.raises(ValueError, match=r"options must be None or a dict whose only key may be 'reset_mask'"):
        env.reset(options={"reset_mask": np.ones(2, bool), "seed": 1})
    env.reset(options={"reset_mask": np.array([True, False])})
    assert env.needs_reset  # env 1 was never reset
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(actions(2))
    env.reset(options={"reset_mask": np.array([False, True])})  # now every env has been reset: stepping is allowed
    assert not env.needs_reset
    env.step(actions(2))
    fresh = vector(2)
    fresh.reset(options={"reset_mask": np.ones(2, bool)})  # so is a reset of all at once
    assert not fresh.needs_reset
    single = FTSTSEnv(EPISODE, model_params=NetworkParams(**TINY), device="cpu")
    single.reset(options={})
    with pytest.raises(ValueError, match=r"options must be None or \{\} \(FTSTSEnv takes no reset options\)"):
        single.reset(options={"reset_mask": np.ones(1, bool)})


def test_importing_the_package_registers_the_env_and_exports_the_api():
    code = (
        "import sys, gymnasium as gym, neuroloop_gpu as n; "
        "print(n.ENV_ID in gym.registry, 'torchrl' in sys.modules, n.FTSTSEnv is n.envs.FTSTSEnv, "
        "n.NetworkBatch.__name__, n.FTSTSTorchEnv.__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "False", "True", "NetworkBatch", "FTSTSTorchEnv"]  # TorchRL only on request


def test_spikes_are_recorded_on_request_without_rendering():
    env = vector(2, record_spikes=True)
    env.reset(seed=0)
    _, _, _, _, info = env.step(actions(2))
    raster = env.last_spikes_e
    assert raster.dtype == bool and raster.shape == (2, env.core.sim.steps_per_window, TINY["num_e"])
    window_s = env.core.sim.sample_duration / 1000.0
    np.testing.assert_allclose(raster.sum(axis=(1, 2)) / (TINY["num_e"] * window_s), info["rate_e_hz"], rtol=1e-6)
    single = FTSTSEnv(EPISODE, model_params=TINY, device="cpu", record_spikes=True)
    single.reset(seed=0)
    single.step(actions(2)[0])
    assert np.array_equal(single.last_spikes_e, raster[0])  # env 0 of the vector env: the same network
    assert vector(2).last_spikes_e is None  # not recorded unless asked (it costs memory and time)
