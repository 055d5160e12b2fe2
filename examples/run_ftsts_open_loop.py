"""
Using the FTSTS DBS environment with a fixed action to simulate the original open-loop regime.

NeuroLoop/dbsenv's examples/run_ftsts_open_loop.py (dbsenv commit 8b6f429), ported to neuroloop_gpu.
difflib.ndiff against that file: 22 of its 85 lines changed or removed, 56 lines added (this docstring,
the imports in ruff's order, the command-line arguments and the figure's output included).

    python examples/run_ftsts_open_loop.py        # dbsenv's run: 5 s, 160 E / 40 I, the plot on screen
    python examples/run_ftsts_open_loop.py --duration 0.2 --num-e 20 --num-i 5 --out kop.png --save kop.npz
"""

import argparse

import gymnasium as gym
import matplotlib.pyplot as plt
import numpy as np
from tqdm import tqdm

from neuroloop_gpu import ActionBounds, EpisodeConfig, NetworkParams, SimConfig
from neuroloop_gpu.dbsenv_compat import kop, spike_time_matrix


def plot_kop(t, re, out=None, show=True):
    """Plot the Kuramoto (Synchrony) Order Parameter."""

    plt.figure(figsize=(10, 5))
    plt.plot(t / 1000, re, label="Kuramoto Order Parameter", color="blue")
    plt.title("Time Series Kuramoto Order Parameter", fontsize=14)
    plt.xlabel("Time (s)", fontsize=12)
    plt.ylabel("KOP", fontsize=12)
    plt.xlim([0.0, t[-1] / 1000])
    plt.ylim([0, 1.1])
    plt.grid(True, linestyle='--', alpha=0.7)
    plt.legend()
    if out:
        plt.savefig(out, dpi=100)
    elif show:
        plt.show()


def main():
    """Simulates the original open-loop ftsts regime."""
    args = parse_args()

    # Configure simulation.
    sim_config = SimConfig(
        # duration=25*1000,
        duration=args.duration * 1000,
        step_size=0.1,
        sample_duration=20,
    )

    # Create the environment.
    env = gym.make(
        'neuroloop/FTSTS-v0',
        sim_config=sim_config,
        model_class=NetworkParams,
        model_params={
            "num_e": args.num_e,
            "num_i": args.num_i,
        },
        episode=EpisodeConfig(stim_onset=0.08 * sim_config.duration),  # stimulator off for the first 8 %, as dbsenv
        record_spikes=True,  # keep each window's E raster (raw_env.last_spikes_e)
    )
    raw_env = env.unwrapped
    num_samples = raw_env.core.sim.num_windows

    env.reset(seed=args.seed)
    done = False
    sptime = []
    with tqdm(total=num_samples, desc="Simulating") as pbar:
        while not done:
            # dbsenv's action is the amplitude (mV) of its fixed FTSTS train (83.3 Hz, 1 ms phases). Ours sets
            # amplitude, frequency and pulse width, normalised to [-1, 1]: 100 mV at 83.3 Hz with 500 us phases,
            # the widest the default ActionBounds allow (half the published width, half the charge per pulse).
            action = ActionBounds().normalised(100, 1000 / 12, 500)
            _, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
            sptime.append(raw_env.last_spikes_e)  # this window's E spike raster [steps, num_e]
            pbar.update(1)

    step_size = raw_env.core.sim.step_size
    duration = raw_env.core.sim.duration
    ne = raw_env.core.params.num_e
    t = np.arange(0.1, duration + step_size, step_size)
    sptime = spike_time_matrix(np.concatenate(sptime), step_size)  # dbsenv's spike_time_e layout

    print("computing kop")
    re = kop(
        sptime=sptime,
        t=t,
        step_size=step_size,
        duration=duration,
        num_neurons=ne,
    )
    print(f"mean KOP {re.mean():.4f}; final mean J_I*w {info['weight_mv']:.2f} mV")
    if args.save:
        np.savez(args.save, t=t, kop=re)

    print("plotting kop")
    plot_kop(t, re, out=args.out, show=not args.no_show)

    env.close()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="FTSTS open loop (dbsenv's example) on neuroloop_gpu.")
    parser.add_argument("--duration", type=float, default=5.0, help="simulated time (s), default 5 as dbsenv's")
    parser.add_argument("--num-e", type=int, default=160, help="excitatory neurons (default 160)")
    parser.add_argument("--num-i", type=int, default=40, help="inhibitory neurons (default 40)")
    parser.add_argument("--seed", type=int, default=0, help="network and noise seed (default 0)")
    parser.add_argument("--out", help="save the figure to this PNG instead of showing it")
    parser.add_argument("--no-show", action="store_true", help="do not show the figure")
    parser.add_argument("--save", help="save t (ms) and the KOP R(t) to this .npz")
    return parser.parse_args(argv)


if __name__ == '__main__':
    main()
