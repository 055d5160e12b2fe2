"""Baseline controllers: batched, within their bounds, and each rule on synthetic inputs."""

import numpy as np
import pytest
import torch

from neuroloop_gpu.config import NetworkParams, SimConfig
from neuroloop_gpu.control import (
    CONTROLLERS,
    FTSTSParams,
    HighFrequencyDBS,
    OpenLoopFTSTS,
    ProportionalIntegral,
    ThresholdStimulation,
    make_controller,
)
from neuroloop_gpu.envs import DBSCore, EpisodeConfig
from neuroloop_gpu.network import NetworkBatch
from neuroloop_gpu.open_loop import OpenLoopProtocol, run_open_loop
from neuroloop_gpu.stimulus import FTSTS_FREQUENCY_HZ, PulseTrain

B = 5


def observation(synchrony, weight_fraction=0.9):
    obs = torch.full((len(synchrony), 6), 0.5, dtype=torch.float32)
    obs[:, 0] = torch.tensor(synchrony, dtype=torch.float32)
    obs[:, 5] = weight_fraction
    return obs


def info(weight_mv, stimulating=True):
    weight = torch.tensor(weight_mv, dtype=torch.float32)
    return {"weight_mv": weight, "stimulating": torch.full(weight.shape, stimulating)}


@pytest.mark.parametrize("name", sorted(CONTROLLERS))
def test_every_controller_is_batched_and_within_bounds(name):
    controller = make_controller(name)
    controller.reset(B, "cpu")
    rng = np.random.default_rng(0)
    for window in range(20):
        obs = observation(rng.uniform(0, 1, B).tolist())
        train = controller.act(obs, {} if window == 0 else info(rng.uniform(60, 260, B).tolist()))
        assert isinstance(train, PulseTrain)
        train.validate(B)  # shapes, finite, amplitude >= 0, 2 * width <= period, polarity +-1
        assert all(getattr(train, f).dtype == torch.float64 for f in ("amplitude", "frequency", "pulse_width"))
        params = getattr(controller, "params", None)
        ceiling = max(getattr(params, "amplitude", 0.0), getattr(params, "late_amplitude", 0.0))
        assert float(train.amplitude.max()) <= ceiling
    assert controller.describe()["controller"] == name


def test_high_frequency_dbs_is_continuous_130_hz():
    controller = HighFrequencyDBS()
    controller.reset(B, "cpu")
    train = controller.act(observation([0.0] * B), {})
    assert torch.all(train.frequency == 130.0) and torch.all(train.amplitude == 200.0)
    assert torch.all((train.pulse_width >= 60) & (train.pulse_width <= 90))
    with pytest.raises(ValueError, match=r"HFDBSParams.pulse_width must be in \[60, 90\] us"):
        HighFrequencyDBS(pulse_width=100.0)
    with pytest.raises(ValueError, match="HFDBSParams.frequency must be a number >= 100 Hz"):
        HighFrequencyDBS(frequency=50.0)


def test_ftsts_latches_off_for_good_once_the_weight_crosses_75_mv():
    controller = OpenLoopFTSTS()
    controller.reset(3, "cpu")
    first = controller.act(observation([0.5] * 3), {})  # no window yet: the protocol asks to stimulate
    assert first.amplitude.tolist() == [100.0] * 3 and first.frequency.tolist() == [FTSTS_FREQUENCY_HZ] * 3
    assert first.pulse_width.tolist() == [1000.0] * 3  # 1 ms phases: outside the agent's box, on purpose
    # a window that did not stimulate (before the onset) does not trip the latch
    before_onset = info([70.0, 70.0, 260.0], stimulating=False)
    assert controller.act(observation([0.5] * 3), before_onset).amplitude.tolist() == [100.0] * 3
    assert controller.act(observation([0.5] * 3), info([80.0, 74.9, 260.0])).amplitude.tolist() == [100.0, 0.0, 100.0]
    # network 1 stays off even when its weight recovers; network 0 latches now
    assert controller.act(observation([0.5] * 3), info([74.0, 200.0, 260.0])).amplitude.tolist() == [0.0, 0.0, 100.0]
    controller.reset(3, "cpu")
    assert controller.act(observation([0.5] * 3), {}).amplitude.tolist() == [100.0] * 3


def test_default_latch_is_the_published_threshold_of_the_polarity():
    assert FTSTSParams().latch_mv == 75.0 and FTSTSParams(polarity=-1.0).latch_mv == 125.0
    assert FTSTSParams(latch_mv=None).latch_mv is None and FTSTSParams(polarity=-1.0, latch_mv=90.0).latch_mv == 90.0
    for bad in (float("nan"), float("inf"), 0.0, -75.0):
        with pytest.raises(ValueError, match="FTSTSParams.latch_mv must be"):
            FTSTSParams(latch_mv=bad)
    # the swapped train potentiates: it stops once J_I*w rises above 125 mV, not at once above 75
    controller = OpenLoopFTSTS(polarity=-1.0)
    controller.reset(2, "cpu")
    assert controller.act(observation([0.5] * 2), info([100.0, 124.0])).amplitude.tolist() == [100.0, 100.0]
    assert controller.act(observation([0.5] * 2), info([110.0, 126.0])).amplitude.tolist() == [100.0, 0.0]


def test_open_loop_protocol_latches_at_the_published_threshold_of_its_waveform():
    assert OpenLoopProtocol().latch_mv == 75.0 and OpenLoopProtocol(waveform="none").latch_mv is None
    swapped = OpenLoopProtocol(waveform="swapped", amplitude=200.0, onset=100.0)
    assert swapped.latch_mv == 125.0
    with pytest.raises(ValueError, match="latch_mv must be"):
        OpenLoopProtocol(latch_mv=float("nan"))
    # the published swapped run: J_I = 75 mV, so J_I*w starts at 75 and creeps up, far below 125
    run = run_open_loop(
        NetworkBatch(2, NetworkParams(num_e=40, num_i=10, j_i=75.0), SimConfig(duration=200.0, seed=3), device="cpu"),
        swapped,
        10,
        progress=False,
    )
    assert (run.stats["weight_mv"] < 125.0).all()
    assert run.stimulating[5:].all() and run.stim_off_time_ms == [None, None]


def test_threshold_hysteresis_per_network():
    controller = ThresholdStimulation(upper=0.3, lower=0.2, amplitude=50.0)
    controller.reset(2, "cpu")
    synchrony = [0.1, 0.35, 0.25, 0.21, 0.19, 0.25, 0.31]
    on = []
    # network 1 crosses upper whenever network 0 does but drops straight below lower after, so it is off
    # in windows 2-3 where network 0 holds on inside the band: the hysteresis state is per network
    for s in synchrony:
        amplitude = controller.act(observation([s, 1.0 - s if s > 0.3 else 0.1]), {}).amplitude
        on.append(amplitude.tolist())
    assert [a[0] for a in on] == [0.0, 50.0, 50.0, 50.0, 0.0, 0.0, 50.0]
    assert [a[1] for a in on] == [0.0, 50.0, 0.0, 0.0, 0.0, 0.0, 50.0]


def test_pi_step_response_and_anti_windup():
    controller = ProportionalIntegral(target=0.2, kp=100.0, ki=10.0, amplitude=80.0)
    controller.reset(1, "cpu")
    first = controller.act(observation([0.5]), {}).amplitude.item()
    assert first == pytest.approx(100.0 * 0.3 + 10.0 * 0.3)  # P + I after one window
    for _ in range(500):  # a long saturation would wind a plain integrator up to 1500 mV
        amplitude = controller.act(observation([0.5]), {}).amplitude.item()
    assert amplitude == 80.0
    assert controller.integral.item() == 80.0  # clamped to the output range
    # synchrony drops just below target: the amplitude leaves saturation at once
    after = controller.act(observation([0.15]), {}).amplitude.item()
    assert after == pytest.approx(100.0 * -0.05 + (80.0 - 10.0 * 0.05))
    for _ in range(200):
        amplitude = controller.act(observation([0.0]), {}).amplitude.item()
    assert amplitude == 0.0 and controller.integral.item() == 0.0
    assert controller.act(observation([0.0]), {}).frequency.tolist() == [FTSTS_FREQUENCY_HZ]


def test_bad_parameters_name_the_parameter():
    with pytest.raises(ValueError, match="controller must be one of"):
        make_controller("deep-learning")
    with pytest.raises(ValueError, match=r"ThresholdParams.lower must be in \[0, upper=0.3\]"):
        make_controller("threshold", lower=-0.1)
    with pytest.raises(ValueError, match=r"ThresholdParams.upper must be in \[0, 1\]"):
        make_controller("threshold", upper=1.5)
    with pytest.raises(ValueError, match="PIParams.ki must be a finite number >= 0"):
        make_controller("pi", ki=-1.0)
    with pytest.raises(ValueError, match="FTSTSParams.amplitude must be a finite number >= 0"):
        make_controller("ftsts", amplitude=-5.0)
    with pytest.raises(ValueError, match="ThresholdParams.pulse_width must be > 0 and at most half the period"):
        make_controller("threshold", frequency=600.0)  # 1000 us phases do not fit a 1.67 ms period
    with pytest.raises(ValueError, match="pi parameter must be one of"):
        make_controller("pi", gain=3.0)
    with pytest.raises(ValueError, match="none parameter must be absent"):
        make_controller("none", amplitude=1.0)


def test_ftsts_controller_on_the_core_reproduces_the_open_loop_run():
    params, sim = NetworkParams(num_e=40, num_i=10), SimConfig(duration=240.0, seed=3)
    windows, latch = 12, 259.0  # a high latch, so the tiny networks trip it within 12 windows
    reference = run_open_loop(
        NetworkBatch(2, params, sim, device="cpu"),
        OpenLoopProtocol(onset=100.0, latch_mv=latch),
        windows,
        progress=False,
    )
    core = DBSCore(2, params, sim, episode=EpisodeConfig(stim_onset=100.0), device="cpu")
    controller = OpenLoopFTSTS(latch_mv=latch)
    controller.reset(2, core.device)
    obs, last, weight, stimulating = core.observation, {}, [], []
    for _ in range(windows):
        step = core.step_train(controller.act(obs, last))
        obs, last = step.observation, step.info
        weight.append(last["weight_mv"].numpy().copy())
        stimulating.append(last["stimulating"].numpy().copy())
    assert np.array_equal(np.array(stimulating), reference.stimulating)
    assert np.array_equal(np.array(weight), reference.stats["weight_mv"])
    assert reference.stimulating[5].all() and not reference.stimulating[-1].any()  # it did latch


def test_step_train_gates_before_onset():
    core = DBSCore(
        2,
        NetworkParams(num_e=40, num_i=10),
        SimConfig(duration=60.0),
        device="cpu",
        episode=EpisodeConfig(stim_onset=20.0),
    )
    train = PulseTrain.constant(2, 50.0, 130.0, 60.0)
    assert core.step_train(train).info["amplitude_mv"].tolist() == [0.0, 0.0]
    assert core.step_train(train).info["amplitude_mv"].tolist() == [50.0, 50.0]
    with pytest.raises(ValueError, match="PulseTrain.amplitude must be >= 0 mV"):
        core.step_train(PulseTrain.constant(2, -1.0))


def test_weight_scheduled_ftsts_reads_the_weight_from_the_observation_and_steps_its_amplitude():
    weights_mv = [260.0, 151.0, 149.0, 100.0, 76.0, 74.0]
    obs = observation([0.5] * len(weights_mv))
    obs[:, 5] = torch.tensor([(w - 10.0) / 280.0 for w in weights_mv])  # feature 5: (J_I*w - 10 mV) / 280 mV
    controller = make_controller("ftsts-scheduled")
    controller.reset(len(weights_mv), "cpu")
    train = controller.act(obs, info([300.0] * len(weights_mv)))  # info's weight is not what it reads
    assert train.amplitude.tolist() == [40.0, 40.0, 50.0, 50.0, 50.0, 0.0]
    assert train.frequency.tolist() == [FTSTS_FREQUENCY_HZ] * 6 and train.pulse_width.tolist() == [500.0] * 6
    assert train.polarity.tolist() == [1.0] * 6
    assert controller.act(obs, {}).amplitude.tolist() == train.amplitude.tolist()  # no memory between windows
    custom = make_controller("ftsts-scheduled", amplitude=30.0, late_amplitude=60.0, switch_mv=200.0, off_below_mv=90.0)
    custom.reset(len(weights_mv), "cpu")
    assert custom.act(obs, {}).amplitude.tolist() == [30.0, 60.0, 60.0, 60.0, 0.0, 0.0]


def test_the_1ms_weight_schedule_is_the_mapped_one():
    # 15 mV above 180 mV of J_I*w, 25 mV down to 75 mV, off below; 83.3 Hz, 1000 us phases
    weights_mv = [260.0, 181.0, 179.0, 76.0, 74.0]
    obs = observation([0.5] * len(weights_mv))
    obs[:, 5] = torch.tensor([(w - 10.0) / 280.0 for w in weights_mv])
    controller = make_controller("ftsts-scheduled-1ms")
    controller.reset(len(weights_mv), "cpu")
    train = controller.act(obs, {})
    assert train.amplitude.tolist() == [15.0, 15.0, 25.0, 25.0, 0.0]
    assert train.pulse_width.tolist() == [1000.0] * 5 and train.frequency.tolist() == [FTSTS_FREQUENCY_HZ] * 5
    assert controller.describe()["switch_mv"] == 180.0 and controller.describe()["controller"] == "ftsts-scheduled-1ms"


@pytest.mark.parametrize(
    "params,message",
    [
        ({"switch_mv": 70.0}, r"WeightScheduleParams.switch_mv must be a finite number >= off_below_mv=75.0 \(mV\)"),
        ({"late_amplitude": -1.0}, r"WeightScheduleParams.late_amplitude must be a finite number >= 0 \(mV\)"),
        ({"off_below_mv": float("nan")}, r"WeightScheduleParams.off_below_mv must be a finite number >= 0"),
        ({"polarity": -1.0}, r"WeightScheduleParams.polarity must be \+1"),
        ({"pulse_width": 7000.0}, r"WeightScheduleParams.pulse_width must be > 0 and at most half the period"),
    ],
)
def test_weight_schedule_refuses_impossible_parameters(params, message):
    with pytest.raises(ValueError, match=message):
        make_controller("ftsts-scheduled", **params)
