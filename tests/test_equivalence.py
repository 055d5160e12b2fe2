"""The batched simulator against the plain one-network reference, spike for spike."""

import numpy as np
import pytest
import torch

from neuroloop_gpu.config import NetworkParams, PlasticityParams, RecordConfig, SimConfig
from neuroloop_gpu.network import NetworkBatch
from neuroloop_gpu.reference import ReferenceNetwork
from neuroloop_gpu.rng import STREAM_MEMBRANE_NOISE, STREAM_STIM_NOISE, standard_normal
from neuroloop_gpu.stimulus import PulseTrain, StimulatorState, render_window

WINDOWS = 16  # 16 x 200 = 3200 Euler steps
SEEDS = [3, 11, 2024]


def random_trains(batch: int, windows: int, seed: int) -> list[PulseTrain]:
    """Random NeuroLoop-range stimulation per network and window, some windows off, one FTSTS."""
    gen = np.random.default_rng(seed)
    trains = []
    for w in range(windows):
        amp = gen.uniform(10, 200, batch) * (gen.random(batch) > 0.2)
        freq = gen.uniform(5, 180, batch)
        width = gen.uniform(50, 500, batch)
        pol = gen.choice([-1.0, 1.0], batch)
        if w == 5:  # the published 1 ms-phase FTSTS pulse
            freq[:], width[:], pol[:] = 1000 / 12, 1000.0, 1.0
        trains.append(PulseTrain(*(torch.tensor(x, dtype=torch.float64) for x in (amp, freq, width, pol))))
    return trains


@pytest.mark.parametrize("mode, stim_noise", [("published", 0.0), ("summed", 0.0), ("published", 10.0)])
def test_batched_matches_reference(mode, stim_noise):
    """With ``stim_noise`` the stimulation-locked term is on (E 10 mV, I 5 mV), in the windows whose
    train has amplitude > 0 only: the random trains switch some networks off in some windows."""
    params = NetworkParams(
        num_e=80,
        num_i=20,
        connection_prob=0.2,
        synaptic_input=mode,
        plasticity=PlasticityParams(onset=10.0),
        stim_noise_e=stim_noise,
        stim_noise_i=stim_noise / 2,
    )
    sim = SimConfig(duration=WINDOWS * 20.0)
    net = NetworkBatch(
        len(SEEDS), params, sim, seeds=SEEDS, device="cpu", dtype=torch.float64, record=RecordConfig(spikes_e=True)
    )
    steps = sim.steps_per_window
    trains = random_trains(len(SEEDS), WINDOWS, seed=7)

    # The same inputs for the reference: connectivity, noise, per-step stimulus.
    ne, ni = params.num_e, params.num_i
    ei_pre = net.connectivity.local("ei_pre", ne + 1).numpy()
    ei_post = net.connectivity.local("ei_post", ni + 1).numpy()
    ie_pre = net.connectivity.local("ie_pre", ni + 1).numpy()
    ie_post = net.connectivity.local("ie_post", ne + 1).numpy()
    refs, noises, stim_noises = [], [], []
    for b, seed in enumerate(SEEDS):
        ei = np.zeros((ne, ni), dtype=bool)
        ie = np.zeros((ni, ne), dtype=bool)
        real = ei_post[b] < ni
        ei[ei_pre[b][real], ei_post[b][real]] = True
        real = ie_post[b] < ne
        ie[ie_pre[b][real], ie_post[b][real]] = True
        refs.append(ReferenceNetwork(params, sim.step_size, ei, ie))
        noise, stim_noise_draws = (
            standard_normal(
                torch.tensor([seed]),
                stream,
                torch.arange(WINDOWS * steps).view(1, -1),
                torch.zeros(1, 1, dtype=torch.int64),
                ne + ni,
                torch.float64,
            )[0].numpy()
            for stream in (STREAM_MEMBRANE_NOISE, STREAM_STIM_NOISE)
        )
        noises.append(noise)
        stim_noises.append(stim_noise_draws)
    stimulator = StimulatorState.initial(len(SEEDS), "cpu")

    total_spikes = 0
    for w, train in enumerate(trains):
        stim, stimulator = render_window(train, stimulator, steps, sim.step_size)
        result = net.run_window(train)
        for b, ref in enumerate(refs):
            raster = np.zeros((steps, ne), dtype=bool)
            on = stim_noise > 0 and float(train.amplitude[b]) > 0
            for k in range(steps):
                n = w * steps + k
                extra = (stim_noises[b][n, :ne], stim_noises[b][n, ne:]) if on else (None, None)
                raster[k], _ = ref.step(float(stim.current_i[b, k]), noises[b][n, :ne], noises[b][n, ne:], *extra)
            got = result.recording.spikes_e[b].numpy()
            np.testing.assert_array_equal(got, raster, err_msg=f"E spikes differ: {mode}, network {b}, window {w}")
            total_spikes += raster.sum()
            st = net.state
            for name, ours, theirs in (
                ("v_e", st.v_e[b], ref.v_e),
                ("v_i", st.v_i[b], ref.v_i),
                ("s_e(t-d)", st.s_e[b], ref.delayed(ref.s_e_history)),
                ("s_i(t-d)", st.s_i[b], ref.delayed(ref.s_i_history)),
                ("x_e(t-d)", st.x_e[b], ref.delayed(ref.x_e_history)),
                ("x_i(t-d)", st.x_i[b], ref.delayed(ref.x_i_history)),
            ):
                np.testing.assert_allclose(ours.numpy(), theirs, rtol=0, atol=1e-9, err_msg=f"{name} window {w}")
            real = ei_post[b] < ni
            np.testing.assert_allclose(
                st.weight[b].numpy()[real],
                ref.w[ei_pre[b][real], ei_post[b][real]],
                rtol=0,
                atol=1e-9,
                err_msg=f"weights window {w}",
            )
            for ours, theirs in ((st.trace_pre[b, :ne], ref.trace_pre()), (st.trace_post[b, :ni], ref.trace_post())):
                defined = ~np.isnan(theirs)
                np.testing.assert_allclose(ours.numpy()[defined], theirs[defined], rtol=0, atol=1e-9)
    # the comparison must have exercised spikes and plasticity
    assert total_spikes > 1000
    assert (net.state.weight[:, :10] != params.plasticity.w_init).any()
