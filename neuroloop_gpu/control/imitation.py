"""Behaviour cloning: PPO starts from a controller's behaviour instead of from a random policy.

On the full network a random policy wanders far from the narrow band of trains that depress the
E->I weights cheaply (83 Hz, 500 us phases, 40-50 mV), and PPO's 2 s discount horizon does not see
the energy a faster train costs over a whole course to the latch. A teacher that already knows the
band (``ftsts-scheduled``) gives PPO a start inside it:

1. the teacher drives the training env for ``imitation_windows`` windows per network (the same
   networks, seeds and episodes PPO then trains on; autoresets included), which also warms the
   observation normaliser;
2. the actor's deterministic action (tanh of the Gaussian's mean) is fitted to the teacher's actions
   by least squares, and its scale to ``imitation_scale`` (the exploration PPO starts with);
3. the critic is fitted to the teacher's discounted returns, so PPO's first advantages measure
   deviations from the teacher and not the errors of an untrained critic.

The teacher acts on the raw observation, as in an evaluation; a stateful teacher (``pi``,
``threshold``) keeps its state across a network's autoresets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from tensordict import TensorDict
from torch import nn
from torchrl.envs import TransformedEnv
from torchrl.envs.utils import ExplorationType, set_exploration_type
from torchrl.modules import ProbabilisticActor, ValueOperator
from tqdm.auto import tqdm

from ..envs.actions import to_normalised
from .controllers import Controller

FIT_STEPS = 2000  # Adam steps of each fit (actor, critic)
FIT_BATCH = 1024  # windows per step
FIT_LR = 1e-3


@dataclass(frozen=True)
class ImitationResult:
    """What the cloning reached: mean squared errors in the normalised action box and in return units."""

    teacher: dict  # the controller's describe(): name and parameters
    windows: int  # windows summed over networks
    action_mse: float  # actor's deterministic action vs the teacher's, after the fit
    action_mse_start: float  # the same before the fit
    value_mse: float  # critic vs the discounted returns it was fitted to
    return_var: float  # variance of those returns (value_mse / return_var: the unexplained fraction)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def teacher_rollout(env: TransformedEnv, teacher: Controller, windows: int, progress: bool) -> TensorDict:
    """``windows`` windows of every network of ``env`` driven by ``teacher``.

    Returns ``[B, T]`` raw observations (what the teacher saw), normalised teacher actions, rewards
    and done flags.
    """
    base = env.base_env
    teacher.reset(base.num_envs, base.device)
    low, high = base.core.bounds.lows_highs(base.device)
    keys = ("observation", "action", "reward", "done")
    columns = {key: [] for key in keys}
    td = env.reset()
    info: dict[str, torch.Tensor] = {}
    for _ in tqdm(range(windows), desc=f"imitate {teacher.name}", unit="window", disable=not progress):
        raw = base.core.observation.clone()
        train = teacher.act(raw, info)
        action = to_normalised(torch.stack((train.amplitude, train.frequency, train.pulse_width), dim=-1), low, high)
        td["action"] = action
        step, td = env.step_and_maybe_reset(td)
        info = dict(base.core.last_info)  # the core's own, not TorchRL's float32 copy
        columns["observation"].append(raw)
        columns["action"].append(action)
        columns["reward"].append(step["next", "reward"].squeeze(-1))
        columns["done"].append(step["next", "done"].squeeze(-1))
    return TensorDict({k: torch.stack(v, dim=1) for k, v in columns.items()}, batch_size=(base.num_envs, windows))


def discounted_returns(reward: torch.Tensor, done: torch.Tensor, gamma: float) -> torch.Tensor:
    """``[B, T]`` returns sum_k gamma^k r_{t+k} within each episode; the rollout's end bootstraps 0."""
    returns = torch.zeros_like(reward)
    running = torch.zeros_like(reward[:, 0])
    for t in range(reward.shape[1] - 1, -1, -1):
        running = reward[:, t] + gamma * running * (~done[:, t])
        returns[:, t] = running
    return returns


def _fit(parameters, loss_of, rows: int, generator: torch.Generator, device: torch.device) -> None:
    optimizer = torch.optim.Adam(parameters, lr=FIT_LR)
    for _ in range(FIT_STEPS):
        index = torch.randint(rows, (min(FIT_BATCH, rows),), generator=generator).to(device)
        loss = loss_of(index)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def imitate(
    env: TransformedEnv,
    actor: ProbabilisticActor,
    critic: ValueOperator,
    *,
    teacher: Controller,
    windows: int,
    gamma: float,
    scale: float,
    seed: int,
    progress: bool = True,
) -> ImitationResult:
    """Fit ``actor`` and ``critic`` (in place) to ``teacher`` driving ``env``; see the module docstring."""
    data = teacher_rollout(env, teacher, windows, progress)
    norm = env.transform[0]
    loc, scale_obs = norm.loc["observation"].detach(), norm.scale["observation"].detach()
    returns = discounted_returns(data["reward"], data["done"], gamma)
    # A return is exact where its episode ended within the rollout; the critic learns from those alone.
    finished = data["done"].flip(1).to(torch.int8).cummax(1).values.flip(1).bool()
    observation = ((data["observation"] - loc) / scale_obs).reshape(-1, data["observation"].shape[-1])
    target = data["action"].reshape(-1, data["action"].shape[-1])
    value_observation = observation[finished.reshape(-1)]
    value_target = returns[finished].reshape(-1, 1)
    generator = torch.Generator().manual_seed(seed)
    log_scale = math.log(scale)

    def deterministic(rows: torch.Tensor) -> TensorDict:
        with set_exploration_type(ExplorationType.DETERMINISTIC):
            return actor(TensorDict({"observation": observation[rows]}, batch_size=rows.shape))

    def action_mse(rows: torch.Tensor) -> torch.Tensor:
        return (deterministic(rows)["action"] - target[rows]).pow(2).mean()

    def actor_loss(rows: torch.Tensor) -> torch.Tensor:
        out = deterministic(rows)
        return (out["action"] - target[rows]).pow(2).mean() + (out["scale"].log() - log_scale).pow(2).mean()

    def critic_loss(rows: torch.Tensor) -> torch.Tensor:
        values = critic(TensorDict({"observation": value_observation[rows]}, batch_size=rows.shape))
        return nn.functional.mse_loss(values["state_value"], value_target[rows])

    everything = torch.arange(observation.shape[0], device=observation.device)
    with torch.no_grad():
        before = float(action_mse(everything))
    _fit(actor.parameters(), actor_loss, observation.shape[0], generator, observation.device)
    _fit(critic.parameters(), critic_loss, value_observation.shape[0], generator, observation.device)
    with torch.no_grad():
        after = float(action_mse(everything))
        value_mse = float(critic_loss(torch.arange(value_observation.shape[0], device=observation.device)))
    return ImitationResult(teacher.describe(), int(data.numel()), after, before, value_mse, float(value_target.var()))
