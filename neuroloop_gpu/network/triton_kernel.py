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
def quotient(a, b):
    """a / b without tl.div_rn, whose IEEE slow path is a subroutine call that costs registers
    (ptxas, sm_90, full size, 16 warps: 128 -> 72 bytes of spills per thread)."""
    return corrected_quotient(a, b, tl.fdiv(tl.full(b.shape, 1.0, tl.float32), b, ieee_rounding=False))


@triton.jit
def corrected_quotient(a, b, reciprocal):
    """a / b from a reciprocal of b within two ulps: one Newton step on the reciprocal, one
    correction of the quotient (residuals exact by fma). The IEEE quotient's bits for the operands
    here (tests/test_triton_backend.py)."""
    r = tl.fma(reciprocal, tl.fma(-b, reciprocal, 1.0), reciprocal)
    q = a * r
    return tl.fma(tl.fma(-b, q, a), r, q)


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
def stdp(w, pre_spiked, pre_trace, post_spiked, post_trace, plastic, ltd, ltp, w_min, w_max, PUBLISHED: tl.constexpr):
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


@triton.jit
def row_entry(start_ptr, length_ptr, offset, index, spiking, ROW_LENGTH: tl.constexpr, ROW_START: tl.constexpr):
    """A spike list's entry for each spiking lane: its synapse row (global first synapse and length,
    from ``start_ptr + offset`` and ``length_ptr + offset``) and its neuron ``index``, packed in int64."""
    first = tl.load(start_ptr + offset, mask=spiking, other=0)
    length = tl.load(length_ptr + offset, mask=spiking, other=0)
    return (first << ROW_START) | (length << ROW_LENGTH) | index.to(tl.int64)


@triton.jit
def listed_row(entry, ROW_LENGTH: tl.constexpr, ROW_START: tl.constexpr, MASK: tl.constexpr):
    """First synapse and length of the rows in spike-list entries (see ``row_entry``)."""
    return entry >> ROW_START, (entry >> ROW_LENGTH) & MASK


@triton.jit
def _sum3(a, b, c, d, e, f):
    return a + d, b + e, c + f


@triton.jit
def _sum4(a, b, c, d, e, f, g, h):
    return a + e, b + f, c + g, d + h


@triton.jit
def normal_draws(
    step,
    episode,
    key0,
    key1,
    two_pi,
    BLOCK_N: tl.constexpr,
    M0: tl.constexpr,
    M1: tl.constexpr,
    W0: tl.constexpr,
    W1: tl.constexpr,
    STREAM: tl.constexpr,
):
    """Draws 0 .. BLOCK_N - 1 of the noise of (step, episode) from stream ``STREAM`` (``rng.STREAM_*``:
    the membrane noise, the stimulation-locked noise), as the simulator's ``membrane_noise`` and
    ``stim_noise`` draw them: draw n is word n % 4 of Philox4x32-10 block n // 4 of counter
    (step, episode, STREAM), Box-Muller on words (0, 1) giving draws 0 (cos) and 1 (sin), on
    words (2, 3) draws 2 and 3. One block per four lanes, then interleaved."""
    LANES: tl.constexpr = BLOCK_N // 4
    # counter words 1-3 and the keys are the same in every lane: scalars until they meet word 0
    # (broadcast round keys would hold 20 registers per lane through the step loop)
    c0 = tl.arange(0, LANES).to(tl.uint32)
    c1 = (step & 0xFFFFFFFF).to(tl.uint32)
    c2 = (episode & 0xFFFFFFFF).to(tl.uint32)
    c3 = c2 * 0 + STREAM
    k0 = key0
    k1 = key1
    for r in tl.static_range(10):
        if r > 0:
            k0 = k0 + tl.full([], W0, tl.uint32)
            k1 = k1 + tl.full([], W1, tl.uint32)
        hi0 = tl.umulhi(c0, tl.full([], M0, tl.uint32))
        lo0 = c0 * tl.full([], M0, tl.uint32)
        hi1 = tl.umulhi(c2, tl.full([], M1, tl.uint32))
        lo1 = c2 * tl.full([], M1, tl.uint32)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    first = tl.sqrt_rn(tl.log(((c0 >> 9).to(tl.float32) + 0.5) * 1.1920928955078125e-07) * -2.0)
    second = tl.sqrt_rn(tl.log(((c2 >> 9).to(tl.float32) + 0.5) * 1.1920928955078125e-07) * -2.0)
    first_angle = ((c1 >> 9).to(tl.float32) + 0.5) * 1.1920928955078125e-07 * two_pi
    second_angle = ((c3 >> 9).to(tl.float32) + 0.5) * 1.1920928955078125e-07 * two_pi
    z0, z1 = first * tl.cos(first_angle), first * tl.sin(first_angle)
    z2, z3 = second * tl.cos(second_angle), second * tl.sin(second_angle)
    return tl.reshape(tl.join(tl.join(z0, z2), tl.join(z1, z3)), [BLOCK_N])  # join adds a minor axis


# run-time integers that change from call to call: one compiled kernel for every value
@triton.jit(do_not_specialize=["batch", "capacity", "ring_base", "num_steps", "first_step", "kop_every", "onset"])
def steps_kernel(
    v_ptr,
    refractory_ptr,
    x_ptr,
    s_ptr,
    spiked_pre_ptr,
    trace_pre_ptr,
    spiked_post_ptr,
    trace_post_ptr,
    weight_ptr,
    ring_spikes_ptr,
    ring_input_ptr,
    last_spike_ptr,
    last_isi_ptr,
    step_ptr,
    episode_ptr,
    seed_ptr,
    current_ptr,
    noise_ptr,
    stim_on_ptr,
    stim_noise_ptr,
    ei_post_ptr,
    ei_start_ptr,
    ei_degree_ptr,
    ei_by_post_ptr,
    ei_pre_by_post_ptr,
    ei_post_start_ptr,
    ei_post_degree_ptr,
    ie_post_ptr,
    ie_start_ptr,
    ie_degree_ptr,
    flags_ptr,
    traces_ptr,
    list_ptr,
    count_e_ptr,
    winner_ptr,
    sent_ptr,
    spiked_ptr,
    mean_e_sum_ptr,
    mean_e_sq_sum_ptr,
    neuron_e_sum_ptr,
    neuron_e_sq_sum_ptr,
    v_i_sum_ptr,
    v_i_sq_sum_ptr,
    spikes_e_ptr,
    spikes_i_ptr,
    kop_sum_ptr,
    batch,
    capacity,
    ring_base,
    num_steps,
    first_step,
    kop_every,
    shift,
    dt,
    v_rest,
    v_threshold,
    v_reset,
    refractory_steps,
    tau_m,
    tau_d,
    tau_r,
    tau_pre,
    tau_post,
    trace_increment,
    ltd,
    ltp,
    w_min,
    w_max,
    onset,
    two_pi,
    mu_e,
    mu_i,
    coupling_e,
    coupling_i,
    gain_e,
    gain_i,
    stim_gain_e,
    stim_gain_i,
    NE: tl.constexpr,
    NI: tl.constexpr,
    FIELD_E: tl.constexpr,
    FIELD_I: tl.constexpr,
    DELAY: tl.constexpr,
    BLOCK_N: tl.constexpr,
    SPIKES_E: tl.constexpr,
    CHUNK_E: tl.constexpr,
    SPIKES_I: tl.constexpr,
    CHUNK_I: tl.constexpr,
    PUBLISHED: tl.constexpr,
    RECIPROCAL: tl.constexpr,
    SCRATCH_LOADS: tl.constexpr,
    NOISE_IN_KERNEL: tl.constexpr,
    M0: tl.constexpr,
    M1: tl.constexpr,
    W0: tl.constexpr,
    W1: tl.constexpr,
    STREAM_NOISE: tl.constexpr,
    STIM_NOISE: tl.constexpr,
    STREAM_STIM_NOISE: tl.constexpr,
):
    # One program is one network; lane j is neuron j (E first, then I). The neuron state lives in
    # registers for the whole run of steps; only what other lanes must look up (spike flags and STDP
    # traces for the synapse passes, spike lists, arrival counts, E->I winners) goes through memory,
    # in scratch tables of two parities (step k uses k % 2), so that two barriers per step suffice:
    # (a) after the tables are written, (b) after the arrival and transmission atomics (the STDP
    # passes after it write the weights that transmission read). A table of parity p is written
    # again two steps later, after barrier (b) of the step between: no lane still reads it. This holds
    # with one lane or more per thread, which the launch ensures (triton_step.check_threads).
    # (One walk over all three spike lists per step, transmission and STDP of E rows together, was
    # 15 % slower at full size and equal at small size on an H200: benchmarks/results.)
    # SCRATCH_LOADS: the cache policy of the loads of tables that lanes of this program stored (spike
    # lists, flags, traces): ".cg" reads them from L2, as the counts and winners that atomics write at L2
    # must be read; "" lets L1 serve them too, which is as safe (one program is one CTA on one SM, and
    # after a barrier its L1 sees its own stores: the weights already rely on it) and closer.
    N: tl.constexpr = NE + NI
    # the packed prefix sum's fields: E spikes (bits 0 ..), I spikes (from FIELD_E), I arrivals (from
    # ARRIVALS); 32-bit where they fit (both sizes here: 11 + 9 + 9 bits at full size), which halves the
    # scan's shuffles and adds
    PACK: tl.constexpr = tl.int32 if FIELD_E + 2 * FIELD_I <= 31 else tl.int64
    MASK_E: tl.constexpr = (1 << FIELD_E) - 1
    MASK_I: tl.constexpr = (1 << FIELD_I) - 1
    ARRIVALS: tl.constexpr = FIELD_E + FIELD_I
    # a spike list's entry (int64): the neuron's index (bits 0 ..), the length of its synapse row (from
    # ROW_LENGTH) and the row's first synapse (from ROW_START), so that a walk reads a spike's row
    # straight from the list rather than through a second dependent load
    FIELD: tl.constexpr = FIELD_E if FIELD_E > FIELD_I else FIELD_I
    ROW_LENGTH: tl.constexpr = FIELD
    ROW_START: tl.constexpr = 2 * FIELD
    MASK: tl.constexpr = (1 << FIELD) - 1
    b = tl.program_id(0).to(tl.int64)
    j = tl.arange(0, BLOCK_N)
    in_n = j < N
    is_e = j < NE
    is_i = in_n & (j >= NE)
    rows_e = tl.arange(0, SPIKES_E)  # tiles of E spikes x their E->I synapses
    lanes_e = tl.arange(0, CHUNK_E)
    rows_i = tl.arange(0, SPIKES_I)  # tiles of I spikes x their I->E or incoming E->I synapses
    lanes_i = tl.arange(0, CHUNK_I)
    row_n = b * N
    row_e = b * (NE + 1)  # rows of the tables with a dummy column
    row_i = b * (NI + 1)
    syn = b * capacity
    # per-neuron constants: eager's NeuronVectors hold these two values per population
    mu = tl.where(is_e, mu_e, mu_i)
    coupling = tl.where(is_e, coupling_e, coupling_i)
    sign = tl.where(is_e, -1.0, 1.0)
    gain = tl.where(is_e, gain_e, gain_i)
    stim_gain = tl.where(is_e, stim_gain_e, stim_gain_i)
    # the stimulator's on flag of this window (one call never spans two windows); read only with STIM_NOISE
    stim_on = False
    if STIM_NOISE:
        stim_on = tl.load(stim_on_ptr + b) != 0
    tau_trace = tl.where(is_e, tau_pre, tau_post)
    seed = tl.load(seed_ptr + b)
    key0 = (seed & 0xFFFFFFFF).to(tl.uint32)
    key1 = ((seed >> 32) & 0xFFFFFFFF).to(tl.uint32)
    episode = tl.load(episode_ptr + b)
    step = tl.load(step_ptr + b)
    # longest synapse row of this network in each table: the passes over a spike tile's rows
    longest_ei = tl.max(tl.load(ei_degree_ptr + row_e + j, mask=is_e, other=0), 0)
    longest_ie = tl.max(tl.load(ie_degree_ptr + row_i + j - NE, mask=is_i, other=0), 0)
    longest_into_i = tl.max(tl.load(ei_post_degree_ptr + row_i + j - NE, mask=is_i, other=0), 0)

    v = tl.load(v_ptr + row_n + j, mask=in_n, other=0.0)
    s = tl.load(s_ptr + row_n + j, mask=in_n, other=0.0)
    x = tl.load(x_ptr + row_n + j, mask=in_n, other=0.0)
    refractory = tl.load(refractory_ptr + row_n + j, mask=in_n, other=0.0)
    trace = tl.where(
        is_e,
        tl.load(trace_pre_ptr + row_e + j, mask=is_e, other=0.0),
        tl.load(trace_post_ptr + row_i + j - NE, mask=is_i, other=0.0),
    )
    e_sum = tl.load(neuron_e_sum_ptr + b * NE + j, mask=is_e, other=0.0)
    e_sq = tl.load(neuron_e_sq_sum_ptr + b * NE + j, mask=is_e, other=0.0)
    last = tl.load(last_spike_ptr + b * NE + j, mask=is_e, other=-1)
    isi = tl.load(last_isi_ptr + b * NE + j, mask=is_e, other=0)
    mean_e_sum = tl.load(mean_e_sum_ptr + b)
    mean_e_sq_sum = tl.load(mean_e_sq_sum_ptr + b)
    v_i_sum = tl.load(v_i_sum_ptr + b)
    v_i_sq_sum = tl.load(v_i_sq_sum_ptr + b)
    spikes_e = tl.load(spikes_e_ptr + b)
    spikes_i = tl.load(spikes_i_ptr + b)
    kop_sum = tl.load(kop_sum_ptr + b)
    fired = j < 0
    k = 0
    while k < num_steps:  # while, not range: Triton's interpreter takes no tensor as a range bound
        slot = (ring_base + k) % DELAY
        part = (k % 2) * batch + b  # this step's scratch tables
        # arrivals, read first so that their latency hides behind the noise; each lane writes its slot
        # again below (this step's I spikes and E->I input), after its own read
        ring_spikes = ring_spikes_ptr + (slot * batch + b) * (NI + 1)
        arriving = (tl.load(ring_spikes + j - NE, mask=is_i, other=0) != 0) & is_i
        ring_input = ring_input_ptr + (slot * batch + b) * NI
        input_i = tl.load(ring_input + j - NE, mask=is_i, other=0.0)
        stim = tl.load(current_ptr + k * batch + b)
        # ---- membrane noise
        if NOISE_IN_KERNEL:
            noise = normal_draws(step, episode, key0, key1, two_pi, BLOCK_N, M0, M1, W0, W1, STREAM_NOISE)
        else:
            noise = tl.load(noise_ptr + (k * batch + b) * N + j, mask=in_n, other=0.0)

        # ---- membrane (eq. 1-2), threshold, reset, refractory hold, floor: integrate_neurons
        v_new = (v_rest - v) + coupling * s
        v_new = v_new + mu
        v_new = v_new + sign * stim
        v_new = v_new * dt
        v_new = scale(v_new, tau_m, RECIPROCAL)
        v_new = v_new + v
        v_new = v_new + gain * noise
        if STIM_NOISE:  # stimulation-locked noise while the stimulator is on: + stim_gain * xi'
            if NOISE_IN_KERNEL:
                stim_noise = normal_draws(step, episode, key0, key1, two_pi, BLOCK_N, M0, M1, W0, W1, STREAM_STIM_NOISE)
            else:
                stim_noise = tl.load(stim_noise_ptr + (k * batch + b) * N + j, mask=in_n, other=0.0)
            v_new = tl.where(stim_on, v_new + stim_gain * stim_noise, v_new)
        held_before = refractory - 1.0
        held_before = tl.where(held_before < -1.0, -1.0, held_before)
        fired = (v < v_threshold) & (v_new >= v_threshold) & in_n
        held = (held_before >= 0.0) | fired
        v = tl.where(held, v_reset, tl.where(v_new < v_rest, v_rest, v_new))
        refractory = tl.where(fired, refractory_steps, held_before)

        # ---- window monitor running sums of V - shift (WindowMonitor.observe); spike counts packed
        # into one prefix sum whose total and running values give the three spike lists
        d = v - shift
        fired_e = fired & is_e
        fired_i = fired & is_i
        packed = fired_e.to(PACK) + (fired_i.to(PACK) << FIELD_E) + (arriving.to(PACK) << ARRIVALS)
        total_e, total_i, total_i_sq, counts = tl.reduce(
            (tl.where(is_e, d, 0.0), tl.where(is_i, d, 0.0), tl.where(is_i, d * d, 0.0), packed), 0, _sum4
        )
        mean_e = quotient(total_e, tl.full([], NE, tl.float32))
        mean_e_sum += mean_e
        mean_e_sq_sum += mean_e * mean_e
        e_sum += d
        e_sq += d * d
        v_i_sum += quotient(total_i, tl.full([], NI, tl.float32))
        v_i_sq_sum += quotient(total_i_sq, tl.full([], NI, tl.float32))
        count_fired_e = (counts & MASK_E).to(tl.int32)
        count_fired_i = ((counts >> FIELD_E) & MASK_I).to(tl.int32)
        count_arriving = (counts >> ARRIVALS).to(tl.int32)
        spikes_e += count_fired_e.to(tl.float32)
        spikes_i += count_fired_i.to(tl.float32)
        now = (step + 1).to(tl.int32)  # phase bookkeeping (causal Kuramoto)
        isi = tl.where(fired & (last >= 0), now - last, isi)
        last = tl.where(fired, now, last)
        if (first_step + k + 1) % kop_every == 0:  # a causal Kuramoto sample: synchrony.causal_order
            known = (isi > 0) & is_e
            phase = quotient(two_pi * (now - last).to(tl.float32), tl.maximum(isi, 1).to(tl.float32))
            cos_sum, sin_sum, known_count = tl.reduce(
                (tl.where(known, tl.cos(phase), 0.0), tl.where(known, tl.sin(phase), 0.0), known.to(tl.int32)), 0, _sum3
            )
            modulus = tl.sqrt_rn(cos_sum * cos_sum + sin_sum * sin_sum)
            kop_sum += tl.where(known_count > 0, quotient(modulus, tl.maximum(known_count, 1).to(tl.float32)), 0.0)

        # ---- the tables of this step: spike flags, traces before this step's update, spike lists
        # (ascending: E spikes of now, I spikes of now, I spikes emitted d ago); counts and winners cleared
        flags = flags_ptr + part * N
        traces = traces_ptr + part * N
        tl.store(flags + j, fired.to(tl.uint8), mask=in_n)
        tl.store(traces + j, trace, mask=in_n)
        trace = trace_step(trace, fired, dt, tau_trace, trace_increment, RECIPROCAL, PUBLISHED)
        lists = list_ptr + part * (N + NI)
        position = tl.cumsum(packed, 0)
        # each listed with its synapse row: E->I leaving an E spike, E->I entering an I spike, I->E
        # leaving an arrival
        spike_row = row_entry(
            tl.where(is_e, ei_start_ptr + row_e + j, ei_post_start_ptr + row_i + j - NE),
            tl.where(is_e, ei_degree_ptr + row_e + j, ei_post_degree_ptr + row_i + j - NE),
            0,
            tl.where(is_e, j, j - NE),
            fired,
            ROW_LENGTH,
            ROW_START,
        )
        tl.store(
            lists + tl.where(is_e, (position & MASK_E) - 1, NE + ((position >> FIELD_E) & MASK_I) - 1),
            spike_row,
            mask=fired,
        )
        tl.store(
            lists + N + (position >> ARRIVALS) - 1,
            row_entry(ie_start_ptr, ie_degree_ptr, row_i + j - NE, j - NE, arriving, ROW_LENGTH, ROW_START),
            mask=arriving,
        )
        counts_e = count_e_ptr + part * NE
        winners = winner_ptr + part * NI
        sent_i = sent_ptr + part * NI
        tl.store(counts_e + j, tl.zeros([BLOCK_N], tl.int32), mask=is_e)
        tl.store(winners + j - NE, tl.full([BLOCK_N], -1, tl.int64), mask=is_i)
        if not PUBLISHED:
            tl.store(sent_i + j - NE, tl.zeros([BLOCK_N], tl.float32), mask=is_i)
        tl.store(ring_spikes + j - NE, fired.to(tl.uint8), mask=is_i)  # this step's I spikes leave, d from now
        tl.debug_barrier()  # (a)

        # Each spike list is walked in tiles of several spikes by a chunk of their synapses, so that
        # the dependent loads (list entry with its row -> the row's synapses) of many spikes are in
        # flight at once.
        # The walks' atomics are relaxed: no other program touches these tables, and barrier (b)
        # orders them before every lane's reads (Triton's default, acq_rel, fences each one).
        # ---- I -> E: the synapses leaving the I spikes emitted d ago (published: once however many)
        group = 0
        while group < count_arriving:
            spike = group + rows_i
            listed = spike < count_arriving
            entry = tl.load(lists + N + spike, mask=listed, other=0, cache_modifier=SCRATCH_LOADS)
            first, degree = listed_row(entry, ROW_LENGTH, ROW_START, MASK)
            offset = 0
            while offset < longest_ie:
                ids = first[:, None] + offset + lanes_i[None, :]
                ok = (offset + lanes_i[None, :]) < degree[:, None]
                post = tl.load(ie_post_ptr + ids, mask=ok, other=0) - row_e
                if PUBLISHED:
                    tl.store(counts_e + post, tl.full([SPIKES_I, CHUNK_I], 1, tl.int32), mask=ok)
                else:
                    tl.atomic_add(counts_e + post, tl.full([SPIKES_I, CHUNK_I], 1, tl.int32), mask=ok, sem="relaxed")
                offset += CHUNK_I
            group += SPIKES_I

        # ---- E -> I input with the weights before this step's STDP (published: the highest synapse
        # wins; its id and weight travel together in one 64-bit maximum)
        group = 0
        while group < count_fired_e:
            spike = group + rows_e
            listed = spike < count_fired_e
            entry = tl.load(lists + spike, mask=listed, other=0, cache_modifier=SCRATCH_LOADS)
            first, degree = listed_row(entry, ROW_LENGTH, ROW_START, MASK)
            offset = 0
            while offset < longest_ei:
                ids = first[:, None] + offset + lanes_e[None, :]
                ok = (offset + lanes_e[None, :]) < degree[:, None]
                post = tl.load(ei_post_ptr + ids, mask=ok, other=0) - row_i
                w = tl.load(weight_ptr + ids, mask=ok, other=0.0)
                if PUBLISHED:
                    bits = w.to(tl.int32, bitcast=True).to(tl.int64) & 0xFFFFFFFF
                    tl.atomic_max(winners + post, ((ids - syn) << 32) | bits, mask=ok, sem="relaxed")
                else:
                    tl.atomic_add(sent_i + post, w, mask=ok, sem="relaxed")
                offset += CHUNK_E
            group += SPIKES_E
        tl.debug_barrier()  # (b)

        # ---- two-stage synaptic filter of the inputs emitted d ago; this step's E->I input leaves
        count = tl.load(counts_e + j, mask=is_e, other=0, cache_modifier=".cg").to(tl.float32)
        if PUBLISHED:
            count = tl.where(count > 1.0, 1.0, count)
            winner = tl.load(winners + j - NE, mask=is_i, other=-1, cache_modifier=".cg")
            sent = tl.where(winner >= 0, (winner & 0xFFFFFFFF).to(tl.int32).to(tl.float32, bitcast=True), 0.0)
        else:
            sent = tl.load(sent_i + j - NE, mask=is_i, other=0.0, cache_modifier=".cg")
        arrived = tl.where(is_e, -count, input_i)
        s_next = (x - s) * dt
        s_next = scale(s_next, tau_d, RECIPROCAL) + s
        x_decayed = -x * dt
        x_decayed = scale(x_decayed, tau_r, RECIPROCAL) + x
        if PUBLISHED:
            x = tl.where(arrived != 0.0, x + arrived, x_decayed)
        else:
            x = x_decayed + arrived
        s = s_next
        tl.store(ring_input + j - NE, sent, mask=is_i)

        # ---- STDP (eq. 7-11) of every synapse entering an I spike (its final value): stdp_entering_i;
        # then (below) those leaving an E spike whose I neuron did not spike
        plastic = ((step >= onset) & (onset >= 0)).to(tl.float32)
        group = 0
        while group < count_fired_i:
            spike = group + rows_i
            listed = spike < count_fired_i
            entry = tl.load(lists + NE + spike, mask=listed, other=0, cache_modifier=SCRATCH_LOADS)
            first, degree = listed_row(entry, ROW_LENGTH, ROW_START, MASK)
            post_trace = tl.load(traces + NE + (entry & MASK), mask=listed, other=0.0, cache_modifier=SCRATCH_LOADS)
            offset = 0
            while offset < longest_into_i:
                positions = first[:, None] + offset + lanes_i[None, :]
                ok = (offset + lanes_i[None, :]) < degree[:, None]
                into = syn + tl.load(ei_by_post_ptr + positions, mask=ok, other=0)
                pre = tl.load(ei_pre_by_post_ptr + positions, mask=ok, other=0).to(tl.int64)
                w = tl.load(weight_ptr + into, mask=ok, other=0.0)
                pre_spiked = tl.load(flags + pre, mask=ok, other=0, cache_modifier=SCRATCH_LOADS) != 0
                pre_trace = tl.load(traces + pre, mask=ok, other=0.0, cache_modifier=SCRATCH_LOADS)
                new = stdp(
                    w, pre_spiked, pre_trace, ok | ~ok, post_trace[:, None], plastic, ltd, ltp, w_min, w_max, PUBLISHED
                )
                tl.store(weight_ptr + into, new, mask=ok)
                offset += CHUNK_I
            group += SPIKES_I
        # ---- STDP of the synapses leaving E spikes whose I neuron did not spike: stdp_leaving_e
        group = 0
        while group < count_fired_e:
            spike = group + rows_e
            listed = spike < count_fired_e
            entry = tl.load(lists + spike, mask=listed, other=0, cache_modifier=SCRATCH_LOADS)
            first, degree = listed_row(entry, ROW_LENGTH, ROW_START, MASK)
            pre_trace = tl.load(traces + (entry & MASK), mask=listed, other=0.0, cache_modifier=SCRATCH_LOADS)
            offset = 0
            while offset < longest_ei:
                ids = first[:, None] + offset + lanes_e[None, :]
                ok = (offset + lanes_e[None, :]) < degree[:, None]
                post = NE + tl.load(ei_post_ptr + ids, mask=ok, other=0) - row_i
                post_spiked = tl.load(flags + post, mask=ok, other=0, cache_modifier=SCRATCH_LOADS) != 0
                post_trace = tl.load(traces + post, mask=ok, other=0.0, cache_modifier=SCRATCH_LOADS)
                w = tl.load(weight_ptr + ids, mask=ok, other=0.0)
                new = stdp(
                    w, ok | ~ok, pre_trace[:, None], post_spiked, post_trace, plastic, ltd, ltp, w_min, w_max, PUBLISHED
                )
                tl.store(weight_ptr + ids, new, mask=ok & ~post_spiked)
                offset += CHUNK_E
            group += SPIKES_E
        step += 1
        k += 1

    # k - num_steps is 0 here, which the compiler cannot see: the addresses of the final stores are
    # computed after the loop rather than kept alive through it (ptxas, sm_90: 164 -> 120 registers
    # per thread at small size with 4 warps and tiles of 128 synapses; 176 -> 144 bytes of spills at
    # full size with 16 warps)
    b = b + (k - num_steps)
    row_n = b * N
    row_e = b * (NE + 1)
    row_i = b * (NI + 1)
    tl.store(v_ptr + row_n + j, v, mask=in_n)
    tl.store(s_ptr + row_n + j, s, mask=in_n)
    tl.store(x_ptr + row_n + j, x, mask=in_n)
    tl.store(refractory_ptr + row_n + j, refractory, mask=in_n)
    tl.store(trace_pre_ptr + row_e + j, trace, mask=is_e)
    tl.store(trace_post_ptr + row_i + j - NE, trace, mask=is_i)
    tl.store(spiked_pre_ptr + row_e + j, fired.to(tl.uint8), mask=is_e)
    tl.store(spiked_post_ptr + row_i + j - NE, fired.to(tl.uint8), mask=is_i)
    tl.store(spiked_ptr + row_n + j, fired.to(tl.uint8), mask=in_n)
    tl.store(neuron_e_sum_ptr + b * NE + j, e_sum, mask=is_e)
    tl.store(neuron_e_sq_sum_ptr + b * NE + j, e_sq, mask=is_e)
    tl.store(last_spike_ptr + b * NE + j, last, mask=is_e)
    tl.store(last_isi_ptr + b * NE + j, isi, mask=is_e)
    tl.store(mean_e_sum_ptr + b, mean_e_sum)
    tl.store(mean_e_sq_sum_ptr + b, mean_e_sq_sum)
    tl.store(v_i_sum_ptr + b, v_i_sum)
    tl.store(v_i_sq_sum_ptr + b, v_i_sq_sum)
    tl.store(spikes_e_ptr + b, spikes_e)
    tl.store(spikes_i_ptr + b, spikes_i)
    tl.store(kop_sum_ptr + b, kop_sum)
    tl.store(step_ptr + b, step)
