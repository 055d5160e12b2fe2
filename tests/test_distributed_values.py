"""Data-parallel helpers (control/distributed.py): values each rank ends with, in a real 2-process gloo group."""

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from neuroloop_gpu.control import distributed
from neuroloop_gpu.control.distributed import Rank


def _in_group(rank: int, port: int, results) -> None:
    # what torchrun puts in each process's environment (rank 0 without LOCAL_RANK: it defaults to 0)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(rank))
    if rank:
        os.environ["LOCAL_RANK"] = str(rank)
    else:
        os.environ.pop("LOCAL_RANK", None)
    me = distributed.init_from_environment(torch.device("cpu"))
    seen = {"rank": (me.rank, me.world_size, me.local_rank, me.is_main, me.active)}
    seen["device"] = str(distributed.rank_device(torch.device("cpu"), me))

    start = [torch.full((2,), 10.0 * (rank + 1)), torch.tensor([rank + 0.5])]
    distributed.broadcast_parameters(start, me)
    seen["broadcast"] = [t.tolist() for t in start]

    weight, bias, frozen, gain = (torch.nn.Parameter(torch.zeros(shape)) for shape in ((2, 2), (3,), (1,), (2,)))
    weight.grad = torch.tensor([[1.0, 2.0], [3.0, 4.0]]) * (rank + 1)  # rank 0: x1, rank 1: x2
    bias.grad = torch.tensor([0.0, 1.0, -1.0]) + rank
    gain.grad = torch.tensor([10.0, -10.0]) * rank
    distributed.average_gradients([weight, frozen, bias, gain], me)  # frozen has no gradient: left out
    seen["grads"] = (weight.grad.tolist(), bias.grad.tolist(), gain.grad.tolist(), frozen.grad)

    # counts are averaged in float64: exact up to 2**53, where float32 would round 2**40 + 1
    count = torch.tensor([2**40 + 2 if rank == 0 else 2**40], dtype=torch.int64)
    tensors = {"reward": torch.tensor([1.0 / 3.0 if rank == 0 else 2.0 / 3.0]), "count": count}
    averaged = distributed.average_tensors(tensors, me)
    seen["averaged"] = {k: (v.tolist(), str(v.dtype)) for k, v in averaged.items()}
    seen["untouched"] = tensors["reward"].tolist()  # the input is not averaged in place
    distributed.shutdown(me)
    seen["after_shutdown"] = dist.is_initialized()
    results[rank] = seen


@pytest.fixture(scope="module")
def group():
    results = mp.Manager().dict()
    port = 30_500 + os.getpid() % 1000
    mp.spawn(_in_group, args=(port, results), nprocs=2, join=True)
    return dict(results)


def test_the_group_is_joined_from_torchruns_environment(group):
    assert group[0]["rank"] == (0, 2, 0, True, True)
    assert group[1]["rank"] == (1, 2, 1, False, True)
    assert group[0]["device"] == group[1]["device"] == "cpu"  # CPU ranks share the CPU
    assert group[0]["after_shutdown"] is False and group[1]["after_shutdown"] is False


def test_every_rank_starts_from_rank_0s_weights(group):
    assert group[0]["broadcast"] == group[1]["broadcast"] == [[10.0, 10.0], [0.5]]


def test_gradients_are_the_mean_over_ranks(group):
    for rank in (0, 1):
        weight, bias, gain, frozen = group[rank]["grads"]
        assert weight == [[1.5, 3.0], [4.5, 6.0]]  # (1x + 2x) / 2
        assert bias == [0.5, 1.5, -0.5]
        assert gain == [5.0, -5.0]
        assert frozen is None


def test_logged_tensors_are_the_mean_over_ranks_in_their_own_dtype(group):
    for rank in (0, 1):
        averaged = group[rank]["averaged"]
        assert averaged["reward"] == ([0.5], "torch.float32")
        assert averaged["count"] == ([2**40 + 1], "torch.int64")
    assert group[0]["untouched"] == [pytest.approx(1 / 3)] and group[1]["untouched"] == [pytest.approx(2 / 3)]


def test_a_single_process_is_a_group_of_one(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    alone = distributed.init_from_environment(torch.device("cpu"))
    assert alone == Rank(0, 1, 0) and alone.is_main and not alone.active
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert distributed.init_from_environment(torch.device("cpu")) == Rank()
    assert not dist.is_initialized()
    grad = torch.tensor([1.0, 2.0])
    weight = torch.nn.Parameter(torch.zeros(2))
    weight.grad = grad
    distributed.average_gradients([weight], alone)
    assert weight.grad is grad and grad.tolist() == [1.0, 2.0]
    tensors = {"x": torch.tensor([3.0])}
    assert distributed.average_tensors(tensors, alone) is tensors
    start = [torch.tensor([7.0])]
    distributed.broadcast_parameters(start, alone)
    assert start[0].tolist() == [7.0]
    distributed.shutdown(alone)  # nothing to shut down: no error


def test_each_cuda_rank_takes_its_own_gpu():
    cuda = torch.device("cuda")
    assert distributed.rank_device(cuda, Rank(3, 4, 1)) == torch.device("cuda", 1)
    assert distributed.rank_device(cuda, Rank()) == cuda  # one process: the device asked for
    assert distributed.rank_device(torch.device("cpu"), Rank(1, 2, 1)) == torch.device("cpu")
