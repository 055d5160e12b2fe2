"""A native gymnasium vector environment: all networks step in one batched call."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from ..config import NetworkParams, SimConfig, is_integer, require, require_count
from .actions import ActionBounds
from .core import DBSCore, EpisodeConfig
from .observation import OBSERVATION_NAMES
from .rendering import RenderHistory, render_frame
from .reward import RewardConfig

DEFAULT_SIM = SimConfig(duration=5000.0)  # NeuroLoop's training episodes: 5 s of 20 ms windows


def network_params(model_params: NetworkParams | dict | None) -> NetworkParams:
    """A NetworkParams, or keyword overrides of its defaults."""
    if isinstance(model_params, NetworkParams):
        return model_params
    require(
        model_params is None or isinstance(model_params, dict),
        "model_params",
        "None, a dict of NetworkParams fields or a NetworkParams",
        type(model_params).__name__,
    )
    return NetworkParams(**(model_params or {}))


def require_open(env: object, closed: bool, method: str) -> None:
    """Raise ``RuntimeError`` for ``method`` called on ``env`` after its ``close()``."""
    if closed:
        raise RuntimeError(f"{type(env).__name__}.{method}() after close()")


def env_seeds(seed: int | list[int] | None, num_envs: int) -> torch.Tensor | None:
    """[B] int64 network seeds: ``seed + b`` for an int, or one per env; checked before anything
    changes (network seeds are int64, so ``seed + num_envs`` may not pass 2**63)."""
    if seed is None:
        return None
    allowed = f"an integer in [0, 2**63 - {num_envs}] or a list of {num_envs} integers in [0, 2**63)"
    if is_integer(seed):
        require(0 <= seed <= 2**63 - num_envs, "seed", allowed, seed)
        return torch.arange(num_envs, dtype=torch.int64) + int(seed)
    require(
        isinstance(seed, (list, tuple, np.ndarray))
        and len(seed) == num_envs
        and all(is_integer(s) and 0 <= s < 2**63 for s in seed),
        "seed",
        allowed,
        seed,
    )
    return torch.tensor([int(s) for s in seed], dtype=torch.int64)


class FTSTSVectorEnv(VectorEnv):
    """Closed-loop DBS of ``num_envs`` independent FTSTS networks, stepped together.

    ## Description
    Each env is one E-I network of LIF neurons with STDP on its E->I synapses
    (Schmalz & Kumar 2019). Every step is one decision window
    (``sim_config.sample_duration``, default 20 ms = 200 Euler steps) under a
    biphasic FTSTS-polarity pulse train whose amplitude, frequency and pulse
    width the agent sets. All networks live as batched tensors on one device.

    ## Action Space
    ``Box(-1, 1, (3,), float32)`` per env: amplitude, frequency, pulse width,
    mapped linearly onto ``bounds`` (default 10-200 mV, 5-180 Hz, 50-500 us).
    Values outside [-1, 1] are clipped; NaN/inf, a wrong shape or a
    non-float dtype raise ``ValueError`` and change nothing.

    ## Observation Space
    ``Box(0, 1, (6,), float32)`` per env: synchrony, mean and std of the E and
    I voltages (relative to V_rest, in units of V_threshold - V_rest), mean
    E->I weight as a fraction of its range (see
    :mod:`neuroloop_gpu.envs.observation`). Physical values are in ``info``
    (gymnasium's layout: ``info[key]`` of shape ``(num_envs,)`` and a bool
    mask ``info["_" + key]`` of the envs it describes).

    ## Reward
    ``-(synchrony + 0.5 weight + 0.2 energy)`` by default
    (:mod:`neuroloop_gpu.envs.reward`). Synchrony and weight lie in [0, 1];
    energy is the window's energy over the mean per-window energy of the
    strongest train the bounds allow, so a window holding one pulse more than
    that mean exceeds 1 (1.11 at most with the default bounds and 20 ms
    windows). ``reward=RewardConfig(...)`` changes the weights, the synchrony
    measure or the target.

    ## Starting State
    Every V at V_reset, synaptic variables 0, w = w_init. ``reset(seed=s)``
    seeds env b with ``s + b`` (connectivity and noise; ``0 <= s`` and
    ``s + num_envs <= 2**63``) or with ``s[b]`` for a list; a reset without a
    seed keeps each env's network and draws fresh noise. The only reset
    option is ``reset_mask``.

    ## Episode End
    Truncation after ``max_episode_steps`` windows (default
    ``sim_config.duration / sample_duration``). Termination only when
    ``episode.terminate_on_latch`` and the weight latch trips. Autoreset per
    ``autoreset_mode`` (``metadata["autoreset_mode"]``), as gymnasium's
    ``SyncVectorEnv`` does it: NEXT_STEP (default; the step after a done
    resets that env, ignores its action, returns reward 0 and no info for it),
    SAME_STEP (the done env is reset within the step; ``info["final_obs"]``
    is an object array holding its last observation, ``info["final_info"]``
    a dict of its info arrays with ``_key`` masks, and the step's own info
    leaves it out) or DISABLED (``reset(options={"reset_mask": mask})``).

    ## Arguments
    ``num_envs``, ``sim_config`` (:class:`SimConfig`), ``model_params``
    (:class:`NetworkParams` or a dict of its fields; default full size),
    ``bounds`` (:class:`ActionBounds`), ``reward`` (:class:`RewardConfig`),
    ``episode`` (:class:`EpisodeConfig`: stimulation onset, latch),
    ``autoreset_mode``, ``max_episode_steps``, ``device`` (default CUDA when
    available), ``dtype``, ``backend`` ("auto", "eager", "compiled", "fused" or "triton", see
    :class:`~neuroloop_gpu.network.NetworkBatch`), ``render_mode``
    ("rgb_array": ``render()`` returns an image; "human": every step prints a
    line, gymnasium's human mode), ``render_env`` (which env to draw) and
    ``record_spikes`` (keep each window's E raster, :attr:`last_spikes_e`,
    without rendering).
    """

    metadata = {"render_modes": ["rgb_array", "human"], "render_fps": 50, "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        num_envs: int = 1,
        sim_config: SimConfig | None = None,
        model_params: NetworkParams | dict | None = None,
        *,
        bounds: ActionBounds | None = None,
        reward: RewardConfig | None = None,
        episode: EpisodeConfig | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        max_episode_steps: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        backend: str = "auto",
        render_mode: str | None = None,
        render_env: int = 0,
        record_spikes: bool = False,
    ):
        sim = sim_config or DEFAULT_SIM
        if max_episode_steps is not None:
            require(
                isinstance(max_episode_steps, int) and max_episode_steps >= 1,
                "max_episode_steps",
                "an integer >= 1",
                max_episode_steps,
            )
            sim = replace(sim, duration=max_episode_steps * sim.sample_duration)
        require_count("num_envs", num_envs)
        modes = [m.value for m in AutoresetMode]
        require(
            autoreset_mode in modes or autoreset_mode in list(AutoresetMode),
            "autoreset_mode",
            f"an AutoresetMode or one of {modes}",
            autoreset_mode,
        )
        mode = AutoresetMode(autoreset_mode)
        require(render_mode in (None, "rgb_array", "human"), "render_mode", "None, 'rgb_array' or 'human'", render_mode)
        require(
            isinstance(render_env, int) and 0 <= render_env < num_envs,
            "render_env",
            f"an integer in [0, {num_envs})",
            render_env,
        )
        self.core = DBSCore(
            num_envs,
            network_params(model_params),
            sim,
            bounds=bounds,
            reward_config=reward,
            episode=episode,
            device=device,
            dtype=dtype,
            record_spikes=bool(record_spikes) or render_mode is not None,
            backend=backend,
        )
        self.num_envs = num_envs
        self.metadata = {**type(self).metadata, "autoreset_mode": mode}
        self.autoreset_mode = mode
        self.render_mode, self.render_env = render_mode, render_env
        self.single_action_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.single_observation_space = gym.spaces.Box(0.0, 1.0, (len(OBSERVATION_NAMES),), np.float32)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self._never_reset = np.ones(num_envs, dtype=bool)  # stepping is an error while any env is here
        self.ended = np.zeros(num_envs, dtype=bool)  # the envs whose episode ended in the last step
        self._history = RenderHistory() if render_mode is not None else None

    # ------------------------------------------------------------- helpers
    def _as_action(self, actions: Any) -> torch.Tensor:
        if isinstance(actions, torch.Tensor):
            action = actions.detach()
        else:
            array = np.asarray(actions)
            require(np.issubdtype(array.dtype, np.floating), "action", "a floating-point array", array.dtype)
            action = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float64))
        self.core.check_action(action)
        return action.to(self.core.device)

    def _mask(self, reset_mask: Any) -> np.ndarray:
        mask = np.asarray(reset_mask)
        require(
            mask.dtype == np.bool_ and mask.shape == (self.num_envs,),
            "options['reset_mask']",
            f"a bool array of shape ({self.num_envs},)",
            f"{mask.dtype} {mask.shape}",
        )
        return mask

    @staticmethod
    def _numpy_info(info: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        """Host copies of the [B] info tensors: one copy per dtype rather than per key (on CUDA each
        copy waits for the device)."""
        keys_by_dtype: dict[torch.dtype, list[str]] = {}
        for key, value in info.items():
            keys_by_dtype.setdefault(value.dtype, []).append(key)
        rows = {}
        for keys in keys_by_dtype.values():
            rows.update(zip(keys, torch.stack([info[key].detach() for key in keys]).cpu().numpy()))
        return {key: rows[key] for key in info}

    @staticmethod
    def _vector_info(info: dict[str, np.ndarray], envs: np.ndarray) -> dict[str, np.ndarray]:
        """gymnasium's vector info for the envs in ``envs`` only: their values (0 elsewhere) and the
        ``_key`` masks, no keys at all for no env (as ``VectorEnv._add_info`` builds it)."""
        if not envs.any():
            return {}
        out = {}
        for key, value in info.items():
            out[key] = np.where(envs, value, np.zeros_like(value))
            out[f"_{key}"] = envs.copy()
        return out

    def _restart(self, mask: np.ndarray, seeds: torch.Tensor | None = None) -> np.ndarray:
        """Reset the envs in ``mask``: the [B, 6] observation of every env (fresh where reset)."""
        observation = self.core.reset(torch.from_numpy(mask).to(self.core.device), seeds)
        self.ended &= ~mask
        if mask[self.render_env]:
            self.clear_render_history()
        return observation.cpu().numpy()

    def clear_render_history(self) -> None:
        if self._history is not None:
            self._history.clear()

    # ----------------------------------------------------------------- API
    def reset(self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None):
        require_open(self, self.closed, "reset")
        options = {} if options is None else options
        require(
            isinstance(options, dict) and set(options) <= {"reset_mask"},
            "options",
            "None or a dict whose only key may be 'reset_mask'",
            options,
        )
        seeds = env_seeds(seed, self.num_envs)  # checked before anything changes
        mask = self._mask(options["reset_mask"]) if "reset_mask" in options else np.ones(self.num_envs, dtype=bool)
        observation = self._restart(mask, seeds)
        super().reset(seed=int(seed) if is_integer(seed) else None)
        self._never_reset &= ~mask  # only once the reset went through: a failed reset still blocks step()
        return observation, {}

    @property
    def last_spikes_e(self) -> np.ndarray | None:
        """The last window's E spike raster, bool ``[num_envs, steps, num_e]`` (steps = the window's Euler
        steps); None unless spikes are recorded (``record_spikes=True`` or a ``render_mode``)."""
        recording = self.core.last_recording
        return None if recording is None or recording.spikes_e is None else recording.spikes_e.cpu().numpy()

    @property
    def needs_reset(self) -> bool:
        """True until every env has been reset (at once or by masks): stepping then is an error."""
        return bool(self._never_reset.any())

    def step(self, actions: Any):
        require_open(self, self.closed, "step")
        if self.needs_reset:
            raise RuntimeError("FTSTSVectorEnv: call reset() before step()")
        if self.autoreset_mode == AutoresetMode.DISABLED and self.ended.any():  # as gymnasium's SyncVectorEnv
            raise RuntimeError(
                f"FTSTSVectorEnv: envs {np.flatnonzero(self.ended).tolist()} ended in the last step "
                "and autoreset is disabled; reset them (options={'reset_mask': mask}) before step()"
            )
        result = self.core.step(self._as_action(actions), validate=False)
        observation = result.observation.cpu().numpy()
        reward = result.reward.cpu().numpy()
        terminated = result.terminated.cpu().numpy()
        truncated = result.truncated.cpu().numpy()
        info = self._numpy_info(result.info)
        mode, no_envs = self.autoreset_mode, np.zeros(self.num_envs, dtype=bool)
        # NEXT_STEP: the envs that finished last step only restart in this one (their window is discarded)
        restarted = self.ended.copy() if mode == AutoresetMode.NEXT_STEP else no_envs
        # SAME_STEP: the envs that finish in this step restart within it
        finished = terminated | truncated if mode == AutoresetMode.SAME_STEP else no_envs
        if not restarted[self.render_env]:
            self._record_for_render(info)
        out = self._vector_info(info, ~(restarted | finished))  # an env that restarted has its reset's info: none
        if restarted.any():
            observation[restarted] = self._restart(restarted)[restarted]
            reward[restarted] = 0.0
            terminated[restarted] = False
            truncated[restarted] = False
        if finished.any():
            final_obs = np.full(self.num_envs, None, dtype=object)
            for b in np.flatnonzero(finished):
                final_obs[b] = observation[b].copy()
            out.update(
                final_obs=final_obs,
                _final_obs=finished.copy(),
                final_info=self._vector_info(info, finished),
                _final_info=finished.copy(),
            )
            observation[finished] = self._restart(finished)[finished]
        self.ended = (terminated | truncated) & ~finished  # SAME_STEP restarted its finished envs already
        return observation, reward, terminated, truncated, out

    def _record_for_render(self, info: dict[str, np.ndarray]) -> None:
        if self._history is None:
            return
        b = self.render_env
        raster = self.core.last_recording.spikes_e
        sync = info["kop"][b] if self.core.reward_config.synchrony == "kop" else info["chi"][b]
        self._history.add(
            float(info["time_s"][b]),
            float(sync),
            float(info["weight_mv"][b]),
            None if raster is None else raster[b].cpu().numpy(),
        )
        if self.render_mode == "human":  # gymnasium's human mode renders during step()
            self.render()

    def render(self):
        require_open(self, self.closed, "render")
        if self.render_mode is None:
            gym.logger.warn("render() called without render_mode; pass render_mode='rgb_array' or 'human'")
            return None
        if self.render_mode == "human":
            h = self._history
            if h.time_s:
                print(
                    f"env {self.render_env}: t={h.time_s[-1]:.2f} s synchrony={h.synchrony[-1]:.3f} "
                    f"mean J_I*w={h.weight_mv[-1]:.1f} mV"
                )
            return None
        return render_frame(self._history, f"env {self.render_env}", self.core.sim.step_size)

    def close_extras(self, **kwargs) -> None:
        self._history = None
