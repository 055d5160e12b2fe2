"""Data-parallel PPO across processes launched by ``torchrun``.

Every rank simulates its own batch of networks (its own seeds), computes the
PPO loss on its own rollouts and averages gradients with the other ranks
before each optimiser step, so all ranks hold identical networks. NCCL on
GPUs, gloo on the CPU. Without ``torchrun`` (no ``WORLD_SIZE`` in the
environment) everything here is a no-op on a single process.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Rank:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def init_from_environment(device: torch.device) -> Rank:
    """Join the process group that ``torchrun`` describes in the environment (if any)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Rank()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)  # NCCL and Triton work on the current device: this rank's own
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Rank(dist.get_rank(), dist.get_world_size(), local_rank)


def rank_device(device: torch.device, rank: Rank) -> torch.device:
    """One GPU per local rank when training on CUDA."""
    if device.type == "cuda" and rank.active:
        return torch.device("cuda", rank.local_rank)
    return device


def broadcast_parameters(parameters: Iterable[torch.Tensor], rank: Rank) -> None:
    """Start every rank from rank 0's initial weights."""
    if rank.active:
        for tensor in parameters:
            dist.broadcast(tensor.data, src=0)


def average_gradients(parameters: Iterable[torch.nn.Parameter], rank: Rank) -> None:
    """All-reduce (mean) the gradients in one flat buffer: one collective per optimiser step."""
    if not rank.active:
        return
    grads = [p.grad for p in parameters if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= rank.world_size
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def average_tensors(tensors: dict[str, torch.Tensor], rank: Rank) -> dict[str, torch.Tensor]:
    """Mean over ranks of each tensor (normaliser statistics, logged metrics)."""
    if not rank.active:
        return tensors
    averaged = {}
    for key, value in tensors.items():
        total = value.detach().to(torch.float64).clone()
        dist.all_reduce(total)
        averaged[key] = (total / rank.world_size).to(value.dtype)
    return averaged


def shutdown(rank: Rank) -> None:
    if rank.active and dist.is_initialized():
        dist.destroy_process_group()
