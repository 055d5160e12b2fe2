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
All arithmetic runs on int64 tensors holding unsigned 32-bit values. A
32x32-bit product needs 64 unsigned bits: int64 multiplication wraps modulo
2**64 on two's-complement hardware (every torch device; the known-answer
tests check it), so its bit pattern is the exact product; the low word is
``p & mask`` and the high word ``(p >> 32) & mask`` (the arithmetic shift
only smears the sign into bits that the mask drops). That is 10 int64 ops
per round instead of 28 with 16-bit halves.
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
STREAM_EPISODE_START = 3  # per-episode draws of the closed-loop core (e.g. a start weight)
STREAM_STIM_NOISE = 4  # stimulation-locked membrane noise (NetworkParams.stim_noise_e / _i)


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
        # c0, c2 <- hi(c2 * M1) ^ c1 ^ k0, hi(c0 * M0) ^ c3 ^ k1; c1, c3 <- lo(c2 * M1), lo(c0 * M0).
        # The low words stay unmasked: their bits 32..63 only meet a xor that is masked
        # before the next product.
        product0, product1 = c0 * _MULT[0], c2 * _MULT[1]
        c0, c2 = ((product1 >> 32) ^ c1 ^ k0) & _MASK32, ((product0 >> 32) ^ c3 ^ k1) & _MASK32
        c1, c3 = product1, product0
    return [c0, c1 & _MASK32, c2, c3 & _MASK32]


def split_seed(seed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Philox key (two 32-bit words) from non-negative int64 seeds."""
    return seed & _MASK32, (seed >> 32) & _MASK32


def uniform_words(seed: torch.Tensor, stream: int, c1: torch.Tensor, c2: torch.Tensor, count: int) -> torch.Tensor:
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


def box_muller_uniforms(
    seed: torch.Tensor, stream: int, c1: torch.Tensor, c2: torch.Tensor, count: int, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """The two uniform inputs of Box-Muller, ``[..., blocks, 2]`` each: radius
    uniforms from lanes 0 and 2 of each Philox block, angle uniforms from lanes
    1 and 3. Integer ops and exact float conversions only, so a compiled copy
    (:func:`compiled_box_muller_uniforms`) returns the same bits as this one."""
    blocks = torch.arange((count + 3) // 4, device=seed.device, dtype=torch.int64)
    return box_muller_uniforms_of_blocks(seed, stream, c1, c2, blocks, dtype)


def box_muller_uniforms_of_blocks(
    seed: torch.Tensor, stream: int, c1: torch.Tensor, c2: torch.Tensor, blocks: torch.Tensor, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`box_muller_uniforms` for the Philox blocks (first counter words) ``blocks``."""
    key = split_seed(seed.unsqueeze(-1))
    w0, w1, w2, w3 = philox4x32((blocks, c1.unsqueeze(-1), c2.unsqueeze(-1), torch.full_like(blocks, stream)), key)
    return (
        words_to_uniform(torch.stack((w0, w2), dim=-1), dtype),
        words_to_uniform(torch.stack((w1, w3), dim=-1), dtype),
    )


def compiled_box_muller_uniforms():
    """:func:`box_muller_uniforms` with its Philox rounds fused by ``torch.compile``. The block
    numbers come in as a tensor: Inductor would otherwise fold ``arange * multiplier`` into Triton
    index arithmetic, where a multiplier above 2**31 does not compile (CUDA)."""
    compiled = torch.compile(box_muller_uniforms_of_blocks)

    def uniforms(seed, stream, c1, c2, count, dtype):
        blocks = torch.arange((count + 3) // 4, device=seed.device, dtype=torch.int64)
        return compiled(seed, stream, c1, c2, blocks, dtype)

    return uniforms


def box_muller_polar(radius_u: torch.Tensor, angle_u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Box-Muller's radius sqrt(-2 log u) and angle 2 pi u, in place, in the uniforms' dtype (float32 is
    ~2x cheaper than float64); the draws are radius * cos(angle) and radius * sin(angle). The fused
    CPU backend repeats these ops with the same functions (it checks its bits against this one)."""
    return radius_u.log_().mul_(-2.0).sqrt_(), angle_u.mul_(2.0 * math.pi)


def standard_normal(
    seed: torch.Tensor,
    stream: int,
    c1: torch.Tensor,
    c2: torch.Tensor,
    count: int,
    dtype: torch.dtype,
    uniforms=box_muller_uniforms,
) -> torch.Tensor:
    """``count`` standard normal draws per row (Box-Muller on Philox words).

    Shapes as in :func:`uniform_words`; the result is ``[..., count]``. Words
    ``2m`` and ``2m + 1`` of a row (lanes 0, 1 or 2, 3 of one block) give
    draws ``2m`` and ``2m + 1``: radius from the first, angle from the second.
    ``uniforms`` may be a compiled :func:`box_muller_uniforms`. The logarithm,
    sine and cosine always run eagerly: compiled code evaluates them with
    other approximations (last-bit differences in about a third of the draws).
    """
    radius, angle = box_muller_polar(*uniforms(seed, stream, c1, c2, count, dtype))
    normal = torch.empty(radius.shape + (2,), dtype=dtype, device=radius.device)  # [..., blocks, 2, 2]
    torch.mul(radius, torch.cos(angle), out=normal[..., 0])
    torch.mul(radius, angle.sin_(), out=normal[..., 1])
    return normal.flatten(-3)[..., :count]
