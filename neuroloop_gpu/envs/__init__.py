"""Environments on the batched FTSTS core: gymnasium vector and single envs, and a TorchRL env.

``gymnasium.make("neuroloop/FTSTS-v0")`` gives :class:`FTSTSEnv` and
``gymnasium.make_vec("neuroloop/FTSTS-v0", num_envs=N)`` the native
:class:`FTSTSVectorEnv` (both: the 160 E / 40 I network of NeuroLoop's RL
prototype, 5 s episodes; pass ``model_params`` / ``sim_config`` to change).
"""

from gymnasium.envs.registration import register, registry

from .actions import ActionBounds
from .core import LASTING_BUDGET_S, LASTING_FOLLOWUP_S, LASTING_LATCH_MV, DBSCore, EpisodeConfig
from .reward import RewardConfig
from .single_env import DBSEnv, FTSTSEnv
from .vector_env import FTSTSVectorEnv

ENV_ID = "neuroloop/FTSTS-v0"
if ENV_ID not in registry:
    register(
        id=ENV_ID,
        entry_point="neuroloop_gpu.envs.single_env:FTSTSEnv",
        vector_entry_point="neuroloop_gpu.envs.vector_env:FTSTSVectorEnv",
        kwargs={"model_params": {"num_e": 160, "num_i": 40}},
    )


def __getattr__(name: str):
    # the TorchRL env is imported on first use: TensorDict and TorchRL take seconds to import (torch's
    # compiler stack with them), which the gymnasium envs, the simulator and most commands do not need
    if name == "FTSTSTorchEnv":
        from .torchrl_env import FTSTSTorchEnv

        return FTSTSTorchEnv
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ENV_ID",
    "LASTING_BUDGET_S",
    "LASTING_FOLLOWUP_S",
    "LASTING_LATCH_MV",
    "ActionBounds",
    "DBSCore",
    "DBSEnv",
    "EpisodeConfig",
    "FTSTSEnv",
    "FTSTSTorchEnv",
    "FTSTSVectorEnv",
    "RewardConfig",
]
