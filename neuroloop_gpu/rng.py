"""Counter-based random numbers (Philox4x32-10) as batched torch ops.

Why not ``torch.Generator``: one generator per network would need a Python
loop over the batch every Euler step, and one generator for the whole batch
makes network b's noise depend on how many networks share the batch. A
counter-based generator is a pure function of (key, counter), so every
network draws from its own seed, the draws do not depend on the batch it sits
in, on the device, or on the order of evaluation, and a reset or a restart
can jump to any point of the stream without replaying it.

The algorithm is Philox4x32 with 10 rounds (Salmon, Moraes, Dror & Shaw,
"Parallel random numbers: as easy as 1, 2, 3", SC 2011), the generator behind
cuRAND and JAX's ``rbg``. Its known-answer vectors are checked in the tests.
All arithmetic runs on int64 tensors holding unsigned 32-bit values, with
32x32-bit products split into 16-bit halves so nothing overflows int64.
"""

from __future__ import annotations

import math

import torch

_MASK32 = 0xFFFFFFFF
_MULT = (0xD2511F53, 0xCD9E8D57)
_WEYL = (0x9E3779B9, 0xBB67AE85)
_ROUNDS = 10

# Stream identifiers: the fourth counter word separates independent uses of
# one network seed.
STREAM_MEMBRANE_NOISE = 0
STREAM_CONNECTIVITY_EI = 1  # E -> I synapses
STREAM_CONNECTIVITY_IE = 2  # I -> E synapses


def _mulhilo(a: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """High and low 32-bit words of the 64-bit product ``a * m`` (a, m < 2**32)."""
    lo_part = (a & 0xFFFF) * m  # < 2**48
    hi_part = (a >> 16) * m  # < 2**48
    mid = ((hi_part & 0xFFFF) << 16) + lo_part  # < 2**49
    low = mid & _MASK32
    high = (hi_part >> 16) + (mid >> 32)
    return high & _MASK32, low


def philox4x32(counter: tuple[torch.Tensor, ...], key: tuple[torch.Tensor, torch.Tensor]) -> list[torch.Tensor]:
    """Philox4x32-10 block function.

    ``counter`` is four int64 tensors and ``key`` two, each holding values in
    [0, 2**32) and broadcastable against each other. Returns four int64
    tensors of uniformly distributed 32-bit words.
    """
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for round_index in range(_ROUNDS):
        if round_index:
            k0 = (k0 + _WEYL[0]) & _MASK32
            k1 = (k1 + _WEYL[1]) & _MASK32
        hi0, lo0 = _mulhilo(c0, _MULT[0])
        hi1, lo1 = _mulhilo(c2, _MULT[1])
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return [c0, c1, c2, c3]


def split_seed(seed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Philox key (two 32-bit words) from non-negative int64 seeds."""
    return seed & _MASK32, (seed >> 32) & _MASK32


def uniform_words(
    seed: torch.Tensor, stream: int, c1: torch.Tensor, c2: torch.Tensor, count: int
) -> torch.Tensor:
    """``count`` uniform 32-bit words per row, as int64 ``[..., count]``.

    ``seed``, ``c1`` and ``c2`` broadcast to the leading shape; word ``n`` of
    a row is lane ``n % 4`` of the block with first counter word ``n // 4``.
    """
    key = split_seed(seed.unsqueeze(-1))
    blocks = torch.arange((count + 3) // 4, device=seed.device, dtype=torch.int64)
    stream_word = torch.full_like(blocks, stream)
    words = philox4x32((blocks, c1.unsqueeze(-1), c2.unsqueeze(-1), stream_word), key)
    return torch.stack(words, dim=-1).flatten(-2)[..., :count]


def words_to_uniform(words: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Map 32-bit words to floats in the open interval (0, 1).

    float64 keeps all 32 bits; float32 keeps the top 23, so that the largest
    value, 1 - 2**-24, is exactly representable and never rounds up to 1.
    """
    if dtype == torch.float64:
        return (words.to(torch.float64) + 0.5).mul_(2.0**-32)
    return ((words >> 9).to(dtype) + 0.5).mul_(2.0**-23)


def standard_normal(
    seed: torch.Tensor, stream: int, c1: torch.Tensor, c2: torch.Tensor, count: int, dtype: torch.dtype
) -> torch.Tensor:
    """``count`` standard normal draws per row (Box-Muller on Philox words).

    Shapes as in :func:`uniform_words`; the result is ``[..., count]``.
    """
    words = uniform_words(seed, stream, c1, c2, 2 * ((count + 1) // 2))
    uniform = words_to_uniform(words, dtype)  # computed in the working dtype: float32 is ~2x cheaper
    radius = torch.sqrt(-2.0 * torch.log(uniform[..., 0::2]))
    angle = (2.0 * math.pi) * uniform[..., 1::2]
    normal = torch.stack((radius * torch.cos(angle), radius * torch.sin(angle)), dim=-1).flatten(-2)
    return normal[..., :count]
