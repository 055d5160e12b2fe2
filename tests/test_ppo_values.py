"""PPO's configuration, schedules, seeds, log and resume checks, value by value and refusal by whole
text, without training (the training loop itself: tests/test_ppo.py and tests/test_train_log_values.py)."""

import csv
import hashlib
import math
import os
import re
import sys
from dataclasses import asdict, fields, replace

import pytest
import torch
import torch.multiprocessing as mp
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensordict import TensorDict
from torchrl.data import Bounded, LazyTensorStorage, SamplerWithoutReplacement, TensorDictReplayBuffer
from torchrl.envs.utils import ExplorationType, set_exploration_type

from neuroloop_gpu.config import NetworkParams
from neuroloop_gpu.control import distributed, ppo
from neuroloop_gpu.control.checkpoint import CheckpointError, load_checkpoint
from neuroloop_gpu.control.ppo import PPOConfig
from neuroloop_gpu.envs import ActionBounds, EpisodeConfig, RewardConfig
from neuroloop_gpu.envs.observation import OBSERVATION_NAMES
from neuroloop_gpu.open_loop import MODELS

SMALL = PPOConfig(num_envs=4, num_e=20, num_i=5, episode_s=0.2, windows_per_batch=5, total_frames=40, minibatch_size=10)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"num_envs": 0}, "num_envs must be an integer >= 1, got 0"),
        ({"num_e": 1.5}, "num_e must be an integer >= 1, got 1.5"),
        ({"num_i": 0}, "num_i must be an integer >= 1, got 0"),
        ({"windows_per_batch": 0}, "windows_per_batch must be an integer >= 1, got 0"),
        ({"epochs": 0}, "epochs must be an integer >= 1, got 0"),
        ({"minibatch_size": 0}, "minibatch_size must be an integer >= 1, got 0"),
        ({"checkpoint_every": -1}, "checkpoint_every must be an integer >= 1, got -1"),
        ({"imitation_windows": 0}, "imitation_windows must be an integer >= 1, got 0"),
        ({"episode_s": 0.0}, "episode_s must be a number > 0 (s), got 0.0"),
        ({"stim_onset_s": 0.2}, "stim_onset_s must be a number in [0, episode_s), got 0.2"),
        ({"stim_onset_s": -0.1}, "stim_onset_s must be a number in [0, episode_s), got -0.1"),
        ({"total_frames": 19}, "total_frames must be at least one batch, num_envs * windows_per_batch = 20, got 19"),
        ({"minibatch_size": 21}, "minibatch_size must be at most num_envs * windows_per_batch = 20, got 21"),
        ({"lr": 1.0}, "lr must be a number in (0, 1), got 1.0"),
        ({"lr": 0.0}, "lr must be a number in (0, 1), got 0.0"),
        ({"lr_schedule": "step"}, "lr_schedule must be constant or linear or cosine, got 'step'"),
        ({"gamma": 0.0}, "gamma/lmbda must be gamma in (0, 1], lmbda in [0, 1], got (0.0, 0.95)"),
        ({"gamma": 1.01}, "gamma/lmbda must be gamma in (0, 1], lmbda in [0, 1], got (1.01, 0.95)"),
        ({"lmbda": 1.5}, "gamma/lmbda must be gamma in (0, 1], lmbda in [0, 1], got (0.98, 1.5)"),
        ({"lmbda": -0.1}, "gamma/lmbda must be gamma in (0, 1], lmbda in [0, 1], got (0.98, -0.1)"),
        ({"hidden": ()}, "hidden must be one or more widths >= 1, got ()"),
        ({"hidden": (8, 0)}, "hidden must be one or more widths >= 1, got (8, 0)"),
        ({"task": "chronic"}, "task must be 'acute' or 'lasting', got 'chronic'"),
        ({"model": "other"}, "model must be 'paper' or 'published-code', got 'other'"),
        (
            {"imitate": "pid"},
            "imitate must be None or one of ['ftsts', 'ftsts-scheduled', 'ftsts-scheduled-1ms', 'ftsts-tuned', "
            "'ftsts-tuned-1ms', 'hf-dbs', 'none', 'pi', 'threshold'], got 'pid'",
        ),
        (
            {"imitation_params": (("gain", 1.0),)},
            "imitation_params must be empty without imitate, got (('gain', 1.0),)",
        ),
        (
            {"imitate": "ftsts", "imitation_params": (("nope", 1.0),)},
            "ftsts parameter must be one of ['amplitude', 'frequency', 'pulse_width', 'polarity', 'latch_mv'], "
            "got 'nope'",
        ),
        (
            {"imitate": "ftsts", "imitation_windows": 10},  # a 0.2 s episode is 10 windows
            "imitation_windows must be more than one episode (10 windows) with --imitate: the critic learns from "
            "whole episodes, got 10",
        ),
        ({"imitation_scale": 0.0}, "imitation_scale must be a finite number > 0, got 0.0"),
        ({"imitation_scale": math.inf}, "imitation_scale must be a finite number > 0, got inf"),
        (
            {"stim_onset_s": 0.05, "stim_budget_s": 0.1, "followup_s": 0.1},
            "episode_s must be at least stim_onset_s + stim_budget_s + followup_s = 0.25 s, got 0.2",
        ),
        (
            {"followup_s": 0.1},  # the episode's own check: nothing ends the stimulation before a follow-up
            "episode.followup must be 0 unless stim_budget or latch_mv ends the stimulation phase, got 100.0",
        ),
        ({"energy_weight": -1.0}, "reward.energy_weight must be a finite number >= 0, got -1.0"),
    ],
)
def test_impossible_configurations_are_refused_by_name(changes, message):
    with pytest.raises(ValueError) as error:
        replace(SMALL, **changes)
    assert str(error.value) == message


@pytest.mark.parametrize(
    "changes",
    [
        {"stim_onset_s": 0.0, "total_frames": 20, "minibatch_size": 20, "lr": 0.999},
        {"gamma": 1.0, "lmbda": 0.0, "stim_budget_s": 0.5},  # without a follow-up the episode may cut the budget
        {"lmbda": 1.0, "hidden": (1,)},
        {"imitate": "ftsts", "imitation_windows": 11, "imitation_params": (("amplitude", 30.0),)},
        {"stim_onset_s": 0.05, "stim_budget_s": 0.1, "followup_s": 0.05},  # ends exactly with the episode
        {"model": "published-code", "task": "lasting", "latch_mv": 75.0, "followup_s": 0.1},
    ],
)
def test_the_limits_themselves_are_allowed(changes):
    config = replace(SMALL, **changes)
    assert {name: getattr(config, name) for name in changes} == changes


def test_derived_settings_carry_every_field_in_their_units():
    config = replace(
        SMALL,
        num_e=24,
        num_i=6,
        model="published-code",
        episode_s=0.4,
        stim_onset_s=0.02,
        stim_budget_s=0.2,
        followup_s=0.1,
        latch_mv=80.0,
        start_weight_mv=(90.0, 200.0),
        synchrony_weight=0.3,
        coupling_weight=0.4,
        energy_weight=0.5,
        weight_credit=6.0,
        followup_weight=0.7,
        latch_bonus=8.0,
        energy_scale_mv2ms=9000.0,
        max_pulse_width_us=300.0,
    )
    assert config.frames_per_batch == 20
    assert config.network == MODELS["published-code"].network(NetworkParams(num_e=24, num_i=6))
    assert config.network != NetworkParams(num_e=24, num_i=6)  # the variant's own settings
    assert replace(config, model="paper").network == MODELS["paper"].network(NetworkParams(num_e=24, num_i=6))
    assert config.reward == RewardConfig(
        synchrony_weight=0.3,
        coupling_weight=0.4,
        energy_weight=0.5,
        weight_credit=6.0,
        followup_synchrony_weight=0.7,
        latch_bonus=8.0,
        energy_scale_mv2ms=9000.0,
    )
    assert config.bounds == ActionBounds(pulse_width=(ActionBounds.pulse_width[0], 300.0))
    assert config.episode == EpisodeConfig(
        stim_onset=20.0, latch_mv=80.0, stim_budget=200.0, followup=100.0, start_weight_mv=(90.0, 200.0)
    )
    assert replace(config, stim_budget_s=None, followup_s=0.0).episode.stim_budget is None


def test_a_task_preset_takes_overrides_but_not_none():
    lasting = PPOConfig.for_task("lasting", num_envs=8, total_frames=None, seed=None, gamma=0.9)
    preset = ppo.TASKS["lasting"]
    assert lasting.task == "lasting" and lasting.num_envs == 8 and lasting.gamma == 0.9
    assert lasting.total_frames == PPOConfig.total_frames and lasting.seed == PPOConfig.seed
    assert {k: getattr(lasting, k) for k in preset if k != "gamma"} == {k: v for k, v in preset.items() if k != "gamma"}
    assert PPOConfig.for_task("acute") == PPOConfig()
    with pytest.raises(ValueError) as error:
        PPOConfig.for_task("chronic", num_envs=8)
    assert str(error.value) == "task must be 'acute' or 'lasting', got 'chronic'"


def test_a_saved_configuration_reads_back_as_it_was():
    """What a checkpoint stores (JSON-like: lists for tuples) gives the same config back."""
    config = replace(
        SMALL,
        hidden=(16, 8),
        start_weight_mv=(80.0, 260.0),
        imitate="ftsts",
        imitation_windows=11,
        imitation_params=(("amplitude", 30.0), ("frequency", 83.3)),
        task="lasting",
        latch_mv=75.0,
    )
    saved = {
        **asdict(config),
        "hidden": [16, 8],
        "start_weight_mv": [80.0, 260.0],
        "imitation_params": [["amplitude", 30.0], ["frequency", 83.3]],
    }
    back = PPOConfig.from_dict(saved)
    assert back == config
    assert (type(back.hidden), type(back.start_weight_mv), type(back.imitation_params[0])) == (tuple, tuple, tuple)
    old = {k: v for k, v in saved.items() if k not in ("hidden", "start_weight_mv", "imitation_params", "imitate")}
    old["imitation_windows"] = 3000
    assert PPOConfig.from_dict(old) == replace(
        config, hidden=PPOConfig.hidden, start_weight_mv=None, imitate=None, imitation_params=(), imitation_windows=3000
    )
    with pytest.raises(CheckpointError) as error:
        PPOConfig.from_dict({**saved, "bogus": 1, "alpha": 2})
    assert str(error.value) == "training config has unknown fields ['alpha', 'bogus'] (written by another version?)"


@pytest.mark.parametrize(
    ("schedule", "rate"),
    [
        ("constant", lambda progress: 0.01),
        ("linear", lambda progress: 0.01 * (1 - progress)),
        ("cosine", lambda progress: 0.005 * (1 + math.cos(math.pi * progress))),
    ],
)
def test_learning_rate_schedules(schedule, rate):
    config = replace(SMALL, lr=0.01, lr_schedule=schedule)
    for iteration, progress in ((0, 0.0), (1, 0.25), (2, 0.5), (3, 0.75), (4, 1.0), (6, 1.0)):
        assert ppo.learning_rate(config, iteration, 4) == pytest.approx(rate(progress), rel=1e-12, abs=1e-18)


def test_torch_seeds_are_the_recorded_ones():
    """The streams are part of a run's reproducibility: a resumed run draws what it drew in earlier versions."""
    assert ppo.torch_seed(7, 0, 0) == 7
    digest = hashlib.blake2b(b"7,1,0", digest_size=8).digest()
    assert ppo.torch_seed(7, 1, 0) == int.from_bytes(digest, "little")
    assert ppo.torch_seed(7, 0, 3) == int.from_bytes(hashlib.blake2b(b"7,0,3", digest_size=8).digest(), "little")


def batch(rewards, done, episode_reward, kop, weight, energy):
    """A made-up [networks, windows] rollout of what _log_row reads."""
    shape = torch.tensor(rewards).shape
    column = lambda values, dtype=torch.float32: torch.tensor(values, dtype=dtype).reshape(*shape, 1)  # noqa: E731
    info = TensorDict(
        {"kop": torch.tensor(kop), "weight_mv": torch.tensor(weight), "energy_mv2ms": torch.tensor(energy)},
        batch_size=shape,
    )
    following = TensorDict(
        {
            "reward": column(rewards),
            "done": column(done, torch.bool),
            "episode_reward": column(episode_reward),
            "info": info,
        },
        batch_size=shape,
    )
    return TensorDict({"next": following}, batch_size=shape)


def test_a_log_row_from_a_made_up_rollout():
    rollout = batch(
        rewards=[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]],
        done=[[False, True, False], [False, False, True]],
        episode_reward=[[1.0, 3.0, 3.0], [4.0, 9.0, 15.0]],
        kop=[[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]],
        weight=[[200.0, 190.0, 180.0], [170.0, 160.0, 150.0]],
        energy=[[0.0, 10.0, 20.0], [30.0, 40.0, 50.0]],
    )
    losses = TensorDict(
        {"loss_objective": torch.tensor(-0.5), "loss_critic": torch.tensor(2.0), "loss_entropy": torch.tensor(0.01)}
    )
    row = ppo._log_row(rollout, losses, 3, 600, 200, 4.00049, 1e-4, distributed.Rank())
    assert list(row) == [
        "iteration",
        "frames",
        "wall_s",
        "fps",
        "lr",
        "episode_reward_mean",
        "reward_mean",
        "kop_mean",
        "weight_mv_mean",
        "energy_mean",
        "loss_objective",
        "loss_critic",
        "loss_entropy",
    ]
    assert set(row) == set(ppo.LOG_COLUMNS)
    assert (row["iteration"], row["frames"], row["wall_s"], row["lr"]) == (3, 600, 4.0, 1e-4)
    assert row["fps"] == pytest.approx(200 / 4.00049, rel=1e-12)
    assert row["episode_reward_mean"] == pytest.approx((3.0 + 15.0) / 2)  # the episodes that ended in the rollout
    assert row["reward_mean"] == pytest.approx(3.5)
    assert row["kop_mean"] == pytest.approx(0.35)
    assert row["weight_mv_mean"] == pytest.approx(175.0)
    assert row["energy_mean"] == pytest.approx(25.0)
    assert (row["loss_objective"], row["loss_critic"]) == (-0.5, 2.0) and row["loss_entropy"] == pytest.approx(0.01)
    assert all(type(value) in (int, float) for value in row.values())
    unfinished = batch([[1.0]], [[False]], [[1.0]], [[0.5]], [[100.0]], [[0.0]])
    row = ppo._log_row(unfinished, losses, 1, 1, 1, 0.0, 1e-4, distributed.Rank())
    assert math.isnan(row["episode_reward_mean"]) and row["fps"] == pytest.approx(1e9)


def write_rows(path, rows):
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=ppo.LOG_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def log_row(iteration, wall_s):
    return {column: iteration for column in ppo.LOG_COLUMNS} | {"frames": 10 * iteration, "wall_s": wall_s}


def test_a_resumed_log_keeps_the_rows_up_to_the_checkpoint_and_goes_on_in_time(tmp_path):
    earlier = tmp_path / "before" / "train_log.csv"
    earlier.parent.mkdir()
    write_rows(earlier, [log_row(i, 1.5 * i) for i in (1, 2, 3, 4, 5)])  # trained to 5, checkpoint at 3
    out = tmp_path / "after"
    out.mkdir()
    log = ppo._Log(out, 3, earlier)
    log.write(log_row(4, 0.12345))
    with (out / "train_log.csv").open(newline="") as file:  # flushed: readable while training goes on
        rows = list(csv.DictReader(file))
    log.close()
    assert [row["iteration"] for row in rows] == ["1", "2", "3", "4"]
    assert [row["wall_s"] for row in rows] == ["1.5", "3.0", "4.5", str(round(4.5 + 0.12345, 3))]
    assert list(rows[0]) == list(ppo.LOG_COLUMNS)
    fresh = ppo._Log(tmp_path / "before", 0, earlier)  # a fresh run replaces any old log
    fresh.close()
    assert (tmp_path / "before" / "train_log.csv").read_bytes() == (",".join(ppo.LOG_COLUMNS) + "\r\n").encode()
    gone = ppo._Log(out, 2, tmp_path / "nowhere.csv")  # the old log lost: start at wall time 0
    gone.write(log_row(3, 2.0))
    gone.close()
    with (out / "train_log.csv").open(newline="") as file:
        assert [(row["iteration"], row["wall_s"]) for row in csv.DictReader(file)] == [("3", "2.0")]


def test_the_log_does_without_tensorboard(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if the package were not installed
    log = ppo._Log(tmp_path, 0, None)
    assert log.board is None
    log.write(log_row(1, 0.5))
    log.close()
    assert not (tmp_path / "tensorboard").exists()
    with (tmp_path / "train_log.csv").open(newline="") as file:
        assert [row["iteration"] for row in csv.DictReader(file)] == ["1"]


def test_the_actor_acts_within_the_box_and_reaches_its_edges():
    """The policy's tanh-squashed Gaussian maps onto [-1, 1] in each of the three action dimensions."""
    torch.manual_seed(0)
    actor = ppo.build_actor(replace(SMALL, hidden=(8,)), Bounded(-1.0, 1.0, shape=(3,)))
    last = actor.module[0].module[0][-1]  # the MLP's output layer: 3 locations, then 3 scale parameters
    observation = TensorDict({"observation": torch.zeros(2, 6)}, batch_size=[2])
    for sign in (1.0, -1.0):
        with torch.no_grad():
            last.weight.zero_()
            last.bias.copy_(torch.tensor([sign * 20.0] * 3 + [0.0] * 3))
            with set_exploration_type(ExplorationType.DETERMINISTIC):
                action = actor(observation.clone())["action"]
            sampled = actor(observation.clone())["action"]
        torch.testing.assert_close(action, torch.full((2, 3), sign))
        assert sampled.abs().max() <= 1.0 and (sampled * sign).min() > 0.99


def test_the_log_writes_each_column_but_the_counters_to_tensorboard(tmp_path):
    log = ppo._Log(tmp_path, 0, None)
    log.write(log_row(1, 0.5) | {"reward_mean": -0.25})
    log.write(log_row(2, 1.0) | {"reward_mean": -0.125})
    log.close()
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert sorted(tags) == sorted(c for c in ppo.LOG_COLUMNS if c not in ("iteration", "frames"))
    assert [(e.step, e.value) for e in events.Scalars("reward_mean")] == [(10, -0.25), (20, -0.125)]
    assert [(e.step, e.value) for e in events.Scalars("wall_s")] == [(10, 0.5), (20, 1.0)]


def test_the_training_env_seeds_normalises_and_sums_as_configured():
    config = replace(SMALL, seed=3, norm_decay=0.9, max_pulse_width_us=300.0, stim_onset_s=0.02, energy_weight=0.3)
    assert config.bounds != ActionBounds() and config.episode != EpisodeConfig()  # not the env's defaults
    env = ppo.make_env(config, torch.device("cpu"), distributed.Rank(rank=1, world_size=2), backend="eager")
    base = env.base_env
    assert base.core.net.backend == "eager" and base.core.device == torch.device("cpu")
    assert base.core.net.state.seed.tolist() == [(3 * 2 + 1) * 4 + b for b in range(4)]
    assert (base.num_envs, base.core.params.num_e, base.core.params.num_i) == (4, 20, 5)
    assert base.core.sim.duration == 200.0 and base.core.reward_config == config.reward
    assert base.core.bounds == config.bounds and base.core.episode == config.episode
    norm, total = env.transform[0], env.transform[1]
    assert norm.in_keys == ["observation"] and norm.decay == 0.9
    assert total.in_keys == ["reward"] and total.out_keys == ["episode_reward"]
    env.rollout(3)
    loc, scale = ppo.observation_affine(env)
    torch.testing.assert_close(loc, norm.loc["observation"])
    loc += 1.0  # a copy: the normaliser keeps its statistics
    torch.testing.assert_close(loc - 1.0, norm.loc["observation"])
    torch.testing.assert_close(scale, norm.scale["observation"])
    env.close()
    too_far = replace(SMALL, seed=250_000)  # networks 1,000,000 to 1,000,003: the held-out seeds
    with pytest.raises(ValueError) as error:
        ppo.make_env(too_far, torch.device("cpu"), distributed.Rank())
    assert str(error.value) == (
        "seed must be small enough that training seeds stay below the held-out evaluation seeds (1000000), got 250000"
    )
    env = ppo.make_env(replace(SMALL, seed=249_999), torch.device("cpu"), distributed.Rank())  # up to 999,999
    assert env.base_env.core.net.state.seed.tolist() == [999_996, 999_997, 999_998, 999_999]
    env.close()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """One PPO iteration of SMALL: a real checkpoint to resume from."""
    out = tmp_path_factory.mktemp("run")
    return ppo.train(replace(SMALL, total_frames=20, minibatch_size=10), out, progress=False).checkpoint


def test_a_resume_refuses_a_changed_configuration_by_name(checkpoint):
    base = replace(SMALL, total_frames=20, minibatch_size=10)
    cpu = torch.device("cpu")
    state = ppo._resume_state(replace(base, total_frames=40, checkpoint_every=3), checkpoint, (), cpu)
    assert state["iteration"] == 1 and PPOConfig.from_dict(state["config"]) == base
    with pytest.raises(CheckpointError) as error:
        ppo._resume_state(replace(base, lr=1e-3, gamma=0.9), checkpoint, (), cpu)
    assert str(error.value) == (
        f"checkpoint {checkpoint} was trained with another configuration: gamma 0.98 -> 0.9, lr 0.0003 -> 0.001. "
        "A resumed run keeps its configuration; to change these fields allow them by name "
        "(neuroloop train --allow-change gamma lr)"
    )
    allowed = ppo._resume_state(replace(base, lr=1e-3, gamma=0.9), checkpoint, ("lr", "gamma"), cpu)
    assert allowed["iteration"] == 1
    with pytest.raises(CheckpointError) as error:
        ppo._resume_state(replace(base, lr=1e-3), checkpoint, ("gamma",), cpu)
    assert str(error.value).endswith(
        "lr 0.0003 -> 0.001. A resumed run keeps its configuration; to change these "
        "fields allow them by name (neuroloop train --allow-change lr)"
    )
    with pytest.raises(CheckpointError) as error:
        ppo._resume_state(replace(base, hidden=(8,)), checkpoint, ("hidden",), cpu)
    assert str(error.value) == (
        f"checkpoint {checkpoint} holds networks of hidden widths (64, 64); this run asks for (8,), which cannot "
        "load them"
    )
    with pytest.raises(ValueError) as error:
        ppo._resume_state(base, checkpoint, ("learning_rate", "lr"), cpu)
    names = ", ".join(sorted(f.name for f in fields(PPOConfig)))
    assert str(error.value) == f"allow_changes must be names of PPOConfig fields ({names}), got ['learning_rate']"


def test_a_resume_with_nothing_left_copies_the_run_and_reports_it(checkpoint, tmp_path):
    """Resuming a finished run trains nothing: the checkpoint and its log are copied byte for byte into the
    new folder (in place: left as they are), and the result counts the checkpoint's iterations and frames."""
    config = replace(SMALL, total_frames=20, minibatch_size=10)
    before = checkpoint.read_bytes(), checkpoint.with_name("train_log.csv").read_bytes()
    for out in (tmp_path / "copy", checkpoint.parent):
        result = ppo.train(config, out, resume=checkpoint, progress=False)
        assert result == ppo.TrainResult(out / "checkpoint.pt", out / "train_log.csv", 1, 20, 0.0)
        assert (result.checkpoint.read_bytes(), result.log.read_bytes()) == before


def test_a_resumed_run_goes_on_from_its_checkpoint_with_its_own_seed_stream(checkpoint, tmp_path, monkeypatch):
    """From iteration 1 of 2: one more iteration, frames counted on, the log's first row kept; torch is seeded
    for (seed, rank 0, iteration 1), and the env gets the device and backend asked for."""
    seeds, envs = [], []
    monkeypatch.setattr(ppo, "torch_seed", lambda *args: seeds.append(args) or 5)
    make_env = ppo.make_env
    monkeypatch.setattr(ppo, "make_env", lambda *args: envs.append(args) or make_env(*args))
    config = replace(SMALL, total_frames=40, minibatch_size=10)
    result = ppo.train(config, tmp_path / "resumed", resume=checkpoint, backend="eager", progress=False)
    assert (result.iterations, result.frames) == (2, 40)
    with result.log.open(newline="") as file:
        assert [(row["iteration"], row["frames"]) for row in csv.DictReader(file)] == [("1", "20"), ("2", "40")]
    assert seeds == [(0, 0, 1)]
    ((_, device, rank, backend),) = envs
    assert (device, rank, backend) == (torch.device("cpu"), distributed.Rank(), "eager")
    fresh = ppo.train(replace(config, seed=2, total_frames=20), tmp_path / "fresh", progress=False)
    assert seeds[1:] == [(2, 0, 0)] and envs[1][3] == "auto" and fresh.iterations == 1


def test_a_run_folder_is_refused_unless_overwritten_then_cleared(tmp_path, capfd):
    """An earlier run's files are refused by default; with overwrite they go, the clone of an --imitate run
    included, before the new run writes. The progress bar shows unless progress=False."""
    config = replace(SMALL, total_frames=20, minibatch_size=10)
    out = tmp_path / "run"
    out.mkdir()
    (out / "train_log.csv").write_text("iteration\n")
    (out / "imitation.pt").write_bytes(b"an older run's clone")
    with pytest.raises(ValueError) as error:
        ppo.train(config, out, progress=False)
    assert str(error.value) == (
        f"--out {out} holds an earlier run (imitation.pt, train_log.csv); choose another folder, or pass "
        "--overwrite to delete those files first"
    )
    capfd.readouterr()
    ppo.train(config, out, overwrite=True)
    assert "train PPO" in capfd.readouterr().err
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "checkpoint.pt",
        "tensorboard",
        "train_log.csv",
    ]


def test_the_critic_has_the_configured_widths():
    critic = ppo.build_critic(replace(SMALL, hidden=(16, 8)))
    shapes = [tuple(p.shape) for name, p in critic.named_parameters() if name.endswith("weight")]
    assert shapes == [(16, 6), (8, 16), (1, 8)]
    assert [type(m).__name__ for m in critic.module if not isinstance(m, torch.nn.Linear)] == ["Tanh", "Tanh"]
    assert critic.in_keys == ["observation"] and critic.out_keys == ["state_value"]


def spy(monkeypatch, name, made):
    """Replace ppo.<name> by a wrapper that keeps (kwargs, object) of every call in ``made``."""
    real = getattr(ppo, name)

    def build(*args, **kwargs):
        built = real(*args, **kwargs)
        made.append((kwargs, built))
        return built

    monkeypatch.setattr(ppo, name, build)


def test_the_update_is_built_from_the_configuration(tmp_path, monkeypatch, capfd):
    """The clipped loss with the config's coefficients and per-minibatch advantage normalisation, GAE without
    batch averaging, a buffer that passes over every window of a rollout once per epoch, a collector of whole
    batches, and a bar counting windows from the checkpoint's frames."""
    config = replace(
        SMALL,
        clip_epsilon=0.15,
        entropy_coeff=0.02,
        critic_coeff=0.7,
        gamma=0.9,
        lmbda=0.8,
        total_frames=40,
        minibatch_size=10,
    )
    losses, advantages, buffers, collectors = [], [], [], []
    for name, made in (
        ("ClipPPOLoss", losses),
        ("GAE", advantages),
        ("TensorDictReplayBuffer", buffers),
        ("Collector", collectors),
    ):
        spy(monkeypatch, name, made)
    capfd.readouterr()
    ppo.train(config, tmp_path / "run")
    bar = capfd.readouterr().err
    assert "train PPO: 100%" in bar and "40/40" in bar and "window/s" in bar
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))  # closed at the end: every row is there
    events.Reload()
    assert [e.step for e in events.Scalars("reward_mean")] == [20, 40]
    ((_, loss),) = losses
    assert float(loss.clip_epsilon) == pytest.approx(0.15) and float(loss.entropy_coeff) == pytest.approx(0.02)
    assert float(loss.critic_coeff) == pytest.approx(0.7) and loss.normalize_advantage is True
    ((kwargs, gae),) = advantages
    assert (kwargs["gamma"], kwargs["lmbda"]) == (0.9, 0.8) and gae.average_gae is False
    ((_, buffer),) = buffers
    assert type(buffer.sampler).__name__ == "SamplerWithoutReplacement" and buffer._batch_size == 10
    assert type(buffer.storage).__name__ == "LazyTensorStorage" and buffer.storage.max_size == 20
    ((kwargs, _),) = collectors
    assert (kwargs["frames_per_batch"], kwargs["total_frames"], kwargs["device"]) == (20, 40, torch.device("cpu"))
    ppo.train(replace(config, total_frames=80), tmp_path / "more", resume=tmp_path / "run" / "checkpoint.pt")
    bar = capfd.readouterr().err
    assert "40/80" in bar and "80/80" in bar  # from the checkpoint's 40 frames to 80
    assert re.search(r"fps=\d+, kop=\d\.\d{3}, reward=-?\d+\.\d{3}\]", bar)
    with (tmp_path / "more" / "train_log.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert [int(row["frames"]) for row in rows] == [20, 40, 60, 80]
    walls = [float(row["wall_s"]) for row in rows]
    assert walls == sorted(walls) and walls[-1] < 60.0
    # frames per second of this run alone: 20 new frames over the time since the resume (the wall time goes on)
    assert float(rows[2]["fps"]) * (walls[2] - walls[1]) == pytest.approx(20.0, rel=0.2, abs=2.0)
    ppo.train(config, tmp_path / "quiet", progress=False)
    assert capfd.readouterr().err == ""


def test_a_cloned_start_is_recorded_in_every_checkpoint(tmp_path, monkeypatch):
    """With imitate: the teacher with its parameters drives the configured windows, the clone is fitted with
    the config's gamma, scale and the run's first torch seed, saved as imitation.pt before PPO's first update,
    and its record travels in every checkpoint, resumed runs' too. Without: no imitation.pt, a None record."""
    from neuroloop_gpu.control.imitation import ImitationResult

    calls = []

    def clone(env, actor, critic, **kwargs):
        calls.append(kwargs)
        env.rollout(3)  # as the teacher's rollout does: the normaliser's first statistics
        with torch.no_grad():  # a fit that leaves a mark: the saved clone must be this actor and critic
            for parameter in actor.parameters():
                parameter.fill_(0.01)
            for parameter in critic.parameters():
                parameter.fill_(0.02)
        return ImitationResult({"controller": kwargs["teacher"].name}, 7, 0.1, 0.5, 0.2, 0.4)

    monkeypatch.setattr(ppo, "imitate", clone)
    config = replace(
        SMALL,
        imitate="ftsts",
        imitation_params=(("amplitude", 30.0),),
        imitation_windows=11,
        gamma=0.9,
        imitation_scale=0.25,
        seed=3,
        start_weight_mv=(80.0, 260.0),
        total_frames=20,
        minibatch_size=10,
    )
    ppo.train(config, tmp_path / "run")
    ((kwargs,),) = [calls]
    assert kwargs["teacher"].describe()["amplitude"] == 30.0 and kwargs["teacher"].name == "ftsts"
    assert (kwargs["windows"], kwargs["gamma"], kwargs["scale"]) == (11, 0.9, 0.25)
    assert kwargs["seed"] == ppo.torch_seed(3, 0, 0) and kwargs["progress"] is True
    record = {
        "teacher": {"controller": "ftsts"},
        "windows": 7,
        "action_mse": 0.1,
        "action_mse_start": 0.5,
        "value_mse": 0.2,
        "return_var": 0.4,
    }
    for name in ("imitation.pt", "checkpoint.pt"):
        saved = load_checkpoint(tmp_path / "run" / name)
        assert saved["imitation"] == record and saved["observation_names"] == list(OBSERVATION_NAMES)
        assert saved["config"] == {
            **asdict(config),
            "hidden": [64, 64],
            "start_weight_mv": [80.0, 260.0],
            "imitation_params": [["amplitude", 30.0]],
        }
    cloned = load_checkpoint(tmp_path / "run" / "imitation.pt")
    assert cloned["iteration"] == 0
    assert all((value == 0.01).all() for value in cloned["actor"].values() if value.is_floating_point())
    assert all((value == 0.02).all() for value in cloned["critic"].values() if value.is_floating_point())
    resumed = ppo.train(
        replace(config, total_frames=40), tmp_path / "on", resume=tmp_path / "run" / "checkpoint.pt", progress=False
    )
    assert len(calls) == 1 and load_checkpoint(resumed.checkpoint)["imitation"] == record
    assert not (tmp_path / "on" / "imitation.pt").exists()
    plain = ppo.train(replace(SMALL, total_frames=20, minibatch_size=10), tmp_path / "plain", progress=False)
    assert load_checkpoint(plain.checkpoint)["imitation"] is None and not (tmp_path / "plain" / "imitation.pt").exists()
    ppo.train(config, tmp_path / "quiet", progress=False)
    assert calls[-1]["progress"] is False


def test_log_rows_average_over_ranks_in_floating_point(monkeypatch):
    """Under torchrun the columns are means over the ranks (all_reduce in float64, back to each value's dtype):
    the episode count must be a float, or 1 and 2 episodes would average to 1 instead of 1.5."""
    other = {
        "reward_mean": 0.0,
        "episode_reward_sum": 9.0,
        "episodes": 2.0,
        "kop_mean": 0.5,
        "weight_mv_mean": 100.0,
        "energy_mean": 5.0,
        "loss_objective": 0.5,
        "loss_critic": 1.0,
        "loss_entropy": 0.03,
    }

    def two_ranks(tensors, rank):
        return {k: ((v.double() + other[k]) / 2).to(v.dtype) for k, v in tensors.items()}

    monkeypatch.setattr(ppo.distributed, "average_tensors", two_ranks)
    one_episode = batch([[1.0, 3.0]], [[False, True]], [[1.0, 4.0]], [[0.1, 0.3]], [[200.0, 180.0]], [[10.0, 30.0]])
    losses = TensorDict(
        {"loss_objective": torch.tensor(-0.5), "loss_critic": torch.tensor(2.0), "loss_entropy": torch.tensor(0.01)}
    )
    row = ppo._log_row(one_episode, losses, 1, 4, 4, 1.0, 1e-4, distributed.Rank(0, 2))
    assert row["episode_reward_mean"] == pytest.approx((4.0 + 9.0) / 3.0)  # (sum over ranks) / (episodes over ranks)
    assert row["reward_mean"] == pytest.approx(1.0) and row["kop_mean"] == pytest.approx(0.35)
    assert row["loss_objective"] == pytest.approx(0.0) and row["loss_entropy"] == pytest.approx(0.02)
    monkeypatch.undo()
    alone = ppo._log_row(one_episode, losses, 1, 4, 4, 1.0, 1e-4, distributed.Rank())
    assert alone["episode_reward_mean"] == 4.0  # one episode ended: its return, not NaN


class Losses(torch.nn.Module):
    """A loss module whose three losses are 1, 2 and 3 times one parameter; it records the rows it is given."""

    def __init__(self):
        super().__init__()
        self.p = torch.nn.Parameter(torch.tensor(1.0))
        self.seen = []

    def forward(self, sample):
        self.seen.append(sample["row"].tolist())
        return TensorDict({"loss_objective": 1 * self.p, "loss_critic": 2 * self.p, "loss_entropy": 3 * self.p})


@pytest.mark.parametrize(("max_grad_norm", "step"), [(100.0, 6.0), (1.5, 1.5)])
def test_an_update_steps_on_the_sum_of_the_losses_over_every_window_once_per_epoch(max_grad_norm, step):
    """Two epochs of two minibatches of 10 of a 20-window rollout: each epoch recomputes the advantages and
    visits every window once; each step descends the sum of the three losses (gradient 6, clipped to the
    norm); the result is the mean of the last epoch's losses."""
    config = replace(SMALL, epochs=2, minibatch_size=10, max_grad_norm=max_grad_norm)
    rollout = TensorDict({"row": torch.arange(20).reshape(4, 5)}, batch_size=(4, 5))
    advantages = []
    module = Losses()
    optimizer = torch.optim.SGD(module.parameters(), lr=0.01)
    buffer = TensorDictReplayBuffer(storage=LazyTensorStorage(20), sampler=SamplerWithoutReplacement(), batch_size=10)
    out = ppo._update(rollout, config, advantages.append, module, optimizer, buffer, distributed.Rank())
    assert len(advantages) == 2
    for epoch in (module.seen[:2], module.seen[2:]):
        assert sorted(epoch[0] + epoch[1]) == list(range(20))
    p = [1.0 - 0.01 * step * k for k in range(4)]  # before each of the four steps
    assert float(module.p.detach()) == pytest.approx(1.0 - 0.04 * step)
    last = (p[2] + p[3]) / 2
    assert {k: float(v) for k, v in out.items()} == pytest.approx(
        {"loss_objective": last, "loss_critic": 2 * last, "loss_entropy": 3 * last}
    )


def test_checkpoints_are_written_every_few_iterations_and_at_the_end(tmp_path, monkeypatch):
    saved = []
    save = ppo.save_checkpoint
    monkeypatch.setattr(
        ppo, "save_checkpoint", lambda path, payload: saved.append(payload["iteration"]) or save(path, payload)
    )
    result = ppo.train(
        replace(SMALL, total_frames=100, minibatch_size=10, checkpoint_every=2), tmp_path, progress=False
    )
    assert saved == [2, 4, 5] and result.iterations == 5
    assert 0.0 < result.wall_s < 60.0


def _two_ranks(rank: int, port: int, results) -> None:
    """One of two gloo ranks (as torchrun starts them): sync the observation statistics of envs that saw
    different windows, and run one update on different data from the same start."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank)
    )
    me = distributed.init_from_environment(torch.device("cpu"))
    env = ppo.make_env(SMALL, torch.device("cpu"), me)
    env.rollout(2 + 3 * rank)
    norm = env.transform[0]
    seen = {"loc_before": norm.loc["observation"].tolist()}
    ppo._sync_normaliser(env, me)
    seen["loc"], seen["scale"] = norm.loc["observation"].tolist(), norm.scale["observation"].tolist()

    class DataLosses(Losses):
        def forward(self, sample):
            scaled = self.p * sample["x"].mean()
            return TensorDict({"loss_objective": scaled, "loss_critic": 0 * scaled, "loss_entropy": 0 * scaled})

    module = DataLosses()
    rollout = TensorDict({"row": torch.arange(20).reshape(4, 5), "x": torch.full((4, 5), 1.0 + rank)}, (4, 5))
    buffer = TensorDictReplayBuffer(storage=LazyTensorStorage(20), sampler=SamplerWithoutReplacement(), batch_size=10)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
    ppo._update(
        rollout,
        replace(SMALL, epochs=1, minibatch_size=10, max_grad_norm=100.0),
        lambda batch: None,
        module,
        optimizer,
        buffer,
        me,
    )
    seen["p"] = float(module.p.detach())
    distributed.shutdown(me)
    results[rank] = seen


def test_ranks_share_their_observation_statistics_and_step_on_the_mean_gradient():
    results = mp.Manager().dict()
    mp.spawn(_two_ranks, args=(31_500 + os.getpid() % 1000, results), nprocs=2, join=True)
    zero, one = results[0], results[1]
    assert zero["loc_before"] != one["loc_before"]  # 2 and 5 windows: different statistics
    assert zero["loc"] == one["loc"] and zero["scale"] == one["scale"]
    assert zero["loc"] != zero["loc_before"] and zero["loc"] != one["loc_before"]
    # gradients 1 (rank 0) and 2 (rank 1), averaged: 1.5 per step, two steps of 0.1
    assert zero["p"] == one["p"] == pytest.approx(1.0 - 2 * 0.1 * 1.5)
