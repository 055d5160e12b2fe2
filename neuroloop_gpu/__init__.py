"""neuroloop_gpu: batched FTSTS networks (Schmalz & Kumar 2019) for closed-loop DBS research.

Importing the package registers the gymnasium id ``neuroloop/FTSTS-v0`` (single env and native vector
env) and exports the public API below. The TorchRL env, ``FTSTSTorchEnv``, is imported on first use:
TorchRL takes seconds to import.
"""

from importlib.metadata import PackageNotFoundError, version

from .config import NetworkParams, PlasticityParams, RecordConfig, SimConfig
from .envs import ENV_ID, ActionBounds, DBSCore, DBSEnv, EpisodeConfig, FTSTSEnv, FTSTSVectorEnv, RewardConfig
from .network import NetworkBatch
from .stimulus import PulseTrain
from .synchrony import golomb_chi, kuramoto_order

try:
    __version__ = version("neuroloop-gpu")
except PackageNotFoundError:  # a checkout on PYTHONPATH
    __version__ = "unknown"


def __getattr__(name: str):
    if name == "FTSTSTorchEnv":
        from .envs.torchrl_env import FTSTSTorchEnv

        return FTSTSTorchEnv
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ENV_ID",
    "ActionBounds",
    "DBSCore",
    "DBSEnv",
    "EpisodeConfig",
    "FTSTSEnv",
    "FTSTSTorchEnv",
    "FTSTSVectorEnv",
    "NetworkBatch",
    "NetworkParams",
    "PlasticityParams",
    "PulseTrain",
    "RecordConfig",
    "RewardConfig",
    "SimConfig",
    "__version__",
    "golomb_chi",
    "kuramoto_order",
]
