"""The action box (envs/actions.py) against its definition: -1 -> low, +1 -> high, linearly, clipped;
each refused bound named with its allowed range."""

import numpy as np
import pytest
import torch

from neuroloop_gpu.envs import ActionBounds

LOW, HIGH = np.array([10.0, 5.0, 50.0]), np.array([200.0, 180.0, 500.0])  # NeuroLoop's box


def test_normalised_and_physical_are_the_linear_map_and_its_inverse():
    bounds = ActionBounds()
    settings = np.array([[10.0, 5.0, 50.0], [200.0, 180.0, 500.0], [105.0, 92.5, 275.0], [57.5, 148.0, 140.0]])
    action = bounds.normalised(settings[:, 0], settings[:, 1], settings[:, 2])
    expected = 2 * (settings - LOW) / (HIGH - LOW) - 1
    np.testing.assert_allclose(action, expected, rtol=0, atol=1e-7)
    assert action.dtype == np.float32 and action.shape == (4, 3)
    np.testing.assert_allclose(bounds.physical(expected), settings, rtol=1e-12)
    np.testing.assert_allclose(bounds.physical([[2.0, -3.0, 0.5]]), [[200.0, 5.0, 50.0 + 0.75 * 450.0]])  # clipped
    assert bounds.normalised(200.0, 5.0, [50.0, 500.0]).tolist() == [[1.0, -1.0, -1.0], [1.0, -1.0, 1.0]]
    narrow = ActionBounds(amplitude=(0.0, 50.0), frequency=(100.0, 130.0), pulse_width=(60.0, 90.0))
    np.testing.assert_allclose(narrow.normalised(12.5, 130.0, 70.0), [-0.5, 1.0, -1 / 3], rtol=1e-6)
    np.testing.assert_allclose(narrow.physical([0.0, 0.0, 0.0]), [25.0, 115.0, 75.0])


@pytest.mark.parametrize(
    "settings", [(9.0, 100.0, 100.0), (100.0, 181.0, 100.0), (100.0, 100.0, 49.0), (np.nan, 100.0, 100.0)]
)
def test_normalised_refuses_settings_outside_the_bounds(settings):
    with pytest.raises(ValueError) as error:
        ActionBounds().normalised(*settings)
    assert str(error.value).startswith(
        "settings must be within the bounds amplitude (10.0, 200.0) mV, frequency "
        "(5.0, 180.0) Hz, pulse_width (50.0, 500.0) us, got ["
    )


def test_refused_integer_settings_are_reported_as_numbers_of_mv_hz_us():
    with pytest.raises(ValueError) as error:
        ActionBounds().normalised(9, 100, 100)
    assert str(error.value).endswith("got [9.0, 100.0, 100.0]")


PAIR = "a pair (low, high) with 0 <= low < high (low > 0 for frequency and pulse_width)"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"amplitude": (-1.0, 200.0)}, f"bounds.amplitude must be {PAIR}, got (-1.0, 200.0)"),
        ({"amplitude": (200.0, 200.0)}, f"bounds.amplitude must be {PAIR}, got (200.0, 200.0)"),
        ({"amplitude": (10.0, float("inf"))}, f"bounds.amplitude must be {PAIR}, got (10.0, inf)"),
        ({"frequency": (0.0, 180.0)}, f"bounds.frequency must be {PAIR}, got (0.0, 180.0)"),
        ({"pulse_width": (0.0, 500.0)}, f"bounds.pulse_width must be {PAIR}, got (0.0, 500.0)"),
        ({"pulse_width": (50.0, 40.0)}, f"bounds.pulse_width must be {PAIR}, got (50.0, 40.0)"),
        (
            {"frequency": (5.0, 1250.0)},
            "bounds.pulse_width must be at most half the shortest period, 400 us at 1250 Hz, got (50.0, 500.0)",
        ),
    ],
)
def test_bounds_name_the_bad_range(fields, message):
    with pytest.raises(ValueError) as error:
        ActionBounds(**fields)
    assert str(error.value) == message


def test_the_widest_phase_is_half_the_shortest_period_exactly():
    ActionBounds(frequency=(5.0, 1000.0), pulse_width=(50.0, 500.0))  # 500 us + 500 us = 1 ms: fits
    with pytest.raises(ValueError, match="at most half the shortest period, 500 us at 1000 Hz"):
        ActionBounds(frequency=(5.0, 1000.0), pulse_width=(50.0, 500.0004))


def test_valid_bounds_are_kept():
    fields = {"amplitude": (0.0, 1.0), "frequency": (0.5, 1000.0), "pulse_width": (1.0, 500.0)}
    bounds = ActionBounds(**fields)  # 500 us phases fit a 1000 Hz period exactly
    assert {k: getattr(bounds, k) for k in fields} == fields


SHAPE = "action must be an array of shape (2, 3) (amplitude, frequency, pulse width in [-1, 1]), got "


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (torch.zeros(2, 2), SHAPE + "(2, 2)"),
        (np.zeros((2, 3)), SHAPE + "(2, 3)"),  # the right shape, but not a tensor
        ([[0.0] * 3] * 2, SHAPE + "'list'"),
        (torch.zeros(2, 3, dtype=torch.int64), "action must be floating point, got torch.int64"),
        (
            torch.tensor([[float("nan"), 0.0, 0.0], [0.0, 0.0, 2.0]]),
            "action must be finite (no NaN or inf; finite values outside [-1, 1] are clipped), got "
            "[[nan, 0.0, 0.0], [0.0, 0.0, 2.0]]",
        ),
    ],
)
def test_core_names_what_is_wrong_with_an_action(bad, message):
    from neuroloop_gpu.config import NetworkParams, SimConfig
    from neuroloop_gpu.envs import DBSCore

    core = DBSCore(2, NetworkParams(num_e=20, num_i=5), SimConfig(duration=40.0, seed=0), device="cpu")
    with pytest.raises(ValueError) as error:
        core.check_action(bad)
    assert str(error.value) == message
    core.check_action(torch.full((2, 3), 5.0))  # finite values outside the box are fine (clipped)


def test_physical_and_lows_highs_compute_in_float64_as_the_env_does():
    bounds = ActionBounds()
    action = np.array([0.1, -0.3, 0.7], dtype=np.float32)  # what a float32 policy emits
    exact = LOW + (action.astype(np.float64) + 1.0) / 2.0 * (HIGH - LOW)
    np.testing.assert_array_equal(bounds.physical(action), exact)
    low, high = bounds.lows_highs("cpu")
    assert low.dtype == high.dtype == torch.float64 and low.tolist() == LOW.tolist() and high.tolist() == HIGH.tolist()
    low32, high32 = bounds.lows_highs("cpu", torch.float32)
    assert low32.dtype == high32.dtype == torch.float32


def test_the_core_checks_what_it_is_given_unless_told_it_was_checked():
    """``step`` checks the action and ``step_train`` the train by default, before anything moves; a bad one
    raises and leaves the episode as it was. ``validate=False`` is for front ends that checked already."""
    from neuroloop_gpu.config import NetworkParams, SimConfig
    from neuroloop_gpu.envs import DBSCore
    from neuroloop_gpu.stimulus import PulseTrain

    core = DBSCore(2, NetworkParams(num_e=20, num_i=5), SimConfig(duration=40.0, seed=0), device="cpu")
    core.step(torch.zeros(2, 3))
    before = (core.steps.clone(), core.observation.clone(), core.net.state.v.clone(), core.net.state.weight.clone())
    with pytest.raises(ValueError, match="^action must be finite"):
        core.step(torch.tensor([[float("nan"), 0.0, 0.0]] * 2))
    with pytest.raises(ValueError, match="PulseTrain.amplitude must be >= 0 mV"):
        core.step_train(PulseTrain.constant(2, -1.0))
    after = (core.steps, core.observation, core.net.state.v, core.net.state.weight)
    for was, now in zip(before, after, strict=True):
        torch.testing.assert_close(now, was, rtol=0, atol=0)
    assert core.steps.tolist() == [1, 1]
    core.step(torch.full((2, 3), 5.0), validate=False)  # checked by the caller: runs (clipped to the box)
    assert core.steps.tolist() == [2, 2]
