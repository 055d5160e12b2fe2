"""The controllers' contract at its edges: whole refusal messages, the limits of every range,
the outputs after reset and act (dtype, device, values), describe() and the tuned sweep reader.

Written against the survivors of mutation testing of ``control/controllers.py``; every
expected value here is worked out by hand, not read back from the code under test. The
``meta`` device stands in for an accelerator: it lets a CPU-only run see whether every
tensor follows the requested device.
"""

import json
import math

import numpy as np
import pytest
import torch

from neuroloop_gpu.control import (
    FTSTSParams,
    HFDBSParams,
    HighFrequencyDBS,
    NoStimulation,
    OpenLoopFTSTS,
    PIParams,
    ProportionalIntegral,
    ThresholdParams,
    ThresholdStimulation,
    TrainParams,
    TunedFTSTS,
    TunedFTSTS1ms,
    make_controller,
)

FIELDS = ("amplitude", "frequency", "pulse_width", "polarity")
FTSTS_HZ = 1000.0 / 12.0  # the published 12 ms period


def refusal(make) -> str:
    with pytest.raises(ValueError) as error:
        make()
    return str(error.value)


def observation(synchrony, device="cpu"):
    obs = torch.full((len(synchrony), 6), 0.5, dtype=torch.float32)
    obs[:, 0] = torch.tensor(synchrony, dtype=torch.float32)
    return obs.to(device)


def info(weight_mv, stimulating=True):
    weight = torch.tensor(weight_mv, dtype=torch.float32)
    return {"weight_mv": weight, "stimulating": torch.full(weight.shape, stimulating)}


def values(train) -> dict[str, list[float]]:
    for name in FIELDS:
        assert getattr(train, name).dtype == torch.float64, name
    return {name: getattr(train, name).tolist() for name in FIELDS}


def on_device(train, device: str) -> None:
    for name in FIELDS:
        tensor = getattr(train, name)
        assert tensor.device.type == device, name
        assert tensor.dtype == torch.float64, name
        assert tensor.shape == (3,), name


# --- TrainParams ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"amplitude": -1.0}, "TrainParams.amplitude must be a finite number >= 0 (mV), got -1.0"),
        ({"frequency": 0.0}, "TrainParams.frequency must be a finite number > 0 (Hz), got 0.0"),
        ({"frequency": math.inf}, "TrainParams.frequency must be a finite number > 0 (Hz), got inf"),
        (
            {"frequency": 100.0, "pulse_width": 0.0},
            "TrainParams.pulse_width must be > 0 and at most half the period, 5000 us at 100 Hz, got 0.0",
        ),
        (
            {"frequency": 100.0, "pulse_width": 5000.001},
            "TrainParams.pulse_width must be > 0 and at most half the period, 5000 us at 100 Hz, got 5000.001",
        ),
        (
            {"frequency": 0.5, "pulse_width": 2e6},
            "TrainParams.pulse_width must be > 0 and at most half the period, 1e+06 us at 0.5 Hz, got 2000000.0",
        ),
        ({"polarity": 0.0}, "TrainParams.polarity must be +1 (FTSTS) or -1 (swapped), got 0.0"),
    ],
)
def test_train_refusals_state_the_whole_rule(overrides, message):
    assert refusal(lambda: TrainParams(**overrides)) == message


@pytest.mark.parametrize(
    "overrides",
    [
        {"amplitude": 0.0},  # off is a valid amplitude
        {"amplitude": 0.5},
        {"frequency": 0.5, "pulse_width": 1e6},  # below 1 Hz, phase exactly half of a 2 s period
        {"frequency": 100.0, "pulse_width": 5000.0},  # exactly half the 10 ms period
        {"frequency": 100.0, "pulse_width": 0.5},  # sub-microsecond phases
    ],
)
def test_train_accepts_the_edges_of_its_ranges(overrides):
    params = TrainParams(**overrides)
    for name, value in overrides.items():
        assert getattr(params, name) == value


def test_constant_builds_the_train_on_the_requested_device_with_an_amplitude_override():
    params = TrainParams(amplitude=40.0, frequency=100.0, pulse_width=300.0, polarity=-1.0)
    assert values(params.constant(2, "cpu")) == {
        "amplitude": [40.0, 40.0],
        "frequency": [100.0, 100.0],
        "pulse_width": [300.0, 300.0],
        "polarity": [-1.0, -1.0],
    }
    assert values(params.constant(2, "cpu", amplitude=7.0))["amplitude"] == [7.0, 7.0]
    on_device(params.constant(3, "meta"), "meta")


# --- the subclasses' own ranges -------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: FTSTSParams(latch_mv=0.0),
            "FTSTSParams.latch_mv must be 'published', None or a finite number > 0 (mV), got 0.0",
        ),
        (
            lambda: HFDBSParams(frequency=99.5),
            "HFDBSParams.frequency must be a number >= 100 Hz (high-frequency DBS), got 99.5",
        ),
        (
            lambda: HFDBSParams(pulse_width=90.5),
            "HFDBSParams.pulse_width must be in [60, 90] us (clinical range), got 90.5",
        ),
        (lambda: ThresholdParams(upper=1.5), "ThresholdParams.upper must be in [0, 1], got 1.5"),
        (
            lambda: ThresholdParams(upper=0.5, lower=0.75),
            "ThresholdParams.lower must be in [0, upper=0.5], got 0.75",
        ),
        (lambda: PIParams(target=1.5), "PIParams.target must be in [0, 1], got 1.5"),
        (lambda: PIParams(kp=-1.0), "PIParams.kp must be a finite number >= 0, got -1.0"),
        (lambda: PIParams(ki=-1.0), "PIParams.ki must be a finite number >= 0, got -1.0"),
    ],
)
def test_subclass_refusals_state_the_whole_rule(make, message):
    assert refusal(make) == message


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: FTSTSParams(latch_mv=0.5), {"latch_mv": 0.5}),
        (lambda: FTSTSParams(latch_mv=None), {"latch_mv": None}),
        (lambda: HFDBSParams(frequency=100.0), {"frequency": 100.0}),
        (lambda: HFDBSParams(pulse_width=90.0), {"pulse_width": 90.0}),
        (lambda: HFDBSParams(pulse_width=60.0), {"pulse_width": 60.0}),
        (lambda: ThresholdParams(upper=0.0, lower=0.0), {"upper": 0.0, "lower": 0.0}),
        (lambda: ThresholdParams(upper=1.0, lower=1.0), {"upper": 1.0, "lower": 1.0}),
        (lambda: ThresholdParams(upper=0.4, lower=0.4), {"upper": 0.4, "lower": 0.4}),
        (lambda: PIParams(target=0.0), {"target": 0.0}),
        (lambda: PIParams(target=1.0), {"target": 1.0}),
        (lambda: PIParams(kp=0.0, ki=0.0), {"kp": 0.0, "ki": 0.0}),
        (lambda: PIParams(kp=0.5, ki=0.5), {"kp": 0.5, "ki": 0.5}),
    ],
)
def test_subclasses_accept_the_edges_of_their_ranges(make, expected):
    params = make()
    for name, value in expected.items():
        assert getattr(params, name) == value


# --- construction and make_controller -------------------------------------------------------


def test_make_controller_refuses_an_unknown_name_listing_the_known_ones():
    assert refusal(lambda: make_controller("nope")) == (
        "controller must be one of ['ftsts', 'ftsts-scheduled', 'ftsts-scheduled-1ms', 'ftsts-tuned', "
        "'ftsts-tuned-1ms', 'hf-dbs', 'none', 'pi', 'threshold'], got 'nope'"
    )


def test_no_stimulation_refuses_parameters_listing_them_sorted():
    assert refusal(lambda: NoStimulation(b=1.0, a=2.0)) == (
        "none parameter must be absent (no stimulation has no parameters), got ['a', 'b']"
    )


def test_fixed_train_controllers_take_params_or_overrides_not_both():
    params = FTSTSParams(amplitude=50.0)
    assert OpenLoopFTSTS(params).params is params
    assert refusal(lambda: OpenLoopFTSTS("fast")) == (
        "params must be a FTSTSParams (or keyword overrides, not both), got 'fast'"
    )
    assert refusal(lambda: OpenLoopFTSTS(FTSTSParams(), amplitude=5.0)) == (
        "params must be a FTSTSParams (or keyword overrides, not both), got "
        "FTSTSParams(amplitude=100.0, frequency=83.33333333333333, pulse_width=1000.0, polarity=1.0, latch_mv=75.0)"
    )


def test_an_unknown_override_is_named_first_in_sorted_order():
    assert refusal(lambda: OpenLoopFTSTS(zeta=1.0, amplitud=5.0)) == (
        "ftsts parameter must be one of ['amplitude', 'frequency', 'pulse_width', 'polarity', 'latch_mv'], "
        "got 'amplitud'"
    )


# --- outputs after reset and act, on the requested device -----------------------------------


@pytest.mark.parametrize(
    "make",
    [NoStimulation, OpenLoopFTSTS, HighFrequencyDBS, ThresholdStimulation, ProportionalIntegral],
)
def test_every_controller_follows_the_device_of_reset(make):
    controller = make()
    controller.reset(3, "meta")
    on_device(controller.act(observation([0.1, 0.5, 0.9], "meta"), {}), "meta")
    on_device(controller.act(observation([0.1, 0.5, 0.9], "meta"), {}), "meta")


def test_no_stimulation_is_an_ftsts_shaped_train_at_amplitude_zero():
    controller = NoStimulation()
    controller.reset(2, "cpu")
    assert values(controller.act(observation([0.9, 0.1]), {})) == {
        "amplitude": [0.0, 0.0],
        "frequency": [FTSTS_HZ, FTSTS_HZ],
        "pulse_width": [1000.0, 1000.0],
        "polarity": [1.0, 1.0],
    }


def test_ftsts_latch_trips_strictly_below_75_mv_and_strictly_above_125_mv_when_swapped():
    ftsts = OpenLoopFTSTS()
    ftsts.reset(3, "cpu")
    assert values(ftsts.act(observation([0.5] * 3), {})) == {
        "amplitude": [100.0] * 3,
        "frequency": [FTSTS_HZ] * 3,
        "pulse_width": [1000.0] * 3,
        "polarity": [1.0] * 3,
    }
    assert values(ftsts.act(observation([0.5] * 3), info([75.0, 74.5, 80.0])))["amplitude"] == [100.0, 0.0, 100.0]

    swapped = OpenLoopFTSTS(polarity=-1.0)
    swapped.reset(3, "cpu")
    train = values(swapped.act(observation([0.5] * 3), info([125.0, 125.5, 120.0])))
    assert train["amplitude"] == [100.0, 0.0, 100.0]
    assert train["polarity"] == [-1.0] * 3


def test_threshold_switches_on_strictly_above_upper_and_off_strictly_below_lower():
    controller = ThresholdStimulation(upper=0.5, lower=0.25)
    controller.reset(3, "cpu")
    assert values(controller.act(observation([0.5, 0.625, 0.25]), {}))["amplitude"] == [0.0, 100.0, 0.0]
    # network 1 is on: it stays on at exactly `lower`, and goes off just below it
    assert values(controller.act(observation([0.5, 0.25, 0.25]), {}))["amplitude"] == [0.0, 100.0, 0.0]
    assert values(controller.act(observation([0.5, 0.125, 0.25]), {}))["amplitude"] == [0.0, 0.0, 0.0]


def test_pi_error_is_taken_in_float64_from_the_float32_synchrony():
    controller = ProportionalIntegral(kp=500.0, ki=25.0, target=0.15)
    controller.reset(3, "cpu")
    synchrony = [0.3, 0.7, 0.41]
    train = controller.act(observation(synchrony), {})
    error = np.asarray(synchrony, dtype=np.float32).astype(np.float64) - 0.15
    integral = np.clip(25.0 * error, 0.0, 100.0)
    expected = np.clip(500.0 * error + integral, 0.0, 100.0)
    assert train.amplitude.dtype == torch.float64
    np.testing.assert_allclose(train.amplitude.numpy(), expected, rtol=0, atol=1e-12)
    assert values(train)["pulse_width"] == [1000.0] * 3


# --- the tuned train and its sweep file ------------------------------------------------------


def write_sweep(path):
    document = {
        "tuned": {
            "neuroloop": {"amplitude_mv": 30.0, "frequency_hz": 100.0, "pulse_width_us": 250.0},
            "1ms": {"amplitude_mv": 20.0, "frequency_hz": 50.0, "pulse_width_us": 1000.0},
        }
    }
    path.write_text(json.dumps(document))
    return path


def test_tuned_reads_its_bounds_point_from_the_given_sweep(tmp_path):
    sweep = write_sweep(tmp_path / "sweep.json")
    tuned = TunedFTSTS(sweep=sweep)
    assert tuned.describe() == {
        "controller": "ftsts-tuned",
        "amplitude": 30.0,
        "frequency": 100.0,
        "pulse_width": 250.0,
        "polarity": 1.0,
        "latch_mv": 75.0,
        "sweep": str(sweep),
        "bounds": "neuroloop",
    }
    wide = TunedFTSTS1ms(sweep=tmp_path)  # the folder holding sweep.json
    assert wide.describe() == {
        "controller": "ftsts-tuned-1ms",
        "amplitude": 20.0,
        "frequency": 50.0,
        "pulse_width": 1000.0,
        "polarity": 1.0,
        "latch_mv": 75.0,
        "sweep": str(tmp_path),
        "bounds": "1ms",
    }
    wide.reset(2, "cpu")
    assert values(wide.act(observation([0.5, 0.5]), {})) == {
        "amplitude": [20.0, 20.0],
        "frequency": [50.0, 50.0],
        "pulse_width": [1000.0, 1000.0],
        "polarity": [1.0, 1.0],
    }


def test_tuned_overrides_win_over_the_sweep_and_params_skip_it(tmp_path):
    sweep = write_sweep(tmp_path / "sweep.json")
    assert TunedFTSTS(sweep=sweep, amplitude=7.0).describe()["amplitude"] == 7.0
    params = FTSTSParams(amplitude=42.0, frequency=100.0, pulse_width=400.0)
    tuned = TunedFTSTS(params, sweep=tmp_path / "never-read.json")
    assert tuned.params is params


def test_tuned_refuses_an_unreadable_sweep_naming_the_file(tmp_path):
    broken = tmp_path / "sweep.json"
    broken.write_text("")
    assert refusal(lambda: TunedFTSTS(sweep=tmp_path)) == (
        f"sweep must be a readable sweep.json (or its folder), got '{broken}': "
        "Expecting value: line 1 column 1 (char 0)"
    )


# --- ftsts-scheduled ----------------------------------------------------------------------------


def test_weight_schedule_refusals_are_whole_messages():
    assert refusal(lambda: make_controller("ftsts-scheduled", polarity=-1.0)) == (
        "WeightScheduleParams.polarity must be +1 (the schedule is measured for the FTSTS waveform), got -1.0"
    )
    assert refusal(lambda: make_controller("ftsts-scheduled", off_below_mv=float("inf"))) == (
        "WeightScheduleParams.off_below_mv must be a finite number >= 0 (mV), got inf"
    )
    assert refusal(lambda: make_controller("ftsts-scheduled", late_amplitude=-0.5)) == (
        "WeightScheduleParams.late_amplitude must be a finite number >= 0 (mV), got -0.5"
    )


def test_weight_schedule_accepts_its_boundary_values():
    for params in ({"late_amplitude": 0.0}, {"late_amplitude": 0.5}, {"off_below_mv": 0.0, "switch_mv": 0.0},
                   {"off_below_mv": 0.5}, {"switch_mv": 75.0}):  # fmt: skip
        controller = make_controller("ftsts-scheduled", **params)
        assert all(getattr(controller.params, k) == v for k, v in params.items())


def test_weight_schedule_thresholds_are_exact():
    # feature 5 = (J_I*w - 10) / 280: 0.5 is 150 mV and 0.25 is 80 mV, both exact in float32
    controller = make_controller("ftsts-scheduled", off_below_mv=80.0)
    controller.reset(2, "cpu")
    observation = torch.zeros(2, 6)
    observation[:, 5] = torch.tensor([0.5, 0.25])
    assert controller.act(observation, {}).amplitude.tolist() == [50.0, 50.0]  # at the switch: late; at off: on


def test_weight_schedule_builds_its_trains_on_the_device_asked_for():
    controller = make_controller("ftsts-scheduled")
    controller.reset(2, "meta")
    assert controller.train.amplitude.device.type == "meta" and controller.late.device.type == "meta"
