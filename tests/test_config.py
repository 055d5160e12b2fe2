"""Invalid configurations and arguments raise clear errors and build nothing."""

import copy

import numpy as np
import pytest
import torch

from neuroloop_gpu.config import NetworkParams, PlasticityParams, SimConfig
from neuroloop_gpu.network import NetworkBatch

SMALL = NetworkParams(num_e=40, num_i=10)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"step_size": 0.0}, "step_size must be a finite number > 0, got 0.0"),
        ({"step_size": -0.1}, "step_size must be a finite number > 0"),
        ({"step_size": float("nan")}, "step_size must be a finite number > 0"),
        ({"sample_duration": 20.05}, r"sample_duration must be a positive whole multiple of step_size=0.1 ms"),
        ({"duration": 30.0}, r"duration must be a whole multiple of sample_duration=20.0 ms"),
        ({"duration": 10.0}, r"duration must be a whole multiple of sample_duration"),
        ({"seed": -1}, r"seed must be None or an integer in \[0, 2\*\*63\)"),
    ],
)
def test_invalid_sim_config(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SimConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"num_e": 0}, "num_e must be an integer >= 1, got 0"),
        ({"num_i": 0}, "num_i must be an integer >= 1, got 0"),
        ({"num_e": 10.5}, "num_e must be an integer >= 1"),
        ({"tau_m": 0.0}, "tau_m must be a finite number > 0"),
        ({"connection_prob": 0.0}, r"connection_prob must be in \(0, 1\]"),
        ({"connection_prob": 1.5}, r"connection_prob must be in \(0, 1\]"),
        ({"v_reset": 25.0}, r"v_reset must be in \[v_rest=0.0, v_threshold=20.0\) mV"),
        ({"sigma_e": -1.0}, "sigma_e must be a finite number >= 0"),
        ({"stim_noise_e": -10.0}, r"stim_noise_e must be a finite number >= 0 \(mV\), got -10.0"),
        ({"stim_noise_i": float("nan")}, r"stim_noise_i must be a finite number >= 0 \(mV\)"),
        ({"synaptic_input": "mean"}, "synaptic_input must be 'published' or 'summed'"),
        ({"noise_scaling": "ito"}, "noise_scaling must be 'published' or 'euler_maruyama'"),
        ({"delay": 0.0}, "delay must be a finite number > 0"),
    ],
)
def test_invalid_network_params(kwargs, message):
    with pytest.raises(ValueError, match=message):
        NetworkParams(**kwargs)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"tau_pre": 0.0}, "plasticity.tau_pre must be a finite number > 0"),
        ({"a_ltd": 0.5}, "plasticity.a_ltd must be a finite number <= 0"),
        ({"w_max_mv": 5.0}, "plasticity.w_max_mv must be a finite number > w_min_mv=10.0"),
        ({"onset": -1.0}, "plasticity.onset must be a finite number >= 0"),
        ({"w_init": float("nan")}, "plasticity.w_init must be a finite number >= 0, got nan"),
        ({"enabled": "no"}, "plasticity.enabled must be True or False, got 'no'"),
    ],
)
def test_invalid_plasticity(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PlasticityParams(**kwargs)


@pytest.mark.parametrize(
    "params,sim,message",
    [
        (
            NetworkParams(num_e=40, num_i=10, delay=5.05),
            SimConfig(),
            "delay must be a positive whole multiple of step_size=0.1 ms",
        ),
        (
            NetworkParams(num_e=40, num_i=10, refractory=0.25),
            SimConfig(),
            "refractory must be a positive whole multiple",
        ),
        (
            NetworkParams(num_e=40, num_i=10, plasticity=PlasticityParams(w_init=2.0)),
            SimConfig(),
            r"plasticity.w_init must be in \[w_min_mv / j_i, w_max_mv / j_i\]",
        ),
    ],
)
def test_combinations_that_cannot_be_simulated(params, sim, message):
    with pytest.raises(ValueError, match=message):
        NetworkBatch(1, params, sim, device="cpu")


def test_time_constant_below_the_step_warns():
    with pytest.warns(RuntimeWarning, match=r"step_size=0.1 ms exceeds tau_d=0.05 ms"):
        NetworkBatch(1, NetworkParams(num_e=40, num_i=10, tau_d=0.05), SimConfig(), device="cpu")


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"num_networks": 0}, "num_networks must be an integer >= 1"),
        ({"num_networks": 2, "seeds": [1]}, r"seeds must be 2 integers"),
        ({"num_networks": 1, "seeds": [-3]}, r"seeds must be non-negative integers, got \[-3\]"),
        ({"num_networks": 2, "seeds": [1.7, 2.0]}, r"seeds must be 2 integers in \[0, 2\*\*63\), got torch.float32"),
        ({"num_networks": 2, "seeds": [2**64, 1]}, r"seeds must be 2 integers in \[0, 2\*\*63\)"),
        ({"num_networks": 2**27}, r"num_networks must be below 52377650 for networks of this size"),
        ({"num_networks": 1, "dtype": torch.float16}, "dtype must be torch.float32 or torch.float64"),
        ({"num_networks": 1, "kop_sample_interval": 0.3}, "kop_sample_interval must be a divisor of sample_duration"),
        (
            {"num_networks": 1, "kop_sample_interval": float("nan")},
            "kop_sample_interval must be a finite whole multiple of step_size=0.1 ms, got nan",
        ),
        (
            {"num_networks": 2, "sim": SimConfig(seed=2**63 - 1)},
            r"sim.seed must be an integer in \[0, 2\*\*63 - num_networks\]",
        ),
    ],
)
def test_invalid_batch_arguments(kwargs, message):
    num = kwargs.pop("num_networks")
    with pytest.raises(ValueError, match=message):
        NetworkBatch(num, SMALL, device="cpu", **kwargs)


def test_numpy_integers_are_accepted_as_plain_integers():
    params, sim = NetworkParams(num_e=np.int64(40), num_i=np.int32(10)), SimConfig(seed=np.int64(2**62))
    assert (params, sim) == (SMALL, SimConfig(seed=2**62))
    assert {type(params.num_e), type(params.num_i), type(sim.seed)} == {int}


def test_bad_reset_arguments_leave_the_state_untouched():
    net = NetworkBatch(2, SMALL, device="cpu")
    net.run_window()
    before = net.state.v_e.clone()
    with pytest.raises(ValueError, match=r"mask must be a bool tensor of shape \(2,\)"):
        net.reset(torch.tensor([True, False, True]))
    with pytest.raises(ValueError, match=r"mask must be a bool tensor"):
        net.reset(torch.tensor([1, 0]))
    with pytest.raises(ValueError, match="seeds must be 2 integers"):
        net.reset(seeds=[1, 2, 3])
    assert torch.equal(net.state.v_e, before)


def test_reseeding_no_network_changes_nothing():
    net = NetworkBatch(2, SMALL, device="cpu")
    net.run_window()
    before = copy.deepcopy((net.state, net.connectivity))
    net.reset(torch.zeros(2, dtype=torch.bool), seeds=[7, 8])
    for old, new in ((before[0], net.state), (before[1], net.connectivity)):
        for name, value in vars(old).items():
            assert torch.equal(value, getattr(new, name)), name


def test_bad_pulse_train_leaves_the_state_untouched():
    from neuroloop_gpu.stimulus import PulseTrain

    net = NetworkBatch(2, SMALL, device="cpu")
    net.run_window()
    before_v, before_stim = net.state.v_e.clone(), net.stimulator.since_onset.clone()
    train = PulseTrain.constant(2, 100.0)
    train.frequency[0] = float("inf")
    with pytest.raises(ValueError, match="PulseTrain.frequency must be finite"):
        net.run_window(train)
    assert torch.equal(net.state.v_e, before_v) and torch.equal(net.stimulator.since_onset, before_stim)
