"""Random sparse E->I and I->E connectivity, one draw per network seed.

Each ordered (pre, post) pair is connected independently with probability
``connection_prob``; network b draws its pairs from Philox words keyed by its
own seed, so its synapses do not depend on the batch it is built in.

Storage scales with the synapses that exist: per network a flat list of
synapses sorted by (pre, post), padded to a fixed capacity (mean + 8 standard
deviations of the binomial count, so every network of a batch has the same
shape and overflow is a ~1e-15 event that raises). Padding synapses point at
a dummy neuron (index ``num_pre`` / ``num_post``) that never spikes, so they
never transmit or learn. Indices are stored as int32 *global* rows of the
batch-flattened ``[B * (num + 1)]`` neuron tables, ready for
``index_select`` / ``index_add_`` without per-step arithmetic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..rng import STREAM_CONNECTIVITY_EI, STREAM_CONNECTIVITY_IE, uniform_words, words_to_uniform

_PAIRS_PER_CHUNK = 1 << 22  # bounds the temporary memory of a draw


def synapse_capacity(num_pre: int, num_post: int, prob: float) -> int:
    """Padded synapse count: binomial mean + 8 standard deviations."""
    pairs = num_pre * num_post
    mean = pairs * prob
    return min(pairs, math.ceil(mean + 8.0 * math.sqrt(pairs * prob * (1.0 - prob))) + 1)


def draw_synapses(
    seeds: torch.Tensor, num_pre: int, num_post: int, prob: float, stream: int, capacity: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Draw each network's synapses.

    Returns local ``pre`` and ``post`` indices ``[B, capacity]`` (int64, padded
    with ``num_pre`` / ``num_post``) sorted by (pre, post), and the number of
    real synapses per network ``[B]``.
    """
    batch = seeds.shape[0]
    pairs = num_pre * num_post
    device = seeds.device
    pre = torch.full((batch, capacity), num_pre, dtype=torch.int64, device=device)
    post = torch.full((batch, capacity), num_post, dtype=torch.int64, device=device)
    counts = torch.zeros(batch, dtype=torch.int64, device=device)
    nets_per_chunk = max(1, _PAIRS_PER_CHUNK // pairs)
    zero = torch.zeros((), dtype=torch.int64, device=device)
    for start in range(0, batch, nets_per_chunk):
        chunk = slice(start, min(batch, start + nets_per_chunk))
        words = uniform_words(seeds[chunk], stream, zero, zero, pairs)
        connected = words_to_uniform(words, torch.float64) <= prob  # u <= p, as in the published code
        position = torch.cumsum(connected, dim=1) - 1
        count = connected.sum(dim=1)
        counts[chunk] = count
        slot = torch.where(connected, position, capacity)  # unconnected pairs land in a dump column
        pair_index = torch.arange(pairs, device=device).expand_as(slot)
        flat = torch.full((slot.shape[0], capacity + 1), pairs, dtype=torch.int64, device=device)
        flat.scatter_(1, torch.minimum(slot, torch.tensor(capacity, device=device)), pair_index)
        flat = flat[:, :capacity]
        real = flat < pairs
        pre[chunk] = torch.where(real, flat // num_post, num_pre)
        post[chunk] = torch.where(real, flat % num_post, num_post)
    overflow = counts > capacity
    if bool(overflow.any()):  # construction time only, never in the Euler loop
        raise RuntimeError(f"synapse count {int(counts.max())} exceeds capacity {capacity}; use another seed")
    return pre, post, counts


def to_global(local: torch.Tensor, rows_per_network: int, slots: torch.Tensor) -> torch.Tensor:
    """Local neuron indices ``[k, S]`` of the networks in batch ``slots`` ``[k]``
    -> int32 rows of the flattened ``[B * rows]`` table."""
    return (local + slots.unsqueeze(1) * rows_per_network).to(torch.int32)


@dataclass
class Connectivity:
    """Synapse lists of a batch of networks (see module docstring)."""

    ei_pre: torch.Tensor  # [B, S_ei] int32 global rows of the E table (num_e + 1 rows per network)
    ei_post: torch.Tensor  # [B, S_ei] int32 global rows of the I table (num_i + 1 rows per network)
    ie_pre: torch.Tensor  # [B, S_ie] int32 global rows of the I table
    ie_post: torch.Tensor  # [B, S_ie] int32 global rows of the E table
    ei_count: torch.Tensor  # [B] int64 real E->I synapses
    ie_count: torch.Tensor  # [B] int64 real I->E synapses

    @classmethod
    def draw(
        cls, seeds: torch.Tensor, num_e: int, num_i: int, prob: float, slots: torch.Tensor | None = None
    ) -> "Connectivity":
        """Draw the networks with ``seeds`` ``[k]``, destined for batch ``slots`` (default 0..k-1)."""
        if slots is None:
            slots = torch.arange(seeds.shape[0], device=seeds.device)
        ei_cap = synapse_capacity(num_e, num_i, prob)
        ie_cap = synapse_capacity(num_i, num_e, prob)
        ei_pre, ei_post, ei_count = draw_synapses(seeds, num_e, num_i, prob, STREAM_CONNECTIVITY_EI, ei_cap)
        ie_pre, ie_post, ie_count = draw_synapses(seeds, num_i, num_e, prob, STREAM_CONNECTIVITY_IE, ie_cap)
        return cls(
            ei_pre=to_global(ei_pre, num_e + 1, slots),
            ei_post=to_global(ei_post, num_i + 1, slots),
            ie_pre=to_global(ie_pre, num_i + 1, slots),
            ie_post=to_global(ie_post, num_e + 1, slots),
            ei_count=ei_count,
            ie_count=ie_count,
        )

    def replace(self, slots: torch.Tensor, fresh: "Connectivity") -> None:
        """Put ``fresh`` (drawn for ``slots``) into those batch slots."""
        for name, value in vars(fresh).items():
            getattr(self, name)[slots] = value

    def local(self, name: str, rows_per_network: int) -> torch.Tensor:
        """Local neuron indices of one index array (for tests and analysis)."""
        glob = getattr(self, name).to(torch.int64)
        offset = torch.arange(glob.shape[0], device=glob.device).unsqueeze(1) * rows_per_network
        return glob - offset

    def nbytes(self) -> int:
        return sum(t.element_size() * t.numel() for t in vars(self).values())
