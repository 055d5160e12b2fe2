"""PPO checkpoints: one file with everything needed to resume or to act.

A checkpoint holds the policy and value networks, the optimiser, the observation
normaliser, the training config,
progress counters and the library versions that wrote it. Loading checks the
format before anything is used, so a missing, truncated or foreign file fails
with one clear message instead of a stack trace deep inside torch.
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import torch

FORMAT = "neuroloop_gpu.ppo"
FORMAT_VERSION = 1
REQUIRED_KEYS = (
    "format",
    "format_version",
    "config",
    "iteration",
    "frames",
    "actor",
    "critic",
    "optimizer",
    "obs_norm",
    "obs_loc",
    "obs_scale",
    "versions",
)
OBSERVATION_SIZE = 6  # features per observation (envs.observation.OBSERVATION_NAMES)


class CheckpointError(ValueError):
    """A checkpoint that cannot be used (missing, corrupt, or from an incompatible run)."""


def library_versions() -> dict[str, str]:
    return {name: version(name) for name in ("neuroloop-gpu", "torch", "torchrl", "tensordict")}


def save_checkpoint(path: Path, payload: dict) -> Path:
    """Write ``payload`` (see REQUIRED_KEYS) atomically: a crash mid-write never leaves a truncated file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "versions": library_versions(), **payload}
    missing = [key for key in REQUIRED_KEYS if key not in payload]
    if missing:
        raise CheckpointError(f"refusing to save checkpoint without {missing}")
    partial = path.with_suffix(path.suffix + ".partial")
    torch.save(payload, partial)
    partial.replace(path)
    return path


def load_checkpoint(path: Path | str, map_location: torch.device | str = "cpu") -> dict:
    """Read and validate a checkpoint; raise :class:`CheckpointError` naming the problem."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist (expected a file written by `neuroloop train`)")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # garbage makes the unpickler fail in many ways (a text file: KeyError)
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt ({type(error).__name__}: {error})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            f"checkpoint {path} is not a neuroloop_gpu PPO checkpoint (format "
            f"{payload.get('format') if isinstance(payload, dict) else type(payload).__name__!r})"
        )
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format_version {payload.get('format_version')}; this version "
            f"of neuroloop_gpu reads format_version {FORMAT_VERSION}"
        )
    missing = [key for key in REQUIRED_KEYS if key not in payload]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {missing}")
    problem = _field_problem(payload)
    if problem:
        raise CheckpointError(f"checkpoint {path} is unusable: {problem}")
    return payload


def _field_problem(payload: dict) -> str | None:
    """What is wrong with the fields' types, shapes and values (None: nothing), checked before any is used.

    Non-finite network weights are refused: a NaN policy acts with NaN (the env would clip it to 0)
    and training would save it again.
    """
    for key in ("config", "actor", "critic", "optimizer", "obs_norm", "versions"):
        if not isinstance(payload[key], dict):
            return f"{key} is a {type(payload[key]).__name__}, not a dict"
    for key in ("iteration", "frames"):
        value = payload[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            return f"{key} is {value!r}, not an integer >= 0"
    for key in ("obs_loc", "obs_scale"):
        value = payload[key]
        if not isinstance(value, torch.Tensor) or value.shape != (OBSERVATION_SIZE,) or not value.is_floating_point():
            return (
                f"{key} is {getattr(value, 'shape', type(value).__name__)}, not a float tensor of shape "
                f"[{OBSERVATION_SIZE}]"
            )
        if not torch.isfinite(value).all():
            return f"{key} holds NaN or infinite values"
    if not (payload["obs_scale"] > 0).all():
        return "obs_scale holds values <= 0"
    for part in ("actor", "critic"):
        for name, tensor in payload[part].items():
            if not isinstance(tensor, torch.Tensor):
                return f"{part} entry {name} is a {type(tensor).__name__}, not a tensor"
            if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                return f"{part} weight {name} holds NaN or infinite values"
    return None


def load_state(module, state: dict, path: Path | str, part: str) -> None:
    """``module.load_state_dict(state)``; a mismatch raises :class:`CheckpointError` naming ``path`` and ``part``."""
    try:
        module.load_state_dict(state)
    except (RuntimeError, ValueError, KeyError) as error:  # nn.Module: RuntimeError; optimizers: ValueError
        details = "; ".join(line.strip() for line in str(error).splitlines() if line.strip())  # one line per tensor
        raise CheckpointError(
            f"checkpoint {path}: the saved {part} does not fit the {part} this config builds ({details})"
        ) from None
