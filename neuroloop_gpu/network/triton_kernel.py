"""Triton kernel of the ``"triton"`` backend (see :mod:`neuroloop_gpu.network.triton_step`).

Imported only when that backend runs: Triton ships with CUDA builds of torch, not with CPU ones.
Every expression mirrors an eager op of :mod:`neuroloop_gpu.network.dynamics` in the same order;
``RECIPROCAL`` selects CUDA's eager division by a Python scalar (a product with the float32
reciprocal, which the host passes in place of the divisor) over a correctly rounded division
(the CPU's, for the interpreter).
"""

import triton
import triton.language as tl


@triton.jit
def scale(x, divisor, RECIPROCAL: tl.constexpr):
    """x / divisor as eager torch computes it on this device (``divisor``: its reciprocal on CUDA)."""
    if RECIPROCAL:
        return x * divisor
    return tl.div_rn(x, divisor)


@triton.jit
def trace_step(trace, spiked, dt, tau, increment, RECIPROCAL: tl.constexpr, PUBLISHED: tl.constexpr):
    """dynamics._trace: A + dt * (-A) / tau, or on a spike A + increment (summed: decayed + increment)."""
    decayed = scale(-trace * dt, tau, RECIPROCAL) + trace
    if PUBLISHED:
        bumped = trace + increment
    else:
        bumped = decayed + increment
    return tl.where(spiked, bumped, decayed)


@triton.jit
def stdp(w, pre_spiked, pre_trace, post_spiked, post_trace, plastic, ltd, ltp, w_min, w_max,
         PUBLISHED: tl.constexpr):
    """dynamics.stdp for a vector of synapses (``plastic``: 1 from plasticity onset on, else 0)."""
    if PUBLISHED:  # an I spike's potentiation overwrites a same-step E spike's depression
        depressed = w + plastic * ltd * post_trace
        depressed = tl.where(depressed < w_min, w_min, depressed)
        potentiated = w + plastic * ltp * pre_trace
        potentiated = tl.where(potentiated > w_max, w_max, potentiated)
        return tl.where(post_spiked, potentiated, tl.where(pre_spiked, depressed, w))
    change = ltd * post_trace * pre_spiked.to(tl.float32) + ltp * pre_trace * post_spiked.to(tl.float32)
    new = w + plastic * change
    new = tl.where(new < w_min, w_min, new)
    return tl.where(new > w_max, w_max, new)


# run-time integers that change from call to call: one compiled kernel for every value
@triton.jit(do_not_specialize=["batch", "capacity", "ring_base", "num_steps", "onset"])
def steps_kernel(
    v_ptr, refractory_ptr, x_ptr, s_ptr, spiked_pre_ptr, trace_pre_ptr, spiked_post_ptr, trace_post_ptr,
    weight_ptr, ring_spikes_ptr, ring_input_ptr, last_spike_ptr, last_isi_ptr, step_ptr, episode_ptr, seed_ptr,
    current_ptr, noise_ptr, mu_ptr, coupling_ptr, sign_ptr, gain_ptr,
    ei_post_ptr, ei_start_ptr, ei_degree_ptr, ei_by_post_ptr, ei_pre_by_post_ptr, ei_post_start_ptr,
    ei_post_degree_ptr, ie_post_ptr, ie_start_ptr, ie_degree_ptr,
    count_e_ptr, winner_ptr, sent_ptr, list_ptr, spiked_ptr,
    mean_e_sum_ptr, mean_e_sq_sum_ptr, neuron_e_sum_ptr, neuron_e_sq_sum_ptr, v_i_sum_ptr, v_i_sq_sum_ptr,
    spikes_e_ptr, spikes_i_ptr,
    batch, capacity, ring_base, num_steps, shift,
    dt, v_rest, v_threshold, v_reset, refractory_steps, tau_m, tau_d, tau_r, tau_pre, tau_post,
    trace_increment, ltd, ltp, w_min, w_max, onset, two_pi,
    NE: tl.constexpr, NI: tl.constexpr, DELAY: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_E: tl.constexpr,
    BLOCK_I: tl.constexpr, SPIKES_E: tl.constexpr, CHUNK_E: tl.constexpr, SPIKES_I: tl.constexpr,
    CHUNK_I: tl.constexpr, PUBLISHED: tl.constexpr, RECIPROCAL: tl.constexpr,
    NOISE_IN_KERNEL: tl.constexpr, M0: tl.constexpr, M1: tl.constexpr, W0: tl.constexpr, W1: tl.constexpr,
):
    N: tl.constexpr = NE + NI
    b = tl.program_id(0).to(tl.int64)
    j = tl.arange(0, BLOCK_N)
    in_n = j < N
    is_e = j < NE
    is_i = in_n & (j >= NE)
    je = tl.arange(0, BLOCK_E)
    ji = tl.arange(0, BLOCK_I)
    rows_e = tl.arange(0, SPIKES_E)  # tiles of E spikes x their E->I synapses
    lanes_e = tl.arange(0, CHUNK_E)
    rows_i = tl.arange(0, SPIKES_I)  # tiles of I spikes x their I->E or incoming E->I synapses
    lanes_i = tl.arange(0, CHUNK_I)
    row_n = b * N
    row_e = b * (NE + 1)  # rows of the tables with a dummy column
    row_i = b * (NI + 1)
    syn = b * capacity
    mu = tl.load(mu_ptr + j, mask=in_n, other=0.0)
    coupling = tl.load(coupling_ptr + j, mask=in_n, other=0.0)
    sign = tl.load(sign_ptr + j, mask=in_n, other=0.0)
    gain = tl.load(gain_ptr + j, mask=in_n, other=0.0)
    seed = tl.load(seed_ptr + b)
    key0 = (seed & 0xFFFFFFFF).to(tl.uint32)
    key1 = ((seed >> 32) & 0xFFFFFFFF).to(tl.uint32)
    episode = tl.load(episode_ptr + b)
    step = tl.load(step_ptr + b)
    k = 0
    while k < num_steps:  # while, not range: Triton's interpreter takes no tensor as a range bound
        slot = (ring_base + k) % DELAY
        stim = tl.load(current_ptr + k * batch + b)
        # ---- membrane noise: Philox4x32-10 block j // 4 of (step, episode, stream 0), then Box-Muller
        if NOISE_IN_KERNEL:
            c0 = (j // 4).to(tl.uint32)
            c1 = (step & 0xFFFFFFFF).to(tl.uint32) + tl.zeros([BLOCK_N], tl.uint32)
            c2 = (episode & 0xFFFFFFFF).to(tl.uint32) + tl.zeros([BLOCK_N], tl.uint32)
            c3 = tl.zeros([BLOCK_N], tl.uint32)
            k0 = key0 + tl.zeros([BLOCK_N], tl.uint32)
            k1 = key1 + tl.zeros([BLOCK_N], tl.uint32)
            m0 = tl.full([BLOCK_N], M0, tl.uint32)
            m1 = tl.full([BLOCK_N], M1, tl.uint32)
            for r in tl.static_range(10):
                if r > 0:
                    k0 = k0 + tl.full([BLOCK_N], W0, tl.uint32)
                    k1 = k1 + tl.full([BLOCK_N], W1, tl.uint32)
                hi0 = tl.umulhi(c0, m0)
                lo0 = c0 * m0
                hi1 = tl.umulhi(c2, m1)
                lo1 = c2 * m1
                c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
            second = ((j // 2) % 2) == 1  # lanes 2, 3 of a block: words 2 (radius) and 3 (angle)
            radius_word = tl.where(second, c2, c0)
            angle_word = tl.where(second, c3, c1)
            radius_u = ((radius_word >> 9).to(tl.float32) + 0.5) * 1.1920928955078125e-07
            angle_u = ((angle_word >> 9).to(tl.float32) + 0.5) * 1.1920928955078125e-07
            radius = tl.sqrt_rn(tl.log(radius_u) * -2.0)
            angle = angle_u * two_pi
            noise = radius * tl.where((j % 2) == 1, tl.sin(angle), tl.cos(angle))
        else:
            noise = tl.load(noise_ptr + (k * batch + b) * N + j, mask=in_n, other=0.0)

        # ---- membrane (eq. 1-2), threshold, reset, refractory hold, floor: integrate_neurons
        v = tl.load(v_ptr + row_n + j, mask=in_n, other=0.0)
        s = tl.load(s_ptr + row_n + j, mask=in_n, other=0.0)
        refractory = tl.load(refractory_ptr + row_n + j, mask=in_n, other=0.0)
        v_new = (v_rest - v) + coupling * s
        v_new = v_new + mu
        v_new = v_new + sign * stim
        v_new = v_new * dt
        v_new = scale(v_new, tau_m, RECIPROCAL)
        v_new = v_new + v
        v_new = v_new + gain * noise
        held_before = refractory - 1.0
        held_before = tl.where(held_before < -1.0, -1.0, held_before)
        fired = (v < v_threshold) & (v_new >= v_threshold) & in_n
        held = (held_before >= 0.0) | fired
        v_new = tl.where(held, v_reset, tl.where(v_new < v_rest, v_rest, v_new))
        refractory = tl.where(fired, refractory_steps, held_before)
        tl.store(v_ptr + row_n + j, v_new, mask=in_n)
        tl.store(refractory_ptr + row_n + j, refractory, mask=in_n)
        tl.store(spiked_ptr + row_n + j, fired.to(tl.uint8), mask=in_n)

        # ---- window monitor running sums of V - shift (WindowMonitor.observe)
        d = v_new - shift
        d_e = tl.where(is_e, d, 0.0)
        d_i = tl.where(is_i, d, 0.0)
        mean_e = tl.div_rn(tl.sum(d_e, 0), NE * 1.0)
        tl.store(mean_e_sum_ptr + b, tl.load(mean_e_sum_ptr + b) + mean_e)
        tl.store(mean_e_sq_sum_ptr + b, tl.load(mean_e_sq_sum_ptr + b) + mean_e * mean_e)
        e_sum = tl.load(neuron_e_sum_ptr + b * NE + j, mask=is_e, other=0.0)
        tl.store(neuron_e_sum_ptr + b * NE + j, e_sum + d, mask=is_e)
        e_sq = tl.load(neuron_e_sq_sum_ptr + b * NE + j, mask=is_e, other=0.0)
        tl.store(neuron_e_sq_sum_ptr + b * NE + j, e_sq + d * d, mask=is_e)
        tl.store(v_i_sum_ptr + b, tl.load(v_i_sum_ptr + b) + tl.div_rn(tl.sum(d_i, 0), NI * 1.0))
        tl.store(v_i_sq_sum_ptr + b, tl.load(v_i_sq_sum_ptr + b) + tl.div_rn(tl.sum(d_i * d_i, 0), NI * 1.0))
        tl.store(spikes_e_ptr + b, tl.load(spikes_e_ptr + b) + tl.sum((fired & is_e).to(tl.float32), 0))
        tl.store(spikes_i_ptr + b, tl.load(spikes_i_ptr + b) + tl.sum((fired & is_i).to(tl.float32), 0))

        # ---- this step's spikes into the spike tables; phase bookkeeping (causal Kuramoto)
        tl.store(spiked_pre_ptr + row_e + j, fired.to(tl.uint8), mask=is_e)
        tl.store(spiked_post_ptr + row_i + j - NE, fired.to(tl.uint8), mask=is_i)
        now = (step + 1).to(tl.int32)
        last = tl.load(last_spike_ptr + b * NE + j, mask=is_e, other=-1)
        isi = tl.load(last_isi_ptr + b * NE + j, mask=is_e, other=0)
        tl.store(last_isi_ptr + b * NE + j, tl.where(fired & (last >= 0), now - last, isi), mask=is_e)
        tl.store(last_spike_ptr + b * NE + j, tl.where(fired, now, last), mask=is_e)
        # spike lists, ascending: E spikes of now, I spikes of now, I spikes emitted d ago
        fired_e = fired & is_e
        fired_i = fired & is_i
        count_fired_e = tl.sum(fired_e.to(tl.int32), 0)
        count_fired_i = tl.sum(fired_i.to(tl.int32), 0)
        tl.store(list_ptr + row_n + tl.cumsum(fired_e.to(tl.int32), 0) - 1, j, mask=fired_e)
        tl.store(list_ptr + row_n + NE + tl.cumsum(fired_i.to(tl.int32), 0) - 1, j - NE, mask=fired_i)
        ring_spikes = ring_spikes_ptr + (slot * batch + b) * (NI + 1)
        arriving = (tl.load(ring_spikes + ji, mask=ji < NI, other=0) != 0) & (ji < NI)
        count_arriving = tl.sum(arriving.to(tl.int32), 0)
        arriving_list = list_ptr + batch * N + b * NI
        tl.store(arriving_list + tl.cumsum(arriving.to(tl.int32), 0) - 1, ji, mask=arriving)
        tl.store(count_e_ptr + b * NE + je, tl.zeros([BLOCK_E], tl.int32), mask=je < NE)
        tl.store(winner_ptr + b * NI + ji, tl.full([BLOCK_I], -1, tl.int32), mask=ji < NI)
        tl.store(sent_ptr + b * NI + ji, tl.zeros([BLOCK_I], tl.float32), mask=ji < NI)
        tl.debug_barrier()
        tl.store(ring_spikes + j - NE, fired.to(tl.uint8), mask=is_i)  # this step's I spikes leave, d from now

        # Each spike list is walked in tiles of several spikes by a chunk of their synapses, so that
        # the dependent loads (spike -> its range -> its synapses) of many spikes are in flight at once.
        # ---- I -> E: the synapses leaving the I spikes emitted d ago (published: once however many)
        group = 0
        while group < count_arriving:
            spike = group + rows_i
            listed = spike < count_arriving
            i = tl.load(arriving_list + spike, mask=listed, other=0, cache_modifier=".cg")
            first = tl.load(ie_start_ptr + row_i + i, mask=listed, other=0)
            degree = tl.load(ie_degree_ptr + row_i + i, mask=listed, other=0)
            offset = 0
            while offset < tl.max(degree, 0):
                ids = first[:, None] + offset + lanes_i[None, :]
                ok = (offset + lanes_i[None, :]) < degree[:, None]
                post = tl.load(ie_post_ptr + ids, mask=ok, other=0) - row_e
                if PUBLISHED:
                    tl.store(count_e_ptr + b * NE + post, tl.full([SPIKES_I, CHUNK_I], 1, tl.int32), mask=ok)
                else:
                    tl.atomic_add(count_e_ptr + b * NE + post, tl.full([SPIKES_I, CHUNK_I], 1, tl.int32), mask=ok)
                offset += CHUNK_I
            group += SPIKES_I

        # ---- E -> I input with the weights before this step's STDP (published: highest synapse wins)
        group = 0
        while group < count_fired_e:
            spike = group + rows_e
            listed = spike < count_fired_e
            e = tl.load(list_ptr + row_n + spike, mask=listed, other=0, cache_modifier=".cg")
            first = tl.load(ei_start_ptr + row_e + e, mask=listed, other=0)
            degree = tl.load(ei_degree_ptr + row_e + e, mask=listed, other=0)
            offset = 0
            while offset < tl.max(degree, 0):
                ids = first[:, None] + offset + lanes_e[None, :]
                ok = (offset + lanes_e[None, :]) < degree[:, None]
                post = tl.load(ei_post_ptr + ids, mask=ok, other=0) - row_i
                if PUBLISHED:
                    tl.atomic_max(winner_ptr + b * NI + post, (ids - syn).to(tl.int32), mask=ok)
                else:
                    tl.atomic_add(sent_ptr + b * NI + post, tl.load(weight_ptr + ids, mask=ok, other=0.0), mask=ok)
                offset += CHUNK_E
            group += SPIKES_E
        tl.debug_barrier()
        if PUBLISHED:
            winner = tl.load(winner_ptr + b * NI + ji, mask=ji < NI, other=-1, cache_modifier=".cg")
            sent = tl.load(weight_ptr + syn + winner, mask=(ji < NI) & (winner >= 0), other=0.0,
                           cache_modifier=".cg")
        else:
            sent = tl.load(sent_ptr + b * NI + ji, mask=ji < NI, other=0.0, cache_modifier=".cg")

        # ---- STDP (eq. 7-11): every synapse entering an I spike (its final value), then those
        # leaving an E spike whose I neuron did not spike: stdp_entering_i / stdp_leaving_e
        plastic = ((step >= onset) & (onset >= 0)).to(tl.float32)
        group = 0
        while group < count_fired_i:
            spike = group + rows_i
            listed = spike < count_fired_i
            i = tl.load(list_ptr + row_n + NE + spike, mask=listed, other=0, cache_modifier=".cg")
            first = tl.load(ei_post_start_ptr + row_i + i, mask=listed, other=0)
            degree = tl.load(ei_post_degree_ptr + row_i + i, mask=listed, other=0)
            post_trace = tl.load(trace_post_ptr + row_i + i, mask=listed, other=0.0)
            offset = 0
            while offset < tl.max(degree, 0):
                positions = first[:, None] + offset + lanes_i[None, :]
                ok = (offset + lanes_i[None, :]) < degree[:, None]
                into = syn + tl.load(ei_by_post_ptr + positions, mask=ok, other=0)
                pre = row_e + tl.load(ei_pre_by_post_ptr + positions, mask=ok, other=0).to(tl.int64)
                w = tl.load(weight_ptr + into, mask=ok, other=0.0)
                pre_spiked = tl.load(spiked_pre_ptr + pre, mask=ok, other=0, cache_modifier=".cg") != 0
                pre_trace = tl.load(trace_pre_ptr + pre, mask=ok, other=0.0)
                new = stdp(w, pre_spiked, pre_trace, ok | ~ok, post_trace[:, None], plastic, ltd, ltp, w_min, w_max,
                           PUBLISHED)
                tl.store(weight_ptr + into, new, mask=ok)
                offset += CHUNK_I
            group += SPIKES_I
        group = 0
        while group < count_fired_e:
            spike = group + rows_e
            listed = spike < count_fired_e
            e = tl.load(list_ptr + row_n + spike, mask=listed, other=0, cache_modifier=".cg")
            first = tl.load(ei_start_ptr + row_e + e, mask=listed, other=0)
            degree = tl.load(ei_degree_ptr + row_e + e, mask=listed, other=0)
            pre_trace = tl.load(trace_pre_ptr + row_e + e, mask=listed, other=0.0)
            offset = 0
            while offset < tl.max(degree, 0):
                ids = first[:, None] + offset + lanes_e[None, :]
                ok = (offset + lanes_e[None, :]) < degree[:, None]
                post = tl.load(ei_post_ptr + ids, mask=ok, other=0)
                post_spiked = tl.load(spiked_post_ptr + post, mask=ok, other=0, cache_modifier=".cg") != 0
                post_trace = tl.load(trace_post_ptr + post, mask=ok, other=0.0)
                w = tl.load(weight_ptr + ids, mask=ok, other=0.0)
                new = stdp(w, ok | ~ok, pre_trace[:, None], post_spiked, post_trace, plastic, ltd, ltp, w_min, w_max,
                           PUBLISHED)
                tl.store(weight_ptr + ids, new, mask=ok & ~post_spiked)
                offset += CHUNK_E
            group += SPIKES_E
        tl.debug_barrier()

        # ---- two-stage synaptic filter of the inputs emitted d ago; this step's E->I input leaves
        ring_input = ring_input_ptr + (slot * batch + b) * NI
        count = tl.load(count_e_ptr + b * NE + j, mask=is_e, other=0, cache_modifier=".cg").to(tl.float32)
        if PUBLISHED:
            count = tl.where(count > 1.0, 1.0, count)
        input_i = tl.load(ring_input + j - NE, mask=is_i, other=0.0)
        arrived = tl.where(is_e, -count, input_i)
        x = tl.load(x_ptr + row_n + j, mask=in_n, other=0.0)
        s_next = (x - s) * dt
        s_next = scale(s_next, tau_d, RECIPROCAL) + s
        x_decayed = -x * dt
        x_decayed = scale(x_decayed, tau_r, RECIPROCAL) + x
        if PUBLISHED:
            x_next = tl.where(arrived != 0.0, x + arrived, x_decayed)
        else:
            x_next = x_decayed + arrived
        tl.store(x_ptr + row_n + j, x_next, mask=in_n)
        tl.store(s_ptr + row_n + j, s_next, mask=in_n)
        tl.debug_barrier()
        tl.store(ring_input + ji, sent, mask=ji < NI)

        # ---- STDP traces (dynamics._trace): decay, or the increment on a spike
        pre_spiked_now = tl.load(spiked_pre_ptr + row_e + je, mask=je < NE, other=0, cache_modifier=".cg") != 0
        trace = tl.load(trace_pre_ptr + row_e + je, mask=je < NE, other=0.0)
        tl.store(trace_pre_ptr + row_e + je,
                 trace_step(trace, pre_spiked_now, dt, tau_pre, trace_increment, RECIPROCAL, PUBLISHED),
                 mask=je < NE)
        post_spiked_now = tl.load(spiked_post_ptr + row_i + ji, mask=ji < NI, other=0,
                                  cache_modifier=".cg") != 0
        trace = tl.load(trace_post_ptr + row_i + ji, mask=ji < NI, other=0.0)
        tl.store(trace_post_ptr + row_i + ji,
                 trace_step(trace, post_spiked_now, dt, tau_post, trace_increment, RECIPROCAL, PUBLISHED),
                 mask=ji < NI)
        step += 1
        k += 1
        tl.debug_barrier()
    tl.store(step_ptr + b, step)

