"""The ``neuroloop`` command."""

from __future__ import annotations

import argparse
import json
import math
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import fields, replace
from importlib import metadata, resources
from pathlib import Path

import torch

from .bench import add_subcommand as add_bench_subcommand
from .config import NetworkParams, RecordConfig, SimConfig
from .control import CONTROLLERS, make_controller
from .control.checkpoint import CheckpointError
from .control.controllers import shipped_sweep
from .envs import LASTING_BUDGET_S, LASTING_FOLLOWUP_S
from .evaluation import EvaluationConfig, _json_ready, describe_device
from .evaluation import evaluate as run_evaluation
from .network import BACKEND_CHOICES, NetworkBatch, default_device
from .open_loop import MODELS, run_open_loop, summarize
from .plots import plot_open_loop, plot_run, plot_sweep
from .run_folder import RunFolderError, claim
from .sweep import sweep_file
from .usage import UsageError, exit_with

SIZES = {"full": (1600, 400), "small": (160, 40)}
MAX_AMPLITUDE_MV = 1000.0  # simulate --amplitude: 10x the published pulse, 5x the top of NeuroLoop's box
WINDOW_MS = SimConfig().sample_duration  # every duration is a whole number of these decision windows


def _start_weights(text: str) -> tuple[float, float] | str:
    """An argparse ``type`` for LOW,HIGH (mV) or 'published'."""
    if text == "published":
        return text
    try:
        low, high = (float(part) for part in text.split(","))
        return low, high
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be LOW,HIGH in mV or 'published', got {text!r}") from None


def _parameter(text: str) -> tuple[str, float]:
    """An argparse ``type`` for NAME=VALUE with a number as the value."""
    name, _, value = text.partition("=")
    try:
        return name, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be NAME=NUMBER, got {text!r}") from None


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
    value = _checked(
        float, "'published', a threshold > 0 mV, or a negative number for never", lambda v: math.isfinite(v) and v != 0
    )(text)
    return None if value < 0 else value


COUNT = _checked(int, "an integer >= 1", lambda v: v >= 1)
NATURAL = _checked(int, "an integer >= 0", lambda v: v >= 0)
POSITIVE = _checked(float, "a number > 0", lambda v: math.isfinite(v) and v > 0)
EPISODE_S = _checked(float, f"a positive whole number of {WINDOW_MS:g} ms decision windows, in s", _whole_windows)
ONSET_S = _checked(
    float, f"a whole number (>= 0) of {WINDOW_MS:g} ms decision windows, in s", lambda v: v == 0 or _whole_windows(v)
)


def _require_option(condition: bool, option: str, allowed: str, value: object) -> None:
    """Cross-option checks argparse cannot make, reported in the same words."""
    if not condition:
        raise UsageError(f"argument {option}: must be {allowed}, got {value}")


@contextmanager
def _refusing() -> Iterator[None]:
    """The library's validation (a ValueError naming the parameter and what is allowed) as a usage error.

    Only around building configurations, networks and controllers: an error raised by the work itself
    keeps its traceback.
    """
    try:
        yield
    except ValueError as error:
        raise UsageError(str(error)) from None


def _write_json(path: Path, document: dict) -> None:
    """Strict JSON (no NaN or Infinity, which strict parsers reject): non-finite numbers become null."""
    path.write_text(json.dumps(_json_ready(document), indent=1, allow_nan=False))


def _package_version() -> str:
    try:
        return metadata.version("neuroloop-gpu")
    except metadata.PackageNotFoundError:  # run from a checkout on PYTHONPATH, as on the lent GPU machines
        return "unknown (not installed)"


def _device(name: str) -> torch.device:
    """``--device``, checked against this machine before any work."""
    if name == "auto":
        return default_device()
    allowed = "auto, cpu, cuda or cuda:N"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        device = None
    _require_option(device is not None and device.type in ("cpu", "cuda"), "--device", allowed, repr(name))
    if device.type == "cpu":
        _require_option(
            device.index in (None, 0), "--device", "cpu without an index (one CPU device, all its cores)", repr(name)
        )
        return device
    if not torch.cuda.is_available():
        raise UsageError(f"argument --device: {name} requested but CUDA is not available here; use --device cpu")
    count = torch.cuda.device_count()
    _require_option(
        device.index is None or device.index < count,
        "--device",
        f"cuda or cuda:N with N < {count} (the GPUs of this machine)",
        repr(name),
    )
    return device


def simulate(args: argparse.Namespace) -> dict:
    num_e, num_i = _network_size(args)
    variant = MODELS[args.model]
    onset = variant.stim_onset / 1000.0 if args.onset is None else args.onset
    _require_option(
        args.waveform == "none" or onset < args.duration,
        "--onset",
        f"less than --duration ({args.duration:g} s), or the run never stimulates",
        onset,
    )
    device = _device(args.device)
    with _refusing():
        params = variant.network(
            NetworkParams(
                num_e=num_e, num_i=num_i, j_i=args.j_i, synaptic_input=args.synaptic_input, noise_scaling=args.noise
            )
        )
        sim = SimConfig(duration=args.duration * 1000.0, seed=args.seed)
        protocol = variant.protocol(
            waveform=args.waveform, amplitude=args.amplitude, onset=onset * 1000.0, latch_mv=args.latch
        )
        dtype = {"float32": torch.float32, "float64": torch.float64}[args.dtype]
        net = NetworkBatch(
            args.networks,
            params,
            sim,
            device=device,
            dtype=dtype,
            record=RecordConfig(spikes_e=True),
            backend=args.backend,
        )
    with claim(args.out, overwrite=args.overwrite) as out:
        run = run_open_loop(net, protocol, sim.num_windows, progress=not args.quiet)
        summary = summarize(run, protocol, device=describe_device(device))
        summary["network"] = {
            "model": args.model,
            "num_e": num_e,
            "num_i": num_i,
            "j_i": args.j_i,
            "synaptic_input": args.synaptic_input,
            "noise_scaling": args.noise,
            "stim_noise_e": params.stim_noise_e,
            "stim_noise_i": params.stim_noise_i,
            "plasticity_onset_ms": params.plasticity.onset,
            "dtype": args.dtype,
        }
        summary["bytes_per_network"] = net.bytes_per_network()
        _write_json(out / "summary.json", summary)
        figure = plot_open_loop(run, summary, out)
    if not args.quiet:
        first = summary["networks"][0]
        print(
            f"kop before/during/after: {first.get('kop_before')}, {first.get('kop_during')}, "
            f"{first.get('kop_after')}; stimulation off at {first['stim_off_time_s']} s; "
            f"final mean J_I*w {first['final_weight_mv']:.1f} mV"
        )
        print(f"wrote {out / 'summary.json'} and {figure} ({summary['wall_time_s']:.1f} s wall)")
    return summary


def _network_size(args: argparse.Namespace) -> tuple[int, int]:
    if args.num_e is None:
        _require_option(args.num_i is None, "--num-i", "given with --num-e (--size sets both)", args.num_i)
        return SIZES[args.size or "small"]  # train's --size has no default: a resumed run keeps its size
    return args.num_e, args.num_e // 4 if args.num_i is None else args.num_i


TRAIN_FIELDS = {  # train option -> the PPOConfig field it sets
    "networks": "num_envs",
    "episode": "episode_s",
    "onset": "stim_onset_s",
    "budget": "stim_budget_s",
    "followup": "followup_s",
    "windows_per_batch": "windows_per_batch",
    "frames": "total_frames",
    "epochs": "epochs",
    "minibatch": "minibatch_size",
    "lr": "lr",
    "lr_schedule": "lr_schedule",
    "gamma": "gamma",
    "synchrony_weight": "synchrony_weight",
    "coupling_weight": "coupling_weight",
    "energy_weight": "energy_weight",
    "latch": "latch_mv",
    "weight_credit": "weight_credit",
    "followup_weight": "followup_weight",
    "latch_bonus": "latch_bonus",
    "max_pulse_width": "max_pulse_width_us",
    "start_weights": "start_weight_mv",
    "imitate": "imitate",
    "imitate_params": "imitation_params",
    "imitation_windows": "imitation_windows",
    "imitation_scale": "imitation_scale",
    "hidden": "hidden",
    "seed": "seed",
    "checkpoint_every": "checkpoint_every",
    "model": "model",
}


def train(args: argparse.Namespace) -> None:
    # TorchRL and TensorDict (seconds to import) only for the commands that use them
    from .control.checkpoint import load_checkpoint
    from .control.ppo import PPOConfig
    from .control.ppo import train as train_ppo

    given = {field: getattr(args, opt) for opt, field in TRAIN_FIELDS.items() if getattr(args, opt) is not None}
    if "hidden" in given:
        given["hidden"] = tuple(given["hidden"])
    if "imitation_params" in given:
        given["imitation_params"] = tuple(given["imitation_params"])
    published_start = given.get("start_weight_mv") == "published"
    if published_start:  # None means the preset's range to for_task: set after the preset
        del given["start_weight_mv"]
    if (args.size, args.num_e, args.num_i) != (None, None, None):
        given["num_e"], given["num_i"] = _network_size(args)
    device = _device(args.device)
    with _refusing():
        if args.resume is None:
            config = _new_training(args.task or "acute", given)
        else:  # what the checkpoint was trained with, changed only where asked
            saved = PPOConfig.from_dict(load_checkpoint(args.resume)["config"])
            _require_option(
                args.task in (None, saved.task), "--task", f"the resumed run's task ({saved.task!r})", args.task
            )
            config = replace(saved, **given)
        if published_start:
            config = replace(config, start_weight_mv=None)
    with _refusing():  # a backend that cannot run here is refused as the networks are built, before any window
        result = train_ppo(
            config,
            args.out,
            device=device,
            backend=args.backend,
            resume=args.resume,
            allow_changes=args.allow_change,
            overwrite=args.overwrite,
            progress=not args.quiet,
        )
    if not args.quiet:
        print(
            f"trained {result.iterations} iterations, {result.frames} windows in {result.wall_s:.1f} s; "
            f"wrote {result.checkpoint} and {result.log}"
        )


def _new_training(task: str, given: dict):
    """The PPOConfig of a new run: the task's preset, the options given, and what follows from them."""
    from .control.ppo import TASKS, PPOConfig

    values = {**{f.name: f.default for f in fields(PPOConfig)}, **TASKS[task], **given}
    onset, budget, followup = values["stim_onset_s"], values["stim_budget_s"], values["followup_s"]
    _require_option(not followup or budget is not None, "--followup", "0 unless --budget is given", followup)
    episode = values["episode_s"]
    if followup:  # the phases fill the episode unless --episode says otherwise
        end = onset + budget + followup
        episode = given.get("episode_s", end)
        _require_option(
            episode >= end - 1e-9, "--episode", f"at least --onset + --budget + --followup = {end:g} s", episode
        )
    _require_option(onset < episode, "--onset", f"less than --episode ({episode:g} s)", onset)
    batch = values["num_envs"] * values["windows_per_batch"]
    frames = given.get("total_frames", batch * 40)
    _require_option(
        frames >= batch,
        "--frames",
        f"at least one iteration's --networks x --windows-per-batch = {batch} windows",
        frames,
    )
    return PPOConfig.for_task(
        task,
        **{
            **given,
            "episode_s": episode,
            "total_frames": frames,
            "minibatch_size": min(values["minibatch_size"], batch),
        },
    )


EVALUATION_TASKS = {  # evaluate --task: the episode every controller is evaluated on (s)
    "acute": {"duration": 10.0, "onset": 1.0, "budget": None, "followup": 0.0, "latch_ends_stimulation": False},
    # the lasting task's protocol from the published initial state: the published 2 s onset, stimulation until
    # the latch (for every controller) or 40 s, then 5 s with every stimulator off
    "lasting": {
        "duration": 2.0 + LASTING_BUDGET_S + LASTING_FOLLOWUP_S,
        "onset": 2.0,
        "budget": LASTING_BUDGET_S,
        "followup": LASTING_FOLLOWUP_S,
        "latch_ends_stimulation": True,
    },
}


def evaluate(args: argparse.Namespace) -> None:
    num_e, num_i = _network_size(args)
    task = EVALUATION_TASKS[args.task]
    duration, onset, budget, followup = (
        task[k] if getattr(args, k) is None else getattr(args, k) for k in ("duration", "onset", "budget", "followup")
    )
    _require_option(not followup or budget is not None, "--followup", "0 unless --budget is given", followup)
    if args.duration is None and followup:
        duration = onset + budget + followup  # the phases fill the episode
    _require_option(onset < duration, "--onset", f"less than --duration ({duration:g} s)", onset)
    sweep_path = shipped_sweep() if args.sweep == "shipped" else Path(args.sweep)
    device = _device(args.device)
    with _refusing():
        controllers = {
            name: make_controller(name, **({"sweep": sweep_path} if name.startswith("ftsts-tuned") else {}))
            for name in args.controllers
        }
        policies = _policies(args.policy)
        if policies:
            from .control.policy import PolicyController

            for name, path in policies.items():
                _require_option(
                    name not in controllers,
                    "--policy",
                    f"a name other than the controllers' ({', '.join(controllers)})",
                    name,
                )
                controllers[name] = PolicyController(path, name=name)
        # the tuned baselines read the sweep; its grid joins the energy plane
        sweep_input = sweep_file(sweep_path) if any(n.startswith("ftsts-tuned") for n in controllers) else None
        inputs = [*policies.values(), *([sweep_input] if sweep_input else [])]
        config = EvaluationConfig(
            seeds=tuple(range(args.first_seed, args.first_seed + args.seeds)),
            network=MODELS[args.model].network(NetworkParams(num_e=num_e, num_i=num_i)),
            duration_s=duration,
            stim_onset_s=onset,
            stim_budget_s=budget,
            followup_s=followup,
            latch_ends_stimulation=task["latch_ends_stimulation"],
            latch_mv=args.latch,
            synchrony=args.synchrony,
            dtype=args.dtype,
        )
    with claim(args.out, overwrite=args.overwrite, inputs=inputs) as out:
        with _refusing():  # a backend that cannot run here is refused as the networks are built, before any window
            result = run_evaluation(controllers, config, device=device, backend=args.backend, progress=not args.quiet)
        written = result.save(out)
        if policies:  # the (first) policy's training curves belong to the report
            log = Path(next(iter(policies.values()))).with_name("train_log.csv")
            if log.is_file():
                shutil.copyfile(log, out / "train_log.csv")
        if sweep_input is not None:
            shutil.copyfile(sweep_input, out / "sweep.json")
        figures = plot_run(out)
    if not args.quiet:
        print(result.markdown())
        print(
            f"wrote {', '.join(str(p) for p in written.values())} and {len(figures)} figures in {out} "
            f"({result.wall_time_s:.1f} s wall)"
        )


def sweep(args: argparse.Namespace) -> None:
    from .sweep import SweepConfig, run_sweep

    num_e, num_i = _network_size(args)
    device = _device(args.device)
    with _refusing():
        config = SweepConfig(
            amplitudes_mv=tuple(args.amplitudes),
            frequencies_hz=tuple(args.frequencies),
            pulse_widths_us=tuple(args.pulse_widths),
            seeds=tuple(range(args.first_seed, args.first_seed + args.seeds)),
            network=MODELS[args.model].network(NetworkParams(num_e=num_e, num_i=num_i)),
            stim_onset_s=args.onset,
            stim_budget_s=args.budget,
            followup_s=args.followup,
            latch_mv=args.latch,
            latch_fraction=args.latch_fraction,
            dtype=args.dtype,
        )
    with claim(args.out, overwrite=args.overwrite) as out:
        with _refusing():  # a backend that cannot run here is refused as the networks are built
            result = run_sweep(config, device=device, backend=args.backend, progress=not args.quiet)
        written = result.save(out)
        figure = plot_sweep(result, out)
    if not args.quiet:
        for bounds, point in result.tuned().items():
            if point is None:
                print(
                    f"ftsts-tuned ({bounds} bounds): no point latched on >= {config.latch_fraction:.0%} of its networks"
                )
                continue
            m = point["metrics"]
            print(
                f"ftsts-tuned ({bounds} bounds): {point['amplitude_mv']:g} mV, {point['frequency_hz']:.4g} Hz, "
                f"{point['pulse_width_us']:g} us; latched {m['latch_reached']['mean']:.0%} after "
                f"{m['time_to_latch_s']['mean']:.1f} s, energy {m['energy_mv2ms']['mean']:.3g} mV^2 ms, "
                f"follow-up R {m['kop_followup']['mean']:.3f}"
            )
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
    except (OSError, ValueError) as error:  # a missing folder; damaged files (plot_run names them)
        raise UsageError(f"cannot draw the figures of {args.run_dir}: {error}") from None
    if not args.quiet:
        print("\n".join(str(p) for p in figures))


def _add_size_options(command: argparse.ArgumentParser, default: str | None, model: str | None = "paper") -> None:
    """--size, --num-e, --num-i, --model (default ``model``) and --backend."""
    command.add_argument("--size", choices=sorted(SIZES), default=default, help="network size: 1600/400 or 160/40")
    command.add_argument("--num-e", type=COUNT, default=None, help="excitatory neurons (overrides --size)")
    command.add_argument(
        "--num-i", type=COUNT, default=None, help="inhibitory neurons, only with --num-e (default num_e / 4)"
    )
    command.add_argument(
        "--model",
        choices=sorted(MODELS),
        default=model,
        help="model variant: paper (the paper's equations, default) or published-code (the authors' "
        "code as published: stimulation-locked noise of 10 mV on E while stimulating, "
        "plasticity from 80 ms; simulate: stimulation from 1.98 s; docs: Model)",
    )
    command.add_argument(
        "--backend",
        choices=BACKEND_CHOICES,
        default="auto",
        help="simulator backend (same results whichever; default auto: triton on CUDA and fused on "
        "the CPU where they can run, else eager): 'compiled' fuses kernels with "
        "torch.compile (worth its ~1 min of compilation on runs of several minutes); 'fused' "
        "runs each Euler step as one C++ loop per network (CPU only; the fastest there); "
        "'triton' runs many Euler steps per kernel launch (CUDA only; the fastest there, "
        "window statistics equal to float32 rounding)",
    )


def _add_output_options(cmd: argparse.ArgumentParser, out: str, what: str, dtype: bool = True) -> None:
    """--dtype (simulator precision), --device, --out and --quiet, alike for every command that simulates."""
    if dtype:
        cmd.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    cmd.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    cmd.add_argument("--out", default=out, help=f"output folder ({what}); one run per folder")
    cmd.add_argument(
        "--overwrite",
        action="store_true",
        help="delete the files of an earlier run in --out first (a used folder is refused otherwise)",
    )
    cmd.add_argument("--quiet", action="store_true", help="no progress bar or report")


def _add_train_parser(commands) -> None:
    cmd = commands.add_parser(
        "train",
        help="train a PPO controller on batched networks (torchrun-aware)",
        description="Train a PPO controller on batched networks (torchrun-aware). Options left unset take the "
        "task's values; with --resume, the checkpoint's.",
    )
    _add_size_options(cmd, default=None, model=None)
    cmd.add_argument(
        "--task",
        choices=["acute", "lasting"],
        default=None,
        help="acute (default): suppress synchrony during 5 s episodes (NeuroLoop's prototype task); "
        "lasting: stimulate until the latch (mean J_I*w < 75 mV) or a 40 s budget, then 5 s off, "
        "credited for lowering the weight, charged for energy and follow-up synchrony",
    )
    cmd.add_argument(
        "--networks", type=COUNT, default=None, help="networks simulated in parallel (per rank; default 64)"
    )
    cmd.add_argument("--episode", type=EPISODE_S, default=None, help="episode length, simulated s (acute: 5)")
    cmd.add_argument(
        "--onset", type=ONSET_S, default=None, help="s after reset before the agent may stimulate (acute: 0)"
    )
    cmd.add_argument(
        "--budget",
        type=EPISODE_S,
        default=None,
        help="s of stimulation at most after the onset (acute: the whole episode, lasting: 40)",
    )
    cmd.add_argument(
        "--start-weights",
        type=_start_weights,
        default=None,
        metavar="LOW,HIGH|published",
        help="each training episode's mean J_I*w drawn in [LOW, HIGH] mV, or 'published': the published "
        "initial state, as in evaluation (acute: published, lasting: 80,260)",
    )
    cmd.add_argument(
        "--followup",
        type=ONSET_S,
        default=None,
        help="s with the stimulator off after the stimulation phase (acute: 0, lasting: 5); with a "
        "follow-up, --episode defaults to onset + budget + follow-up",
    )
    cmd.add_argument(
        "--windows-per-batch",
        type=COUNT,
        default=None,
        help="20 ms windows per network per iteration (acute: 25, lasting: 50)",
    )
    cmd.add_argument(
        "--frames",
        type=COUNT,
        default=None,
        help="total windows summed over all networks of all ranks; an iteration takes networks x "
        "windows-per-batch x ranks of them (default: networks x windows-per-batch x 40, i.e. 40 "
        "iterations on one process, 40 / N each under torchrun with N ranks)",
    )
    cmd.add_argument("--epochs", type=COUNT, default=None, help="PPO epochs per rollout (default 4)")
    cmd.add_argument("--minibatch", type=COUNT, default=None, help="windows per gradient step (default 400)")
    cmd.add_argument("--lr", type=float, default=None, help="Adam learning rate (default 3e-4)")
    cmd.add_argument("--lr-schedule", choices=["constant", "linear", "cosine"], default=None, help="(default linear)")
    cmd.add_argument("--gamma", type=float, default=None, help="discount per window (acute: 0.98, lasting: 0.99)")
    cmd.add_argument(
        "--synchrony-weight", type=float, default=None, help="reward penalty on Kuramoto R (acute: 1, lasting: 0)"
    )
    cmd.add_argument(
        "--coupling-weight",
        type=float,
        default=None,
        help="reward penalty on mean E->I weight (acute: 0.5, lasting: 0)",
    )
    cmd.add_argument(
        "--energy-weight",
        type=float,
        default=None,
        help="reward penalty on stimulation energy (acute: 0.2, lasting: 0.1)",
    )
    cmd.add_argument(
        "--latch",
        type=POSITIVE,
        default=None,
        help="the stimulation phase ends once mean J_I*w < this, mV (acute: no latch, lasting: 75)",
    )
    cmd.add_argument(
        "--weight-credit",
        type=float,
        default=None,
        help="reward per unit fall of the mean E->I weight fraction (acute: 0, lasting: 20)",
    )
    cmd.add_argument(
        "--followup-weight",
        type=float,
        default=None,
        help="reward penalty on Kuramoto R in the follow-up (acute: 0, lasting: 0.05)",
    )
    cmd.add_argument(
        "--latch-bonus",
        type=float,
        default=None,
        help="reward in the window that trips the latch (default 0)",
    )
    cmd.add_argument(
        "--max-pulse-width",
        type=_checked(float, "a number of us in (50, 2777]", lambda v: 50 < v <= 1e6 / (2 * 180)),
        default=None,
        help="top of the agent's phase-width range, us (default 500, NeuroLoop's box; the published FTSTS phase: 1000)",
    )
    cmd.add_argument(
        "--imitate",
        choices=sorted(CONTROLLERS),
        default=None,
        help="clone this controller (actor and critic) before PPO starts; docs: lasting task (default: a random start)",
    )
    cmd.add_argument(
        "--imitate-params",
        type=_parameter,
        nargs="+",
        default=None,
        metavar="NAME=VALUE",
        help="parameters of the controller to imitate, e.g. amplitude=20 pulse_width=1000 (default: its own)",
    )
    cmd.add_argument(
        "--imitation-windows",
        type=COUNT,
        default=None,
        help="windows per network the controller to imitate drives (default 3000)",
    )
    cmd.add_argument(
        "--imitation-scale",
        type=POSITIVE,
        default=None,
        help="the cloned policy's Gaussian scale before tanh: PPO's initial exploration (default 0.3)",
    )
    cmd.add_argument("--hidden", type=COUNT, nargs="+", default=None, help="MLP widths (default 64 64)")
    cmd.add_argument("--seed", type=NATURAL, default=None, help="(default 0)")
    cmd.add_argument("--checkpoint-every", type=COUNT, default=None, help="iterations between checkpoints (default 10)")
    cmd.add_argument(
        "--resume",
        default=None,
        help="continue from this checkpoint.pt: in its own folder the run goes on, elsewhere it is "
        "copied with its log; options that change its configuration are refused unless named "
        "in --allow-change (--frames and --checkpoint-every always may)",
    )
    cmd.add_argument(
        "--allow-change",
        nargs="+",
        default=(),
        metavar="FIELD",
        help="with --resume: configuration fields the options may change, by their names in the "
        "checkpoint (e.g. weight_credit lr num_envs)",
    )
    _add_output_options(cmd, "runs/train", "checkpoint.pt, train_log.csv", dtype=False)
    cmd.set_defaults(handler=train)


def _add_evaluate_parser(commands) -> None:
    cmd = commands.add_parser(
        "evaluate",
        help="every controller on the same held-out networks, table and figures",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _add_size_options(cmd, default="small")
    cmd.add_argument(
        "--controllers", nargs="*", choices=sorted(CONTROLLERS), default=list(CONTROLLERS), help="baseline controllers"
    )
    cmd.add_argument(
        "--policy",
        nargs="*",
        default=["shipped"],
        help="PPO checkpoints to evaluate, each a checkpoint.pt, 'shipped' (the packaged acute-task "
        "policy, small network) or 'shipped-full' (the packaged lasting-task policy, full "
        "network), optionally as NAME=...; unnamed ones are 'ppo', 'ppo-2', ...; '' = none",
    )
    cmd.add_argument(
        "--sweep",
        default="shipped",
        help="sweep.json (or its folder) whose tuned points the ftsts-tuned controllers use; "
        "'shipped' = the packaged full-size sweep",
    )
    cmd.add_argument("--seeds", type=COUNT, default=32, help="held-out networks per controller")
    cmd.add_argument("--first-seed", type=NATURAL, default=1_000_000, help="first held-out seed (training uses fewer)")
    cmd.add_argument(
        "--task",
        choices=sorted(EVALUATION_TASKS),
        default="acute",
        help="the episode: acute = 10 s, stimulation from 1 s; lasting = stimulation from 2 s until "
        "the latch (mean J_I*w < 75 mV, for every controller) or 40 s, then 5 s with every "
        "stimulator off (47 s). Options left unset below take the task's values",
    )
    cmd.add_argument("--duration", type=EPISODE_S, default=None, help="episode length, simulated s")
    cmd.add_argument("--onset", type=ONSET_S, default=None, help="s without stimulation before controllers act")
    cmd.add_argument("--budget", type=EPISODE_S, default=None, help="s of stimulation at most after the onset")
    cmd.add_argument(
        "--followup",
        type=ONSET_S,
        default=None,
        help="s at the end with every stimulator off (needs --budget; duration = onset + budget + follow-up)",
    )
    cmd.add_argument(
        "--latch",
        type=POSITIVE,
        default=75.0,
        help="mean J_I*w, mV, below which a network counts as latched (time_to_latch_s); with --task "
        "lasting every controller's stimulation ends there",
    )
    cmd.add_argument(
        "--synchrony",
        choices=["kop", "chi"],
        default="kop",
        help="observation feature 0 (a PPO policy needs the measure it was trained with)",
    )
    _add_output_options(cmd, "runs/evaluate", "tables, traces, figures")
    cmd.set_defaults(handler=evaluate)

    cmd = commands.add_parser("plot", help="redraw every figure of a run folder (training and evaluation)")
    cmd.add_argument("run_dir", help="folder written by train or evaluate")
    cmd.add_argument("--quiet", action="store_true", help="do not list the figures")
    cmd.set_defaults(handler=plot)


def _add_sweep_parser(commands) -> None:
    from .sweep import SweepConfig

    defaults = SweepConfig.__dataclass_fields__
    cmd = commands.add_parser(
        "sweep",
        help="the FTSTS waveform over a grid of amplitude x frequency x phase width (the tuned open-loop baseline)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _add_size_options(cmd, default="full")
    cmd.add_argument(
        "--amplitudes", type=POSITIVE, nargs="+", default=list(defaults["amplitudes_mv"].default), help="amplitudes, mV"
    )
    cmd.add_argument(
        "--frequencies",
        type=POSITIVE,
        nargs="+",
        default=list(defaults["frequencies_hz"].default),
        help="pulse frequencies, Hz",
    )
    cmd.add_argument(
        "--pulse-widths",
        type=POSITIVE,
        nargs="+",
        default=list(defaults["pulse_widths_us"].default),
        help="phase widths, us (points whose two phases exceed the period are left out)",
    )
    seeds = defaults["seeds"].default
    cmd.add_argument("--seeds", type=COUNT, default=len(seeds), help="networks per point")
    cmd.add_argument(
        "--first-seed",
        type=NATURAL,
        default=seeds[0],
        help="first network seed (training uses seeds below 1,000,000, evaluation 1,000,000 on)",
    )
    cmd.add_argument(
        "--onset", type=ONSET_S, default=defaults["stim_onset_s"].default, help="s without stimulation first"
    )
    cmd.add_argument(
        "--budget", type=EPISODE_S, default=defaults["stim_budget_s"].default, help="s of stimulation at most"
    )
    cmd.add_argument(
        "--followup", type=ONSET_S, default=defaults["followup_s"].default, help="s with the stimulator off at the end"
    )
    cmd.add_argument(
        "--latch",
        type=POSITIVE,
        default=defaults["latch_mv"].default,
        help="stimulation ends once mean J_I*w < this, mV",
    )
    cmd.add_argument(
        "--latch-fraction",
        type=POSITIVE,
        default=defaults["latch_fraction"].default,
        help="a tuned point must latch on at least this fraction of its networks",
    )
    _add_output_options(cmd, "runs/sweep", "sweep.json, sweep.csv, sweep.png")
    cmd.set_defaults(handler=sweep)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neuroloop", description="Closed-loop DBS on batched FTSTS networks.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_package_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    sim = commands.add_parser(
        "simulate",
        help="open-loop FTSTS simulation (the published protocol)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _add_size_options(sim, default="full")
    sim.add_argument("--duration", type=EPISODE_S, default=25.0, help="simulated seconds")
    sim.add_argument(
        "--onset", type=ONSET_S, default=None, help="stimulation onset, s (paper: 2, published-code: 1.98)"
    )
    sim.add_argument(
        "--amplitude",
        type=_checked(float, f"a number of mV in [0, {MAX_AMPLITUDE_MV:g}]", lambda v: 0 <= v <= MAX_AMPLITUDE_MV),
        default=100.0,
        help="pulse amplitude, mV",
    )
    sim.add_argument("--waveform", choices=["ftsts", "swapped", "none"], default="ftsts")
    sim.add_argument(
        "--latch",
        type=_latch,
        default="published",
        help="switch stimulation off for good once mean J_I*w crosses this, mV (negative: never; "
        "published: the waveform's published threshold, 75 for ftsts, 125 for swapped)",
    )
    sim.add_argument("--j-i", type=float, default=260.0, help="E->I strength J_I, mV (published swapped run: 75)")
    sim.add_argument("--synaptic-input", choices=["published", "summed"], default="published")
    sim.add_argument("--noise", choices=["published", "euler_maruyama"], default="published")
    sim.add_argument("--networks", type=COUNT, default=1, help="independent networks (seeds seed..seed+n-1)")
    sim.add_argument("--seed", type=NATURAL, default=0)
    _add_output_options(sim, "runs/simulate", "summary.json, open_loop.png")
    sim.set_defaults(handler=simulate)
    _add_train_parser(commands)
    _add_evaluate_parser(commands)
    _add_sweep_parser(commands)
    add_bench_subcommand(commands)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except (UsageError, RunFolderError, CheckpointError) as error:
        exit_with(error)


if __name__ == "__main__":
    main()
