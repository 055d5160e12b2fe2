"""Philox4x32-10 against the published known-answer vectors, and the derived draws."""

import math

import pytest
import torch

from neuroloop_gpu.rng import philox4x32, standard_normal, uniform_words, words_to_uniform

M = 0xFFFFFFFF
# Known-answer vectors of the Random123 distribution (kat_vectors, philox4x32 with 10 rounds).
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((M, M, M, M), (M, M), (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


@pytest.mark.parametrize("counter,key,expected", KAT)
def test_philox_known_answers(counter, key, expected):
    as_tensor = lambda values: tuple(torch.tensor(v, dtype=torch.int64) for v in values)  # noqa: E731
    out = philox4x32(as_tensor(counter), as_tensor(key))
    assert tuple(int(x) for x in out) == expected


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_normal_draws_are_standard_normal(dtype):
    z = (
        standard_normal(
            torch.tensor([5]), 0, torch.arange(200).view(1, -1), torch.zeros(1, 1, dtype=torch.int64), 1000, dtype
        )
        .flatten()
        .double()
    )
    assert z.numel() == 200_000
    assert abs(float(z.mean())) < 0.01
    assert abs(float(z.std()) - 1.0) < 0.01
    # tail probabilities of a standard normal
    assert abs(float((z.abs() > 1.96).double().mean()) - 0.05) < 0.003
    assert abs(float((z.abs() > 3.0).double().mean()) - 0.0027) < 0.0006


def test_uniform_words_cover_the_range_and_differ_between_seeds_and_streams():
    zero = torch.zeros((), dtype=torch.int64)
    a = uniform_words(torch.tensor([1]), 0, zero, zero, 4096)
    b = uniform_words(torch.tensor([2]), 0, zero, zero, 4096)
    c = uniform_words(torch.tensor([1]), 1, zero, zero, 4096)
    u = words_to_uniform(a, torch.float64)
    assert 0 < float(u.min()) and float(u.max()) < 1
    u32 = words_to_uniform(torch.tensor([0, 2**32 - 1]), torch.float32)
    assert 0 < float(u32[0]) and float(u32[1]) < 1  # never rounds to 0 or 1
    assert abs(float(u.mean()) - 0.5) < 0.02
    assert not torch.equal(a, b) and not torch.equal(a, c)
    # neighbouring draws are uncorrelated
    x = u.flatten()
    corr = torch.corrcoef(torch.stack((x[:-1], x[1:])))[0, 1]
    assert abs(float(corr)) < 4 / math.sqrt(x.numel())


def test_draws_do_not_depend_on_the_batch():
    steps = torch.arange(10).view(1, -1)
    episode = torch.zeros(1, 1, dtype=torch.int64)
    alone = standard_normal(torch.tensor([42]).view(-1, 1), 0, steps, episode, 7, torch.float32)
    batch = standard_normal(
        torch.tensor([1, 42, 3]).view(-1, 1), 0, steps.expand(3, -1), episode.expand(3, 1), 7, torch.float32
    )
    assert torch.equal(alone[0], batch[1])
