"""Behaviour cloning's arithmetic on a made-up teacher rollout (no simulation): which windows the actor and
the critic are fitted to, in which units, and the numbers its record reports, each computed a second way.
The clone's behaviour on simulated networks: tests/test_imitation.py."""

from types import SimpleNamespace

import pytest
import torch
from tensordict import TensorDict
from torchrl.data import Bounded
from torchrl.envs.utils import ExplorationType, set_exploration_type

from neuroloop_gpu.control import imitation, make_controller
from neuroloop_gpu.control.ppo import PPOConfig, build_actor, build_critic

NETWORKS, WINDOWS = 3, 8
CONFIG = PPOConfig(
    num_envs=NETWORKS,
    num_e=20,
    num_i=5,
    hidden=(16,),
    windows_per_batch=WINDOWS,
    total_frames=NETWORKS * WINDOWS,
    minibatch_size=NETWORKS,
)


def made_up_rollout():
    generator = torch.Generator().manual_seed(5)
    done = torch.zeros(NETWORKS, WINDOWS, dtype=torch.bool)
    done[0, 2] = done[0, 5] = True  # two episodes end; the last two windows' returns are not known
    done[1, 7] = True  # one episode, ended in the last window: every return known
    # network 2: no episode ends within the rollout, so no return of it is exact
    observation = 10.0 + 3.0 * torch.rand(NETWORKS, WINDOWS, 6, generator=generator)
    return TensorDict(
        {
            "observation": observation,
            "action": 0.8 * torch.tanh(observation[..., :3] - observation[..., 3:]),  # a teacher's rule
            "reward": torch.rand(NETWORKS, WINDOWS, generator=generator) - 0.5,
            "done": done,
        },
        batch_size=(NETWORKS, WINDOWS),
    )


def returns_by_hand(reward, done, gamma):
    out = [[0.0] * WINDOWS for _ in range(NETWORKS)]
    for b in range(NETWORKS):
        running = 0.0
        for t in reversed(range(WINDOWS)):
            running = float(reward[b, t]) + (0.0 if done[b, t] else gamma * running)
            out[b][t] = running
    return torch.tensor(out)


def networks(seed):
    torch.manual_seed(seed)
    spec = Bounded(-1.0, 1.0, shape=(3,))
    return build_actor(CONFIG, spec), build_critic(CONFIG)


def test_the_discounted_returns_are_the_sums_within_each_episode():
    data = made_up_rollout()
    expected = returns_by_hand(data["reward"], data["done"], 0.9)
    torch.testing.assert_close(imitation.discounted_returns(data["reward"], data["done"], 0.9), expected)


@pytest.mark.parametrize("fit_steps", [0, 300])
def test_the_record_reports_the_fits_errors_in_the_normalised_units(monkeypatch, fit_steps):
    """The actor is fitted to every window, the critic to the windows whose return the rollout holds whole
    (network 0 up to its second episode's end, all of network 1, none of network 2), both on observations
    normalised by the env's statistics; without fitting steps the errors are those of the untrained nets."""
    data = made_up_rollout()
    loc, scale = torch.full((6,), 11.0), torch.full((6,), 2.0)
    env = SimpleNamespace(transform=[SimpleNamespace(loc={"observation": loc}, scale={"observation": scale})])
    monkeypatch.setattr(imitation, "teacher_rollout", lambda env, teacher, windows, progress: data)
    monkeypatch.setattr(imitation, "FIT_STEPS", fit_steps)
    monkeypatch.setattr(imitation, "FIT_BATCH", 16)  # fewer than the 24 windows: minibatches
    teacher = make_controller("ftsts")
    actor, critic = networks(seed=1)
    untrained_actor, untrained_critic = networks(seed=1)
    result = imitation.imitate(
        env, actor, critic, teacher=teacher, windows=WINDOWS, gamma=0.9, scale=0.3, seed=0, progress=False
    )

    observation = ((data["observation"] - loc) / scale).reshape(-1, 6)
    finished = torch.tensor([[True] * 6 + [False] * 2, [True] * 8, [False] * 8]).reshape(-1)
    target_returns = returns_by_hand(data["reward"], data["done"], 0.9).reshape(-1)[finished]

    def errors(actor, critic):
        with torch.no_grad(), set_exploration_type(ExplorationType.DETERMINISTIC):
            action = actor(TensorDict({"observation": observation}, batch_size=[24]))["action"]
            value = critic(TensorDict({"observation": observation[finished]}, batch_size=[14]))["state_value"]
        action_mse = float((action - data["action"].reshape(-1, 3)).pow(2).mean())
        return action_mse, float((value.squeeze(-1) - target_returns).pow(2).mean())

    start_action_mse, start_value_mse = errors(untrained_actor, untrained_critic)
    action_mse, value_mse = errors(actor, critic)
    assert result.teacher == teacher.describe() and result.windows == NETWORKS * WINDOWS
    assert result.action_mse_start == pytest.approx(start_action_mse, rel=1e-5)
    assert result.action_mse == pytest.approx(action_mse, rel=1e-5)
    assert result.value_mse == pytest.approx(value_mse, rel=1e-5)
    assert result.return_var == pytest.approx(float(target_returns.var()), rel=1e-6)
    assert result.to_dict() == {
        "teacher": teacher.describe(),
        "windows": 24,
        "action_mse": result.action_mse,
        "action_mse_start": result.action_mse_start,
        "value_mse": result.value_mse,
        "return_var": result.return_var,
    }
    if fit_steps == 0:
        assert (result.action_mse, value_mse) == (result.action_mse_start, start_value_mse)
    else:  # fitted: closer to the teacher and to the returns, the exploration scale pulled to 0.3
        assert result.action_mse < 0.5 * result.action_mse_start and value_mse < 0.5 * start_value_mse
        with torch.no_grad():
            scales = actor(TensorDict({"observation": observation}, batch_size=[24]))["scale"]
        assert float(scales.log().mean().exp()) == pytest.approx(0.3, rel=0.1)


def test_the_clone_depends_on_its_seed_alone_and_the_rollout_shows_progress_as_asked(monkeypatch):
    """The fits draw their minibatches from a generator of ``seed``, not from torch's global one (which PPO's
    seeding owns); the teacher's rollout gets the progress flag imitate was given (shown by default)."""
    data = made_up_rollout()
    env = SimpleNamespace(
        transform=[SimpleNamespace(loc={"observation": torch.zeros(6)}, scale={"observation": torch.ones(6)})]
    )
    shown = []
    monkeypatch.setattr(
        imitation, "teacher_rollout", lambda env, teacher, windows, progress: shown.append(progress) or data
    )
    monkeypatch.setattr(imitation, "FIT_STEPS", 5)
    monkeypatch.setattr(imitation, "FIT_BATCH", 4)
    fitted = []
    for global_seed, seed, progress in ((0, 3, {}), (1, 3, {"progress": False}), (0, 4, {"progress": True})):
        actor, critic = networks(seed=1)
        torch.manual_seed(global_seed)
        imitation.imitate(
            env,
            actor,
            critic,
            teacher=make_controller("ftsts"),
            windows=WINDOWS,
            gamma=0.9,
            scale=0.3,
            seed=seed,
            **progress,
        )
        fitted.append(torch.cat([p.detach().flatten() for p in [*actor.parameters(), *critic.parameters()]]))
    assert shown == [True, False, True]
    torch.testing.assert_close(fitted[0], fitted[1], rtol=0, atol=0)  # another global state: the same clone
    assert not torch.equal(fitted[0], fitted[2])  # another seed: other minibatches


def test_one_window_has_its_own_reward_as_its_return():
    torch.testing.assert_close(
        imitation.discounted_returns(torch.tensor([[2.0], [-1.0]]), torch.zeros(2, 1, dtype=torch.bool), 0.5),
        torch.tensor([[2.0], [-1.0]]),
    )


def test_the_teacher_sees_each_windows_info_and_the_rollout_shows_its_progress(capfd):
    """A latching FTSTS teacher stops once the info of a stimulated window reports J_I*w under its latch (here
    above the initial 260 mV: after the first window); the bar names the teacher, counts windows, and is shown
    only when asked for."""
    from neuroloop_gpu.control import distributed
    from neuroloop_gpu.control.ppo import make_env

    env = make_env(CONFIG, torch.device("cpu"), distributed.Rank())
    capfd.readouterr()
    data = imitation.teacher_rollout(env, make_controller("ftsts", latch_mv=261.0), 4, progress=True)
    bar = capfd.readouterr().err
    assert "imitate ftsts: 100%" in bar and "4/4" in bar and "window/s" in bar
    amplitude = data["action"][..., 0]
    assert (amplitude[:, 0] > -1.0).all() and (amplitude[:, 1:] == -1.0).all()  # on, then off: 0 mV is -1
    imitation.teacher_rollout(env, make_controller("ftsts"), 2, progress=False)
    assert capfd.readouterr().err == ""
