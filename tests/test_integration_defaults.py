"""The default backend against eager at the level users call (float32, as they run it): the vector env's
every array and render across autoresets with render_env 1, an open-loop run with recording switched on
after construction, and `neuroloop simulate`. (``tests/test_values.py`` and friends hold both against the
reference network in float64.)"""

import json

import numpy as np

from neuroloop_gpu.cli import main
from neuroloop_gpu.config import NetworkParams, PlasticityParams, RecordConfig, SimConfig
from neuroloop_gpu.envs import EpisodeConfig, FTSTSVectorEnv, RewardConfig
from neuroloop_gpu.network import NetworkBatch
from neuroloop_gpu.open_loop import OpenLoopProtocol, run_open_loop

PARAMS = NetworkParams(num_e=40, num_i=10, connection_prob=0.2, plasticity=PlasticityParams(onset=10.0))


def flatten(value, prefix=""):
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}{key}/"))
        return out
    return {prefix: value}


def test_vector_env_default_backend_equals_eager_across_autoresets():
    def run(backend):
        env = FTSTSVectorEnv(
            3,
            SimConfig(duration=240.0),
            PARAMS,
            backend=backend,
            device="cpu",
            reward=RewardConfig(weight_credit=2.0),
            episode=EpisodeConfig(stim_onset=40.0, latch_mv=260.1, followup=40.0),
            render_mode="rgb_array",
            render_env=1,
        )
        env.reset(seed=7)
        rng = np.random.default_rng(0)
        steps, frames = [], []
        for w in range(16):
            steps.append(env.step(rng.uniform(-1, 1, (3, 3)).astype(np.float32)))
            if w in (5, 15):
                frames.append(env.render())
        history = env._history
        env.close()
        return steps, frames, (list(history.time_s), list(history.synchrony), list(history.weight_mv), history.raster)

    default, eager = run("auto"), run("eager")
    restarts = 0
    for got, want in zip(default[0], eager[0]):
        for a, b in zip(got[:4], want[:4]):
            np.testing.assert_array_equal(a, b)
        info, info_eager = flatten(got[4]), flatten(want[4])
        assert info.keys() == info_eager.keys()
        for key in info:
            np.testing.assert_array_equal(info[key], info_eager[key], err_msg=key)
        restarts += int((got[2] | got[3]).sum())
    assert restarts >= 1  # an autoreset happened mid-run
    for a, b in zip(default[1], eager[1]):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(default[2], eager[2]):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_open_loop_with_recording_switched_on_after_construction():
    def run(backend):
        net = NetworkBatch(2, PARAMS, SimConfig(duration=200.0), seeds=[3, 4], device="cpu", backend=backend)
        protocol = OpenLoopProtocol(onset=40.0, latch_mv=None)
        first = run_open_loop(net, protocol, 4, progress=False)
        net.record = RecordConfig(spikes_e=True, traces=True)
        second = run_open_loop(net, OpenLoopProtocol(onset=0.0, latch_mv=None), 6, progress=False)
        return first, second

    (first, second), (first_eager, second_eager) = run("auto"), run("eager")
    for got, want in ((first, first_eager), (second, second_eager)):
        for key in got.stats:
            np.testing.assert_array_equal(got.stats[key], want.stats[key], err_msg=key)
    assert not first.spikes_e and len(second.spikes_e) == 6
    for a, b in zip(second.spikes_e, second_eager.spikes_e):
        np.testing.assert_array_equal(a, b)
    assert sum(int(np.unpackbits(w).sum()) for w in second.spikes_e) > 100


def test_cli_simulate_default_backend_equals_eager(tmp_path):
    def run(backend):
        out = tmp_path / backend
        main(
            [
                "simulate",
                "--num-e",
                "40",
                "--num-i",
                "10",
                "--duration",
                "0.3",
                "--onset",
                "0.1",
                "--networks",
                "2",
                "--latch",
                "259",
                "--backend",
                backend,
                "--device",
                "cpu",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        summary = json.loads((out / "summary.json").read_text())
        for key in ("wall_time_s", "simulated_s_per_wall_s", "device"):
            summary.pop(key)
        return summary

    default, eager = run("auto"), run("eager")
    assert default == eager
    assert all(n["stim_off_time_s"] is not None for n in default["networks"])
