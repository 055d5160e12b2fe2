"""The lasting-effect task: episode phases (onset, stimulation until latch or budget, follow-up), the reward as
the step wires it, start weights, and the PPO preset that trains on it."""

import numpy as np
import pytest
import torch

from neuroloop_gpu.config import NetworkParams, SimConfig
from neuroloop_gpu.control.ppo import TASKS, PPOConfig
from neuroloop_gpu.envs import DBSCore, EpisodeConfig, RewardConfig

TINY = NetworkParams(num_e=40, num_i=10)
STRONG = torch.ones(3, 3)  # 200 mV, 180 Hz, 500 us: the strongest train the box allows


def run(core, windows, action=STRONG):
    """Per-window [windows, B] arrays of the info keys, rewards and done flags."""
    rows = []
    for _ in range(windows):
        step = core.step(action[: core.num_envs])
        rows.append(
            {
                **{k: v.double().numpy() for k, v in step.info.items()},
                "reward": step.reward.double().numpy(),
                "terminated": step.terminated.numpy(),
                "truncated": step.truncated.numpy(),
            }
        )
    return {k: np.stack([r[k] for r in rows]) for k in rows[0]}


def test_budget_then_followup_then_terminated():
    """Onset 1 window, budget 3 windows, follow-up 2: stimulation in windows 1-3 exactly, follow-up in 4-5,
    terminated after window 5 (not truncated: the task ended), whatever the action."""
    episode = EpisodeConfig(stim_onset=20.0, stim_budget=60.0, followup=40.0)
    core = DBSCore(3, TINY, SimConfig(duration=200.0), episode=episode, device="cpu", backend="eager")
    trace = run(core, 6)
    assert trace["stimulating"].all(axis=1).tolist() == [False, True, True, True, False, False]
    assert not trace["stimulating"][[0, 4, 5]].any()
    assert trace["followup"].all(axis=1).tolist() == [False, False, False, False, True, True]
    assert not trace["followup"][:4].any()
    assert trace["terminated"].tolist() == [[False] * 3] * 5 + [[True] * 3]
    assert not trace["truncated"].any()
    assert (trace["energy_mv2ms"][[0, 4, 5]] == 0).all() and (trace["energy_mv2ms"][1:4] > 0).all()


def test_latch_ends_the_stimulation_phase_and_starts_the_followup():
    """J_I*w starts at 260 mV; a 259.9 mV latch trips in the first windows of strong stimulation, each network
    at its own window: from the next window on it is off, in its follow-up, and terminated two windows later."""
    episode = EpisodeConfig(latch_mv=259.9, followup=40.0)
    core = DBSCore(3, TINY, SimConfig(duration=400.0), episode=episode, device="cpu", backend="eager")
    trace = run(core, 12)
    for b in range(3):
        below = np.flatnonzero(trace["weight_mv"][:, b] < 259.9)
        assert below.size, "the latch must trip in this test"
        k = below[0]  # window whose end weight crossed the latch
        assert trace["stimulating"][: k + 1, b].all() and not trace["stimulating"][k + 1 :, b].any()
        assert not trace["followup"][: k + 1, b].any() and trace["followup"][k + 1 : k + 3, b].all()
        assert np.flatnonzero(trace["terminated"][:, b])[0] == k + 2
    assert bool(core.latched.all())


def test_reward_as_the_step_wires_it():
    """Every window's reward recomputed from its info: energy over the strongest train's mean window energy
    (200 mV, two 500 us phases at 180 Hz: 144,000 mV^2 ms per 20 ms), synchrony weighted by the phase's
    weight, and the credit for the window's fall of the weight fraction (from the episode's start weight)."""
    rewards = RewardConfig(
        synchrony_weight=0.3, coupling_weight=0.2, energy_weight=0.1, weight_credit=10.0, followup_synchrony_weight=2.0
    )
    episode = EpisodeConfig(stim_onset=20.0, stim_budget=100.0, followup=60.0, start_weight_mv=(150.0, 250.0))
    core = DBSCore(
        2, TINY, SimConfig(duration=400.0), reward_config=rewards, episode=episode, device="cpu", backend="eager"
    )
    start = core.net.mean_weight_mv().double().numpy()
    action = torch.tensor([[0.3, -0.2, 0.8], [-0.6, 0.5, 0.1]])
    trace = run(core, 9, action)
    fraction = lambda mv: (mv - 10.0) / (290.0 - 10.0)  # noqa: E731 - the weight bounds 10 and 290 mV
    weight = fraction(trace["weight_mv"])
    previous = np.vstack([fraction(start)[None], weight[:-1]])
    synchrony_weight = np.where(trace["followup"].astype(bool), 2.0, 0.3)
    expected = -(synchrony_weight * trace["kop"] + 0.2 * weight + 0.1 * trace["energy_mv2ms"] / 144_000.0) + 10.0 * (
        previous - weight
    )
    np.testing.assert_allclose(trace["reward"], expected, rtol=1e-5, atol=1e-6)
    assert trace["followup"][6:].all() and not trace["followup"][:6].any()
    credits = 10.0 * (previous - weight)
    np.testing.assert_allclose(credits.sum(0), 10.0 * (fraction(start) - weight[-1]), rtol=1e-9)  # it telescopes


def test_latch_bonus_is_paid_once_in_the_window_that_trips_the_latch():
    """Two cores on the same networks and actions, with and without a latch bonus: the rewards differ by the
    bonus exactly in the first window whose end weight lies below the latch (recomputed from info), once
    per episode although the weight stays below it."""
    episode = EpisodeConfig(latch_mv=259.9, stim_budget=200.0, followup=40.0)
    traces = []
    for bonus in (0.0, 3.5):
        rewards = RewardConfig(energy_weight=0.1, weight_credit=10.0, latch_bonus=bonus)
        core = DBSCore(3, TINY, SimConfig(duration=400.0, seed=3), reward_config=rewards, episode=episode, device="cpu")
        traces.append(run(core, 12))
    plain, paid = traces
    np.testing.assert_array_equal(plain["weight_mv"], paid["weight_mv"])  # the bonus changes no dynamics
    expected = np.zeros_like(plain["reward"])
    for b in range(3):
        below = np.flatnonzero(plain["weight_mv"][:, b] < 259.9)
        assert below.size and below[0] < 9, "the latch must trip within the budget in this test"
        expected[below[0], b] = 3.5
    np.testing.assert_allclose(paid["reward"] - plain["reward"], expected, atol=1e-6)
    with pytest.raises(ValueError, match="reward.latch_bonus must be a finite number >= 0, got -1.0"):
        RewardConfig(latch_bonus=-1.0)
    from neuroloop_gpu.envs.reward import reward

    with pytest.raises(ValueError, match=r"latched must be the \[B\] bools marking the windows that tripped"):
        reward(RewardConfig(latch_bonus=1.0), torch.zeros(1), torch.zeros(1), torch.zeros(1), 1.0)


def test_start_weights_are_drawn_per_episode_and_independent_of_the_batch():
    episode = EpisodeConfig(start_weight_mv=(80.0, 260.0))
    sim = SimConfig(duration=100.0, seed=7)
    big = DBSCore(4, TINY, sim, episode=episode, device="cpu", backend="eager")
    alone = DBSCore(1, TINY, SimConfig(duration=100.0, seed=9), episode=episode, device="cpu", backend="eager")
    first = big.net.mean_weight_mv()
    assert ((first >= 80.0) & (first <= 260.0)).all() and len(set(first.tolist())) == 4
    assert float(alone.net.mean_weight_mv()[0]) == pytest.approx(float(first[2]), abs=1e-4)  # seed 9 = 7 + 2
    np.testing.assert_allclose(big.observation[:, 5].numpy(), ((first - 10.0) / 280.0).numpy(), rtol=1e-6)
    mask = torch.tensor([True, False, True, False])
    big.reset(mask)
    second = big.net.mean_weight_mv()
    assert second[1] == first[1] and second[3] == first[3]  # untouched
    assert second[0] != first[0] and second[2] != first[2]  # the next episode draws anew
    torch.testing.assert_close(big.previous_weight[mask], (second[mask].double() - 10.0) / 280.0, rtol=0, atol=1e-6)
    plain = DBSCore(2, TINY, sim, device="cpu", backend="eager")
    np.testing.assert_allclose(plain.net.mean_weight_mv().numpy(), 260.0, rtol=1e-6)  # w_init without a range


def test_a_start_weight_is_its_episodes_first_word_in_float64():
    """J_I*w at the start of episode e of seed s is lo + (hi - lo) * u, u the first Philox word of the episode-start
    stream with all 32 bits (in float64); the weight credit starts from its fraction in float64, and the
    simulator's weights keep their own dtype."""
    from neuroloop_gpu.rng import STREAM_EPISODE_START, uniform_words

    core = DBSCore(
        3,
        TINY,
        SimConfig(duration=100.0, seed=7),
        episode=EpisodeConfig(start_weight_mv=(80.0, 260.0)),
        device="cpu",
        backend="eager",
    )
    mask = torch.tensor([False, True, True])
    for reset in range(2):
        state = core.net.state
        assert state.episode.tolist() == [0, reset, reset]
        words = uniform_words(state.seed, STREAM_EPISODE_START, state.episode, torch.zeros_like(state.episode), 4)
        start_mv = 80.0 + 180.0 * (words[:, 0].double() + 0.5) * 2.0**-32
        assert core.previous_weight.dtype == torch.float64
        torch.testing.assert_close(core.previous_weight, (start_mv - 10.0) / 280.0, rtol=0, atol=1e-15)
        assert state.weight.dtype == torch.float32
        expected = (start_mv / TINY.j_i).float().unsqueeze(1).expand_as(state.weight)
        torch.testing.assert_close(state.weight, expected, rtol=0, atol=0)
        core.reset(mask)
    plain = DBSCore(2, TINY, SimConfig(duration=100.0), device="cpu", backend="eager")
    assert plain.previous_weight.dtype == torch.float64 and plain.previous_weight.tolist() == [250.0 / 280.0] * 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"followup": 20.0}, "episode.followup must be 0 unless stim_budget or latch_mv"),
        ({"followup": -1.0}, "episode.followup must be a finite number >= 0"),
        ({"stim_budget": 0.0}, "episode.stim_budget must be None or a finite number > 0"),
        ({"latch_mv": 75.0, "terminate_on_latch": True, "followup": 20.0}, "episode.terminate_on_latch must be False"),
        ({"start_weight_mv": (200.0, 100.0)}, "episode.start_weight_mv must be None or a tuple"),
    ],
)
def test_episode_config_names_the_bad_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EpisodeConfig(**kwargs)


INF, NAN = float("inf"), float("nan")
START = "None or a tuple (low, high) of mV with 0 < low <= high"


@pytest.mark.parametrize(
    ("kwargs", "field", "allowed", "value"),
    [
        ({"stim_onset": -1e-9}, "stim_onset", "a finite number >= 0 (ms)", -1e-9),
        ({"stim_onset": INF}, "stim_onset", "a finite number >= 0 (ms)", INF),
        ({"latch_mv": 0.0}, "latch_mv", "None or a finite number > 0 (mV)", 0.0),
        ({"latch_mv": INF}, "latch_mv", "None or a finite number > 0 (mV)", INF),
        ({"terminate_on_latch": True}, "terminate_on_latch", "False unless latch_mv is set", True),
        ({"stim_budget": 0.0}, "stim_budget", "None or a finite number > 0 (ms)", 0.0),
        ({"stim_budget": NAN}, "stim_budget", "None or a finite number > 0 (ms)", NAN),
        ({"stim_budget": 20.0, "followup": -1.0}, "followup", "a finite number >= 0 (ms)", -1.0),
        ({"stim_budget": 20.0, "followup": INF}, "followup", "a finite number >= 0 (ms)", INF),
        ({"followup": 20.0}, "followup", "0 unless stim_budget or latch_mv ends the stimulation phase", 20.0),
        (
            {"latch_mv": 75.0, "terminate_on_latch": True, "followup": 20.0},
            "terminate_on_latch",
            "False when a follow-up follows the latch (followup > 0)",
            True,
        ),
        ({"start_weight_mv": (0.0, 100.0)}, "start_weight_mv", START, (0.0, 100.0)),
        ({"start_weight_mv": (NAN, 100.0)}, "start_weight_mv", START, (NAN, 100.0)),
        ({"start_weight_mv": [50.0, 100.0]}, "start_weight_mv", START, [50.0, 100.0]),
        ({"start_weight_mv": (50.0,)}, "start_weight_mv", START, (50.0,)),
    ],
)
def test_episode_config_refuses_with_the_whole_message(kwargs, field, allowed, value):
    with pytest.raises(ValueError) as error:
        EpisodeConfig(**kwargs)
    assert str(error.value) == f"episode.{field} must be {allowed}, got {value!r}"


def test_episode_config_accepts_the_edges_of_its_ranges():
    """Zero onset and follow-up, the smallest positive latch and budget, equal start bounds: all valid."""
    edges = {"stim_onset": 0.0, "latch_mv": 1e-9, "stim_budget": 1e-9, "followup": 0.0, "start_weight_mv": (1e-9, 1e-9)}
    assert {k: getattr(EpisodeConfig(**edges), k) for k in edges} == edges
    for kwargs in ({"latch_mv": 75.0, "followup": 20.0}, {"latch_mv": 75.0, "terminate_on_latch": True}):
        assert {k: getattr(EpisodeConfig(**kwargs), k) for k in kwargs} == kwargs


def test_core_checks_phase_lengths_and_start_weights_against_the_run():
    with pytest.raises(ValueError, match="episode.stim_budget must be a whole multiple of sample_duration=20.0 ms"):
        DBSCore(1, TINY, SimConfig(duration=100.0), episode=EpisodeConfig(stim_budget=30.0), device="cpu")
    with pytest.raises(ValueError, match=r"episode.start_weight_mv must be within the weight bounds \[10.0, 290.0\]"):
        DBSCore(1, TINY, SimConfig(duration=100.0), episode=EpisodeConfig(start_weight_mv=(5.0, 100.0)), device="cpu")


def core_refusal(sim=None, **episode):
    with pytest.raises(ValueError) as error:
        DBSCore(1, TINY, sim or SimConfig(duration=100.0), episode=EpisodeConfig(**episode), device="cpu")
    return str(error.value)


def test_core_refusals_name_the_phase_and_the_value_and_the_limits_are_allowed():
    whole = "must be a whole multiple of sample_duration=20.0 ms, got"
    assert core_refusal(stim_budget=30.0) == f"episode.stim_budget {whole} 30.0"
    assert core_refusal(stim_budget=40.0, followup=30.0) == f"episode.followup {whole} 30.0"
    # within 1e-9 of a whole number of windows (relative, with a 1 ms floor): seconds times 1000 in floating point
    budget = 0.1 * 24 * 1000.0
    assert budget != 2400.0
    long_run = SimConfig(duration=2500.0)
    assert DBSCore(1, TINY, long_run, episode=EpisodeConfig(stim_budget=budget), device="cpu").budget_windows == 120
    one_ms = SimConfig(duration=10.0, sample_duration=1.0)
    assert core_refusal(one_ms, stim_budget=1.0 + 1.5e-9) == (
        f"episode.stim_budget must be a whole multiple of sample_duration=1.0 ms, got {1.0 + 1.5e-9!r}"
    )
    assert DBSCore(1, TINY, one_ms, episode=EpisodeConfig(stim_budget=1.0 + 0.5e-9), device="cpu").budget_windows == 1
    assert core_refusal(start_weight_mv=(5.0, 100.0)) == (
        "episode.start_weight_mv must be within the weight bounds [10.0, 290.0] mV, got (5.0, 100.0)"
    )
    for edge, fraction in (((10.0, 10.0), 0.0), ((290.0, 290.0), 1.0)):  # the bounds themselves, one value each
        core = DBSCore(2, TINY, SimConfig(duration=100.0), episode=EpisodeConfig(start_weight_mv=edge), device="cpu")
        assert core.previous_weight.tolist() == [fraction, fraction]
    DBSCore(1, TINY, SimConfig(duration=100.0), episode=EpisodeConfig(start_weight_mv=(10.0, 290.0)), device="cpu")


def test_a_new_core_records_nothing_runs_its_backend_and_counts_whole_windows():
    core = DBSCore(2, TINY, SimConfig(duration=100.0), device="cpu", backend="eager")
    assert core.last_recording is None and core.net.backend == "eager"
    assert core.steps.dtype == core.stim_end.dtype == torch.int64 and core.latched.dtype == torch.bool
    core.step(torch.zeros(2, 3))
    assert core.last_recording.spikes_e is None and core.steps.tolist() == [1, 1]
    recording = DBSCore(1, TINY, SimConfig(duration=100.0), device="cpu", record_spikes=True)
    recording.step(torch.zeros(1, 3))
    assert recording.last_recording.spikes_e.shape[:2] == (1, 200)  # 20 ms of 0.1 ms steps


def test_lasting_preset_and_its_checkpoint_round_trip(tmp_path):
    config = PPOConfig.for_task(
        "lasting", num_envs=2, num_e=40, num_i=10, windows_per_batch=5, total_frames=10, minibatch_size=10, gamma=None
    )
    assert config.task == "lasting" and config.gamma == TASKS["lasting"]["gamma"]
    episode, reward = config.episode, config.reward
    assert (episode.stim_budget, episode.followup, episode.latch_mv) == (40_000.0, 5_000.0, 75.0)
    assert episode.start_weight_mv == (80.0, 260.0)
    assert (reward.weight_credit, reward.followup_synchrony_weight, reward.synchrony_weight) == (20.0, 0.05, 0.0)
    assert PPOConfig.for_task("acute") == PPOConfig()  # the acute preset is the defaults
    from dataclasses import asdict

    saved = {**asdict(config), "hidden": list(config.hidden), "start_weight_mv": list(config.start_weight_mv)}
    assert PPOConfig.from_dict(saved) == config
    with pytest.raises(ValueError, match="episode_s must be at least stim_onset_s \\+ stim_budget_s \\+ followup_s"):
        PPOConfig.for_task("lasting", episode_s=30.0)
    with pytest.raises(ValueError, match="task must be 'acute' or 'lasting'"):
        PPOConfig.for_task("forever")


def test_lasting_training_runs_and_logs(tmp_path):
    from neuroloop_gpu.control.ppo import train

    config = PPOConfig.for_task(
        "lasting",
        num_envs=4,
        num_e=40,
        num_i=10,
        windows_per_batch=10,
        total_frames=80,
        minibatch_size=20,
        episode_s=0.5,
        stim_budget_s=0.3,
        followup_s=0.2,
    )
    result = train(config, tmp_path, device="cpu", backend="eager", progress=False)
    assert result.iterations == 2 and result.frames == 80
    import csv

    rows = list(csv.DictReader((tmp_path / "train_log.csv").open()))
    assert [int(r["iteration"]) for r in rows] == [1, 2] and [int(r["frames"]) for r in rows] == [40, 80]


def test_wider_phase_bounds_reach_the_env_and_the_evaluated_policy(tmp_path):
    """An agent trained with phases up to 1 ms acts in that box when evaluated, and pays for energy in the
    same unit as one trained in NeuroLoop's box (the lasting task fixes the unit)."""
    from neuroloop_gpu.control import distributed
    from neuroloop_gpu.control.policy import PolicyController
    from neuroloop_gpu.control.ppo import make_env, train

    config = PPOConfig.for_task(
        "lasting",
        num_envs=2,
        num_e=40,
        num_i=10,
        windows_per_batch=5,
        total_frames=10,
        minibatch_size=10,
        episode_s=0.4,
        stim_budget_s=0.2,
        followup_s=0.2,
        max_pulse_width_us=1000.0,
    )
    env = make_env(config, torch.device("cpu"), distributed.Rank(), backend="eager")
    core = env.base_env.core
    assert core.bounds.pulse_width == (50.0, 1000.0) and core.energy_scale == 144_000.0
    train(config, tmp_path, device="cpu", backend="eager", progress=False)
    policy = PolicyController(tmp_path / "checkpoint.pt")
    assert policy.bounds.pulse_width == (50.0, 1000.0)
    assert policy.describe()["bounds"]["pulse_width"] == [50.0, 1000.0]
    policy.reset(3, "cpu")
    widths = policy.act(torch.rand(3, 6), {}).pulse_width
    assert ((widths >= 50.0) & (widths <= 1000.0)).all()
    narrow = DBSCore(1, TINY, SimConfig(duration=100.0), device="cpu")
    assert narrow.energy_scale == 144_000.0  # NeuroLoop's box: the same unit without fixing it
