"""The trained PPO policy as a controller, next to the classical ones."""

from __future__ import annotations

from pathlib import Path

import torch
from tensordict import TensorDict
from torchrl.data import Bounded
from torchrl.envs.utils import ExplorationType, set_exploration_type

from ..envs.actions import ActionBounds, pulse_train, to_physical
from ..stimulus import PulseTrain
from .checkpoint import load_checkpoint, load_state
from .controllers import Controller
from .ppo import ACTION_DIM, PPOConfig, build_actor


class PolicyController(Controller):
    """Acts with the deterministic action of a PPO checkpoint's policy.

    That action is tanh of the Gaussian's mean: the median of the policy's
    TanhNormal (which has no closed-form mode). Observations are standardised
    with the normaliser statistics saved in the checkpoint, exactly as during
    training. Observations are size-free fractions, so a policy trained on
    the small network can drive the full one (and vice versa); ``trained_on``
    says which it saw. ``synchrony`` is the measure in observation feature 0
    during training; evaluation refuses to feed it the other one.
    """

    def __init__(self, checkpoint: Path | str, *, bounds: ActionBounds | None = None, name: str = "ppo"):
        """``bounds`` default: the action box of the policy's training (``PPOConfig.bounds``)."""
        payload = load_checkpoint(checkpoint)
        self.config = PPOConfig.from_dict(payload["config"])
        self.name = name
        self.trained_on = (self.config.num_e, self.config.num_i)
        self.bounds = bounds or self.config.bounds  # the box it was trained in
        spec = Bounded(low=-1.0, high=1.0, shape=(ACTION_DIM,), dtype=torch.float32)
        self.actor = build_actor(self.config, spec)
        load_state(self.actor, payload["actor"], checkpoint, "actor")
        self.actor.eval()
        self.loc, self.scale = payload["obs_loc"], payload["obs_scale"]
        self.synchrony = payload.get("observation_synchrony", "kop")  # older checkpoints all trained on R
        self.source = {
            "checkpoint": str(checkpoint),
            "iteration": payload["iteration"],
            "frames": payload["frames"],
            "trained_on": list(self.trained_on),
            "synchrony": self.synchrony,
            "bounds": {k: list(getattr(self.bounds, k)) for k in ("amplitude", "frequency", "pulse_width")},
            "versions": payload["versions"],
        }

    def describe(self) -> dict:
        return {"controller": self.name, **self.source}

    def reset(self, num_envs: int, device: torch.device) -> None:
        self.actor.to(device)
        self.loc, self.scale = self.loc.to(device), self.scale.to(device)
        self.low, self.high = self.bounds.lows_highs(device)

    def normalised_action(self, observation: torch.Tensor) -> torch.Tensor:
        """[B, 3] action in [-1, 1] for [B, 6] raw observations."""
        data = TensorDict({"observation": (observation - self.loc) / self.scale}, batch_size=observation.shape[:1])
        with torch.no_grad(), set_exploration_type(ExplorationType.DETERMINISTIC):
            return self.actor(data)["action"]

    def act(self, observation: torch.Tensor, info: dict[str, torch.Tensor]) -> PulseTrain:
        physical = to_physical(self.normalised_action(observation), self.low, self.high)
        return pulse_train(physical)
