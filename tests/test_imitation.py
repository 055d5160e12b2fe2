"""Behaviour cloning before PPO (``--imitate``): the teacher's rollout, the returns, and the cloned policy."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from torchrl.envs.utils import ExplorationType, set_exploration_type

from neuroloop_gpu.control import distributed, make_controller
from neuroloop_gpu.control.checkpoint import load_checkpoint
from neuroloop_gpu.control.imitation import discounted_returns, imitate, teacher_rollout
from neuroloop_gpu.control.policy import PolicyController
from neuroloop_gpu.control.ppo import PPOConfig, build_actor, build_critic, make_env, train
from neuroloop_gpu.envs import ActionBounds

# The lasting task on a small network with short episodes (1 s of stimulation budget, 0.4 s follow-up:
# 70 windows), so that a 160-window rollout holds whole episodes, some ended by the budget.
SMALL = PPOConfig.for_task(
    "lasting",
    num_envs=16,
    num_e=40,
    num_i=10,
    episode_s=1.4,
    stim_budget_s=1.0,
    followup_s=0.4,
    windows_per_batch=5,
    total_frames=16 * 5 * 2,
    minibatch_size=40,
    hidden=(32,),
    imitate="ftsts-scheduled",
    imitation_windows=160,
    checkpoint_every=1,
)
FTSTS_HZ = 1000.0 / 12.0


def scheduled_setting(weight_mv):
    """ftsts-scheduled's defaults, written out: 40 mV above 150 mV of J_I*w, 50 mV down to 75 mV, then off."""
    amplitude = np.where(weight_mv > 150.0, 40.0, np.where(weight_mv >= 75.0, 50.0, 0.0))
    return amplitude, np.full_like(amplitude, FTSTS_HZ), np.full_like(amplitude, 500.0)


def weight_mv_of(observation):
    """Feature 5 back to mV: (J_I*w - 10 mV) / 280 mV is the fraction it holds."""
    return 10.0 + 280.0 * np.asarray(observation, dtype=np.float64)[..., 5]


def test_discounted_returns_restart_where_an_episode_ends():
    reward = torch.tensor([[1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, 1.0]])
    done = torch.tensor([[False, True, False, False], [False, False, False, True]])
    returns = discounted_returns(reward, done, 0.5)
    assert returns.tolist() == [[2.0, 2.0, 5.0, 4.0], [1.875, 1.75, 1.5, 1.0]]


def test_the_rollout_records_what_the_teacher_asked_for_on_the_observation_it_saw():
    env = make_env(SMALL, torch.device("cpu"), distributed.Rank())
    data = teacher_rollout(env, make_controller("ftsts-scheduled"), 160, progress=False)
    assert data.shape == (SMALL.num_envs, 160)
    amplitude, frequency, width = scheduled_setting(weight_mv_of(data["observation"]))
    expected = ActionBounds().normalised(amplitude, frequency, width)
    np.testing.assert_allclose(data["action"].numpy(), expected, atol=1e-6)
    assert set(np.unique(amplitude)) >= {40.0, 50.0}  # both stages are met (episodes start between 80 and 260 mV)
    # the first observation of every episode is the reset's: the start weight, drawn from the task's 80-260 mV
    starts = torch.cat([torch.ones(SMALL.num_envs, 1, dtype=torch.bool), data["done"][:, :-1]], dim=1)
    start_weights = weight_mv_of(data["observation"])[starts.numpy()]
    assert np.all((start_weights >= 80.0 - 1e-3) & (start_weights <= 260.0 + 1e-3)) and len(start_weights) >= 12
    # 1 s of budget and 0.4 s of follow-up: every episode ends within 70 windows
    assert int(data["done"].sum()) >= 2 * SMALL.num_envs


def test_the_cloned_actor_acts_as_the_teacher_on_windows_it_was_not_fitted_on():
    device = torch.device("cpu")
    env = make_env(SMALL, device, distributed.Rank())
    actor, critic = build_actor(SMALL, env.action_spec_unbatched), build_critic(SMALL)
    result = imitate(
        env, actor, critic, teacher=make_controller("ftsts-scheduled"), windows=160, gamma=0.99, scale=0.2, seed=0
    )
    assert result.action_mse < 0.05 * result.action_mse_start and result.windows == SMALL.num_envs * 160
    norm = env.transform[0]
    norm.freeze()  # the statistics the actor was fitted with (six networks: they are still settling)
    fresh = teacher_rollout(env, make_controller("ftsts-scheduled"), 100, progress=False)
    observation = (fresh["observation"] - norm.loc["observation"]) / norm.scale["observation"]
    with torch.no_grad(), set_exploration_type(ExplorationType.DETERMINISTIC):
        out = actor(fresh.select().set("observation", observation))
    physical = ActionBounds().physical(out["action"].numpy())
    amplitude, frequency, _ = scheduled_setting(weight_mv_of(fresh["observation"]))
    near_a_switch = np.isin(amplitude, (0.0,)) | (np.abs(weight_mv_of(fresh["observation"]) - 150.0) < 10.0)
    far = ~near_a_switch
    assert far.mean() > 0.5
    assert np.median(np.abs(physical[..., 0] - amplitude)[far]) < 2.5  # mV (the stages are 10 mV apart)
    assert np.median(np.abs(physical[..., 1] - frequency)[far]) < 1.0  # Hz
    assert np.median(physical[..., 2][far]) > 480.0  # us: the top of the box, which tanh only approaches
    assert torch.allclose(out["scale"].median(), torch.tensor(0.2), rtol=0.2)
    assert result.value_mse < result.return_var  # the critic explains part of the teacher's returns


def test_train_saves_the_clone_and_keeps_its_record_through_ppo_and_a_resume(tmp_path):
    result = train(SMALL, tmp_path / "run", progress=False)
    clone = load_checkpoint(tmp_path / "run" / "imitation.pt")
    trained = load_checkpoint(result.checkpoint)
    assert (clone["iteration"], clone["frames"]) == (0, 0) and trained["iteration"] == 2
    assert (
        clone["imitation"] == trained["imitation"]
        and clone["imitation"]["teacher"] == make_controller("ftsts-scheduled").describe()
    )
    assert clone["imitation"]["windows"] == SMALL.num_envs * SMALL.imitation_windows
    # the clone is a policy of its own, with the normaliser it was fitted through: on the teacher's windows
    # far from a switch it asks for the teacher's setting
    controller = PolicyController(tmp_path / "run" / "imitation.pt")
    controller.reset(SMALL.num_envs, "cpu")
    windows = teacher_rollout(
        make_env(SMALL, torch.device("cpu"), distributed.Rank()), make_controller("ftsts-scheduled"), 60, False
    )
    observation = windows["observation"].reshape(-1, 6)
    asked = controller.act(observation, {})
    amplitude, frequency, _ = scheduled_setting(weight_mv_of(observation))
    far = (amplitude > 0) & (np.abs(weight_mv_of(observation) - 150.0) > 10.0)
    assert np.median(np.abs(asked.amplitude.numpy() - amplitude)[far]) < 2.5
    assert np.median(np.abs(asked.frequency.numpy() - frequency)[far]) < 1.0
    resumed = train(replace(SMALL, total_frames=16 * 5 * 3), tmp_path / "run", resume=result.checkpoint, progress=False)
    assert load_checkpoint(resumed.checkpoint)["imitation"] == trained["imitation"]


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("imitate", "ppo", r"imitate must be None or one of \['ftsts', 'ftsts-scheduled'"),
        ("imitation_windows", 70, r"imitation_windows must be more than one episode \(70 windows\)"),
        ("imitation_windows", 0, "imitation_windows"),
        ("imitation_scale", 0.0, "imitation_scale must be a finite number > 0"),
        ("imitation_scale", float("nan"), "imitation_scale must be a finite number > 0"),
        ("imitation_params", (("nope", 1.0),), r"ftsts-scheduled parameter must be one of \['amplitude'"),
        ("imitation_params", (("switch_mv", 50.0),), r"WeightScheduleParams.switch_mv must be a finite number >= "),
    ],
)
def test_imitation_settings_are_checked(field, value, message):
    with pytest.raises(ValueError, match=message):
        replace(SMALL, **{field: value})
    with pytest.raises(ValueError, match=r"imitation_params must be empty without imitate"):
        replace(SMALL, imitate=None, imitation_params=(("amplitude", 20.0),))


def test_the_teachers_parameters_reach_its_rollout_and_the_saved_configuration(tmp_path):
    config = replace(SMALL, imitation_params=(("amplitude", 20.0), ("late_amplitude", 30.0), ("pulse_width", 400.0)))
    data = teacher_rollout(
        make_env(config, torch.device("cpu"), distributed.Rank()),
        make_controller("ftsts-scheduled", **dict(config.imitation_params)),
        30,
        progress=False,
    )
    weight = weight_mv_of(data["observation"])
    amplitude = np.where(weight > 150.0, 20.0, np.where(weight >= 75.0, 30.0, 0.0))
    expected = ActionBounds().normalised(amplitude, np.full_like(amplitude, FTSTS_HZ), np.full_like(amplitude, 400.0))
    np.testing.assert_allclose(data["action"].numpy(), expected, atol=1e-6)
    saved = load_checkpoint(train(config, tmp_path / "run", progress=False).checkpoint)
    assert PPOConfig.from_dict(saved["config"]) == config
    assert saved["imitation"]["teacher"]["amplitude"] == 20.0 and saved["imitation"]["teacher"]["pulse_width"] == 400.0


def test_a_teacher_that_keeps_state_is_reset_once_and_acts_on_raw_observations():
    teacher = make_controller("threshold")
    env = make_env(replace(SMALL, imitate="threshold"), torch.device("cpu"), distributed.Rank())
    data = teacher_rollout(env, make_controller("threshold"), 80, progress=False)
    # threshold: on above R 0.3, off below 0.2, else as before; its action is the FTSTS train or amplitude 0
    on = np.zeros(SMALL.num_envs, dtype=bool)
    teacher.reset(SMALL.num_envs, "cpu")
    for t in range(80):
        synchrony = data["observation"][:, t, 0].numpy()
        on = (synchrony > 0.3) | (on & (synchrony >= 0.2))
        amplitude = np.where(on, teacher.params.amplitude, 0.0)
        # the published 1 ms phase lies outside the box: the env's action is clipped to 500 us
        expected = ActionBounds().normalised(np.clip(amplitude, 10.0, None), teacher.params.frequency, 500.0)
        expected[:, 0] = np.where(on, expected[:, 0], -1.0 - 2.0 * 10.0 / 190.0)
        np.testing.assert_allclose(data["action"][:, t].numpy(), np.clip(expected, -1.0, 1.0), atol=1e-6)
