"""Closed-loop stimulation controllers (baselines here; the trained PPO policy in ``policy.py``)."""

from .controllers import (
    CONTROLLERS,
    Controller,
    FTSTSParams,
    HFDBSParams,
    HighFrequencyDBS,
    NoStimulation,
    OpenLoopFTSTS,
    PIParams,
    ProportionalIntegral,
    ThresholdParams,
    ThresholdStimulation,
    TrainParams,
    TunedFTSTS,
    TunedFTSTS1ms,
    make_controller,
)

__all__ = [
    "CONTROLLERS",
    "Controller",
    "FTSTSParams",
    "HFDBSParams",
    "HighFrequencyDBS",
    "NoStimulation",
    "OpenLoopFTSTS",
    "PIParams",
    "ProportionalIntegral",
    "ThresholdParams",
    "ThresholdStimulation",
    "TrainParams",
    "TunedFTSTS",
    "TunedFTSTS1ms",
    "make_controller",
]
