"""Random sparse E->I and I->E connectivity, one draw per network seed.

Each ordered (pre, post) pair is connected independently with probability
``connection_prob``; network b draws its pairs from Philox words keyed by its
own seed, so its synapses do not depend on the batch it is built in.

Storage scales with the synapses that exist: per network a flat list of
synapses sorted by (pre, post), padded to a fixed capacity (mean + 8 standard
deviations of the binomial count, so every network of a batch has the same
shape and overflow is a ~1e-15 event that raises). Padding synapses belong to
a dummy neuron (index ``num_pre`` / ``num_post``) that never spikes, so they
never transmit or learn.

Because the list is sorted by presynaptic neuron, the synapses leaving one
neuron form a contiguous range (compressed sparse rows): per neuron a start
and a degree replace a per-synapse presynaptic index. E->I synapses also have
a column view (``ei_by_post``: their ids sorted by (post, pre), with its own
starts and degrees, and their presynaptic neurons), so the synapses entering
a spiking I neuron can be found without scanning all of them. Neuron indices are *global* rows of the
batch-flattened ``[B * (num + 1)]`` neuron tables and synapse ids are global
positions in the flattened ``[B * capacity]`` lists, ready for indexing
without per-step arithmetic; only the column view holds indices local to the
network (int32 and int16, for memory), and users add the network's offset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..rng import STREAM_CONNECTIVITY_EI, STREAM_CONNECTIVITY_IE, uniform_words, words_to_uniform

_PAIRS_PER_CHUNK = 1 << 22  # bounds the temporary memory of a draw
_SYNAPSES_PER_PART = 1 << 24  # networks are drawn in parts of about this many synapse slots (see draw)


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


def row_ranges(local_rows: torch.Tensor, num_rows: int, slots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Start (global position in the flattened ``[B, S]`` list) and length of each row's
    range in lists ``[k, S]`` sorted by ``local_rows`` (values 0..num_rows-1): ``[k, num_rows]`` int64."""
    degree = torch.zeros(local_rows.shape[0], num_rows, dtype=torch.int64, device=local_rows.device)
    degree.scatter_add_(1, local_rows, torch.ones_like(local_rows))
    start = degree.cumsum(1) - degree + slots.unsqueeze(1) * local_rows.shape[1]
    return start, degree


@dataclass
class Connectivity:
    """Synapse lists of a batch of networks (see module docstring)."""

    ei_post: torch.Tensor  # [B, S_ei] int32 global rows of the I table (num_i + 1 rows per network)
    ei_start: torch.Tensor  # [B, num_e + 1] int64 id of the first E->I synapse leaving each E neuron
    ei_degree: torch.Tensor  # [B, num_e + 1] int64 number of E->I synapses leaving it (padding: dummy row)
    ei_by_post: torch.Tensor  # [B, S_ei] int32 local E->I synapse ids sorted by (post, pre)
    ei_pre_by_post: torch.Tensor  # [B, S_ei] their local presynaptic E neurons (int16 when num_e < 2**15)
    ei_post_start: torch.Tensor  # [B, num_i + 1] int64 position in ei_by_post of each I neuron's first input
    ei_post_degree: torch.Tensor  # [B, num_i + 1] int64 number of E->I synapses entering it
    ie_post: torch.Tensor  # [B, S_ie] int32 global rows of the E table (num_e + 1 rows per network)
    ie_start: torch.Tensor  # [B, num_i + 1] int64 id of the first I->E synapse leaving each I neuron
    ie_degree: torch.Tensor  # [B, num_i + 1] int64
    ei_count: torch.Tensor  # [B] int64 real E->I synapses
    ie_count: torch.Tensor  # [B] int64 real I->E synapses

    @classmethod
    def draw(
        cls, seeds: torch.Tensor, num_e: int, num_i: int, prob: float, slots: torch.Tensor | None = None
    ) -> "Connectivity":
        """Draw the networks with ``seeds`` ``[k]``, destined for batch ``slots`` (default 0..k-1).

        A few hundred full-size networks at a time: the draw's int64 temporaries take several
        times the final lists' memory (16384 full-size networks at once would not fit an 80 GB GPU)."""
        if slots is None:
            slots = torch.arange(seeds.shape[0], device=seeds.device)
        batch = seeds.shape[0]
        part = max(1, _SYNAPSES_PER_PART // synapse_capacity(num_e, num_i, prob))
        whole = None
        for lo in range(0, batch, part):
            drawn = cls._draw_part(seeds[lo : lo + part], num_e, num_i, prob, slots[lo : lo + part])
            if part >= batch:
                return drawn
            if whole is None:
                whole = cls(**{name: value.new_empty((batch, *value.shape[1:])) for name, value in vars(drawn).items()})
            whole.replace(slice(lo, lo + part), drawn)
        return whole

    @classmethod
    def _draw_part(
        cls, seeds: torch.Tensor, num_e: int, num_i: int, prob: float, slots: torch.Tensor
    ) -> "Connectivity":
        ei_cap = synapse_capacity(num_e, num_i, prob)
        ie_cap = synapse_capacity(num_i, num_e, prob)
        ei_pre, ei_post, ei_count = draw_synapses(seeds, num_e, num_i, prob, STREAM_CONNECTIVITY_EI, ei_cap)
        ie_pre, ie_post, ie_count = draw_synapses(seeds, num_i, num_e, prob, STREAM_CONNECTIVITY_IE, ie_cap)
        ei_start, ei_degree = row_ranges(ei_pre, num_e + 1, slots)
        ie_start, ie_degree = row_ranges(ie_pre, num_i + 1, slots)
        by_post = torch.sort(ei_post, dim=1, stable=True).indices  # stable: ties (same post) stay in pre order
        small = torch.int16 if num_e < 2**15 else torch.int32
        ei_post_start, ei_post_degree = row_ranges(ei_post.gather(1, by_post), num_i + 1, slots)
        return cls(
            ei_post=to_global(ei_post, num_i + 1, slots),
            ei_start=ei_start,
            ei_degree=ei_degree,
            ei_by_post=by_post.to(torch.int32),
            ei_pre_by_post=ei_pre.gather(1, by_post).to(small),
            ei_post_start=ei_post_start,
            ei_post_degree=ei_post_degree,
            ie_post=to_global(ie_post, num_e + 1, slots),
            ie_start=ie_start,
            ie_degree=ie_degree,
            ei_count=ei_count,
            ie_count=ie_count,
        )

    def replace(self, slots: torch.Tensor | slice, fresh: "Connectivity") -> None:
        """Put ``fresh`` (drawn for ``slots``) into those batch slots."""
        for name, value in vars(fresh).items():
            getattr(self, name)[slots] = value

    def pre_rows(self, name: str) -> torch.Tensor:
        """Global presynaptic row of every synapse of ``"ei"`` or ``"ie"`` ``[B * S]`` int64,
        expanded from the row ranges (no host sync: the total is known)."""
        degree = getattr(self, f"{name}_degree")
        return torch.repeat_interleave(degree.view(-1), output_size=getattr(self, f"{name}_post").numel())

    def local(self, name: str, rows_per_network: int) -> torch.Tensor:
        """Local neuron indices of one index array, ``ei_pre``, ``ei_post``, ``ie_pre`` or
        ``ie_post`` ``[B, S]`` (for tests and analysis)."""
        kind, end = name.split("_")
        glob = self.pre_rows(kind) if end == "pre" else getattr(self, name).to(torch.int64)
        glob = glob.view(self.ei_count.shape[0], -1)
        offset = torch.arange(glob.shape[0], device=glob.device).unsqueeze(1) * rows_per_network
        return glob - offset

    def nbytes(self) -> int:
        return sum(t.element_size() * t.numel() for t in vars(self).values())
