"""The throughput harness: env-steps/s, simulated s per wall s and memory per network.

Unit: one env-step is one 20 ms decision window (200 Euler steps of 0.1 ms)
of one network; throughput is summed over the batch. For every requested
backend (``eager``, ``compiled``, ``fused``, ``triton``: see :class:`~neuroloop_gpu.network.NetworkBatch`),
target (``simulator``: :class:`~neuroloop_gpu.network.NetworkBatch` directly;
``vector-env``: the gymnasium :class:`~neuroloop_gpu.envs.FTSTSVectorEnv`;
``torchrl-env``: :class:`~neuroloop_gpu.envs.FTSTSTorchEnv`), network size and
batch size, the harness builds the batch, runs ``warmup`` untimed windows,
then ``repeats`` timed blocks of ``windows`` windows (CUDA synchronised
around each block) and records every block's time, the min and the median.
Peers (:mod:`neuroloop_gpu.bench.peers`) run one network each on the same
workload (:mod:`neuroloop_gpu.bench.workload`), and the ratios ours / peer
are computed from the same run. Memory: :mod:`neuroloop_gpu.bench.measure`.

    from neuroloop_gpu.bench import BenchConfig, run_benchmarks
    doc = run_benchmarks(BenchConfig(device="cpu", sizes=("small",), batches=(1, 16)), out="benchmarks/results")
"""

from __future__ import annotations

import gc
import hashlib
import inspect
import json
import os
import platform
import re
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..config import SimConfig, require
from ..envs import FTSTSVectorEnv
from ..network import BACKENDS, NetworkBatch
from ..stimulus import PulseTrain
from .measure import MemoryProbe, summarize_times, time_windows
from .peers import expand_peers, run_peer
from .workload import (
    GPU_TARGETS,
    STIM_AMPLITUDE_MV,
    STIM_FREQUENCY_HZ,
    STIM_PULSE_WIDTH_US,
    WINDOW_MS,
    WORKLOAD,
    Size,
    parse_size,
)

SCHEMA = "neuroloop-bench/1"
TARGETS = ("simulator", "vector-env", "torchrl-env")
DTYPES = {"float32": torch.float32, "float64": torch.float64}
DEFAULT_BATCHES = {"cpu": (1, 16), "cuda": (1, 64, 1024, 4096)}
DEFAULT_WINDOWS = {"cpu": 1, "cuda": 10}
_ENV_SIM = SimConfig(duration=5000.0, sample_duration=WINDOW_MS)  # NeuroLoop's 5 s training episodes


@dataclass(frozen=True)
class BenchConfig:
    """What to measure. ``batches`` / ``windows`` default by device type (see ``DEFAULT_*``).

    ``backends`` are swept like the batch sizes, for every target.
    ``sim_options`` are extra keyword arguments for ``NetworkBatch`` (e.g.
    ``synapses="dense"``); they apply to the ``simulator`` target only, since
    the environments build their own batch.
    """

    device: str = "cpu"  # "cpu", "cuda", "cuda:N" or "auto"
    sizes: Sequence[str] = ("small", "full")  # "small", "full" or "NE/NI"
    batches: Sequence[int] | None = None  # networks per batch
    windows: int | None = None  # timed windows per repeat
    repeats: int = 3
    warmup: int = 1  # untimed windows before the repeats
    targets: Sequence[str] = TARGETS
    backends: Sequence[str] = ("eager",)  # simulator backends, each timed for every target and batch
    peers: Sequence[str] = ("reference",)
    dtype: str = "float32"
    synaptic_input: str = "published"  # NetworkParams.synaptic_input of our targets and the reference peer
    seed: int = 0
    sim_options: Mapping[str, object] = field(default_factory=dict)
    brian2_python: str | None = None  # interpreter with Brian2 (default $NEUROLOOP_BRIAN2_PYTHON or this one)
    brian2_threads: int = 1  # OpenMP threads of cpp_standalone
    brian2_windows: int = 50  # Brian2 peers time at least this many windows per run() call
    threads: int | None = None  # torch CPU threads (default: torch's choice)
    progress: bool = True

    def __post_init__(self) -> None:
        sizes = tuple(self.sizes)
        require(len(sizes) > 0, "sizes", "at least one size", sizes)
        for size in sizes:
            parse_size(size)
        if self.batches is not None:
            batches = tuple(self.batches)
            require(
                len(batches) > 0 and all(_is_int(b) and b >= 1 for b in batches),
                "batches",
                "one or more integers >= 1 (networks per batch)",
                list(batches),
            )
        for name in ("windows", "threads"):
            value = getattr(self, name)
            require(value is None or (_is_int(value) and value >= 1), name, "an integer >= 1", value)
        require(_is_int(self.repeats) and self.repeats >= 1, "repeats", "an integer >= 1", self.repeats)
        require(_is_int(self.warmup) and self.warmup >= 0, "warmup", "an integer >= 0", self.warmup)
        require(
            _is_int(self.brian2_threads) and self.brian2_threads >= 0,
            "brian2_threads",
            "an integer >= 0",
            self.brian2_threads,
        )
        require(
            _is_int(self.brian2_windows) and self.brian2_windows >= 1,
            "brian2_windows",
            "an integer >= 1",
            self.brian2_windows,
        )
        targets = tuple(self.targets)
        require(all(t in TARGETS for t in targets), "targets", f"among {', '.join(TARGETS)}", list(targets))
        peers = expand_peers(self.peers)  # checks them too
        require(len(targets) > 0 or len(peers) > 0, "targets", "at least one target or peer", list(targets))
        backends = tuple(self.backends)
        require(
            len(backends) > 0 and all(b in BACKENDS for b in backends),
            "backends",
            f"one or more of {', '.join(BACKENDS)}",
            list(backends),
        )
        require(self.dtype in DTYPES, "dtype", "'float32' or 'float64'", self.dtype)
        require(
            self.synaptic_input in ("published", "summed"),
            "synaptic_input",
            "'published' or 'summed'",
            self.synaptic_input,
        )
        require(
            isinstance(self.device, str) and re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device) is not None,
            "device",
            "'auto', 'cpu', 'cuda' or 'cuda:N'",
            self.device,
        )
        require(
            isinstance(self.sim_options, Mapping), "sim_options", "a mapping of NetworkBatch keywords", self.sim_options
        )


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


# ------------------------------------------------------------------ environment
def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available (use device='cpu')")
    if device.type == "cuda" and device.index is not None:
        count = torch.cuda.device_count()
        require(device.index < count, "device", f"'cuda' or 'cuda:N' with N < {count} (GPUs here)", name)
    return device


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu: {_cpu_model()} ({torch.get_num_threads()} threads)"


def device_slug(doc: Mapping) -> str:
    """A file-name-safe device name: ``cpu`` or ``cuda-<gpu name>``."""
    if doc["device_type"] == "cpu":
        return "cpu"
    gpu = doc["environment"].get("gpu") or "gpu"
    return "cuda-" + re.sub(r"[^a-z0-9]+", "-", gpu.lower()).strip("-")


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], capture_output=True, text=True, timeout=10, cwd=Path(__file__).resolve().parents[2]
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def source_digest(package: Path = Path(__file__).resolve().parents[1]) -> str:
    """SHA-256 of the package's source files (paths and contents, sorted): names the code that ran
    even where the git metadata is stale or missing (a copied working tree, an installed wheel)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in package.rglob("*") if p.suffix in (".py", ".cpp", ".h") and p.is_file()):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def environment_info(device: torch.device) -> dict:
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": None,
        "source_sha256": source_digest(),
    }
    status = _git("status", "--porcelain", "--untracked-files=no")
    info["git_dirty"] = None if status is None else bool(status)
    try:
        with open("/proc/loadavg") as handle:
            info["load_average_1min_at_start"] = float(handle.read().split()[0])
    except OSError:
        pass
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(
            cuda=torch.version.cuda,
            gpu=props.name,
            gpu_memory_bytes=props.total_memory,
            gpu_multiprocessors=props.multi_processor_count,
        )
    return info


# ---------------------------------------------------------------------- targets
def _simulator_case(
    size: Size, batch: int, config: BenchConfig, device: torch.device, dtype: torch.dtype, backend: str
):
    params = size.params(synaptic_input=config.synaptic_input)
    net = NetworkBatch(
        batch,
        params,
        SimConfig(sample_duration=WINDOW_MS, seed=config.seed),
        device=device,
        dtype=dtype,
        backend=backend,
        **dict(config.sim_options),
    )
    train = PulseTrain.constant(batch, STIM_AMPLITUDE_MV, STIM_FREQUENCY_HZ, STIM_PULSE_WIDTH_US, device=device)
    sums = torch.zeros(3, dtype=torch.float64, device=device)
    count = [0]

    def step() -> None:
        stats = net.run_window(train, validate=False).stats
        sums.add_(torch.stack((stats.rate_e.mean(), stats.rate_i.mean(), stats.kop.mean())).to(torch.float64))
        count[0] += 1

    def activity() -> dict:
        rate_e, rate_i, kop = (sums / max(1, count[0])).tolist()
        return {
            "simulated_s": count[0] * WINDOW_MS / 1000.0,
            "rate_e_hz": rate_e,
            "rate_i_hz": rate_i,
            "kop_causal": kop,
            "mean_weight_mv": float(net.mean_weight_mv().mean()),
        }

    return step, net.bytes_per_network, activity


def _vector_env_case(
    size: Size, batch: int, config: BenchConfig, device: torch.device, dtype: torch.dtype, backend: str
):
    env = FTSTSVectorEnv(
        batch, _ENV_SIM, size.params(synaptic_input=config.synaptic_input), device=device, dtype=dtype, backend=backend
    )
    env.reset(seed=config.seed)
    rng = np.random.default_rng(config.seed)

    def step() -> None:
        env.step(rng.uniform(-1.0, 1.0, (batch, 3)).astype(np.float32))

    return step, _env_bytes(env), None


def _torchrl_env_case(
    size: Size, batch: int, config: BenchConfig, device: torch.device, dtype: torch.dtype, backend: str
):
    from ..envs.torchrl_env import FTSTSTorchEnv  # TorchRL only where this target runs (seconds to import)

    env = FTSTSTorchEnv(
        batch,
        _ENV_SIM,
        size.params(synaptic_input=config.synaptic_input),
        device=device,
        dtype=dtype,
        backend=backend,
        check_actions=False,
    )
    env.set_seed(config.seed)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    state = {"td": env.reset()}

    def step() -> None:
        td = state["td"]
        td["action"] = torch.rand(batch, 3, generator=generator, device=device) * 2 - 1
        state["td"] = env.step_and_maybe_reset(td)[1]

    return step, _env_bytes(env), None


def check_sim_options(options: Mapping[str, object]) -> None:
    """ValueError for a keyword that ``NetworkBatch`` does not take (before anything is built)."""
    parameters = inspect.signature(NetworkBatch.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    taken = {"self", "num_networks", "params", "sim", "device", "dtype", "backend"}
    allowed = sorted(
        name
        for name, p in parameters.items()
        if name not in taken and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    )
    for key in options:
        require(key in allowed, "sim_options", f"NetworkBatch keywords ({', '.join(allowed)})", key)


def _env_bytes(env):
    net = getattr(getattr(env, "core", None), "net", None)
    return net.bytes_per_network if net is not None else (lambda: None)


CASES = {"simulator": _simulator_case, "vector-env": _vector_env_case, "torchrl-env": _torchrl_env_case}


def measure_target(
    target: str, size: Size, batch: int, config: BenchConfig, device: torch.device, backend: str = "eager"
) -> dict:
    """Build one batch of ``target``, time it and measure its memory; one result record."""
    windows = config.windows or DEFAULT_WINDOWS[device.type]
    record = {
        "target": target,
        "backend": backend,
        "size": size.name,
        "num_e": size.num_e,
        "num_i": size.num_i,
        "batch": batch,
        "device": str(device),
        "dtype": config.dtype,
        "windows": windows,
        "repeats": config.repeats,
        "warmup": config.warmup,
    }
    if target == "simulator" and config.sim_options:
        record["sim_options"] = dict(config.sim_options)
    probe = MemoryProbe(device).start()
    try:
        step, persistent, activity = CASES[target](size, batch, config, device, DTYPES[config.dtype], backend)
        times = time_windows(step, windows, config.repeats, config.warmup, device)
    except torch.cuda.OutOfMemoryError as error:  # a batch too large for the GPU: record it, go on
        gc.collect()
        torch.cuda.empty_cache()
        return {**record, "error": f"CUDA out of memory: {str(error).splitlines()[0]}"}
    peak = probe.peak_bytes()
    persistent_bytes = persistent()
    record.update(summarize_times(times, batch, WINDOW_MS))
    record["memory"] = {
        "peak_bytes_per_network": None if peak is None else peak / batch,
        "persistent_bytes_per_network": persistent_bytes,
        "method": probe.method,
    }
    if activity is not None:
        record["activity"] = activity()
    return record


# ------------------------------------------------------------------------ ratios
def compute_ratios(results: Sequence[Mapping], peers: Sequence[Mapping]) -> list[dict]:
    """Ours / peer env-steps/s for every (target, size) that has a measured peer of the same network size.

    "best" is our fastest batch size and backend (median repeat), "batch1" is the fastest backend's one network
    against one network. Results or peers with an error or skip are left out.
    """
    ratios = []
    for peer in peers:
        if "env_steps_per_s" not in peer:
            continue
        ours_by_target: dict[str, list[Mapping]] = {}
        for row in results:
            if "env_steps_per_s" in row and (row["num_e"], row["num_i"]) == (peer["num_e"], peer["num_i"]):
                ours_by_target.setdefault(row["target"], []).append(row)
        for target, rows in ours_by_target.items():
            best = max(rows, key=lambda r: r["env_steps_per_s"])
            single = max((r for r in rows if r["batch"] == 1), key=lambda r: r["env_steps_per_s"], default=None)
            ratios.append(
                {
                    "target": target,
                    "size": peer["size"],
                    "device": best["device"],
                    "peer": peer["peer"],
                    "peer_env_steps_per_s": peer["env_steps_per_s"],
                    "ours_best_env_steps_per_s": best["env_steps_per_s"],
                    "ours_best_batch": best["batch"],
                    "ours_best_backend": best.get("backend", "eager"),
                    "ratio_best": best["env_steps_per_s"] / peer["env_steps_per_s"],
                    "ours_batch1_env_steps_per_s": None if single is None else single["env_steps_per_s"],
                    "ratio_batch1": None if single is None else single["env_steps_per_s"] / peer["env_steps_per_s"],
                }
            )
    return ratios


# ------------------------------------------------------------------------- run
def run_benchmarks(config: BenchConfig, out: str | Path | None = None, tag: str | None = None) -> dict:
    """Measure everything ``config`` asks for; write JSON and PNG into ``out`` when given.

    Returns the result document (also what the JSON holds): ``schema``,
    ``created``, ``device``, ``device_type``, ``environment`` (versions, git
    commit, threads), ``config``, ``workload``, ``results`` (one record per
    target x size x batch with raw timings), ``peers`` (one record per peer
    x size), ``ratios`` (:func:`compute_ratios`) and, when written, ``files``.
    """
    device = resolve_device(config.device)
    check_sim_options(config.sim_options)
    if out is not None:  # before the sweep: a folder that cannot be written would lose every measurement
        try:
            Path(out).mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ValueError(f"out must be a folder that can be written, got {str(out)!r} ({error})") from None
        require(os.access(out, os.W_OK), "out", "a folder that can be written", str(out))
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    sizes = [parse_size(s) for s in config.sizes]
    batches = tuple(config.batches) if config.batches is not None else DEFAULT_BATCHES[device.type]
    peers = expand_peers(config.peers)
    cases = [(t, s, b, k) for s in sizes for t in config.targets for k in config.backends for b in batches]
    doc = {
        "schema": SCHEMA,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": describe_device(device),
        "device_type": device.type,
        "environment": environment_info(device),
        "config": {
            **asdict(config),
            "sizes": [s.name for s in sizes],
            "batches": list(batches),
            "windows": config.windows or DEFAULT_WINDOWS[device.type],
            "peers": list(peers),
            "targets": list(config.targets),
            "backends": list(config.backends),
            "sim_options": dict(config.sim_options),
        },
        "workload": WORKLOAD,
        "results": [],
        "peers": [],
    }
    started = time.perf_counter()
    _prime(config, device, sizes)
    with tqdm(
        total=len(cases) + len(peers) * len(sizes), desc="neuroloop bench", unit="case", disable=not config.progress
    ) as bar:
        for target, size, batch, backend in cases:
            bar.set_postfix_str(f"{target} {backend} {size.name} B={batch}")
            row = measure_target(target, size, batch, config, device, backend)
            doc["results"].append(row)
            _release(device)
            if config.progress:
                tqdm.write(_result_line(row))
            bar.update()
        for size in sizes:
            for peer in peers:
                bar.set_postfix_str(f"peer {peer} {size.name}")
                row = run_peer(
                    peer,
                    size,
                    windows=doc["config"]["windows"],
                    repeats=config.repeats,
                    warmup=config.warmup,
                    seed=config.seed,
                    synaptic_input=config.synaptic_input,
                    brian2_windows=config.brian2_windows,
                    brian2_python=config.brian2_python,
                    brian2_threads=config.brian2_threads,
                )
                doc["peers"].append(row)
                _release(device)
                if config.progress:
                    tqdm.write(_result_line(row))
                bar.update()
    doc["wall_time_s"] = time.perf_counter() - started
    doc["ratios"] = compute_ratios(doc["results"], doc["peers"])
    if out is not None:
        doc["files"] = write_results(doc, out, tag)
    return doc


def _prime(config: BenchConfig, device: torch.device, sizes: Sequence[Size]) -> None:
    """One untimed window of every target and backend at the smallest size, so that one-off
    initialisation (lazy imports, kernel selection, allocator pools, compiling the shape-generic
    kernels) is not charged to the first measured case; shape-specific compilation falls in each
    case's warm-up window."""
    smallest = min(sizes, key=lambda s: s.num_e + s.num_i)
    for target in config.targets:
        for backend in config.backends:
            step = CASES[target](smallest, 1, config, device, DTYPES[config.dtype], backend)[0]
            step()
    _release(device)


def _release(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def write_results(doc: dict, out: str | Path, tag: str | None = None) -> dict:
    """Write ``throughput_<device>[_<tag>].json`` and ``.png`` into ``out``; returns their paths."""
    from .plot import plot_results

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"throughput_{device_slug(doc)}" + (f"_{re.sub(r'[^A-Za-z0-9._-]+', '-', tag)}" if tag else "")
    json_path, png_path = folder / f"{stem}.json", folder / f"{stem}.png"
    files = {"json": str(json_path), "plot": str(png_path)}
    json_path.write_text(json.dumps({**doc, "files": files}, indent=1, default=_json_default))
    plot_results([doc], png_path)
    return files


def _json_default(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, (torch.dtype, torch.device, Path)):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def load_results(paths) -> list[dict]:
    """Result documents from JSON files (files of another schema are skipped)."""
    docs = []
    for path in paths:
        data = json.loads(Path(path).read_text())
        if isinstance(data, dict) and data.get("schema") == SCHEMA:
            docs.append(data)
    return docs


def latest_results(docs: Sequence[Mapping]) -> list[Mapping]:
    """The newest document of each kind, in the order first seen: a kind is a device and the sweep it
    measured (targets, backends, sizes, batches, synaptic input, simulator options), so that a rerun
    supersedes the run it repeats while runs of other sweeps stay."""
    newest: dict[tuple, Mapping] = {}
    for doc in docs:
        c = doc["config"]
        kind = (
            device_slug(doc),
            *(
                json.dumps(c.get(name), sort_keys=True)
                for name in ("targets", "backends", "sizes", "batches", "synaptic_input", "sim_options")
            ),
        )
        if kind not in newest or doc["created"] > newest[kind]["created"]:
            newest[kind] = doc
    return list(newest.values())


# ---------------------------------------------------------------- issue targets
NEUROLOOP_ORIGINAL_ENV_STEPS = {"full": 1.2, "small": 36.0}  # issue 5: NeuroLoop's NumPy loop, one core, 2-core machine


def target_summary(docs: Sequence[Mapping]) -> list[dict]:
    """The throughput targets of issue 5, evaluated on whatever result documents are given.

    Each entry: ``target`` (words), ``value`` (measured, or None when no
    document covers it), ``goal``, ``met`` (bool or None) and ``source``.
    """

    def best(device_type: str, size: str, target: str = "simulator"):
        rows = [
            (r, d)
            for d in docs
            if d["device_type"] == device_type
            for r in d["results"]
            if r.get("target") == target and r.get("size") == size and "env_steps_per_s" in r
        ]
        return max(rows, key=lambda rd: rd[0]["env_steps_per_s"], default=(None, None))

    def ratio(device_type: str, size: str, peer: str):
        rows = [
            (r, d)
            for d in docs
            if d["device_type"] == device_type
            for r in d.get("ratios", [])
            if r["target"] == "simulator" and r["size"] == size and r["peer"] == peer
        ]
        return max(rows, key=lambda rd: rd[0]["ratio_best"], default=(None, None))

    def entry(target, value, goal, met, doc, unit=""):
        return {
            "target": target,
            "value": value,
            "goal": goal,
            "unit": unit,
            "met": None if value is None else bool(met(value)),
            "source": None if doc is None else doc["device"],
        }

    out = []
    row, doc = ratio("cpu", "full", "brian2-cpp")
    out.append(
        entry(
            "CPU full size, best batch / Brian2 cpp_standalone (same run)",
            None if row is None else row["ratio_best"],
            ">= 1",
            lambda v: v >= 1,
            doc,
            "x",
        )
    )
    row, doc = best("cpu", "small")
    out.append(
        entry(
            "CPU small size, best batch / NeuroLoop original (36 env-steps/s, issue figure)",
            None if row is None else row["env_steps_per_s"] / NEUROLOOP_ORIGINAL_ENV_STEPS["small"],
            ">= 100",
            lambda v: v >= 100,
            doc,
            "x",
        )
    )
    row, doc = ratio("cpu", "small", "reference")
    out.append(
        entry(
            "CPU small size, best batch / reference loop (same run)",
            None if row is None else row["ratio_best"],
            ">= 100",
            lambda v: v >= 100,
            doc,
            "x",
        )
    )
    for size, goal in GPU_TARGETS.items():
        row, doc = best("cuda", size)
        out.append(
            entry(
                f"GPU {size} size, best batch",
                None if row is None else row["env_steps_per_s"],
                f">= {goal:,}",
                lambda v, g=goal: v >= g,
                doc,
                "env-steps/s",
            )
        )
    rows = [
        (r, d)
        for d in docs
        for r in d["results"]
        if r.get("target") == "simulator"
        and r.get("size") == "full"
        and r.get("memory", {}).get("persistent_bytes_per_network")
    ]
    row, doc = min(rows, key=lambda rd: rd[0]["memory"]["persistent_bytes_per_network"], default=(None, None))
    out.append(
        entry(
            "memory per full-size network (persistent state, float32)",
            None if row is None else row["memory"]["persistent_bytes_per_network"] / 1e6,
            "<= 1.5",
            lambda v: v <= 1.5,
            doc,
            "MB",
        )
    )
    return out


# ----------------------------------------------------------------------- report
def _fmt(value, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def _mb(value) -> str:
    return "-" if value is None else f"{value / 1e6:.3f}"


def _result_line(row: Mapping) -> str:
    name = f"peer {row['peer']}" if "peer" in row else f"{row['target']} {row.get('backend', 'eager')}"
    head = f"{name:>20s} {row['size']:>9s} B={row['batch']:<6d}"
    if "env_steps_per_s" not in row:
        return f"{head} {row.get('error') or row.get('skipped')}"
    return (
        f"{head} {row['env_steps_per_s']:11.1f} env-steps/s  {row['simulated_s_per_wall_s']:9.3f} sim-s/wall-s  "
        f"{_mb(row['memory'].get('peak_bytes_per_network'))} MB/network peak"
    )


def format_report(doc: Mapping) -> str:
    """Plain-text tables: every result, every peer, and the ratios ours / peer side by side."""
    lines = [
        f"device: {doc['device']}  torch {doc['environment']['torch']}  threads "
        f"{doc['environment']['torch_threads']}  commit {str(doc['environment'].get('git_commit'))[:10]}"
    ]
    if doc["results"]:  # none when only peers were timed
        lines += [
            "",
            f"{'target':>12s} {'backend':>8s} {'size':>9s} {'batch':>6s} {'env-steps/s':>12s} "
            f"{'(best)':>10s} {'sim-s/wall-s':>12s} {'peak MB/net':>11s} {'state MB/net':>12s}",
        ]
    for row in doc["results"]:
        head = f"{row['target']:>12s} {row.get('backend', 'eager'):>8s} {row['size']:>9s} {row['batch']:>6d}"
        if "env_steps_per_s" not in row:
            lines.append(f"{head} {row.get('error')}")
            continue
        memory = row["memory"]
        lines.append(
            f"{head} {row['env_steps_per_s']:12.1f} "
            f"{row['env_steps_per_s_best']:10.1f} {row['simulated_s_per_wall_s']:12.3f} "
            f"{_mb(memory.get('peak_bytes_per_network')):>11s} "
            f"{_mb(memory.get('persistent_bytes_per_network')):>12s}"
        )
    if doc["peers"]:
        lines += [
            "",
            f"{'peer':>15s} {'size':>9s} {'env-steps/s':>12s} {'(best)':>10s} {'sim-s/wall-s':>12s} "
            f"{'rate E/I Hz':>13s}  notes",
        ]
        for row in doc["peers"]:
            if "env_steps_per_s" not in row:
                lines.append(f"{row['peer']:>15s} {row['size']:>9s} {row.get('error') or row.get('skipped')}")
                continue
            act = row.get("activity", {})
            rates = f"{_fmt(act.get('rate_e_hz'))}/{_fmt(act.get('rate_i_hz'))}"
            extra = f"compile {row['compile_s']:.1f} s excluded" if "compile_s" in row else ""
            lines.append(
                f"{row['peer']:>15s} {row['size']:>9s} {row['env_steps_per_s']:12.1f} "
                f"{row['env_steps_per_s_best']:10.1f} {row['simulated_s_per_wall_s']:12.3f} {rates:>13s}  "
                f"{extra}"
            )
    if doc["ratios"]:
        peer_names = list(dict.fromkeys(r["peer"] for r in doc["ratios"]))
        header = (
            f"{'target':>12s} {'size':>9s} {'ours best (B)':>18s} "
            + " ".join(f"{'/ ' + p:>16s}" for p in peer_names)
            + "   (batch 1 vs 1)"
        )
        lines += ["", "ratios ours / peer (env-steps/s, same run):", header]
        keys = list(dict.fromkeys((r["target"], r["size"]) for r in doc["ratios"]))
        for target, size in keys:
            rows = {r["peer"]: r for r in doc["ratios"] if (r["target"], r["size"]) == (target, size)}
            first = next(iter(rows.values()))
            backend = first.get("ours_best_backend", "eager")
            best = f"{first['ours_best_env_steps_per_s']:.1f} ({first['ours_best_batch']}" + (
                f", {backend})" if backend != "eager" else ")"
            )
            cells = " ".join(
                f"{_fmt(rows[p]['ratio_best'], '.2f') + 'x' if p in rows else '-':>16s}" for p in peer_names
            )
            singles = " ".join(_fmt(rows[p]["ratio_batch1"], ".2f") if p in rows else "-" for p in peer_names)
            lines.append(f"{target:>12s} {size:>9s} {best:>18s} {cells}   ({singles})")
    lines.append("")
    lines.append(
        f"wall time {doc.get('wall_time_s', 0):.1f} s; timings on a shared machine are noisy: compare "
        "ratios from the same run"
    )
    return "\n".join(lines)
