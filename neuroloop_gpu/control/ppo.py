"""PPO on batched FTSTS networks with TorchRL, entirely on the env's device.

The loop is TorchRL's recipe: a ``Collector`` steps ``num_envs`` networks for
``windows_per_batch`` decision windows, ``GAE`` computes advantages,
``ClipPPOLoss`` is minimised over shuffled minibatches for a few epochs
(``imitate``: after cloning a controller's behaviour, ``imitation.py``). The
actor is a ``TanhNormal`` policy over the normalised action box [-1, 1]^3;
observations are standardised by a running ``VecNormV2`` whose statistics
are checkpointed with the networks. The data stays on the device; torchrl's
collector and VecNorm synchronise with the host a few times per step (their
``done.any()``-style checks and statistics), and the log and the progress bar
read a handful of scalars per iteration.

Under ``torchrun`` each rank trains on its own networks (seeds offset by
rank) and gradients are averaged across ranks (see ``distributed.py``); only
rank 0 writes logs and checkpoints.
"""

from __future__ import annotations

import csv
import hashlib
import math
import shutil
import time
import warnings
from collections.abc import Collection
from contextlib import nullcontext
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from tensordict import TensorDict
from tensordict.nn import NormalParamExtractor, TensorDictModule
from torch import nn
from torchrl.collectors import Collector
from torchrl.data import LazyTensorStorage, SamplerWithoutReplacement, TensorDictReplayBuffer
from torchrl.envs import Compose, RewardSum, TransformedEnv, VecNormV2
from torchrl.modules import MLP, ProbabilisticActor, TanhNormal, ValueOperator
from torchrl.objectives import ClipPPOLoss
from torchrl.objectives.value import GAE
from tqdm.auto import tqdm

from ..config import NetworkParams, SimConfig, is_finite, require, require_count
from ..envs import LASTING_BUDGET_S, LASTING_FOLLOWUP_S, LASTING_LATCH_MV, ActionBounds, FTSTSTorchEnv
from ..envs.core import EpisodeConfig
from ..envs.observation import OBSERVATION_NAMES
from ..envs.reward import RewardConfig, max_window_energy
from ..open_loop import MODELS
from ..run_folder import claim
from . import distributed
from .checkpoint import CheckpointError, load_checkpoint, load_state, save_checkpoint
from .controllers import CONTROLLERS, make_controller
from .imitation import imitate

LR_SCHEDULES = ("constant", "linear", "cosine")
LOG_COLUMNS = (
    "iteration",
    "frames",
    "wall_s",
    "fps",
    "lr",
    "reward_mean",
    "episode_reward_mean",
    "kop_mean",
    "weight_mv_mean",
    "energy_mean",
    "loss_objective",
    "loss_critic",
    "loss_entropy",
)
ACTION_DIM = 3
HELD_OUT_SEEDS_FROM = 1_000_000  # evaluation networks' seeds start here; training seeds stay below
# VecNormV2 calls batched envs "experimental"; with reduce_batch_dims it pools the statistics over our
# independent networks, which is what we want. Raised lazily whenever a transform looks up its parent.
warnings.filterwarnings(
    "ignore", message="Support of VecNormV2 for containers with non-empty batch-size", category=UserWarning
)


@dataclass(frozen=True)
class PPOConfig:
    """Everything that defines a training run (saved in every checkpoint)."""

    num_envs: int = 64  # networks simulated in parallel (per rank under torchrun)
    num_e: int = 160  # excitatory neurons per network (the prototype's reduced network)
    num_i: int = 40  # inhibitory neurons per network
    model: str = "paper"  # model variant (open_loop.MODELS): "published-code" adds the stimulation-locked noise
    episode_s: float = 5.0  # s of simulated time per episode (250 decision windows of 20 ms)
    stim_onset_s: float = 0.0  # s after reset before the stimulator obeys the agent
    windows_per_batch: int = 25  # decision windows per network per iteration (rollout length)
    total_frames: int = 64 * 25 * 40  # decision windows summed over networks (and ranks)
    epochs: int = 4  # passes over each rollout
    minibatch_size: int = 400  # windows per gradient step
    lr: float = 3e-4  # Adam learning rate at the start
    lr_schedule: str = "linear"  # constant, linear (to 0) or cosine (to 0) over the iterations
    gamma: float = 0.98  # discount per 20 ms window (horizon ~1 s)
    lmbda: float = 0.95  # GAE lambda
    clip_epsilon: float = 0.2
    entropy_coeff: float = 1e-3
    critic_coeff: float = 0.5
    max_grad_norm: float = 1.0
    hidden: tuple[int, ...] = (64, 64)  # MLP widths of actor and critic
    norm_decay: float = 0.999  # VecNorm running-statistics decay per update
    energy_weight: float = 0.2  # reward: penalty on stimulation energy (fraction of the maximum)
    coupling_weight: float = 0.5  # reward: penalty on the mean E->I weight fraction
    synchrony_weight: float = 1.0  # reward: penalty on synchrony (causal Kuramoto R)
    task: str = "acute"  # the preset the episode and reward fields below come from (see TASKS)
    stim_budget_s: float | None = None  # s of stimulation phase after the onset (None: the whole episode)
    followup_s: float = 0.0  # s with the stimulator off after the stimulation phase, then the episode ends
    latch_mv: float | None = None  # stimulation phase ends once mean J_I*w < latch_mv (None: no latch)
    start_weight_mv: tuple[float, float] | None = None  # training episodes start from J_I*w drawn in this range
    weight_credit: float = 0.0  # reward per unit decrease of the weight fraction
    followup_weight: float = 0.0  # reward: penalty on synchrony in the follow-up
    latch_bonus: float = 0.0  # reward: prize in the window that trips the latch
    energy_scale_mv2ms: float | None = None  # reward: energy's unit (None: the strongest train the bounds allow)
    max_pulse_width_us: float = 500.0  # top of the agent's phase-width range (NeuroLoop's box: 500 us)
    imitate: str | None = None  # a controller to clone before PPO starts (imitation.py; None: a random start)
    imitation_params: tuple[tuple[str, float], ...] = ()  # (name, value) parameters of that controller
    imitation_windows: int = 3000  # windows per network the teacher drives for the cloning
    imitation_scale: float = 0.3  # the cloned actor's Gaussian scale (pre-tanh): PPO's initial exploration
    seed: int = 0  # see torch_seed; network b of rank r gets seed (seed * world_size + r) * num_envs + b
    checkpoint_every: int = 10  # iterations between checkpoints (and one at the end)

    def __post_init__(self) -> None:
        for name in (
            "num_envs",
            "num_e",
            "num_i",
            "windows_per_batch",
            "epochs",
            "minibatch_size",
            "checkpoint_every",
            "imitation_windows",
        ):
            require_count(name, getattr(self, name))
        require(self.episode_s > 0, "episode_s", "a number > 0 (s)", self.episode_s)
        require(
            0 <= self.stim_onset_s < self.episode_s, "stim_onset_s", "a number in [0, episode_s)", self.stim_onset_s
        )
        require(
            self.total_frames >= self.frames_per_batch,
            "total_frames",
            f"at least one batch, num_envs * windows_per_batch = {self.frames_per_batch}",
            self.total_frames,
        )
        require(
            self.minibatch_size <= self.frames_per_batch,
            "minibatch_size",
            f"at most num_envs * windows_per_batch = {self.frames_per_batch}",
            self.minibatch_size,
        )
        require(0 < self.lr < 1, "lr", "a number in (0, 1)", self.lr)
        require(self.lr_schedule in LR_SCHEDULES, "lr_schedule", " or ".join(LR_SCHEDULES), self.lr_schedule)
        require(
            0 < self.gamma <= 1 and 0 <= self.lmbda <= 1,
            "gamma/lmbda",
            "gamma in (0, 1], lmbda in [0, 1]",
            (self.gamma, self.lmbda),
        )
        require(
            len(self.hidden) >= 1 and all(h >= 1 for h in self.hidden), "hidden", "one or more widths >= 1", self.hidden
        )
        require(self.task in TASKS, "task", " or ".join(map(repr, TASKS)), self.task)
        require(self.model in MODELS, "model", " or ".join(map(repr, MODELS)), self.model)
        require(
            self.imitate is None or self.imitate in CONTROLLERS,
            "imitate",
            f"None or one of {sorted(CONTROLLERS)}",
            self.imitate,
        )
        require(
            self.imitate is not None or not self.imitation_params,
            "imitation_params",
            "empty without imitate",
            self.imitation_params,
        )
        if self.imitate is not None:
            make_controller(self.imitate, **dict(self.imitation_params))  # refuses unknown or impossible values
        episode_windows = math.ceil(self.episode_s * 1000.0 / SimConfig().sample_duration - 1e-9)
        require(
            self.imitate is None or self.imitation_windows > episode_windows,
            "imitation_windows",
            f"more than one episode ({episode_windows} windows) with --imitate: the critic learns from whole episodes",
            self.imitation_windows,
        )
        require(
            is_finite(self.imitation_scale) and self.imitation_scale > 0,
            "imitation_scale",
            "a finite number > 0",
            self.imitation_scale,
        )
        end = self.stim_onset_s + (self.stim_budget_s or 0.0) + self.followup_s
        require(
            self.followup_s == 0 or end <= self.episode_s + 1e-9,
            "episode_s",
            f"at least stim_onset_s + stim_budget_s + followup_s = {end:g} s",
            self.episode_s,
        )
        self.episode  # validates the episode fields
        self.reward  # and the reward fields, before any run folder is claimed

    @property
    def frames_per_batch(self) -> int:
        return self.num_envs * self.windows_per_batch

    @property
    def network(self) -> NetworkParams:
        return MODELS[self.model].network(NetworkParams(num_e=self.num_e, num_i=self.num_i))

    @property
    def reward(self) -> RewardConfig:
        return RewardConfig(
            synchrony_weight=self.synchrony_weight,
            coupling_weight=self.coupling_weight,
            energy_weight=self.energy_weight,
            weight_credit=self.weight_credit,
            followup_synchrony_weight=self.followup_weight,
            latch_bonus=self.latch_bonus,
            energy_scale_mv2ms=self.energy_scale_mv2ms,
        )

    @property
    def bounds(self) -> ActionBounds:
        """The agent's action box: NeuroLoop's, with phases up to ``max_pulse_width_us``."""
        return ActionBounds(pulse_width=(ActionBounds.pulse_width[0], self.max_pulse_width_us))

    @property
    def episode(self) -> EpisodeConfig:
        """The training episodes (evaluation always starts from the published initial weight)."""
        return EpisodeConfig(
            stim_onset=self.stim_onset_s * 1000.0,
            latch_mv=self.latch_mv,
            stim_budget=None if self.stim_budget_s is None else self.stim_budget_s * 1000.0,
            followup=self.followup_s * 1000.0,
            start_weight_mv=self.start_weight_mv,
        )

    @classmethod
    def for_task(cls, task: str, **overrides) -> "PPOConfig":
        """The preset ``task`` of :data:`TASKS` with ``overrides`` (None values keep the preset's)."""
        require(task in TASKS, "task", " or ".join(map(repr, TASKS)), task)
        given = {k: v for k, v in overrides.items() if v is not None}
        return cls(**{**TASKS[task], **given, "task": task})

    @classmethod
    def from_dict(cls, values: dict) -> "PPOConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise CheckpointError(f"training config has unknown fields {unknown} (written by another version?)")
        start = values.get("start_weight_mv")
        return cls(
            **{
                **values,
                "hidden": tuple(values.get("hidden", cls.hidden)),
                "start_weight_mv": None if start is None else tuple(start),
                "imitation_params": tuple((name, value) for name, value in values.get("imitation_params", ())),
            }
        )


# Energy's unit in the lasting task: the mean energy per 20 ms window of the strongest train in NeuroLoop's box
# (200 mV, 180 Hz, 500 us; 144,000 mV^2 ms), whatever box an agent trains in, so wider bounds price a pulse alike.
NEUROLOOP_WINDOW_ENERGY = max_window_energy(ActionBounds(), SimConfig().sample_duration)

TASKS: dict[str, dict] = {
    # NeuroLoop's prototype task: acute suppression of synchrony at low energy, 5 s episodes.
    "acute": {},
    # The lasting effect (docs: "The lasting task"): stimulate until the latch (mean J_I*w < 75 mV) or a
    # 40 s budget, then 5 s with the stimulator off. Reward: credit for lowering the weight, minus energy,
    # minus synchrony in the follow-up; training episodes start from weights anywhere between the latch and
    # the published 260 mV, so every stage of the depression is met early in training.
    "lasting": {
        "episode_s": LASTING_BUDGET_S + LASTING_FOLLOWUP_S,
        "stim_onset_s": 0.0,
        "stim_budget_s": LASTING_BUDGET_S,
        "followup_s": LASTING_FOLLOWUP_S,
        "latch_mv": LASTING_LATCH_MV,
        "start_weight_mv": (80.0, 260.0),
        "synchrony_weight": 0.0,
        "coupling_weight": 0.0,
        "energy_weight": 0.1,
        "weight_credit": 20.0,
        "followup_weight": 0.05,
        "energy_scale_mv2ms": NEUROLOOP_WINDOW_ENERGY,
        "gamma": 0.99,
        "windows_per_batch": 50,
    },
}


def build_actor(config: PPOConfig, action_spec) -> ProbabilisticActor:
    """observation -> TanhNormal over [-1, 1]^3 (loc and a softplus scale from one MLP)."""
    net = nn.Sequential(
        MLP(
            in_features=len(OBSERVATION_NAMES),
            out_features=2 * ACTION_DIM,
            num_cells=list(config.hidden),
            activation_class=nn.Tanh,
        ),
        NormalParamExtractor(),
    )
    return ProbabilisticActor(
        TensorDictModule(net, in_keys=["observation"], out_keys=["loc", "scale"]),
        in_keys=["loc", "scale"],
        spec=action_spec,
        distribution_class=TanhNormal,
        distribution_kwargs={"low": -1.0, "high": 1.0},
        return_log_prob=True,
    )


def build_critic(config: PPOConfig) -> ValueOperator:
    return ValueOperator(
        MLP(
            in_features=len(OBSERVATION_NAMES), out_features=1, num_cells=list(config.hidden), activation_class=nn.Tanh
        ),
        in_keys=["observation"],
    )


def make_env(config: PPOConfig, device: torch.device, rank: distributed.Rank, backend: str = "auto") -> TransformedEnv:
    """The batched env of this rank with observation normalisation and episode-return tracking."""
    base = FTSTSTorchEnv(
        config.num_envs,
        SimConfig(duration=config.episode_s * 1000.0),
        config.network,
        bounds=config.bounds,
        reward=config.reward,
        episode=config.episode,
        device=device,
        backend=backend,
        check_actions=False,
    )
    first_seed = (config.seed * rank.world_size + rank.rank) * config.num_envs
    require(
        first_seed + config.num_envs <= HELD_OUT_SEEDS_FROM,
        "seed",
        f"small enough that training seeds stay below the held-out evaluation seeds ({HELD_OUT_SEEDS_FROM})",
        config.seed,
    )
    base.set_seed(first_seed)
    return TransformedEnv(
        base,
        Compose(
            VecNormV2(in_keys=["observation"], decay=config.norm_decay, reduce_batch_dims=True),
            RewardSum(in_keys=["reward"], out_keys=["episode_reward"]),
        ),
    )


def observation_affine(env: TransformedEnv) -> tuple[torch.Tensor, torch.Tensor]:
    """(loc, scale) of the observation normaliser: the policy sees (obs - loc) / scale."""
    norm = env.transform[0]
    return norm.loc["observation"].detach().clone(), norm.scale["observation"].detach().clone()


def learning_rate(config: PPOConfig, iteration: int, iterations: int) -> float:
    """Adam step size for ``iteration`` (0-based) of ``iterations``, a pure function of the two.

    Nothing of the schedule is saved: a run resumed with more ``total_frames`` (more ``iterations``)
    stretches the schedule over the new length, so the rate jumps up to where the longer schedule
    stands at the checkpoint's iteration.
    """
    progress = min(1.0, iteration / iterations)
    if config.lr_schedule == "linear":
        return config.lr * (1.0 - progress)
    if config.lr_schedule == "cosine":
        return config.lr * 0.5 * (1.0 + math.cos(math.pi * progress))
    return config.lr


def torch_seed(seed: int, rank: int, start_iteration: int) -> int:
    """Seed of torch's global generator (model init, action sampling, minibatch order) for one rank.

    Rank 0 of a fresh run uses ``seed`` itself, as single-process runs always have (the shipped
    policy's run). Every other (rank, start iteration) gets its own stream, so ranks do not draw the
    same numbers and a resumed run does not replay iteration 0's.
    """
    if rank == 0 and start_iteration == 0:
        return seed
    digest = hashlib.blake2b(f"{seed},{rank},{start_iteration}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


class _Log:
    """train_log.csv always; TensorBoard when the package is installed.

    A resumed run starts from the log beside its checkpoint (``earlier``), keeping the rows up to the
    checkpoint's iteration and dropping later ones: after a crash between checkpoints those iterations
    are trained again and would otherwise be logged twice. ``wall_s`` goes on from the last kept row.
    """

    def __init__(self, out: Path, start_iteration: int, earlier: Path | None):
        self.path = out / "train_log.csv"
        kept = []
        if start_iteration > 0 and earlier is not None and earlier.exists():
            with earlier.open(newline="") as file:
                kept = [row for row in csv.DictReader(file) if int(row["iteration"]) <= start_iteration]
        self.wall_offset = float(kept[-1]["wall_s"]) if kept else 0.0
        self.file = self.path.open("w", newline="")
        self.writer = csv.DictWriter(self.file, fieldnames=LOG_COLUMNS)
        self.writer.writeheader()
        self.writer.writerows(kept)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.board = SummaryWriter(str(out / "tensorboard"))
        except ImportError:
            self.board = None

    def write(self, row: dict) -> None:
        row = {**row, "wall_s": round(self.wall_offset + row["wall_s"], 3)}
        self.writer.writerow(row)
        self.file.flush()
        if self.board is not None:
            for key, value in row.items():
                if key not in ("iteration", "frames"):
                    self.board.add_scalar(key, value, row["frames"])

    def close(self) -> None:
        self.file.close()
        if self.board is not None:
            self.board.close()


@dataclass
class TrainResult:
    checkpoint: Path
    log: Path
    iterations: int
    frames: int
    wall_s: float


# Fields a resumed run may always change: how long to train and how often to save, not what is learned.
RESUME_FREE_FIELDS = ("total_frames", "checkpoint_every")
# The files of a training run in its folder (kept when a run is resumed in place).
TRAIN_FILES = (
    "checkpoint.pt",
    "checkpoint.pt.partial",
    "imitation.pt",  # the cloned policy before PPO's first update (--imitate)
    "train_log.csv",
    "training.png",
    "tensorboard",
)


def train(
    config: PPOConfig,
    out: Path | str,
    *,
    device: torch.device | str = "cpu",
    backend: str = "auto",
    resume: Path | str | None = None,
    allow_changes: Collection[str] = (),
    overwrite: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Train (or resume) PPO and write ``checkpoint.pt`` and ``train_log.csv`` into ``out``.

    ``out`` belongs to this run (:func:`neuroloop_gpu.run_folder.claim`): a folder holding another
    run is refused unless ``overwrite``; resuming in the checkpoint's own folder continues that run.
    A resumed run keeps the checkpoint's configuration: ``config`` may differ from it only in
    :data:`RESUME_FREE_FIELDS` and the fields named in ``allow_changes``. Under ``torchrun`` every
    rank calls this; ``total_frames`` counts the frames of all ranks together.
    """
    device = torch.device(device)
    rank = distributed.init_from_environment(device)
    device = distributed.rank_device(device, rank)
    out = Path(out)
    state = None if resume is None else _resume_state(config, Path(resume), allow_changes, device)
    in_place = resume is not None and (out / "checkpoint.pt").resolve() == Path(resume).resolve()
    folder = claim(out, overwrite=overwrite, keep=TRAIN_FILES if in_place else ()) if rank.is_main else nullcontext()
    with folder:
        return _train(config, out, device, rank, backend, state, None if resume is None else Path(resume), progress)


def _resume_state(config: PPOConfig, resume: Path, allow_changes: Collection[str], device: torch.device) -> dict:
    """The checkpoint to resume from, refused if ``config`` changes what it was trained with (unless allowed)."""
    names = {f.name for f in fields(PPOConfig)}
    unknown = sorted(set(allow_changes) - names)
    require(not unknown, "allow_changes", f"names of PPOConfig fields ({', '.join(sorted(names))})", unknown)
    state = load_checkpoint(resume, map_location=device)
    saved = PPOConfig.from_dict(state["config"])
    if saved.hidden != config.hidden:
        raise CheckpointError(
            f"checkpoint {resume} holds networks of hidden widths {saved.hidden}; this run asks "
            f"for {config.hidden}, which cannot load them"
        )
    changed = {
        f.name: (getattr(saved, f.name), getattr(config, f.name))
        for f in fields(PPOConfig)
        if getattr(saved, f.name) != getattr(config, f.name) and f.name not in RESUME_FREE_FIELDS
    }
    refused = sorted(set(changed) - set(allow_changes))
    if refused:
        raise CheckpointError(
            f"checkpoint {resume} was trained with another configuration: "
            + ", ".join(f"{name} {changed[name][0]!r} -> {changed[name][1]!r}" for name in refused)
            + ". A resumed run keeps its configuration; to change these fields allow them by name "
            f"(neuroloop train --allow-change {' '.join(refused)})"
        )
    return state


def _train(
    config: PPOConfig,
    out: Path,
    device: torch.device,
    rank: distributed.Rank,
    backend: str,
    state: dict | None,
    resume: Path | None,
    progress: bool,
) -> TrainResult:
    checkpoint = out / "checkpoint.pt"
    frames_per_iteration = config.frames_per_batch * rank.world_size
    iterations = math.ceil(config.total_frames / frames_per_iteration)
    if state is not None and state["iteration"] >= iterations:
        return _finished(state, resume, checkpoint, rank)
    iteration, frames = (state["iteration"], state["frames"]) if state is not None else (0, 0)
    torch.manual_seed(torch_seed(config.seed, rank.rank, iteration))
    env = make_env(config, device, rank, backend)
    actor = build_actor(config, env.action_spec_unbatched).to(device)
    critic = build_critic(config).to(device)
    loss_module = ClipPPOLoss(
        actor,
        critic,
        clip_epsilon=config.clip_epsilon,
        entropy_coeff=config.entropy_coeff,
        critic_coeff=config.critic_coeff,
        normalize_advantage=True,
    )
    advantage = GAE(gamma=config.gamma, lmbda=config.lmbda, value_network=critic, average_gae=False)
    optimizer = torch.optim.Adam(loss_module.parameters(), lr=config.lr)
    if state is not None:
        for part, module in (
            ("actor", actor),
            ("critic", critic),
            ("optimizer", optimizer),
            ("obs_norm", env.transform[0]),
        ):
            load_state(module, state[part], resume, part)
        imitation = state.get("imitation")
    elif config.imitate is not None:
        imitation = imitate(
            env,
            actor,
            critic,
            teacher=make_controller(config.imitate, **dict(config.imitation_params)),
            windows=config.imitation_windows,
            gamma=config.gamma,
            scale=config.imitation_scale,
            seed=torch_seed(config.seed, rank.rank, 0),
            progress=progress and rank.is_main,
        ).to_dict()
    else:
        imitation = None
    distributed.broadcast_parameters(loss_module.parameters(), rank)

    def save(path: Path = checkpoint) -> None:
        if not rank.is_main:
            return
        loc, scale = observation_affine(env)
        save_checkpoint(
            path,
            {
                "config": {
                    **asdict(config),
                    "hidden": list(config.hidden),
                    "start_weight_mv": None if config.start_weight_mv is None else list(config.start_weight_mv),
                    "imitation_params": [list(pair) for pair in config.imitation_params],
                },
                "iteration": iteration,
                "frames": frames,
                "actor": actor.state_dict(),
                "critic": critic.state_dict(),
                "optimizer": optimizer.state_dict(),
                "obs_norm": env.transform[0].state_dict(),
                "obs_loc": loc,
                "obs_scale": scale,
                "observation_names": list(OBSERVATION_NAMES),
                "observation_synchrony": config.reward.synchrony,
                "imitation": imitation,
            },
        )

    if state is None and imitation is not None:
        save(out / "imitation.pt")  # with the normaliser's statistics as the actor was fitted to them

    collector = Collector(
        env,
        actor,
        frames_per_batch=config.frames_per_batch,
        total_frames=(iterations - iteration) * config.frames_per_batch,
        device=device,
        auto_register_policy_transforms=False,
    )
    buffer = TensorDictReplayBuffer(
        storage=LazyTensorStorage(config.frames_per_batch, device=device),
        sampler=SamplerWithoutReplacement(),
        batch_size=config.minibatch_size,
    )
    log = _Log(out, iteration, None if resume is None else resume.with_name("train_log.csv")) if rank.is_main else None

    start, start_frames = time.perf_counter(), frames
    bar = tqdm(
        total=iterations * frames_per_iteration,
        initial=frames,
        unit="window",
        desc="train PPO",
        disable=not (progress and rank.is_main),
    )
    try:
        for batch in collector:  # exactly iterations - iteration batches
            _sync_normaliser(env, rank)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(config, iteration, iterations)
            losses = _update(batch, config, advantage, loss_module, optimizer, buffer, rank)
            collector.update_policy_weights_()
            iteration += 1
            frames += frames_per_iteration
            row = _log_row(
                batch,
                losses,
                iteration,
                frames,
                frames - start_frames,
                time.perf_counter() - start,
                optimizer.param_groups[0]["lr"],
                rank,
            )
            bar.update(frames_per_iteration)
            bar.set_postfix(reward=f"{row['reward_mean']:.3f}", kop=f"{row['kop_mean']:.3f}", fps=f"{row['fps']:.0f}")
            if log is not None:
                log.write(row)
            if iteration % config.checkpoint_every == 0 or iteration == iterations:
                save()
    finally:
        bar.close()
        collector.shutdown()
        if log is not None:
            log.close()
        distributed.shutdown(rank)
    return TrainResult(checkpoint, out / "train_log.csv", iteration, frames, time.perf_counter() - start)


def _finished(state: dict, resume: Path, checkpoint: Path, rank: distributed.Rank) -> TrainResult:
    """Resuming a run with nothing left to do: leave its checkpoint exactly as it is.

    No env, no collector: building the collector resets the env, and VecNormV2 updates its statistics
    on every reset. A resume into another folder gets a byte-for-byte copy, and the log beside it.
    """
    if rank.is_main and not (checkpoint.exists() and checkpoint.samefile(resume)):
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(resume, checkpoint)
        log = resume.with_name("train_log.csv")
        if log.exists():
            shutil.copyfile(log, checkpoint.with_name("train_log.csv"))
    distributed.shutdown(rank)
    return TrainResult(checkpoint, checkpoint.with_name("train_log.csv"), state["iteration"], state["frames"], 0.0)


def _sync_normaliser(env: TransformedEnv, rank: distributed.Rank) -> None:
    """Give every rank the mean of the ranks' observation statistics, so all policies see the same inputs."""
    if not rank.active:
        return
    norm = env.transform[0]
    state = norm.state_dict()  # running first and second moments live in the extra state
    state["_extra_state"] = distributed.average_tensors(state["_extra_state"], rank)
    norm.load_state_dict(state)


def _update(
    batch: TensorDict,
    config: PPOConfig,
    advantage: GAE,
    loss_module: ClipPPOLoss,
    optimizer: torch.optim.Optimizer,
    buffer: TensorDictReplayBuffer,
    rank: distributed.Rank,
) -> TensorDict:
    """``epochs`` passes of minibatch PPO on one rollout; returns the mean losses of the last pass."""
    minibatches = config.frames_per_batch // config.minibatch_size
    parameters = list(loss_module.parameters())
    for _ in range(config.epochs):
        with torch.no_grad():
            advantage(batch)
        buffer.empty()
        buffer.extend(batch.reshape(-1))
        totals = None
        for _ in range(minibatches):
            losses = loss_module(buffer.sample())
            loss = losses["loss_objective"] + losses["loss_critic"] + losses["loss_entropy"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            distributed.average_gradients(parameters, rank)
            nn.utils.clip_grad_norm_(parameters, config.max_grad_norm)
            optimizer.step()
            part = losses.select("loss_objective", "loss_critic", "loss_entropy").detach()
            totals = part if totals is None else totals + part
    return totals / minibatches


def _log_row(
    batch: TensorDict,
    losses: TensorDict,
    iteration: int,
    frames: int,
    new_frames: int,
    wall: float,
    lr: float,
    rank: distributed.Rank,
) -> dict:
    done = batch["next", "done"].squeeze(-1)
    episode_reward = batch["next", "episode_reward"].squeeze(-1)
    info = batch["next", "info"]
    means = {
        "reward_mean": batch["next", "reward"].mean(),
        "episode_reward_sum": (episode_reward * done).sum(),
        "episodes": done.sum().to(torch.float64),
        "kop_mean": info["kop"].mean(),
        "weight_mv_mean": info["weight_mv"].mean(),
        "energy_mean": info["energy_mv2ms"].mean(),
        **{key: losses[key] for key in ("loss_objective", "loss_critic", "loss_entropy")},
    }
    means = {k: float(v) for k, v in distributed.average_tensors(means, rank).items()}
    episodes = means.pop("episodes")
    episode_sum = means.pop("episode_reward_sum")
    return {
        "iteration": iteration,
        "frames": frames,
        "wall_s": round(wall, 3),
        "fps": new_frames / max(wall, 1e-9),
        "lr": lr,
        "episode_reward_mean": episode_sum / episodes if episodes > 0 else float("nan"),
        **means,
    }
