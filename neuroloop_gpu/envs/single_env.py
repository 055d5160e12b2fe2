"""NeuroLoop's single-network gymnasium API: a batch of one on the same core."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode

from ..config import NetworkParams, SimConfig, is_integer, require
from .actions import ActionBounds
from .core import EpisodeConfig
from .reward import RewardConfig
from .vector_env import FTSTSVectorEnv, network_params, require_open


class DBSEnv(gym.Env):
    """Closed-loop DBS of one FTSTS network (``gymnasium.Env``).

    Same dynamics, spaces, reward and episode rules as
    :class:`~neuroloop_gpu.envs.FTSTSVectorEnv` with one env (see its
    docstring for the Action Space, Observation Space, Reward, Starting State
    and Episode End sections); the signature is NeuroLoop's.

    ## Arguments
    ``sim_config`` (:class:`SimConfig`, default 5 s episodes of 20 ms
    windows), ``model_class`` (the network parameter class,
    :class:`NetworkParams`), ``model_params`` (a :class:`NetworkParams` or a
    dict of its fields), and ``render_mode``; keyword-only ``bounds``,
    ``reward``, ``episode``, ``device``, ``dtype``, ``backend`` as for the
    vector env; ``record_spikes`` keeps each window's E raster
    (:attr:`last_spikes_e`) without rendering. ``reset`` takes no options
    (None or ``{}``).

    ``close()`` releases the rendering state; as with gymnasium's own envs, a
    later ``reset()`` starts a fresh episode (Stable-Baselines3's ``check_env``
    resets after closing), while ``step()`` and ``render()`` need that reset.
    Stepping after the episode ended (terminated or truncated) is an error:
    reset first.
    """

    metadata = {"render_modes": ["rgb_array", "human"], "render_fps": 50}

    def __init__(
        self,
        sim_config: SimConfig | None = None,
        model_class: type = NetworkParams,
        model_params: NetworkParams | dict | None = None,
        render_mode: str | None = None,
        *,
        bounds: ActionBounds | None = None,
        reward: RewardConfig | None = None,
        episode: EpisodeConfig | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        backend: str = "auto",
        record_spikes: bool = False,
    ):
        require(model_class is NetworkParams, "model_class", "neuroloop_gpu.config.NetworkParams", model_class)
        self._vector = FTSTSVectorEnv(
            1,
            sim_config,
            network_params(model_params),
            bounds=bounds,
            reward=reward,
            episode=episode,
            autoreset_mode=AutoresetMode.DISABLED,
            device=device,
            dtype=dtype,
            backend=backend,
            render_mode=render_mode,
            record_spikes=record_spikes,
        )
        self.render_mode = render_mode
        self._closed = False
        self.action_space = self._vector.single_action_space
        self.observation_space = self._vector.single_observation_space

    @property
    def core(self):
        """The batched core of one network: ``core.net`` (the ``NetworkBatch``: state, connectivity),
        ``core.params`` (``NetworkParams``), ``core.sim`` (``SimConfig``); dbsenv's ``env.unwrapped.model``."""
        return self._vector.core

    @property
    def last_spikes_e(self) -> np.ndarray | None:
        """The last window's E spike raster, bool ``[steps, num_e]``; None unless ``record_spikes=True``
        or a ``render_mode`` is set."""
        raster = self._vector.last_spikes_e
        return None if raster is None else raster[0]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        require(not options, "options", f"None or {{}} ({type(self).__name__} takes no reset options)", options)
        require(
            seed is None or (is_integer(seed) and 0 <= seed < 2**63), "seed", "None or an integer in [0, 2**63)", seed
        )
        observation, _ = self._vector.reset(seed=seed)
        super().reset(seed=None if seed is None else int(seed))
        self._closed = False
        return observation[0], {}

    def step(self, action):
        require_open(self, self._closed, "step")
        if self._vector.needs_reset:  # named after this env, not the vector env it wraps
            raise RuntimeError(f"{type(self).__name__}: call reset() before step()")
        if self._vector.ended.any():
            raise RuntimeError(
                f"{type(self).__name__}: the episode has ended (terminated or truncated); call reset() before step()"
            )
        action = np.asarray(action)
        require(action.shape == (3,), "action", "an array of shape (3,)", action.shape)
        observation, reward, terminated, truncated, info = self._vector.step(action[None])
        single = {k: v[0] for k, v in info.items() if not k.startswith("_")}
        return observation[0], float(reward[0]), bool(terminated[0]), bool(truncated[0]), single

    def render(self):
        require_open(self, self._closed, "render")
        return self._vector.render()

    def close(self):
        self._closed = True
        self._vector.clear_render_history()


class FTSTSEnv(DBSEnv):
    """The FTSTS network (Schmalz & Kumar 2019) under closed-loop DBS; see :class:`DBSEnv`."""
