"""Timing and memory probes shared by the targets and the peers (no torch needed on the CPU).

Timing: ``warmup`` untimed windows, then ``repeats`` timed blocks of
``windows`` windows each; a block's time / windows is one sample of seconds
per window. On CUDA the device is synchronised before the clock starts and
before it stops, so every kernel of the block is inside the measurement.

Memory:

* CUDA: ``torch.cuda.max_memory_allocated`` after the case minus
  ``torch.cuda.memory_allocated`` before it (peak stats reset first): every
  tensor the case allocated (state, connectivity, per-window buffers),
  excluding the caching allocator's unused reserve.
* CPU: the process's peak resident set size during the case (``VmHWM`` from
  ``/proc/self/status``, reset through ``/proc/self/clear_refs`` before the
  case) minus its resident size before the case. This counts everything
  touched, including allocator slack and Python objects, and can under-count
  when the case reuses memory that an earlier case freed but the allocator
  kept; where the peak cannot be reset it falls back to the current RSS
  after the case. The simulator's own account of its persistent state
  (``NetworkBatch.bytes_per_network``) is reported next to it.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _sync(device) -> None:
    if device is not None and getattr(device, "type", "cpu") == "cuda":
        import torch

        torch.cuda.synchronize(device)


def time_windows(step: Callable[[], object], windows: int, repeats: int, warmup: int, device=None) -> list[float]:
    """Seconds per window of each timed repeat (``step`` advances every network by one window)."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        for _ in range(windows):
            step()
        _sync(device)
        times.append((time.perf_counter() - start) / windows)
    return times


def summarize_times(seconds_per_window: list[float], batch: int, window_ms: float) -> dict:
    """Derived throughput numbers; "env_steps_per_s" uses the median repeat, "_best" the fastest."""
    median, fastest = statistics.median(seconds_per_window), min(seconds_per_window)
    return {
        "seconds_per_window": list(seconds_per_window),
        "seconds_per_window_min": fastest,
        "seconds_per_window_median": median,
        "env_steps_per_s": batch / median,
        "env_steps_per_s_best": batch / fastest,
        "simulated_s_per_wall_s": batch * window_ms / 1000.0 / median,
    }


def _status_kib(key: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class MemoryProbe:
    """Peak memory of one case (see the module docstring for what is measured where)."""

    def __init__(self, device=None):
        self.device = device
        self.cuda = device is not None and getattr(device, "type", "cpu") == "cuda"
        self.base = 0
        self.peak_reset = False

    @property
    def method(self) -> str:
        if self.cuda:
            return "torch.cuda.max_memory_allocated - memory_allocated before the case"
        if self.peak_reset:
            return "peak RSS (VmHWM, reset before the case) - RSS before the case"
        return "RSS after the case - RSS before the case (peak RSS could not be reset)"

    def start(self) -> "MemoryProbe":
        gc.collect()
        if self.cuda:
            import torch

            torch.cuda.synchronize(self.device)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
            return self
        try:
            _CLEAR_REFS.write_text("5")  # Linux: reset VmHWM to the current RSS
            self.peak_reset = True
        except OSError:
            self.peak_reset = False
        self.base = (_status_kib("VmRSS") or 0) * 1024
        return self

    def peak_bytes(self) -> int | None:
        """Bytes above the level at :meth:`start`; None where the platform gives no answer."""
        if self.cuda:
            import torch

            torch.cuda.synchronize(self.device)
            return torch.cuda.max_memory_allocated(self.device) - self.base
        key = "VmHWM" if self.peak_reset else "VmRSS"
        value = _status_kib(key)
        return None if value is None else max(0, value * 1024 - self.base)
