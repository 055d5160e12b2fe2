"""A TorchRL ``EnvBase`` on the batched core: specs, data and resets stay on the device."""

from __future__ import annotations

import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import Binary, Bounded, Composite, Unbounded
from torchrl.envs import EnvBase

from ..config import NetworkParams, SimConfig
from .actions import ActionBounds
from .core import DBSCore, EpisodeConfig
from .observation import OBSERVATION_NAMES
from .reward import RewardConfig
from .vector_env import DEFAULT_SIM, env_seeds, network_params, require_open


class FTSTSTorchEnv(EnvBase):
    """Closed-loop DBS of ``num_envs`` FTSTS networks as a batched TorchRL environment.

    Keys: ``observation`` [B, 6] (as the gymnasium env), ``action`` [B, 3] in
    [-1, 1] (clipped), ``reward`` [B, 1], ``done`` / ``terminated`` /
    ``truncated`` [B, 1] (a time limit is truncation), and the physical
    values of the window under ``info`` (``info.kop``, ``info.weight_mv``,
    ``info.energy_mv2ms``, ...). Partial resets through ``"_reset"`` merge
    fresh state with ``torch.where``; with ``check_actions=False`` nothing in
    ``_step`` / ``_reset`` waits for the host on CUDA with the
    simulator's dense synapses or the ``"triton"`` backend (TorchRL's own
    ``reset`` wrapper reads a partial ``"_reset"`` mask on the host; NaN actions then become 0, the
    centre of the box, and ``info.invalid_action`` flags them); the default
    ``check_actions=True`` raises on NaN/inf at the cost of one host read per
    step. ``set_seed(s)`` re-seeds env b with ``s + b`` (its episode 0), and
    the reset that follows starts the next episode, as every reset does: a
    rollout after ``set_seed(s)`` runs episode 1 of those seeds, where
    gymnasium's ``reset(seed=s)`` runs episode 0. Kept so, because the
    shipped policy was trained on exactly these streams.
    Arguments as for :class:`~neuroloop_gpu.envs.FTSTSVectorEnv`.
    """

    def __init__(
        self,
        num_envs: int = 1,
        sim_config: SimConfig | None = None,
        model_params: NetworkParams | dict | None = None,
        *,
        bounds: ActionBounds | None = None,
        reward: RewardConfig | None = None,
        episode: EpisodeConfig | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        backend: str = "auto",
        check_actions: bool = True,
    ):
        core = DBSCore(
            num_envs,
            network_params(model_params),
            sim_config or DEFAULT_SIM,
            bounds=bounds,
            reward_config=reward,
            episode=episode,
            device=device,
            dtype=dtype,
            backend=backend,
        )
        super().__init__(device=core.device, batch_size=torch.Size([num_envs]))
        self.core, self.num_envs, self.check_actions = core, num_envs, check_actions
        self._needs_reset = True  # a host-side flag: the check costs no device read
        self._closed = False  # EnvBase's own is_closed starts True, so it cannot tell
        shape = (num_envs, len(OBSERVATION_NAMES))
        info_spec = Composite(
            {key: Unbounded(shape=(num_envs,), dtype=torch.float32, device=self.device) for key in self._info_keys()},
            shape=(num_envs,),
            device=self.device,
        )
        self.observation_spec = Composite(
            observation=Bounded(low=0.0, high=1.0, shape=shape, dtype=torch.float32, device=self.device),
            info=info_spec,
            shape=(num_envs,),
            device=self.device,
        )
        self.action_spec = Bounded(low=-1.0, high=1.0, shape=(num_envs, 3), dtype=torch.float32, device=self.device)
        self.reward_spec = Unbounded(shape=(num_envs, 1), dtype=torch.float32, device=self.device)
        done = dict(shape=(num_envs, 1), dtype=torch.bool, device=self.device)
        self.full_done_spec = Composite(
            done=Binary(n=1, **done),
            terminated=Binary(n=1, **done),
            truncated=Binary(n=1, **done),
            shape=(num_envs,),
            device=self.device,
        )

    @staticmethod
    def _info_keys() -> tuple[str, ...]:
        return (
            "time_s",
            "kop",
            "chi",
            "v_e_mean_mv",
            "v_e_std_mv",
            "v_i_mean_mv",
            "v_i_std_mv",
            "weight_mv",
            "rate_e_hz",
            "rate_i_hz",
            "energy_mv2ms",
            "charge_mvms",
            "amplitude_mv",
            "frequency_hz",
            "pulse_width_us",
            "stimulating",
            "followup",
            "invalid_action",
        )

    def _info(self, values: dict[str, torch.Tensor]) -> TensorDict:
        zeros = torch.zeros(self.num_envs, dtype=torch.float32, device=self.device)
        return TensorDict(
            {k: values.get(k, zeros).to(torch.float32) for k in self._info_keys()},
            batch_size=(self.num_envs,),
            device=self.device,
        )

    def _reset(self, tensordict: TensorDictBase | None = None, **kwargs) -> TensorDictBase:
        require_open(self, self._closed, "reset")
        mask = None
        if tensordict is not None and "_reset" in tensordict.keys():
            mask = tensordict["_reset"].reshape(self.num_envs).to(self.device)
        observation = self.core.reset(mask)
        self._needs_reset = False
        flag = torch.zeros(self.num_envs, 1, dtype=torch.bool, device=self.device)
        return TensorDict(
            {
                "observation": observation,
                "info": self._info({}),
                "done": flag.clone(),
                "terminated": flag.clone(),
                "truncated": flag,
            },
            batch_size=(self.num_envs,),
            device=self.device,
        )

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        require_open(self, self._closed, "step")
        if self._needs_reset:
            raise RuntimeError("FTSTSTorchEnv: call reset() before step()")
        action = tensordict["action"]
        if self.check_actions:
            self.core.check_action(action)
        invalid = ~torch.isfinite(action).all(-1)
        result = self.core.step(torch.nan_to_num(action, nan=0.0, posinf=1.0, neginf=-1.0), validate=False)
        terminated = result.terminated.unsqueeze(-1)
        truncated = result.truncated.unsqueeze(-1)
        return TensorDict(
            {
                "observation": result.observation,
                "info": self._info({**result.info, "invalid_action": invalid}),
                "reward": result.reward.unsqueeze(-1),
                "done": terminated | truncated,
                "terminated": terminated,
                "truncated": truncated,
            },
            batch_size=(self.num_envs,),
            device=self.device,
        )

    def _set_seed(self, seed: int | None) -> None:
        """Re-seed every network: env b gets ``seed + b`` (connectivity and noise)."""
        seeds = env_seeds(seed, self.num_envs)
        if seeds is None:
            return
        self.core.reset(seeds=seeds)

    def close(self, *, raise_if_closed: bool = True) -> None:
        self._closed = True
        super().close(raise_if_closed=raise_if_closed)
