"""Peers the harness compares against, each timed on the same workload (one network each).

* ``reference``: the port-faithful NumPy loop (:mod:`.reference_loop`), always available.
* ``brian2-runtime`` / ``brian2-cpp``: the network in Brian2 with its Cython
  runtime target and its cpp_standalone target (:mod:`.brian2_peer`), an
  optional extra (``pip install 'neuroloop-gpu[brian2]'``) run in its own
  process. ``brian2`` names both, ``all`` every peer, ``none`` no peer.
"""

from __future__ import annotations

from ..workload import Size

PEERS = ("reference", "brian2-runtime", "brian2-cpp")
ALIASES = {"brian2": ("brian2-runtime", "brian2-cpp"), "all": PEERS, "none": ()}


def expand_peers(names) -> tuple[str, ...]:
    """Peer names with aliases expanded, in order, without repeats; ValueError for an unknown name."""
    out: list[str] = []
    for name in names:
        if name not in PEERS and name not in ALIASES:
            raise ValueError(f"peers must be among {', '.join(PEERS + tuple(ALIASES))}, got {name!r}")
        for peer in ALIASES.get(name, (name,)):
            if peer not in out:
                out.append(peer)
    return tuple(out)


def run_peer(
    name: str,
    size: Size,
    *,
    windows: int,
    repeats: int,
    warmup: int,
    seed: int = 0,
    synaptic_input: str = "published",
    brian2_windows: int = 50,
    brian2_python: str | None = None,
    brian2_threads: int = 1,
) -> dict:
    """One peer record for one network of ``size`` (keys as the harness's results, plus peer details).

    ``synaptic_input`` applies to the reference loop; Brian2 always sums coincident inputs ("summed").
    """
    if name == "reference":
        from .reference_loop import run_reference

        return run_reference(
            size, windows=windows, repeats=repeats, warmup=warmup, seed=seed, synaptic_input=synaptic_input
        )
    if name in ("brian2-runtime", "brian2-cpp"):
        from .brian2_peer import run_brian2

        # Brian2 times one run() call per repeat; brian2_windows amortises its per-call overhead.
        return run_brian2(
            name,
            size,
            windows=max(windows, brian2_windows),
            repeats=repeats,
            warmup=warmup,
            seed=seed,
            python=brian2_python,
            threads=brian2_threads,
        )
    raise ValueError(f"unknown peer {name!r}; expected one of {', '.join(PEERS)}")


__all__ = ["ALIASES", "PEERS", "expand_peers", "run_peer"]
