"""Synchrony measures on synthetic cases with known answers."""

import math

import pytest
import torch

from neuroloop_gpu.synchrony import causal_order, golomb_chi, kuramoto_order


def test_chi_is_one_for_identical_traces_and_small_for_independent_ones():
    gen = torch.Generator().manual_seed(0)
    common = torch.randn(1000, 1, generator=gen, dtype=torch.float64)
    identical = common.expand(1000, 50) + 14.0
    independent = torch.randn(1000, 400, generator=gen, dtype=torch.float64) + 14.0
    assert float(golomb_chi(identical)) == pytest.approx(1.0, abs=1e-9)
    assert float(golomb_chi(independent)) == pytest.approx(1 / math.sqrt(400), rel=0.15)
    # half common, half private signal of equal variance: chi^2 = 1 / 2 for many neurons
    mixed = common.expand(1000, 4000) + torch.randn(1000, 4000, generator=gen, dtype=torch.float64)
    assert float(golomb_chi(mixed)) == pytest.approx(math.sqrt(0.5), rel=0.05)


def periodic_raster(steps, neurons, period, offsets):
    raster = torch.zeros(1, steps, neurons, dtype=torch.bool)
    for k, offset in enumerate(offsets):
        raster[0, offset::period, k] = True
    return raster


def test_kuramoto_is_one_for_synchronous_and_zero_for_evenly_spread_phases():
    sync = periodic_raster(1000, 8, 100, [5] * 8)
    spread = periodic_raster(1000, 8, 100, [5 + 100 * k // 8 for k in range(8)])
    r_sync = kuramoto_order(sync)[0]
    r_spread = kuramoto_order(spread)[0]
    # phases are defined between the first and the last spike of every neuron
    assert torch.allclose(r_sync[105:900], torch.ones(795, dtype=torch.float64))
    assert float(r_spread[200:800].abs().max()) < 1e-9


def test_kuramoto_known_phase_offset():
    # two neurons, a quarter period apart: R = |1 + i| / 2 = 1 / sqrt(2)
    raster = periodic_raster(800, 2, 40, [0, 10])
    r = kuramoto_order(raster, sample_every=1)[0]
    assert torch.allclose(r[100:700], torch.full((600,), 1 / math.sqrt(2), dtype=torch.float64))


def test_kuramoto_is_batched_and_sampled():
    raster = torch.cat((periodic_raster(600, 4, 50, [0] * 4), periodic_raster(600, 4, 50, [0, 12, 25, 37])))
    r = kuramoto_order(raster, sample_every=10)
    assert r.shape == (2, 60)
    assert float(r[0, 10:50].min()) == pytest.approx(1.0)
    assert float(r[1, 10:50].max()) < 0.1


def test_causal_estimate_equals_offline_for_regular_firing():
    period = 40
    raster = periodic_raster(800, 3, period, [0, 10, 20])
    offline = kuramoto_order(raster)[0]
    # causal state at step t: last spike and last interval
    for t in (200, 333, 517):
        last = torch.tensor([[t - (t - off) % period for off in (0, 10, 20)]], dtype=torch.int32)
        isi = torch.full((1, 3), period, dtype=torch.int32)
        causal = causal_order(last, isi, torch.tensor([t], dtype=torch.int32))
        assert float(causal) == pytest.approx(float(offline[t]), abs=1e-6)


def test_causal_estimate_ignores_neurons_without_an_interval():
    last = torch.tensor([[5, -1, 3]], dtype=torch.int32)
    isi = torch.tensor([[10, 0, 0]], dtype=torch.int32)
    assert float(causal_order(last, isi, torch.tensor([7], dtype=torch.int32))) == pytest.approx(1.0)
    assert float(causal_order(last, torch.zeros_like(isi), torch.tensor([7], dtype=torch.int32))) == 0.0
