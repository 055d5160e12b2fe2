"""Pulse trains: exact per-step averages, charge balance, continuity across windows."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neuroloop_gpu.network.simulator import backend_problem
from neuroloop_gpu.stimulus import PulseTrain, StimulatorState, render_window


def brute_force_current(amplitude, frequency, width_us, polarity, steps, dt, oversample=2000):
    """Average of the I-population waveform over each step by dense sampling (independent of the
    antiderivative formula), for one window starting with a pulse at t = 0."""
    period, width = 1000.0 / frequency, width_us * 1e-3
    t = (np.arange(steps * oversample) + 0.5) * dt / oversample
    phase = t % period
    wave = np.where(phase < width, 1.0, np.where(phase < 2 * width, -1.0, 0.0)) * amplitude * polarity
    return wave.reshape(steps, oversample).mean(axis=1)


def render(train, windows=1, steps=200, dt=0.1):
    state = StimulatorState.initial(train.amplitude.shape[0], "cpu")
    out = []
    for _ in range(windows):
        stim, state = render_window(train, state, steps, dt)
        out.append(stim)
    return out


@pytest.mark.parametrize(
    "frequency,width", [(130.0, 60.0), (83.333, 1000.0), (180.0, 50.0), (5.0, 500.0), (47.0, 130.0)]
)
def test_exact_average_matches_dense_sampling(frequency, width):
    train = PulseTrain.constant(2, 100.0, frequency, width)
    train.polarity[1] = -1.0
    stim = render(train)[0]
    for b, pol in enumerate((1.0, -1.0)):
        expected = brute_force_current(100.0, frequency, width, pol, 200, 0.1)
        np.testing.assert_allclose(stim.current_i[b].numpy(), expected, atol=100.0 / 2000 * 2)


@settings(max_examples=60, deadline=None)
@given(
    amplitude=st.one_of(st.just(0.0), st.floats(0.01, 300.0)),
    frequency=st.floats(5.0, 180.0),
    width=st.floats(1.0, 500.0),
    dt=st.sampled_from([0.1, 0.05, 0.025, 0.2]),
)
def test_every_window_sequence_is_charge_balanced_and_energy_exact(amplitude, frequency, width, dt):
    steps = round(20.0 / dt)
    train = PulseTrain.constant(1, amplitude, frequency, width)
    train.validate(1)
    windows = render(train, windows=12, steps=steps, dt=dt)
    current = torch.cat([w.current_i for w in windows], dim=1)
    pulses = len(np.arange(0.0, 240.0, 1000.0 / frequency))
    period = 1000.0 / frequency
    # all pulses that started are complete once the last one had 2 * width to finish
    last_onset = (pulses - 1) * period
    complete = last_onset + 2 * width * 1e-3 <= 240.0
    net = float(current.sum()) * dt
    if complete:
        assert abs(net) < 1e-9 * max(1.0, amplitude * pulses)
    # charge and energy of what was delivered: A * time-on and A^2 * time-on
    time_on = sum(float(w.charge) for w in windows) / amplitude if amplitude > 0 else 0.0
    expected_on = (pulses - (0 if complete else 1)) * 2 * width * 1e-3
    if complete and amplitude > 0:
        assert time_on == pytest.approx(expected_on, rel=1e-9, abs=1e-12)
    assert sum(float(w.energy) for w in windows) == pytest.approx(
        amplitude * sum(float(w.charge) for w in windows), rel=1e-9, abs=1e-9
    )


def test_pulse_narrower_than_the_step_keeps_its_charge():
    train = PulseTrain.constant(1, 150.0, 100.0, 50.0)  # 50 us phases, dt = 100 us
    stim = render(train)[0]
    current = stim.current_i[0].numpy()
    # first step holds the whole pulse: +A for 50 us then -A for 50 us averages to 0
    assert current[0] == pytest.approx(0.0, abs=1e-12)
    assert float(stim.charge[0]) == pytest.approx(150.0 * 0.1 * 2, rel=1e-12)  # two pulses of 2 x 50 us
    train = PulseTrain.constant(1, 150.0, 100.0, 30.0)
    current = render(train, dt=0.1)[0].current_i[0].numpy()
    # 30 us up, 30 us down, inside one 100 us step: exact average 0; with an offset it splits
    assert abs(current).max() < 1e-9


def test_low_frequency_is_continuous_across_windows():
    train = PulseTrain.constant(1, 100.0, 5.0, 200.0)  # one pulse every 200 ms, 20 ms windows
    windows = render(train, windows=25)
    energy = np.array([float(w.energy[0]) for w in windows])
    assert np.flatnonzero(energy).tolist() == [0, 10, 20]


def test_pulse_straddling_a_window_boundary_completes_with_its_own_settings():
    # 1 ms phases every 12 ms: the pulse starting at 12 ms * 1 = 12 ms fits; the one at 0 after 20 ms... use an
    # offset: frequency such that a pulse starts at 19.5 ms
    train = PulseTrain.constant(1, 100.0, 1000.0 / 19.5, 1000.0)
    state = StimulatorState.initial(1, "cpu")
    first, state = render_window(train, state, 200, 0.1)
    off = PulseTrain.off(1)
    second, state = render_window(off, state, 200, 0.1)
    total = torch.cat((first.current_i, second.current_i), dim=1).sum() * 0.1
    assert float(total) == pytest.approx(0.0, abs=1e-9)
    assert float(second.charge[0]) == pytest.approx(100.0 * 1.5, rel=1e-9)  # 1.5 ms of the pulse remained


def test_ftsts_phases_and_polarity():
    train = PulseTrain.constant(2, 100.0)  # published: 1 ms +A, 1 ms -A, 10 ms off, for I
    train.polarity[1] = -1.0
    current = render(train)[0].current_i.numpy()
    np.testing.assert_allclose(current[0, :10], 100.0)
    np.testing.assert_allclose(current[0, 10:20], -100.0)
    np.testing.assert_allclose(current[0, 20:120], 0.0, atol=1e-9)
    np.testing.assert_allclose(current[0, 120:130], 100.0)
    np.testing.assert_allclose(current[1], -current[0])


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("amplitude", -1.0, "amplitude must be >= 0"),
        ("frequency", 0.0, "frequency must be > 0"),
        ("pulse_width", 7000.0, "pulse_width must be > 0 us and at most half"),
        ("polarity", 0.5, "polarity must be"),
        ("amplitude", float("nan"), "amplitude must be finite"),
    ],
)
def test_invalid_trains_are_rejected(field, value, message):
    train = PulseTrain.constant(2, 100.0)
    getattr(train, field)[1] = value
    with pytest.raises(ValueError, match=message):
        train.validate(2)


def test_wrong_shape_dtype_or_device_is_rejected():
    train = PulseTrain.constant(3, 100.0)
    with pytest.raises(
        ValueError,
        match=r"PulseTrain.amplitude must be a floating-point tensor of shape \(2,\), "
        r"got torch.float64 \(3,\)",
    ):
        train.validate(2)
    train = PulseTrain.constant(2, 100.0)
    train.frequency = torch.tensor([80, 90])
    with pytest.raises(ValueError, match=r"PulseTrain.frequency must be a floating-point tensor .* got torch.int64"):
        train.validate(2)
    with pytest.raises(ValueError, match=r"PulseTrain.amplitude must be on the networks' device meta, got cpu"):
        PulseTrain.constant(2, 100.0).validate(2, "meta")


def test_an_invalid_train_names_its_first_offenders_only():
    train = PulseTrain.constant(1000, 100.0)
    train.amplitude[10:20] = -1.0
    with pytest.raises(
        ValueError,
        match=r"amplitude must be >= 0 mV, got \[-1.0, -1.0, -1.0, -1.0, -1.0\] for "
        r"networks \[10, 11, 12, 13, 14\] \(and 5 more\)$",
    ):
        train.validate(1000)


@pytest.mark.skipif(backend_problem("fused", torch.device("cpu")) is not None, reason="needs the fused backend")
@pytest.mark.parametrize("steps,dt", [(200, 0.1), (7, 0.05), (400, 0.025)])
def test_fused_render_window_gives_the_torch_bits(steps, dt):
    """The fused backend's one-call rendering against the torch ops, bit for bit (signs of zero
    included), over consecutive windows of random trains: off, widths from 1 us to half the period,
    1-400 Hz, both polarities, pulses straddling windows."""
    from neuroloop_gpu.network.fused import render_window as fused_render_window

    generator = torch.Generator().manual_seed(steps)
    uniform = lambda batch: torch.rand(batch, generator=generator, dtype=torch.float64)  # noqa: E731
    batch = 2048
    ours = theirs = StimulatorState.initial(batch, "cpu")
    for window in range(12):
        frequency = 1.0 + 399.0 * uniform(batch)
        half_period_us = 1e6 / (2 * frequency)
        width = torch.where(
            uniform(batch) < 0.1,
            half_period_us,
            torch.maximum(half_period_us * uniform(batch), torch.tensor(1.0, dtype=torch.float64)),
        )
        train = PulseTrain(
            amplitude=torch.where(uniform(batch) < 0.25, 0.0, 200.0 * uniform(batch)),
            frequency=frequency,
            pulse_width=width,
            polarity=torch.where(uniform(batch) < 0.5, -1.0, 1.0).to(torch.float64),
        )
        train.validate(batch)
        expected, theirs = render_window(train, theirs, steps, dt)
        got, ours = fused_render_window(train, ours, steps, dt)
        for name in ("current_i", "energy", "charge", "net_charge"):
            assert torch.equal(getattr(got, name).view(torch.int64), getattr(expected, name).view(torch.int64)), name
        for name in ("since_onset", "amplitude", "width", "polarity"):
            assert torch.equal(getattr(ours, name).view(torch.int64), getattr(theirs, name).view(torch.int64)), name
    assert expected.current_i.abs().sum() > 0 and (theirs.since_onset < float("inf")).all()


@pytest.mark.skipif(backend_problem("fused", torch.device("cpu")) is not None, reason="needs the fused backend")
def test_fused_render_window_leaves_other_dtypes_to_torch():
    """A float32 train (torch computes some of its steps in float32) takes the torch ops."""
    from neuroloop_gpu.network.fused import render_window as fused_render_window

    train = PulseTrain(*(torch.tensor([v, v], dtype=torch.float32) for v in (80.0, 130.0, 60.0, 1.0)))
    state = StimulatorState.initial(2, "cpu")
    expected, carry = render_window(train, state, 200, 0.1)
    got, ours = fused_render_window(train, state, 200, 0.1)
    assert torch.equal(got.current_i, expected.current_i) and torch.equal(ours.since_onset, carry.since_onset)
