"""PPO training: learning signal, checkpoints, resume, bad checkpoints, torchrun with gloo."""

import csv
import re
import subprocess
import sys
from dataclasses import replace

import pytest
import torch
from torchrl.envs.utils import ExplorationType, set_exploration_type

from neuroloop_gpu.config import NetworkParams
from neuroloop_gpu.control import distributed
from neuroloop_gpu.control.checkpoint import CheckpointError, load_checkpoint
from neuroloop_gpu.control.policy import PolicyController
from neuroloop_gpu.control.ppo import PPOConfig, build_actor, make_env, torch_seed, train
from neuroloop_gpu.evaluation import EvaluationConfig, evaluate

# Reward = minus the stimulation energy only: the best policy is known (lowest amplitude, frequency and
# width), so a working PPO must raise the return within a few iterations; a sign error or a broken
# advantage cannot.
ENERGY_ONLY = PPOConfig(
    num_envs=16,
    num_e=20,
    num_i=5,
    episode_s=0.16,
    windows_per_batch=8,
    total_frames=16 * 8 * 6,
    minibatch_size=32,
    lr=3e-3,
    synchrony_weight=0.0,
    coupling_weight=0.0,
    energy_weight=1.0,
    hidden=(32,),
    seed=3,
    checkpoint_every=2,
)


def read_log(path):
    with open(path) as file:
        return list(csv.DictReader(file))


def test_short_run_improves_the_return(tmp_path):
    result = train(ENERGY_ONLY, tmp_path, progress=False)
    rows = read_log(result.log)
    rewards = [float(row["reward_mean"]) for row in rows]
    assert len(rows) == 6 and result.frames == ENERGY_ONLY.total_frames
    assert sum(rewards[-2:]) / 2 > sum(rewards[:2]) / 2 + 0.01, rewards
    energies = [float(row["energy_mean"]) for row in rows]
    assert energies[-1] < energies[0]


def test_checkpoint_round_trip_and_resume(tmp_path):
    short = replace(ENERGY_ONLY, total_frames=16 * 8 * 2)
    first = train(short, tmp_path, progress=False)
    saved = load_checkpoint(first.checkpoint)
    assert saved["iteration"] == 2 and saved["frames"] == short.total_frames
    assert PPOConfig.from_dict(saved["config"]) == short
    assert set(saved["versions"]) >= {"torch", "torchrl", "neuroloop-gpu"}

    assert saved["observation_synchrony"] == "kop"

    # the controller acts as the training env's actor does: the env's normaliser (restored, frozen), then
    # the deterministic action
    controller = PolicyController(first.checkpoint)
    controller.reset(16, torch.device("cpu"))
    env = make_env(short, torch.device("cpu"), distributed.Rank())
    env.transform[0].load_state_dict(saved["obs_norm"])
    env.transform[0].freeze()
    actor = build_actor(short, env.action_spec_unbatched)
    actor.load_state_dict(saved["actor"])
    step = env.rand_step(env.reset())["next"]  # a window of random stimulation: 16 different observations
    with torch.no_grad(), set_exploration_type(ExplorationType.DETERMINISTIC):
        expected = actor(step.select("observation"))["action"]
    raw = env.base_env.core.observation
    assert not torch.allclose(step["observation"], raw)  # the normaliser did something
    assert torch.allclose(controller.normalised_action(raw), expected, atol=1e-6)
    train_ = controller.act(raw, {})
    assert bool((train_.amplitude >= 10).all() & (train_.amplitude <= 200).all())

    # resuming with nothing left to do leaves the checkpoint as it is (no env reset updates the normaliser)
    before = first.checkpoint.read_bytes()
    assert train(short, tmp_path, resume=first.checkpoint, progress=False).iterations == 2
    assert first.checkpoint.read_bytes() == before
    copied = train(short, tmp_path / "copy", resume=first.checkpoint, progress=False)
    assert copied.checkpoint.read_bytes() == before
    assert copied.log.read_text() == first.log.read_text()  # the log it names comes along

    # a crash after iteration 3 but before its checkpoint left a row that the resumed run writes again
    with first.log.open("a") as log:
        log.write(first.log.read_text().splitlines()[-1].replace("2,", "3,", 1) + "\n")
    # an lr of 1e-10 barely moves the weights: the resumed run starts from the saved ones
    resumed = train(
        replace(short, total_frames=16 * 8 * 3, lr=1e-10),
        tmp_path,
        resume=first.checkpoint,
        allow_changes=["lr"],
        progress=False,
    )
    assert resumed.iterations == 3
    rows = read_log(resumed.log)
    assert [int(row["iteration"]) for row in rows] == [1, 2, 3]
    after = load_checkpoint(resumed.checkpoint)
    assert after["iteration"] == 3 and after["frames"] == 16 * 8 * 3
    for part in ("actor", "critic"):
        assert all(torch.allclose(after[part][k], saved[part][k], rtol=0, atol=1e-8) for k in saved[part])
    # and a resumed run at the usual rate still learns: its next iteration moves the weights
    moved = load_checkpoint(
        train(
            replace(short, total_frames=16 * 8 * 4),
            tmp_path / "more",
            resume=resumed.checkpoint,
            allow_changes=["lr"],
            progress=False,
        ).checkpoint
    )
    assert moved["iteration"] == 4
    assert any(not torch.equal(moved["actor"][k], after["actor"][k]) for k in after["actor"])


def test_torch_seed_per_rank_and_start_iteration():
    assert torch_seed(7, rank=0, start_iteration=0) == 7  # fresh single-process runs seed as they always have
    seeds = {torch_seed(7, rank, start) for rank in range(4) for start in (0, 10, 20)}
    assert len(seeds) == 12  # every rank and every resume point draws its own numbers
    assert torch_seed(7, 1, 0) != torch_seed(8, 1, 0)
    with torch.random.fork_rng():  # every one is a seed torch takes
        for seed in seeds:
            torch.manual_seed(seed)


def test_policy_refuses_observations_of_another_synchrony_measure(tmp_path):
    checkpoint = train(replace(ENERGY_ONLY, total_frames=16 * 8), tmp_path, progress=False).checkpoint
    controller = PolicyController(checkpoint)
    assert controller.synchrony == "kop" and controller.describe()["synchrony"] == "kop"
    config = EvaluationConfig(
        seeds=(0,),
        network=NetworkParams(num_e=20, num_i=5),
        duration_s=0.04,
        stim_onset_s=0.0,
        raster_ms=0.0,
        synchrony="chi",
    )
    with pytest.raises(ValueError, match="'ppo' was trained with synchrony='kop'.*observes synchrony='chi'"):
        evaluate({"ppo": controller}, config, progress=False)


def test_bad_checkpoints_give_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nothing.pt")
    good = train(replace(ENERGY_ONLY, total_frames=16 * 8), tmp_path / "run", progress=False).checkpoint
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(truncated)
    text = tmp_path / "text.pt"
    text.write_text("hello world")  # torch.load raises KeyError on this one
    with pytest.raises(CheckpointError, match=re.escape(f"checkpoint {text} is truncated or corrupt")):
        load_checkpoint(text)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="not a neuroloop_gpu PPO checkpoint"):
        PolicyController(foreign)
    with pytest.raises(CheckpointError, match="num_e 20 -> 40, num_i 5 -> 10"):
        train(replace(ENERGY_ONLY, num_e=40, num_i=10), tmp_path / "other", resume=good, progress=False)
    # weights of the wrong shape under a valid header: named, not a RuntimeError from load_state_dict
    for part in ("actor", "critic"):
        payload = load_checkpoint(good)
        name = next(iter(payload[part]))
        payload[part][name] = torch.zeros(3, 3)
        misfit = tmp_path / f"misfit_{part}.pt"
        torch.save(payload, misfit)
        message = re.escape(f"checkpoint {misfit}: the saved {part} does not fit") + ".*size mismatch"
        with pytest.raises(CheckpointError, match=message):
            train(ENERGY_ONLY, tmp_path / "misfit", resume=misfit, progress=False)
    with pytest.raises(CheckpointError, match=re.escape(f"checkpoint {tmp_path / 'misfit_actor.pt'}: the saved actor")):
        PolicyController(tmp_path / "misfit_actor.pt")


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("lr", 0.0, "lr must be"),
        ("lr_schedule", "step", "lr_schedule must be"),
        ("num_envs", 0, "num_envs"),
        ("total_frames", 1, "total_frames must be at least one batch"),
        ("minibatch_size", 10_000, "minibatch_size"),
        ("stim_onset_s", 1.0, "stim_onset_s"),
    ],
)
def test_config_validation_names_the_parameter(field, value, message):
    with pytest.raises(ValueError, match=message):
        replace(ENERGY_ONLY, **{field: value})


def test_torchrun_two_cpu_processes_gloo(tmp_path):
    out = tmp_path / "dist"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "neuroloop_gpu.cli",
        "train",
        "--num-e",
        "20",
        "--num-i",
        "5",
        "--networks",
        "4",
        "--episode",
        "0.2",
        "--windows-per-batch",
        "4",
        "--frames",
        "64",
        "--minibatch",
        "8",
        "--device",
        "cpu",
        "--out",
        str(out),
        "--quiet",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = read_log(out / "train_log.csv")
    # 2 ranks x 4 networks x 4 windows = 32 windows per iteration: 64 frames in 2 iterations
    assert [int(row["frames"]) for row in rows] == [32, 64]
    assert load_checkpoint(out / "checkpoint.pt")["iteration"] == 2


def test_shipped_policy_loads_and_acts():
    from neuroloop_gpu.cli import shipped_policy

    controller = PolicyController(shipped_policy())
    assert controller.describe()["frames"] > 0 and controller.trained_on == (160, 40)
    assert controller.synchrony == "kop"  # written before checkpoints named it: all trained on Kuramoto R
    controller.reset(3, torch.device("cpu"))
    train_ = controller.act(torch.full((3, 6), 0.5), {})
    assert bool(torch.isfinite(train_.amplitude).all()) and bool((train_.frequency >= 5).all())
    assert shipped_policy().with_name("train_log.csv").is_file()


def test_shipped_full_policy_is_the_lasting_task_run_and_acts_in_its_box():
    import csv

    from neuroloop_gpu.cli import shipped_full_policy

    controller = PolicyController(shipped_full_policy())
    config = controller.config
    assert controller.trained_on == (1600, 400) and config.task == "lasting" and controller.synchrony == "kop"
    assert (config.stim_budget_s, config.followup_s, config.latch_mv) == (40.0, 5.0, 75.0)
    assert controller.bounds.pulse_width == (50.0, 500.0)
    assert config.imitate == "ftsts-scheduled" and (config.gamma, config.lr) == (0.99, 1e-4)  # docs: lasting task
    assert (config.energy_weight, config.weight_credit, config.followup_weight) == (0.14, 20.0, 0.05)
    log = list(csv.DictReader(shipped_full_policy().with_name("train_log.csv").open()))
    assert int(log[-1]["frames"]) == controller.describe()["frames"] == config.total_frames
    assert [int(row["iteration"]) for row in log] == list(range(1, len(log) + 1))  # one unbroken log
    controller.reset(4, torch.device("cpu"))
    action = controller.act(torch.rand(4, 6), {})
    assert ((action.amplitude >= 10) & (action.amplitude <= 200)).all()
    assert ((action.pulse_width >= 50) & (action.pulse_width <= 500)).all()


def test_policy_controller_describes_its_checkpoint_and_reads_its_synchrony(tmp_path):
    result = train(replace(ENERGY_ONLY, total_frames=16 * 8), tmp_path / "run", progress=False)
    payload = load_checkpoint(result.checkpoint)
    controller = PolicyController(result.checkpoint)
    assert controller.describe() == {
        "controller": "ppo",
        "checkpoint": str(result.checkpoint),
        "iteration": 1,
        "frames": 16 * 8,
        "trained_on": [20, 5],
        "synchrony": "kop",
        "bounds": {"amplitude": [10.0, 200.0], "frequency": [5.0, 180.0], "pulse_width": [50.0, 500.0]},
        "versions": payload["versions"],
    }
    payload["observation_synchrony"] = "chi"
    chi = tmp_path / "chi.pt"
    torch.save(payload, chi)
    assert PolicyController(chi, name="ppo-chi").describe()["synchrony"] == "chi"
    assert PolicyController(chi, name="ppo-chi").describe()["controller"] == "ppo-chi"


def test_policy_controller_moves_to_the_device_of_its_episode(tmp_path):
    checkpoint = train(replace(ENERGY_ONLY, total_frames=16 * 8), tmp_path / "run", progress=False).checkpoint
    controller = PolicyController(checkpoint)
    controller.reset(2, torch.device("meta"))
    devices = {next(controller.actor.parameters()).device.type, controller.loc.device.type}
    devices |= {controller.scale.device.type, controller.low.device.type, controller.high.device.type}
    assert devices == {"meta"}
