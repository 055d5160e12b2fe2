"""The direction of every published effect, at reduced size (batched: each stimulated
network runs next to an unstimulated twin with the same seed)."""

import pytest
import torch

from neuroloop_gpu.config import NetworkParams, SimConfig
from neuroloop_gpu.network import NetworkBatch
from neuroloop_gpu.stimulus import PulseTrain

SEEDS = [1, 1, 2, 2]  # even: no stimulation, odd: stimulated twin
ONSET_WINDOWS, WINDOWS = 15, 75  # stimulation from 0.3 s, 1.5 s in all


def run_twins(j_i: float, amplitude: float, polarity: float):
    net = NetworkBatch(len(SEEDS), NetworkParams(num_e=200, num_i=50, j_i=j_i), SimConfig(), seeds=SEEDS, device="cpu")
    kop = []
    for w in range(WINDOWS):
        train = PulseTrain.constant(len(SEEDS), amplitude if w >= ONSET_WINDOWS else 0.0, polarity=polarity)
        train.amplitude[0::2] = 0.0
        kop.append(net.run_window(train).stats.kop)
    return net.mean_weight_mv(), torch.stack(kop)


@pytest.fixture(scope="module")
def ftsts():
    return run_twins(260.0, 100.0, 1.0)


def test_ftsts_depresses_the_e_to_i_weights(ftsts):
    weight, _ = ftsts
    assert torch.all(weight[1::2] < weight[0::2] - 5.0), weight


def test_without_stimulation_the_network_stays_synchronous(ftsts):
    weight, kop = ftsts
    early = kop[5:ONSET_WINDOWS, 0::2].mean(0)
    late = kop[-25:, 0::2].mean(0)
    stimulated = kop[ONSET_WINDOWS + 5 :, 1::2].mean(0)
    assert torch.all(late > 0.7 * early), (early, late)
    assert torch.all(late > stimulated + 0.05), (late, stimulated)
    assert torch.all((weight[0::2] - 260.0).abs() < 10.0)


def test_swapped_waveform_potentiates_a_weakly_coupled_network():
    weight, _ = run_twins(75.0, 200.0, -1.0)
    assert torch.all(weight[1::2] > weight[0::2] + 2.0), weight
