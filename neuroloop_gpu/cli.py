"""The ``neuroloop`` command."""

from __future__ import annotations

import argparse
import json
import math
import shutil
from collections.abc import Callable
from importlib import metadata, resources
from pathlib import Path

import torch

from .bench import add_subcommand as add_bench_subcommand
from .config import NetworkParams, PlasticityParams, RecordConfig, SimConfig
from .control import CONTROLLERS, make_controller
from .control.checkpoint import CheckpointError
from .control.controllers import shipped_sweep
from .envs import LASTING_BUDGET_S, LASTING_FOLLOWUP_S
from .evaluation import EvaluationConfig, describe_device
from .evaluation import evaluate as run_evaluation
from .network import BACKEND_CHOICES, NetworkBatch, default_device
from .open_loop import OpenLoopProtocol, run_open_loop, summarize
from .plots import plot_open_loop, plot_run, plot_sweep
from .sweep import sweep_file

SIZES = {"full": (1600, 400), "small": (160, 40)}
WINDOW_MS = SimConfig().sample_duration  # every duration is a whole number of these decision windows


def _checked(kind: type, allowed: str, ok: Callable[[object], bool]) -> Callable[[str], object]:
    """An argparse ``type``: argparse's error then names the option the user typed and the text typed."""

    def parse(text: str):
        try:
            value = kind(text)
            if ok(value):
                return value
        except ValueError:
            pass
        raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}")

    return parse


def _whole_windows(seconds: float) -> bool:
    """``seconds`` is a positive whole number of decision windows, by the simulator's own rule."""
    try:
        SimConfig(duration=seconds * 1000.0)
    except ValueError:
        return False
    return True


def _latch(text: str) -> float | str | None:
    """``--latch``: 'published' (the waveform's published threshold), a threshold in mV, or negative: never."""
    if text == "published":
        return text
    value = _checked(float, "'published', a threshold > 0 mV, or a negative number for never",
                     lambda v: math.isfinite(v) and v != 0)(text)
    return None if value < 0 else value


COUNT = _checked(int, "an integer >= 1", lambda v: v >= 1)
NATURAL = _checked(int, "an integer >= 0", lambda v: v >= 0)
SECONDS = _checked(float, "a number of seconds >= 0", lambda v: math.isfinite(v) and v >= 0)
POSITIVE = _checked(float, "a number > 0", lambda v: math.isfinite(v) and v > 0)
EPISODE_S = _checked(float, f"a positive whole number of {WINDOW_MS:g} ms decision windows, in s", _whole_windows)
ONSET_S = _checked(float, f"a whole number (>= 0) of {WINDOW_MS:g} ms decision windows, in s",
                   lambda v: v == 0 or _whole_windows(v))


def _require_option(condition: bool, option: str, allowed: str, value: object) -> None:
    """Cross-option checks argparse cannot make, reported in the same words."""
    if not condition:
        raise SystemExit(f"error: argument {option}: must be {allowed}, got {value}")


def _package_version() -> str:
    try:
        return metadata.version("neuroloop-gpu")
    except metadata.PackageNotFoundError:  # run from a checkout on PYTHONPATH, as on the lent GPU machines
        return "unknown (not installed)"


def _device(name: str) -> torch.device:
    if name == "auto":
        return default_device()
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda requested but CUDA is not available; use --device cpu")
    return device


def simulate(args: argparse.Namespace) -> dict:
    num_e, num_i = _network_size(args)
    try:
        params = NetworkParams(num_e=num_e, num_i=num_i, j_i=args.j_i, synaptic_input=args.synaptic_input,
                               noise_scaling=args.noise, plasticity=PlasticityParams())
        sim = SimConfig(duration=args.duration * 1000.0, seed=args.seed)
        protocol = OpenLoopProtocol(waveform=args.waveform, amplitude=args.amplitude, onset=args.onset * 1000.0,
                                    latch_mv=args.latch)
        device = _device(args.device)
        dtype = {"float32": torch.float32, "float64": torch.float64}[args.dtype]
        net = NetworkBatch(args.networks, params, sim, device=device, dtype=dtype,
                           record=RecordConfig(spikes_e=True), backend=args.backend)
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None
    run = run_open_loop(net, protocol, sim.num_windows, progress=not args.quiet)
    summary = summarize(run, protocol, device=describe_device(device))
    summary["network"] = {"num_e": num_e, "num_i": num_i, "j_i": args.j_i, "synaptic_input": args.synaptic_input,
                          "noise_scaling": args.noise, "dtype": args.dtype}
    summary["bytes_per_network"] = net.bytes_per_network()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    figure = plot_open_loop(run, summary, out)
    if not args.quiet:
        first = summary["networks"][0]
        print(f"kop before/during/after: {first.get('kop_before')}, {first.get('kop_during')}, "
              f"{first.get('kop_after')}; stimulation off at {first['stim_off_time_s']} s; "
              f"final mean J_I*w {first['final_weight_mv']:.1f} mV")
        print(f"wrote {out / 'summary.json'} and {figure} ({summary['wall_time_s']:.1f} s wall)")
    return summary


def _network_size(args: argparse.Namespace) -> tuple[int, int]:
    if args.num_e is None:
        _require_option(args.num_i is None, "--num-i", "given with --num-e (--size sets both)", args.num_i)
        return SIZES[args.size]
    return args.num_e, args.num_e // 4 if args.num_i is None else args.num_i


def train(args: argparse.Namespace) -> None:
    # TorchRL and TensorDict (seconds to import) only for the commands that use them
    from .control.ppo import TASKS, PPOConfig
    from .control.ppo import train as train_ppo

    num_e, num_i = _network_size(args)
    fields = ("episode_s", "stim_onset_s", "windows_per_batch", "stim_budget_s", "followup_s")
    preset = {**{f: getattr(PPOConfig, f) for f in fields}, **TASKS[args.task]}
    onset = preset["stim_onset_s"] if args.onset is None else args.onset
    windows = preset["windows_per_batch"] if args.windows_per_batch is None else args.windows_per_batch
    budget = preset["stim_budget_s"] if args.budget is None else args.budget
    followup = preset["followup_s"] if args.followup is None else args.followup
    _require_option(not followup or budget is not None, "--followup", "0 unless --budget is given", followup)
    episode = preset["episode_s"] if args.episode is None else args.episode
    if followup:  # the phases fill the episode unless --episode says otherwise
        end = onset + budget + followup
        episode = end if args.episode is None else episode
        _require_option(episode >= end - 1e-9, "--episode", f"at least --onset + --budget + --followup = {end:g} s",
                        episode)
    batch = args.networks * windows
    frames = args.frames if args.frames is not None else batch * 40
    _require_option(frames >= batch, "--frames", f"at least one iteration's --networks x --windows-per-batch = "
                    f"{batch} windows", frames)
    _require_option(onset < episode, "--onset", f"less than --episode ({episode:g} s)", onset)
    try:
        config = PPOConfig.for_task(
            args.task, num_envs=args.networks, num_e=num_e, num_i=num_i, episode_s=episode, stim_onset_s=onset,
            stim_budget_s=budget, followup_s=followup, windows_per_batch=windows, total_frames=frames,
            epochs=args.epochs,
            minibatch_size=min(args.minibatch, batch), lr=args.lr, lr_schedule=args.lr_schedule, gamma=args.gamma,
            energy_weight=args.energy_weight, coupling_weight=args.coupling_weight,
            synchrony_weight=args.synchrony_weight, weight_credit=args.weight_credit, latch_mv=args.latch,
            followup_weight=args.followup_weight, hidden=tuple(args.hidden), seed=args.seed,
            checkpoint_every=args.checkpoint_every, max_pulse_width_us=args.max_pulse_width,
        )
        result = train_ppo(config, args.out, device=_device(args.device), backend=args.backend, resume=args.resume,
                           progress=not args.quiet)
    except (ValueError, CheckpointError) as error:
        raise SystemExit(f"error: {error}") from None
    if not args.quiet:
        print(f"trained {result.iterations} iterations, {result.frames} windows in {result.wall_s:.1f} s; "
              f"wrote {result.checkpoint} and {result.log}")


EVALUATION_TASKS = {  # evaluate --task: the episode every controller is evaluated on (s)
    "acute": {"duration": 10.0, "onset": 1.0, "budget": None, "followup": 0.0, "latch_ends_stimulation": False},
    # the lasting task's protocol from the published initial state: the published 2 s onset, stimulation until
    # the latch (for every controller) or 40 s, then 5 s with every stimulator off
    "lasting": {"duration": 2.0 + LASTING_BUDGET_S + LASTING_FOLLOWUP_S, "onset": 2.0, "budget": LASTING_BUDGET_S,
                "followup": LASTING_FOLLOWUP_S, "latch_ends_stimulation": True},
}


def evaluate(args: argparse.Namespace) -> None:
    num_e, num_i = _network_size(args)
    task = EVALUATION_TASKS[args.task]
    duration, onset, budget, followup = (task[k] if getattr(args, k) is None else getattr(args, k)
                                         for k in ("duration", "onset", "budget", "followup"))
    _require_option(not followup or budget is not None, "--followup", "0 unless --budget is given", followup)
    if args.duration is None and followup:
        duration = onset + budget + followup  # the phases fill the episode
    _require_option(onset < duration, "--onset", f"less than --duration ({duration:g} s)", onset)
    out = Path(args.out)
    sweep_path = shipped_sweep() if args.sweep == "shipped" else Path(args.sweep)
    try:
        controllers = {name: make_controller(name, **({"sweep": sweep_path} if name.startswith("ftsts-tuned") else {}))
                       for name in args.controllers}
        policies = _policies(args.policy)
        if policies:
            from .control.policy import PolicyController

            for name, path in policies.items():
                _require_option(name not in controllers, "--policy", f"a name other than the controllers' "
                                f"({', '.join(controllers)})", name)
                controllers[name] = PolicyController(path, name=name)
        config = EvaluationConfig(
            seeds=tuple(range(args.first_seed, args.first_seed + args.seeds)),
            network=NetworkParams(num_e=num_e, num_i=num_i), duration_s=duration, stim_onset_s=onset,
            stim_budget_s=budget, followup_s=followup, latch_ends_stimulation=task["latch_ends_stimulation"],
            latch_mv=args.latch,
            synchrony=args.synchrony, dtype=args.dtype,
        )
    except (ValueError, CheckpointError) as error:
        raise SystemExit(f"error: {error}") from None
    try:  # a backend that cannot run here is a ValueError raised as the networks are built, before any window
        result = run_evaluation(controllers, config, device=_device(args.device), backend=args.backend,
                                progress=not args.quiet)
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None
    written = result.save(out)
    if policies:  # the (first) policy's training curves belong to the report
        log = Path(next(iter(policies.values()))).with_name("train_log.csv")
        if log.is_file():
            shutil.copyfile(log, out / "train_log.csv")
    if any(name.startswith("ftsts-tuned") for name in controllers):  # the sweep's grid joins the energy plane
        source = sweep_file(sweep_path)
        if not (out / "sweep.json").exists() or not (out / "sweep.json").samefile(source):
            shutil.copyfile(source, out / "sweep.json")
    figures = plot_run(out)
    if not args.quiet:
        print(result.markdown())
        print(f"wrote {', '.join(str(p) for p in written.values())} and {len(figures)} figures in {out} "
              f"({result.wall_time_s:.1f} s wall)")


def sweep(args: argparse.Namespace) -> None:
    from .sweep import SweepConfig, run_sweep

    num_e, num_i = _network_size(args)
    try:
        config = SweepConfig(
            amplitudes_mv=tuple(args.amplitudes), frequencies_hz=tuple(args.frequencies),
            pulse_widths_us=tuple(args.pulse_widths), seeds=tuple(range(args.first_seed, args.first_seed + args.seeds)),
            network=NetworkParams(num_e=num_e, num_i=num_i), stim_onset_s=args.onset, stim_budget_s=args.budget,
            followup_s=args.followup, latch_mv=args.latch, latch_fraction=args.latch_fraction, dtype=args.dtype,
        )
        result = run_sweep(config, device=_device(args.device), backend=args.backend, progress=not args.quiet)
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None
    out = Path(args.out)
    written = result.save(out)
    figure = plot_sweep(result, out)
    if not args.quiet:
        for bounds, point in result.tuned().items():
            if point is None:
                print(f"ftsts-tuned ({bounds} bounds): no point latched on >= {config.latch_fraction:.0%} of its "
                      "networks")
                continue
            m = point["metrics"]
            print(f"ftsts-tuned ({bounds} bounds): {point['amplitude_mv']:g} mV, {point['frequency_hz']:.4g} Hz, "
                  f"{point['pulse_width_us']:g} us; latched {m['latch_reached']['mean']:.0%} after "
                  f"{m['time_to_latch_s']['mean']:.1f} s, energy {m['energy_mv2ms']['mean']:.3g} mV^2 ms, "
                  f"follow-up R {m['kop_followup']['mean']:.3f}")
        print(f"wrote {', '.join(str(p) for p in written.values())} and {figure} ({result.wall_time_s:.1f} s wall)")


def shipped_policy() -> Path:
    """The PPO checkpoint this project trained on the acute task at small size (README: Results), shipped in
    the package."""
    return Path(str(resources.files("neuroloop_gpu") / "policies" / "checkpoint.pt"))


def shipped_full_policy() -> Path:
    """The PPO checkpoint this project trained on the lasting task at full size (README: Results)."""
    return Path(str(resources.files("neuroloop_gpu") / "policies" / "lasting_full" / "checkpoint.pt"))


SHIPPED_POLICIES = {"shipped": shipped_policy, "shipped-full": shipped_full_policy}


def _policies(entries: list[str]) -> dict[str, Path]:
    """``--policy`` entries -> {controller name: checkpoint}: ``shipped``, ``shipped-full``, a path, each
    optionally as NAME=...; unnamed ones are ``ppo``, ``ppo-2``, ...; '' stands for none."""
    policies: dict[str, Path] = {}
    for entry in (e for e in entries if e):
        name, _, source = entry.partition("=") if "=" in entry else ("", "", entry)
        name = name or ("ppo" if not policies else f"ppo-{len(policies) + 1}")
        _require_option(name not in policies, "--policy", "distinct names", name)
        policies[name] = SHIPPED_POLICIES[source]() if source in SHIPPED_POLICIES else Path(source)
    return policies


def plot(args: argparse.Namespace) -> None:
    try:
        figures = plot_run(args.run_dir)
    except FileNotFoundError as error:
        raise SystemExit(f"error: {error}") from None
    if not args.quiet:
        print("\n".join(str(p) for p in figures))


def _add_size_options(command: argparse.ArgumentParser, default: str) -> None:
    command.add_argument("--size", choices=sorted(SIZES), default=default, help="network size: 1600/400 or 160/40")
    command.add_argument("--num-e", type=COUNT, default=None, help="excitatory neurons (overrides --size)")
    command.add_argument("--num-i", type=COUNT, default=None,
                         help="inhibitory neurons, only with --num-e (default num_e / 4)")
    command.add_argument("--backend", choices=BACKEND_CHOICES, default="auto",
                         help="simulator backend (same results whichever; default auto: triton on CUDA and fused on "
                              "the CPU where they can run, else eager): 'compiled' fuses kernels with "
                              "torch.compile (worth its ~1 min of compilation on runs of several minutes); 'fused' "
                              "runs each Euler step as one C++ loop per network (CPU only; the fastest there); "
                              "'triton' runs many Euler steps per kernel launch (CUDA only; the fastest there, "
                              "window statistics equal to float32 rounding)")


def _add_output_options(cmd: argparse.ArgumentParser, out: str, what: str, dtype: bool = True) -> None:
    """--dtype (simulator precision), --device, --out and --quiet, alike for every command that simulates."""
    if dtype:
        cmd.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    cmd.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    cmd.add_argument("--out", default=out, help=f"output folder ({what})")
    cmd.add_argument("--quiet", action="store_true", help="no progress bar or report")


def _add_train_parser(commands) -> None:
    cmd = commands.add_parser("train", help="train a PPO controller on batched networks (torchrun-aware)",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _add_size_options(cmd, default="small")
    cmd.add_argument("--task", choices=["acute", "lasting"], default="acute",
                     help="acute: suppress synchrony during 5 s episodes (NeuroLoop's prototype task); lasting: "
                          "stimulate until the latch (mean J_I*w < 75 mV) or a 40 s budget, then 5 s off, credited "
                          "for lowering the weight, charged for energy and follow-up synchrony. Options left "
                          "unset below take the task's values")
    cmd.add_argument("--networks", type=COUNT, default=64, help="networks simulated in parallel (per rank)")
    cmd.add_argument("--episode", type=EPISODE_S, default=None, help="episode length, simulated s (acute: 5)")
    cmd.add_argument("--onset", type=SECONDS, default=None, help="s after reset before the agent may stimulate "
                     "(acute: 0)")
    cmd.add_argument("--budget", type=EPISODE_S, default=None,
                     help="s of stimulation at most after the onset (acute: the whole episode, lasting: 40)")
    cmd.add_argument("--followup", type=ONSET_S, default=None,
                     help="s with the stimulator off after the stimulation phase (acute: 0, lasting: 5); with a "
                          "follow-up, --episode defaults to onset + budget + follow-up")
    cmd.add_argument("--windows-per-batch", type=COUNT, default=None,
                     help="20 ms windows per network per iteration (acute: 25, lasting: 50)")
    cmd.add_argument("--frames", type=COUNT, default=None,
                     help="total windows summed over all networks of all ranks; an iteration takes networks x "
                          "windows-per-batch x ranks of them (default: networks x windows-per-batch x 40, i.e. 40 "
                          "iterations on one process, 40 / N each under torchrun with N ranks)")
    cmd.add_argument("--epochs", type=COUNT, default=4, help="PPO epochs per rollout")
    cmd.add_argument("--minibatch", type=COUNT, default=400, help="windows per gradient step")
    cmd.add_argument("--lr", type=float, default=3e-4, help="Adam learning rate")
    cmd.add_argument("--lr-schedule", choices=["constant", "linear", "cosine"], default="linear")
    cmd.add_argument("--gamma", type=float, default=None, help="discount per window (acute: 0.98, lasting: 0.99)")
    cmd.add_argument("--synchrony-weight", type=float, default=None,
                     help="reward penalty on Kuramoto R (acute: 1, lasting: 0)")
    cmd.add_argument("--coupling-weight", type=float, default=None,
                     help="reward penalty on mean E->I weight (acute: 0.5, lasting: 0)")
    cmd.add_argument("--energy-weight", type=float, default=None,
                     help="reward penalty on stimulation energy (acute: 0.2, lasting: 0.1)")
    cmd.add_argument("--latch", type=POSITIVE, default=None,
                     help="the stimulation phase ends once mean J_I*w < this, mV (acute: no latch, lasting: 75)")
    cmd.add_argument("--weight-credit", type=float, default=None,
                     help="reward per unit fall of the mean E->I weight fraction (acute: 0, lasting: 20)")
    cmd.add_argument("--followup-weight", type=float, default=None,
                     help="reward penalty on Kuramoto R in the follow-up (acute: 0, lasting: 0.05)")
    cmd.add_argument("--max-pulse-width", type=_checked(float, "a number of us in (50, 2777]",
                                                        lambda v: 50 < v <= 1e6 / (2 * 180)), default=500.0,
                     help="top of the agent's phase-width range, us (NeuroLoop's box: 500; the published FTSTS "
                          "phase: 1000)")
    cmd.add_argument("--hidden", type=COUNT, nargs="+", default=[64, 64], help="MLP widths")
    cmd.add_argument("--seed", type=int, default=0)
    cmd.add_argument("--checkpoint-every", type=COUNT, default=10, help="iterations between checkpoints")
    cmd.add_argument("--resume", default=None, help="continue from this checkpoint.pt")
    _add_output_options(cmd, "runs/train", "checkpoint.pt, train_log.csv", dtype=False)
    cmd.set_defaults(handler=train)


def _add_evaluate_parser(commands) -> None:
    cmd = commands.add_parser("evaluate", help="every controller on the same held-out networks, table and figures",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _add_size_options(cmd, default="small")
    cmd.add_argument("--controllers", nargs="*", choices=sorted(CONTROLLERS), default=list(CONTROLLERS),
                     help="baseline controllers")
    cmd.add_argument("--policy", nargs="*", default=["shipped"],
                     help="PPO checkpoints to evaluate, each a checkpoint.pt, 'shipped' (the packaged acute-task "
                          "policy, small network) or 'shipped-full' (the packaged lasting-task policy, full "
                          "network), optionally as NAME=...; unnamed ones are 'ppo', 'ppo-2', ...; '' = none")
    cmd.add_argument("--sweep", default="shipped",
                     help="sweep.json (or its folder) whose tuned points the ftsts-tuned controllers use; "
                          "'shipped' = the packaged full-size sweep")
    cmd.add_argument("--seeds", type=COUNT, default=32, help="held-out networks per controller")
    cmd.add_argument("--first-seed", type=NATURAL, default=1_000_000,
                     help="first held-out seed (training uses fewer)")
    cmd.add_argument("--task", choices=sorted(EVALUATION_TASKS), default="acute",
                     help="the episode: acute = 10 s, stimulation from 1 s; lasting = stimulation from 2 s until "
                          "the latch (mean J_I*w < 75 mV, for every controller) or 40 s, then 5 s with every "
                          "stimulator off (47 s). Options left unset below take the task's values")
    cmd.add_argument("--duration", type=EPISODE_S, default=None, help="episode length, simulated s")
    cmd.add_argument("--onset", type=ONSET_S, default=None, help="s without stimulation before controllers act")
    cmd.add_argument("--budget", type=EPISODE_S, default=None, help="s of stimulation at most after the onset")
    cmd.add_argument("--followup", type=ONSET_S, default=None,
                     help="s at the end with every stimulator off (needs --budget; duration = onset + budget + "
                          "follow-up)")
    cmd.add_argument("--latch", type=POSITIVE, default=75.0,
                     help="mean J_I*w, mV, below which a network counts as latched (time_to_latch_s); with --task "
                          "lasting every controller's stimulation ends there")
    cmd.add_argument("--synchrony", choices=["kop", "chi"], default="kop",
                     help="observation feature 0 (a PPO policy needs the measure it was trained with)")
    _add_output_options(cmd, "runs/evaluate", "tables, traces, figures")
    cmd.set_defaults(handler=evaluate)

    cmd = commands.add_parser("plot", help="redraw every figure of a run folder (training and evaluation)")
    cmd.add_argument("run_dir", help="folder written by train or evaluate")
    cmd.add_argument("--quiet", action="store_true", help="do not list the figures")
    cmd.set_defaults(handler=plot)


def _add_sweep_parser(commands) -> None:
    from .sweep import SweepConfig

    defaults = SweepConfig.__dataclass_fields__
    cmd = commands.add_parser("sweep", help="the FTSTS waveform over a grid of amplitude x frequency x phase width "
                              "(the tuned open-loop baseline)", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _add_size_options(cmd, default="full")
    cmd.add_argument("--amplitudes", type=POSITIVE, nargs="+", default=list(defaults["amplitudes_mv"].default),
                     help="amplitudes, mV")
    cmd.add_argument("--frequencies", type=POSITIVE, nargs="+", default=list(defaults["frequencies_hz"].default),
                     help="pulse frequencies, Hz")
    cmd.add_argument("--pulse-widths", type=POSITIVE, nargs="+", default=list(defaults["pulse_widths_us"].default),
                     help="phase widths, us (points whose two phases exceed the period are left out)")
    seeds = defaults["seeds"].default
    cmd.add_argument("--seeds", type=COUNT, default=len(seeds), help="networks per point")
    cmd.add_argument("--first-seed", type=NATURAL, default=seeds[0],
                     help="first network seed (training uses seeds below 1,000,000, evaluation 1,000,000 on)")
    cmd.add_argument("--onset", type=ONSET_S, default=defaults["stim_onset_s"].default,
                     help="s without stimulation first")
    cmd.add_argument("--budget", type=EPISODE_S, default=defaults["stim_budget_s"].default,
                     help="s of stimulation at most")
    cmd.add_argument("--followup", type=ONSET_S, default=defaults["followup_s"].default,
                     help="s with the stimulator off at the end")
    cmd.add_argument("--latch", type=POSITIVE, default=defaults["latch_mv"].default,
                     help="stimulation ends once mean J_I*w < this, mV")
    cmd.add_argument("--latch-fraction", type=POSITIVE, default=defaults["latch_fraction"].default,
                     help="a tuned point must latch on at least this fraction of its networks")
    _add_output_options(cmd, "runs/sweep", "sweep.json, sweep.csv, sweep.png")
    cmd.set_defaults(handler=sweep)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neuroloop", description="Closed-loop DBS on batched FTSTS networks.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_package_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    sim = commands.add_parser("simulate", help="open-loop FTSTS simulation (the published protocol)",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _add_size_options(sim, default="full")
    sim.add_argument("--duration", type=EPISODE_S, default=25.0, help="simulated seconds")
    sim.add_argument("--onset", type=SECONDS, default=2.0, help="stimulation onset, s")
    sim.add_argument("--amplitude", type=float, default=100.0, help="pulse amplitude, mV")
    sim.add_argument("--waveform", choices=["ftsts", "swapped", "none"], default="ftsts")
    sim.add_argument("--latch", type=_latch, default="published",
                     help="switch stimulation off for good once mean J_I*w crosses this, mV (negative: never; "
                          "published: the waveform's published threshold, 75 for ftsts, 125 for swapped)")
    sim.add_argument("--j-i", type=float, default=260.0, help="E->I strength J_I, mV (published swapped run: 75)")
    sim.add_argument("--synaptic-input", choices=["published", "summed"], default="published")
    sim.add_argument("--noise", choices=["published", "euler_maruyama"], default="published")
    sim.add_argument("--networks", type=COUNT, default=1, help="independent networks (seeds seed..seed+n-1)")
    sim.add_argument("--seed", type=int, default=0)
    _add_output_options(sim, "runs/simulate", "summary.json, open_loop.png")
    sim.set_defaults(handler=simulate)
    _add_train_parser(commands)
    _add_evaluate_parser(commands)
    _add_sweep_parser(commands)
    add_bench_subcommand(commands)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.handler(args)


if __name__ == "__main__":
    main()
