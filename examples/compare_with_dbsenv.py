"""Side by side: NeuroLoop/dbsenv's FTSTS env and neuroloop_gpu's under the same fixed FTSTS action.

Each engine runs the open-loop regime of dbsenv's example (a fixed 100 mV FTSTS train every 20 ms window)
for a few seeds, with what dbsenv does matched in neuroloop_gpu: stimulation from the window that ends at
8 % of the run, plasticity from the window that ends at 0.4 % of it, the published 1 ms phases at 83.3 Hz
(an ActionBounds whose pulse-width range reaches 1000 us) and dbsenv's 19-step refractory hold. Both
engines' statistics come from the same code: spike rates, the change of the mean E->I weight J_I*w, and
the offline Kuramoto R of the E raster (neuroloop_gpu.synchrony.kuramoto_order); dbsenv's own kop is
reported beside it.

dbsenv runs in an environment of its own that can also import neuroloop_gpu (for the shared R), e.g.

    python -m venv --system-site-packages /tmp/dbsenv-venv && /tmp/dbsenv-venv/bin/pip install --no-deps <dbsenv>
    /tmp/dbsenv-venv/bin/python examples/compare_with_dbsenv.py --engine dbsenv --seeds 0 1 2 --json dbsenv.json
    python examples/compare_with_dbsenv.py --engine neuroloop_gpu --seeds 0 1 2 --json ours.json
    python examples/compare_with_dbsenv.py --table dbsenv.json ours.json
"""

from __future__ import annotations

import argparse
import json
import time
from functools import partial

import numpy as np
import torch

from neuroloop_gpu.synchrony import kuramoto_order

STEP_MS, WINDOW_MS, AMPLITUDE_MV, FREQUENCY_HZ = 0.1, 20.0, 100.0, 1000.0 / 12
STATS = ("rate_e_hz", "rate_i_hz", "rate_e_stim_hz", "rate_i_stim_hz", "dw_mv", "r_pre", "r_stim", "kop_own_stim")


def dbsenv_onset_ms(duration_ms: float, ratio: float) -> float:
    """Start of the first window dbsenv switches on: window i (1-based) once i * 20 ms >= int(ratio * duration)."""
    threshold = int(duration_ms * ratio)
    first = max(1, int(np.ceil(threshold / WINDOW_MS)))
    return (first - 1) * WINDOW_MS


def statistics(raster_e, counts_i, w_first_mv, w_last_mv, stim_ms, duration_ms, num_e, num_i, own_kop=None):
    """The compared numbers of one run: ``raster_e`` bool [steps, num_e], ``counts_i`` I spikes per window."""
    onset, onset_window = round(stim_ms / STEP_MS), round(stim_ms / WINDOW_MS)
    seconds, stim_seconds = duration_ms / 1000, (duration_ms - stim_ms) / 1000
    r = kuramoto_order(torch.from_numpy(np.ascontiguousarray(raster_e))[None])[0].numpy()
    out = {
        "rate_e_hz": raster_e.sum() / num_e / seconds, "rate_i_hz": counts_i.sum() / num_i / seconds,
        "rate_e_stim_hz": raster_e[onset:].sum() / num_e / stim_seconds,
        "rate_i_stim_hz": counts_i[onset_window:].sum() / num_i / stim_seconds,
        "dw_mv": w_last_mv - w_first_mv, "r_pre": r[:onset].mean(), "r_stim": r[onset:].mean(),
        "kop_own_stim": None if own_kop is None else own_kop[onset:].mean(),
    }
    return {k: None if v is None else float(v) for k, v in out.items()}


def run_dbsenv(seed, duration_ms, num_e, num_i, pulse_width_us):
    import gymnasium as gym
    from dbsenv.neural_models import EILIFNetwork
    from dbsenv.utils import SimConfig
    from dbsenv.utils.synchrony import kop

    assert pulse_width_us == 1000, "dbsenv's train has 1 ms phases"
    env = gym.make("dbsenv/DBS-FTSTS-v0", sim_config=SimConfig(duration=duration_ms, step_size=STEP_MS,
                                                                 sample_duration=WINDOW_MS),
                   model_class=EILIFNetwork, model_params={"num_e": num_e, "num_i": num_i})
    np.random.seed(seed)  # dbsenv draws connectivity and noise from NumPy's global generator; reset() rebuilds
    env.reset()
    done = False
    while not done:
        _, _, terminated, truncated, info = env.step(np.array([AMPLITUDE_MV]))
        done = terminated or truncated
    model = env.unwrapped.model
    t = np.arange(STEP_MS, duration_ms + STEP_MS, STEP_MS)
    own = kop(np.ascontiguousarray(info["spike_time_e"]), t, STEP_MS, duration_ms, num_e)
    w_mv = info["w_ie"][:, 0] * model.j_i  # mean w over synapses at the start of each step
    counts_i = (info["spike_i"] > 0).reshape(-1, round(WINDOW_MS / STEP_MS) * num_i).sum(1)
    return statistics(info["spike_e"] > 0, counts_i, w_mv[0], w_mv[-1],
                      dbsenv_onset_ms(duration_ms, 0.08), duration_ms, num_e, num_i, own)


def run_neuroloop_gpu(seed, duration_ms, num_e, num_i, pulse_width_us, matched=True):
    import gymnasium as gym

    import neuroloop_gpu
    from neuroloop_gpu import ActionBounds, EpisodeConfig, NetworkParams, PlasticityParams, SimConfig

    # dbsenv's onsets, and its refractory countdown in floating point (2 - 20 * 0.1 < 0: held 19 steps)
    stim_ms, plasticity_ms = dbsenv_onset_ms(duration_ms, 0.08), dbsenv_onset_ms(duration_ms, 0.004)
    refractory = 1.9
    if not matched:  # neuroloop_gpu's own defaults: stimulator on from the start, plasticity from 100 ms
        stim_ms, plasticity_ms, refractory = 0.0, PlasticityParams().onset, NetworkParams().refractory
    bounds = ActionBounds(pulse_width=(50.0, 1000.0))  # the published 1 ms phase lies outside the default box
    params = NetworkParams(num_e=num_e, num_i=num_i, refractory=refractory,
                           plasticity=PlasticityParams(onset=plasticity_ms))
    env = gym.make(neuroloop_gpu.ENV_ID, sim_config=SimConfig(duration=duration_ms, step_size=STEP_MS,
                                                                sample_duration=WINDOW_MS),
                   model_class=NetworkParams, model_params=params, bounds=bounds,
                   episode=EpisodeConfig(stim_onset=stim_ms), record_spikes=True, device="cpu")
    env.reset(seed=seed)
    action = bounds.normalised(AMPLITUDE_MV, FREQUENCY_HZ, pulse_width_us)
    rasters, rates_i, done = [], [], False
    w_first = env.unwrapped.core.params.j_i * env.unwrapped.core.params.plasticity.w_init
    while not done:
        _, _, terminated, truncated, info = env.step(action)
        done = terminated or truncated
        rasters.append(env.unwrapped.last_spikes_e)
        rates_i.append(info["rate_i_hz"])
    counts_i = np.rint(np.asarray(rates_i, dtype=np.float64) * num_i * WINDOW_MS / 1000)  # Hz -> spikes
    split_ms = dbsenv_onset_ms(duration_ms, 0.08)  # "pre" and "stim" statistics split where dbsenv's onset is
    return statistics(np.concatenate(rasters), counts_i, w_first, float(info["weight_mv"]), split_ms, duration_ms,
                      num_e, num_i)


def table(paths):
    """Mean ± s.d. over seeds of every statistic, one column per result file; after the first column,
    the difference of the mean from the first column's mean."""
    results = [json.load(open(p)) for p in paths]
    print("| statistic | " + " | ".join(f"{r['engine']}, {len(r['runs'])} seeds" for r in results) + " |")
    print("|---|" + "---|" * len(results))
    for stat in STATS:
        cells, reference = [], None
        for column, r in enumerate(results):
            values = [run[stat] for run in r["runs"] if run[stat] is not None]
            if not values:
                cells.append("—")
                continue
            mean, sd = np.mean(values), np.std(values, ddof=1) if len(values) > 1 else 0.0
            if column == 0:
                reference = mean
            diff = f" ({(mean - reference) / abs(reference):+.1%})" if column and reference else ""
            cells.append(f"{mean:.3f} ± {sd:.3f}{diff}")
        print(f"| {stat} | " + " | ".join(cells) + " |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("dbsenv", "neuroloop_gpu"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--duration", type=float, default=5.0, help="s (default 5)")
    parser.add_argument("--num-e", type=int, default=160)
    parser.add_argument("--num-i", type=int, default=40)
    parser.add_argument("--pulse-width", type=float, default=1000.0, help="us per phase (neuroloop_gpu only)")
    parser.add_argument("--own-defaults", action="store_true",
                        help="neuroloop_gpu with its own onsets (stimulation from 0 ms, plasticity from 100 ms)")
    parser.add_argument("--json", help="write the runs' statistics here")
    parser.add_argument("--table", nargs="+", metavar="JSON", help="print a Markdown table of result files")
    args = parser.parse_args()
    if args.table:
        return table(args.table)
    run = run_dbsenv if args.engine == "dbsenv" else partial(run_neuroloop_gpu, matched=not args.own_defaults)
    runs = []
    for seed in args.seeds:
        start = time.perf_counter()
        runs.append({"seed": seed, **run(seed, args.duration * 1000, args.num_e, args.num_i, args.pulse_width)})
        print(json.dumps(runs[-1]), f"({time.perf_counter() - start:.1f} s)", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            engine = args.engine + (" (own defaults)" if args.own_defaults else "")
            if args.engine == "neuroloop_gpu" and args.pulse_width != 1000:
                engine += f" ({args.pulse_width:g} us)"
            json.dump({"engine": engine, "args": vars(args), "runs": runs}, f, indent=1)


if __name__ == "__main__":
    main()
