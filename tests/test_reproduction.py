"""The published full-size open-loop FTSTS run (25 s; 82-156 s on 2 CPU cores with the fused backend):
`pytest -m slow`."""

import pytest

from neuroloop_gpu.cli import main

pytestmark = pytest.mark.slow


def test_full_size_ftsts_reproduces_the_published_course(tmp_path):
    import json

    main(["simulate", "--size", "full", "--duration", "25", "--out", str(tmp_path), "--quiet"])
    summary = json.loads((tmp_path / "summary.json").read_text())
    # One network, seed 0, the "paper" model, float32: 20.48 s here (fused backend, torch 2.13 CPU); seeds 0-3
    # give 20.44-20.50 s (docs/results/fidelity.md, benchmarks/results/stim_noise_robustness/variants.json).
    # The latch is checked every 20 ms window and the weight falls ~10.4 mV/s, so +-0.1 s (5 windows) takes
    # another seed's trajectory (what a last-bit change of the arithmetic makes of this one), while a 2 s shift
    # or a weight slope 1 % off (0.18 s) fails. Published: after ~16 s, from the published code's noisier variant.
    assert summary["stim_off_time_s"] == pytest.approx(20.48, abs=0.1)
    # the same four seeds: R before 0.709-0.725 (published 0.74: synchronous), R after 0.034-0.040
    # (published 0.02-0.05: the desynchronised state persists), weight at 25 s 70.65-70.84 mV (< 75 mV)
    assert summary["kop_before"] == pytest.approx(0.724, abs=0.03)
    assert summary["kop_after"] == pytest.approx(0.036, abs=0.01)
    assert summary["final_weight_mv"] == pytest.approx(70.77, abs=0.5)
