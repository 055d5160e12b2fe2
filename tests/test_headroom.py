"""benchmarks/closed_loop_headroom.py: the weight-scheduled FTSTS train and the tables it reports."""

import importlib.util
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "closed_loop_headroom.py"


@pytest.fixture(scope="module")
def headroom():
    spec = importlib.util.spec_from_file_location("closed_loop_headroom", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_schedule_applies_the_first_stage_above_the_observed_weight(headroom):
    stages = [(180.0, 40.0, 83.0), (120.0, 50.0, 50.0), (0.0, 60.0, 70.0)]
    controller = headroom.WeightScheduledFTSTS(stages)
    controller.reset(5, "cpu")
    first = controller.act(torch.zeros(5, 6), {})  # no window yet: the first stage
    assert first.amplitude.tolist() == [40.0] * 5 and first.frequency.tolist() == [83.0] * 5
    weight = torch.tensor([250.0, 180.0, 150.0, 120.0, 60.0])  # 180 and 120 are not above their stage
    train = controller.act(torch.zeros(5, 6), {"weight_mv": weight})
    assert train.amplitude.tolist() == [40.0, 50.0, 50.0, 60.0, 60.0]
    assert train.frequency.tolist() == [83.0, 50.0, 50.0, 70.0, 70.0]
    assert train.pulse_width.tolist() == [headroom.WIDTH_US] * 5 and train.polarity.tolist() == [1.0] * 5


def test_map_table_reports_energy_per_mv_only_where_the_weight_falls(headroom):
    rows = [
        {"level_mv": 260.0, "amplitude_mv": 0.0, "frequency_hz": 83.3, "rate_mv_per_s": 3.3,
         "power_mv2ms_per_s": 0.0, "energy_per_mv": None, "kop": 0.6},
        {"level_mv": 260.0, "amplitude_mv": 40.0, "frequency_hz": 1000 / 12, "rate_mv_per_s": -5.6,
         "power_mv2ms_per_s": 133_333.0, "energy_per_mv": 133_333.0 / 5.6, "kop": 0.12},
    ]  # fmt: skip
    lines = headroom.map_table({"rows": rows}).splitlines()
    assert lines[2] == "| 260 | off | 3.30 | 0 | — | 0.600 |"
    assert lines[3] == "| 260 | 40, 83.3 | -5.60 | 133 | 23.8 | 0.120 |"


def test_schedule_keeps_the_phase_width_it_is_given(headroom):
    controller = headroom.WeightScheduledFTSTS(headroom.SCHEDULES_1MS["15 mV > 180 mV > 25 mV"], 1000.0)
    controller.reset(3, "cpu")
    train = controller.act(torch.zeros(3, 6), {"weight_mv": torch.tensor([200.0, 180.0, 90.0])})
    assert train.amplitude.tolist() == [15.0, 25.0, 25.0] and train.pulse_width.tolist() == [1000.0] * 3
    assert controller.describe()["pulse_width_us"] == 1000.0
