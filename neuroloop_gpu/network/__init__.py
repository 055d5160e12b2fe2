"""The batched FTSTS network simulator."""

from .connectivity import Connectivity
from .dynamics import NeuronVectors, StepConstants, euler_step
from .monitors import WindowRecording, WindowStats
from .simulator import BACKEND_CHOICES, BACKENDS, NetworkBatch, WindowResult, backend_problem, default_device
from .state import NetworkState

__all__ = [
    "BACKEND_CHOICES",
    "BACKENDS",
    "Connectivity",
    "NetworkBatch",
    "NetworkState",
    "NeuronVectors",
    "StepConstants",
    "WindowRecording",
    "WindowResult",
    "backend_problem",
    "WindowStats",
    "default_device",
    "euler_step",
]
