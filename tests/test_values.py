"""Every value the closed-loop core hands out, against a second computation that does not use it.

The second computation is :mod:`independent` (the plain reference network, the stimulus written
from the spec, NumPy statistics) plus the episode rules, the observation table and the reward
formula written out below from their documentation. A small float64 run: spikes agree exactly,
so the values agree to rounding.
"""

import functools
import math

import numpy as np
import pytest
import torch
from independent import ReferenceBatch, Train, onsets_between, window_stimulus

from neuroloop_gpu.config import NetworkParams, PlasticityParams, RecordConfig, SimConfig
from neuroloop_gpu.envs import DBSCore, EpisodeConfig, RewardConfig

PARAMS = NetworkParams(num_e=40, num_i=10, connection_prob=0.2, plasticity=PlasticityParams(onset=10.0))
WINDOWS = 16
SEEDS = [21, 22]
ACTIONS = [[1.0, 0.875, 1.0], [0.0, -0.5, 0.25]]  # per env, every window
ONSET_MS, LATCH_MV, FOLLOWUP_MS = 40.0, 260.03, 40.0
REWARD = RewardConfig(coupling_weight=0.7, energy_weight=0.3, weight_credit=5.0, followup_synchrony_weight=2.0)
INFO_STATS = (
    "kop",
    "chi",
    "v_e_mean_mv",
    "v_e_std_mv",
    "v_i_mean_mv",
    "v_i_std_mv",
    "weight_mv",
    "rate_e_hz",
    "rate_i_hz",
    "energy_mv2ms",
    "charge_mvms",
)


def physical(action):
    """NeuroLoop's box: -1 -> low, +1 -> high, linearly (amplitude mV, frequency Hz, width us)."""
    ranges = ((10.0, 200.0), (5.0, 180.0), (50.0, 500.0))
    return [low + (a + 1) / 2 * (high - low) for a, (low, high) in zip(action, ranges)]


def make_core(backend="auto", record_spikes=False) -> DBSCore:
    core = DBSCore(
        len(SEEDS),
        PARAMS,
        SimConfig(duration=WINDOWS * 20.0),
        device="cpu",
        dtype=torch.float64,
        reward_config=REWARD,
        backend=backend,
        record_spikes=record_spikes,
        episode=EpisodeConfig(stim_onset=ONSET_MS, latch_mv=LATCH_MV, followup=FOLLOWUP_MS),
    )
    core.reset(seeds=torch.tensor(SEEDS))
    return core


@functools.lru_cache(maxsize=8)
def expected(seeds=tuple(SEEDS), episodes=(0, 0), actions=tuple(map(tuple, ACTIONS))):
    """Per window and env: the info, observation, reward, terminated, truncated a correct core gives, and the
    reference's recording, for networks ``seeds`` in their ``episodes`` (resets since seeding) under
    constant ``actions``."""
    net = DBSCore(len(seeds), PARAMS, SimConfig(duration=WINDOWS * 20.0), device="cpu", backend="eager").net
    net.reset(seeds=torch.tensor(seeds))  # read only for the injected inputs: connectivity
    ref = ReferenceBatch(net, list(seeds), list(episodes), total_steps=WINDOWS * net.steps_per_window)
    trains = [Train(*physical(a)) for a in actions]
    batch = range(len(seeds))
    dt, steps, window_ms = ref.dt, ref.steps, 20.0
    onset_windows, followup_windows = round(ONSET_MS / window_ms), round(FOLLOWUP_MS / window_ms)
    stdp = PARAMS.plasticity
    span_v = PARAMS.v_threshold - PARAMS.v_rest
    # the reward's energy unit: the mean energy per window of the strongest train the box allows
    energy_scale = 200.0**2 * (2 * 500e-6 * 180.0) * window_ms
    fraction = [
        (PARAMS.plasticity.w_init * PARAMS.j_i - stdp.w_min_mv) / (stdp.w_max_mv - stdp.w_min_mv) for _ in batch
    ]
    stim_end = [None for _ in batch]  # first window after the stimulation phase
    first_on, stop_ms = [None for _ in batch], [math.inf for _ in batch]
    windows = []
    for w in range(WINDOWS):
        start = w * window_ms
        followup = [stim_end[b] is not None and w >= stim_end[b] for b in batch]
        enabled = [w >= onset_windows and stim_end[b] is None for b in batch]
        currents, energies, charges = [], [], []
        for b, train in enumerate(trains):
            if enabled[b] and first_on[b] is None:
                first_on[b] = start
            if not enabled[b] and first_on[b] is not None and stop_ms[b] == math.inf:
                stop_ms[b] = start
            stop = min(stop_ms[b], start + window_ms)
            onsets = [] if first_on[b] is None else onsets_between(train, first_on[b], stop)
            current, energy, charge = window_stimulus(train, onsets, start, steps, dt)
            currents.append(current)
            energies.append(energy)
            charges.append(charge)
        records = ref.run_window(currents, energies, charges)
        entry = {"records": records, "info": [], "observation": [], "reward": [], "terminated": [], "truncated": []}
        for b, rec in enumerate(records):
            s = rec.stats
            if w + 1 > onset_windows and stim_end[b] is None and s["weight_mv"] < LATCH_MV:
                stim_end[b] = w + 1  # the latch trips at the end of this window
            info = dict(
                s,
                time_s=(w + 1) * window_ms / 1000.0,
                stimulating=enabled[b],
                followup=followup[b],
                amplitude_mv=trains[b].amplitude if enabled[b] else 0.0,
                frequency_hz=trains[b].frequency,
                pulse_width_us=trains[b].width_us,
            )
            weight = (s["weight_mv"] - stdp.w_min_mv) / (stdp.w_max_mv - stdp.w_min_mv)
            observation = np.clip(
                [
                    s["kop"],
                    (s["v_e_mean_mv"] - PARAMS.v_rest) / span_v,
                    s["v_e_std_mv"] / span_v,
                    (s["v_i_mean_mv"] - PARAMS.v_rest) / span_v,
                    s["v_i_std_mv"] / span_v,
                    weight,
                ],
                0,
                1,
            )
            synchrony_weight = REWARD.followup_synchrony_weight if followup[b] else REWARD.synchrony_weight
            r = -(
                synchrony_weight * s["kop"]
                + REWARD.coupling_weight * weight
                + REWARD.energy_weight * s["energy_mv2ms"] / energy_scale
            ) + REWARD.weight_credit * (fraction[b] - weight)
            fraction[b] = weight
            terminated = stim_end[b] is not None and w + 1 >= stim_end[b] + followup_windows
            entry["info"].append(info)
            entry["observation"].append(observation)
            entry["reward"].append(r)
            entry["terminated"].append(terminated)
            entry["truncated"].append(w + 1 >= WINDOWS and not terminated)
        windows.append(entry)
    return windows


def test_the_run_exercises_what_it_checks():
    """Spikes of both populations in every window after the first; env 0 latches, env 1 later, and both
    end their follow-ups with windows to spare (for the autoreset checks); both follow-ups are whole."""
    windows = expected()
    ends = [next((w for w, e in enumerate(windows) if e["terminated"][b]), None) for b in (0, 1)]
    assert ends[0] is not None and ends[1] is not None and ends[0] < ends[1] < WINDOWS - 2
    for b in (0, 1):
        followup = [e["info"][b]["followup"] for e in windows[: ends[b] + 1]]
        assert sum(followup) == round(FOLLOWUP_MS / 20.0) and followup[-1]
        assert windows[ends[b] - 2]["info"][b]["stimulating"]
    assert all(i["rate_i_hz"] > 0 and i["rate_e_hz"] > 0 for e in windows[1:] for i in e["info"])


def tolerance(key):
    # kop: the causal estimate's phases are float32 (synchrony.causal_order); the rest float64
    return {"kop": 2e-6}.get(key, 1e-9)


def check_step(result, w, what=""):
    exp = expected()[w]
    for b in range(len(SEEDS)):
        for key, value in exp["info"][b].items():
            got = result.info[key][b]
            got = bool(got) if got.dtype == torch.bool else float(got)
            if isinstance(value, bool):
                assert got == value, f"{what} info[{key!r}] window {w} env {b}: {got} != {value}"
            else:
                assert got == pytest.approx(value, rel=tolerance(key), abs=tolerance(key)), (
                    f"{what} info[{key!r}] window {w} env {b}"
                )
        np.testing.assert_allclose(
            result.observation[b].numpy(),
            exp["observation"][b],
            rtol=1e-6,
            atol=2e-6,
            err_msg=f"{what} observation window {w} env {b}",
        )
        assert float(result.reward[b]) == pytest.approx(exp["reward"][b], rel=1e-6, abs=2e-6), (
            f"{what} reward window {w} env {b}"
        )
        assert bool(result.terminated[b]) == exp["terminated"][b], f"{what} terminated window {w} env {b}"
        assert bool(result.truncated[b]) == exp["truncated"][b], f"{what} truncated window {w} env {b}"


@pytest.mark.parametrize("backend", ["auto", "eager"])
def test_core_step_values_match_the_reference(backend):
    """Every info key, the six observation features, the reward as the step wires it (coupling and weight
    credit with their signs, the follow-up's synchrony weight), the latch, terminated and truncated."""
    core = make_core(backend)
    action = torch.tensor(ACTIONS, dtype=torch.float64)
    for w in range(WINDOWS):
        check_step(core.step(action), w, backend)
        assert core.last_recording.spikes_e is None and core.last_recording.v_e_mean is None  # nothing asked


def test_mean_weight_of_a_network_with_one_synapse():
    """One E->I synapse: the mean over the real synapses is its J_I * w (not a mean over padding)."""
    from neuroloop_gpu.network import NetworkBatch

    net = NetworkBatch(
        1,
        NetworkParams(num_e=1, num_i=1, connection_prob=1.0),
        SimConfig(duration=20.0),
        device="cpu",
        dtype=torch.float64,
        seeds=[0],
    )
    assert net.mean_weight_mv().tolist() == [260.0]
    stats = net.run_window().stats
    assert stats.weight_mv.tolist() == [net.params.j_i * float(net.state.weight[0, 0])]


def test_observation_features_are_distinct_quantities():
    """The spreads of E and I voltage (features 2 and 4) and the means (1 and 3) differ by far more than
    the tolerance in some windows of this run, so swapping two features cannot pass the comparison above."""
    observations = np.array([obs for exp in expected() for obs in exp["observation"]])
    assert np.abs(observations[:, 2] - observations[:, 4]).max() > 1e-2
    assert np.abs(observations[:, 1] - observations[:, 3]).max() > 1e-2
    info = [i for e in expected()[1:] for i in e["info"]]
    assert any(abs(i["rate_e_hz"] - i["rate_i_hz"]) > 1.0 for i in info)


def test_recording_matches_the_reference_raster_and_traces():
    """Recording from construction (spikes) and switched on mid-run (per-step traces) with the default
    backend: the raster and the per-step means equal the reference's, and the values do not change."""
    core = make_core(record_spikes=True)
    action = torch.tensor(ACTIONS, dtype=torch.float64)
    for w in range(WINDOWS):
        if w == 4:
            core.net.record = RecordConfig(spikes_e=True, traces=True)
        result = core.step(action)
        check_step(result, w, "recording")
        rec = core.last_recording
        for b, ref in enumerate(expected()[w]["records"]):
            np.testing.assert_array_equal(rec.spikes_e[b].numpy(), ref.spikes_e, err_msg=f"raster window {w}")
            if w >= 4:
                np.testing.assert_allclose(rec.v_e_mean[b].numpy(), ref.v_e.mean(1), rtol=0, atol=1e-9)
                np.testing.assert_allclose(rec.v_i_mean[b].numpy(), ref.v_i.mean(1), rtol=0, atol=1e-9)
                np.testing.assert_allclose(rec.weight_mv[b].numpy(), ref.weight_steps_mv, rtol=0, atol=1e-9)
            else:
                assert rec.v_e_mean is None


# ------------------------------------------------------------------ front ends
EPISODE = EpisodeConfig(stim_onset=ONSET_MS, latch_mv=LATCH_MV, followup=FOLLOWUP_MS)
SIM = SimConfig(duration=WINDOWS * 20.0)


def first_end(b=0):
    return next(w for w, e in enumerate(expected()) if e["terminated"][b])


def episode_of(b, episode):
    """Env b's windows in its ``episode``-th episode since seeding."""
    return [
        {key: value[0] for key, value in e.items()} for e in expected((SEEDS[b],), (episode,), (tuple(ACTIONS[b]),))
    ]


def restarted(k, b=0):
    """Window k of env b's second episode (same network, the next noise stream, the latch cleared)."""
    return {key: value[0] for key, value in expected((SEEDS[b],), (1,), (tuple(ACTIONS[b]),))[k].items()}


def window(w, b):
    return {key: value[b] for key, value in expected()[w].items()}


def fresh_observation():
    """A reset network: no synchrony, every V at V_reset, w = w_init (spec)."""
    v = (PARAMS.v_reset - PARAMS.v_rest) / (PARAMS.v_threshold - PARAMS.v_rest)
    stdp = PARAMS.plasticity
    weight = (stdp.w_init * PARAMS.j_i - stdp.w_min_mv) / (stdp.w_max_mv - stdp.w_min_mv)
    return np.array([0.0, v, 0.0, v, 0.0, weight])


def env_info(info, b):
    """Env b's entries of a gymnasium vector info (its per-env arrays only)."""
    return {k: v[b] for k, v in info.items() if isinstance(v, np.ndarray) and v.dtype != object}


def assert_info(info, exp, where, rel=1e-9):
    for key, value in exp.items():
        got = info[key]
        if isinstance(value, bool):
            assert bool(got) == value, f"{where}: info[{key!r}]"
        else:
            tol = max(rel, tolerance(key))
            assert float(got) == pytest.approx(value, rel=tol, abs=tol), f"{where}: info[{key!r}]"


def assert_window(obs, reward, terminated, truncated, exp, where, rel=1e-9):
    np.testing.assert_allclose(
        np.asarray(obs, dtype=np.float64), exp["observation"], rtol=1e-6, atol=2e-6, err_msg=where
    )
    assert float(reward) == pytest.approx(exp["reward"], rel=1e-6, abs=2e-6), where
    assert (bool(terminated), bool(truncated)) == (exp["terminated"], exp["truncated"]), where


def test_vector_env_same_step_autoreset_and_render_env_1(monkeypatch):
    """gymnasium's SAME_STEP mode: env 0 finishes mid-batch, its final info and observation are the
    reference's, it restarts within the step with its latch cleared and runs its next episode, while env 1
    (the one rendered) runs on; the render history and the drawn frame hold env 1's values."""
    from neuroloop_gpu.envs import FTSTSVectorEnv, rendering

    figures = []

    class Recorded(rendering.Figure):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            figures.append(self)

    monkeypatch.setattr(rendering, "Figure", Recorded)
    env = FTSTSVectorEnv(
        2,
        SIM,
        PARAMS,
        reward=REWARD,
        episode=EPISODE,
        autoreset_mode="SameStep",
        device="cpu",
        dtype=torch.float64,
        render_mode="rgb_array",
        render_env=1,
    )
    env.reset(seed=SEEDS[0])
    ends = [first_end(0), first_end(1)]
    for w in range(WINDOWS):
        obs, reward, terminated, truncated, info = env.step(np.array(ACTIONS, dtype=np.float32))
        for b in (0, 1):
            exp = window(w, b) if w <= ends[b] else restarted(w - ends[b] - 1, b)
            where = f"window {w} env {b}"
            done = exp["terminated"] or exp["truncated"]
            if done:
                assert info["_final_info"][b] and not info["_kop"][b]
                assert_info(env_info(info["final_info"], b), exp["info"], where)
                np.testing.assert_allclose(info["final_obs"][b], exp["observation"], rtol=1e-6, atol=2e-6)
                exp = dict(exp, observation=fresh_observation())
            else:
                assert info["_kop"][b]
                assert_info(env_info(info, b), exp["info"], where)
            assert_window(obs[b], reward[b], terminated[b], truncated[b], exp, where)
    history = env._history  # what render() draws: env 1 only, its second episode since its restart
    second = range(WINDOWS - ends[1] - 1)
    np.testing.assert_allclose(history.time_s, [restarted(k, 1)["info"]["time_s"] for k in second])
    np.testing.assert_allclose(history.synchrony, [restarted(k, 1)["info"]["kop"] for k in second], atol=2e-6)
    np.testing.assert_allclose(history.weight_mv, [restarted(k, 1)["info"]["weight_mv"] for k in second])
    last = restarted(second[-1], 1)["records"].spikes_e
    np.testing.assert_array_equal(history.raster, last)
    frame = env.render()
    assert frame.ndim == 3 and len(figures) == 1
    raster_ax, sync_ax, weight_ax = figures[0].axes
    steps, neurons = np.nonzero(last)
    np.testing.assert_allclose(raster_ax.collections[0].get_offsets(), np.c_[steps * 0.1, neurons])
    np.testing.assert_allclose(sync_ax.lines[0].get_ydata(), history.synchrony)
    np.testing.assert_allclose(weight_ax.lines[0].get_xdata(), history.time_s)
    np.testing.assert_allclose(weight_ax.lines[0].get_ydata(), history.weight_mv)
    assert (sync_ax.get_ylabel(), weight_ax.get_ylabel()) == ("synchrony", "mean $J_I w$ (mV)")
    env.close()


def test_vector_env_next_step_autoreset_restarts_the_rendered_env():
    """NEXT_STEP: the step after an env finished restarts it (reward 0, no info, the fresh observation);
    from the next step on it runs its second episode; the render history of env 0 restarts with it."""
    from neuroloop_gpu.envs import FTSTSVectorEnv

    env = FTSTSVectorEnv(
        2,
        SIM,
        PARAMS,
        reward=REWARD,
        episode=EPISODE,
        device="cpu",
        dtype=torch.float64,
        render_mode="rgb_array",
        render_env=0,
    )
    env.reset(seed=SEEDS[0])
    ends = [first_end(0), first_end(1)]
    for w in range(WINDOWS):
        obs, reward, terminated, truncated, info = env.step(np.array(ACTIONS, dtype=np.float32))
        for b in (0, 1):
            if w == ends[b] + 1:
                assert not info["_kop"][b] and reward[b] == 0 and not terminated[b] and not truncated[b]
                np.testing.assert_allclose(obs[b], fresh_observation(), rtol=1e-6)
                continue
            exp = window(w, b) if w <= ends[b] else restarted(w - ends[b] - 2, b)
            assert info["_kop"][b]
            assert_info(env_info(info, b), exp["info"], f"window {w} env {b}")
            assert_window(obs[b], reward[b], terminated[b], truncated[b], exp, f"window {w} env {b}")
    second = range(WINDOWS - ends[0] - 2)
    np.testing.assert_allclose(env._history.time_s, [restarted(k)["info"]["time_s"] for k in second])
    np.testing.assert_allclose(env._history.weight_mv, [restarted(k)["info"]["weight_mv"] for k in second])
    env.close()


def test_torchrl_env_info_and_partial_reset():
    """The TorchRL env's info (float32), reward and done flags, and a "_reset" of the env that terminated
    alone: its next episode with the latch cleared, the other env untouched."""
    from tensordict import TensorDict

    from neuroloop_gpu.envs import FTSTSTorchEnv

    env = FTSTSTorchEnv(2, SIM, PARAMS, reward=REWARD, episode=EPISODE, device="cpu", dtype=torch.float64)
    env.set_seed(SEEDS[0])
    env.reset()  # after set_seed: each seed's next episode (1)
    episode, start = [1, 1], [0, 0]
    action = torch.tensor(ACTIONS, dtype=torch.float32)
    restarts = 0
    for w in range(WINDOWS):
        windows = [episode_of(b, episode[b]) for b in (0, 1)]
        done = [w > start[b] and windows[b][w - start[b] - 1]["terminated"] for b in (0, 1)]
        if any(done):
            td = env.reset(TensorDict({"_reset": torch.tensor([[d] for d in done])}, batch_size=[2]))
            for b in np.flatnonzero(done):
                np.testing.assert_allclose(td["observation"][b].numpy(), fresh_observation(), rtol=1e-6)
                episode[b], start[b] = episode[b] + 1, w
                windows[b] = episode_of(b, episode[b])
            restarts += 1
        out = env.step(TensorDict({"action": action}, batch_size=[2]))["next"]
        for b in (0, 1):
            exp = windows[b][w - start[b]]
            where = f"window {w} env {b}"
            info = {k: v[b] for k, v in out["info"].items()}
            assert_info(info, exp["info"], where, rel=1e-6)  # float32 info
            assert float(info["invalid_action"]) == 0.0
            assert_window(
                out["observation"][b], out["reward"][b, 0], out["terminated"][b, 0], out["truncated"][b, 0], exp, where
            )
            assert bool(out["done"][b, 0]) == (exp["terminated"] or exp["truncated"])
    assert restarts >= 1
    env.close()


def test_single_env_values():
    from neuroloop_gpu.envs import DBSEnv

    env = DBSEnv(SIM, model_params=PARAMS, reward=REWARD, episode=EPISODE, device="cpu", dtype=torch.float64)
    env.reset(seed=SEEDS[1])
    for w in range(WINDOWS):
        obs, reward, terminated, truncated, info = env.step(np.array(ACTIONS[1], dtype=np.float32))
        assert_info(info, window(w, 1)["info"], f"window {w}")
        assert_window(obs, reward, terminated, truncated, window(w, 1), f"window {w}")
        if terminated or truncated:  # the single env refuses to step past its episode's end
            break
    env.close()


@pytest.mark.parametrize(
    ("params", "kop_ms"),
    [
        (PARAMS, 20.0),  # one causal-R sample per window: the window's R is that sample
        (
            NetworkParams(
                num_e=40,
                num_i=10,
                connection_prob=0.2,
                mu_e=10.0,
                mu_i=10.0,
                sigma_e=0.05,
                sigma_i=0.05,
                plasticity=PlasticityParams(onset=10.0),
            ),
            1.0,
        ),  # V spreads far below 1 mV
    ],
)
def test_window_statistics_at_the_edges(params, kop_ms):
    """Window statistics of the default backend against the reference where a sample count or a spread
    is small."""
    from neuroloop_gpu.network import NetworkBatch

    net = NetworkBatch(
        1, params, SimConfig(duration=100.0), seeds=[21], device="cpu", dtype=torch.float64, kop_sample_interval=kop_ms
    )
    ref = ReferenceBatch(net, [21], total_steps=5 * net.steps_per_window)
    for w in range(5):
        stats = net.run_window().stats
        (rec,) = ref.run_window([np.zeros(net.steps_per_window)], [0.0], [0.0])
        for field, name in (
            ("kop", "kop"),
            ("v_e_std", "v_e_std_mv"),
            ("v_i_std", "v_i_std_mv"),
            ("v_e_mean", "v_e_mean_mv"),
            ("chi", "chi"),
            ("rate_e", "rate_e_hz"),
        ):
            tol = 2e-6 if field == "kop" else 1e-9
            assert float(getattr(stats, field)[0]) == pytest.approx(rec.stats[name], rel=tol, abs=tol), (field, w)
    if kop_ms == 20.0:
        assert rec.stats["kop"] > 0.05
    else:
        assert 0 < rec.stats["v_e_std_mv"] < 0.5


def test_float32_info_is_float32():
    """Every number the core reports is in the simulator's precision (the stimulus is computed in float64)."""
    core = DBSCore(2, PARAMS, SimConfig(duration=40.0), device="cpu", dtype=torch.float32)
    step = core.step(torch.tensor(ACTIONS, dtype=torch.float32))
    for key, value in step.info.items():
        if key in ("amplitude_mv", "frequency_hz", "pulse_width_us", "time_s"):  # the train's settings: float64
            continue
        assert value.dtype == (torch.bool if key in ("stimulating", "followup") else torch.float32), key
    assert float(step.info["energy_mv2ms"].max()) > 0
    stats = core.net.run_window().stats  # and what the core does not pass on
    assert all(getattr(stats, name).dtype == torch.float32 for name in vars(stats)), vars(stats)


def test_the_latch_needs_the_weight_strictly_past_it():
    """Before plasticity starts (100 ms) the weight is exactly w_init * J_I = 260 mV: a 260 mV latch does not
    trip (below, not at), a 260 mV latch of the synchronising target neither (above, not at)."""
    for target in ("desynchronise", "synchronise"):
        core = DBSCore(
            1,
            NetworkParams(num_e=40, num_i=10, connection_prob=0.2),
            SimConfig(duration=60.0, seed=0),
            device="cpu",
            reward_config=RewardConfig(target=target),
            episode=EpisodeConfig(latch_mv=260.0, terminate_on_latch=True),
        )
        for _ in range(3):
            step = core.step(torch.tensor([ACTIONS[0]]))
            assert float(step.info["weight_mv"][0]) == 260.0
            assert bool(step.info["stimulating"][0]) and not bool(step.terminated[0]), target


def test_latch_after_the_onset_termination_and_truncation():
    """A latch the weight is already past (260.5 mV, desynchronising) trips at the end of the first
    stimulated window, not before the onset (40 ms = 2 windows); with terminate_on_latch the episode ends
    there; without a latch the last window truncates; a 0.5 mV train counts as stimulating."""
    from neuroloop_gpu.stimulus import PulseTrain

    params = NetworkParams(num_e=40, num_i=10, connection_prob=0.2)
    core = DBSCore(
        1,
        params,
        SimConfig(duration=100.0, seed=0),
        device="cpu",
        episode=EpisodeConfig(stim_onset=40.0, latch_mv=260.5, terminate_on_latch=True),
    )
    flags = [core.step(torch.tensor([ACTIONS[0]])) for _ in range(4)]
    assert [bool(s.info["stimulating"][0]) for s in flags] == [False, False, True, False]
    assert [bool(s.terminated[0]) for s in flags] == [False, False, True, False]
    plain = DBSCore(1, params, SimConfig(duration=60.0, seed=0), device="cpu")
    steps = [plain.step_train(PulseTrain.constant(1, 0.5, 100.0, 100.0)) for _ in range(3)]
    assert [bool(s.truncated[0]) for s in steps] == [False, False, True]
    assert all(bool(s.info["stimulating"][0]) and float(s.info["energy_mv2ms"][0]) > 0 for s in steps)
