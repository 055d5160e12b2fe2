"""dbsenv's spike-time layout and its ``kop`` signature, for code ported from NeuroLoop/dbsenv.

dbsenv reports spikes as ``spike_time_e``: a ``[steps, num_e]`` matrix whose entry ``[i, n]`` is the
time (ms) of neuron n's last spike at or before step i (0 before its first spike). Our envs give
rasters (``last_spikes_e``); these helpers convert between the two and compute the Kuramoto order
parameter from the matrix with this package's definition (:func:`neuroloop_gpu.synchrony.kuramoto_order`:
neurons without a spike before and after t are left out of the mean at t).
"""

from __future__ import annotations

import numpy as np
import torch

from .config import require
from .synchrony import kuramoto_order


def spike_time_matrix(raster: np.ndarray, step_size: float, start_ms: float = 0.0) -> np.ndarray:
    """dbsenv's ``spike_time_e`` of a bool raster ``[steps, num_e]`` whose step i ends at
    ``start_ms + (i + 1) * step_size`` ms (a spike is stamped with the end of its step, as in dbsenv)."""
    raster = np.asarray(raster, dtype=bool)
    require(raster.ndim == 2, "raster", "a bool array [steps, num_e]", raster.shape)
    times = start_ms + step_size * np.arange(1, raster.shape[0] + 1, dtype=np.float64)
    stamped = np.where(raster, times[:, None], 0.0)
    return np.maximum.accumulate(stamped, axis=0)


def kop(sptime: np.ndarray, t: np.ndarray, step_size: float, duration: float, num_neurons: int) -> np.ndarray:
    """R(t) per step from dbsenv's spike-time matrix (dbsenv's ``dbsenv.utils.synchrony.kop`` signature).

    ``sptime`` is ``[steps, num_neurons]``; ``t``, ``step_size`` and ``duration`` describe its time axis
    as in dbsenv (``len(t)`` samples). A neuron spikes at step i where its entry changes.
    """
    sptime = np.asarray(sptime, dtype=np.float64)
    require(
        sptime.ndim == 2 and sptime.shape[1] == num_neurons, "sptime", f"an array [steps, {num_neurons}]", sptime.shape
    )
    require(len(t) == sptime.shape[0], "t", f"{sptime.shape[0]} sample times (one per row of sptime)", len(t))
    require(step_size > 0 and duration > 0, "step_size/duration", "numbers > 0", (step_size, duration))
    previous = np.vstack((np.zeros((1, num_neurons)), sptime[:-1]))
    raster = sptime != previous
    return kuramoto_order(torch.from_numpy(raster)[None])[0].numpy()
