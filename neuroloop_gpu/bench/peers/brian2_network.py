"""The FTSTS network in Brian2, written from the model spec, timed in its own process.

This file is a standalone script that needs only NumPy and Brian2 (no torch,
no neuroloop_gpu import), so it can run in an interpreter whose NumPy suits
Brian2 (< 2.3) while the main environment keeps its own. The harness
(:mod:`neuroloop_gpu.bench.peers.brian2_peer`) writes a JSON job file and runs

    python brian2_network.py JOB.json RESULT.json

One network, one Brian2 code-generation target ("runtime": Cython, falling
back to NumPy if Cython is missing; or "cpp_standalone"), compilation and code
generation excluded from the timings.

The network (model spec; ``p`` = the NetworkParams fields in the job):

* LIF neurons, forward Euler, per population
  ``tau_m dV/dt = (V_rest - V) + J/C * s + mu + U_stim + noise``;
  ``V >= V_th``: spike, ``V := V_reset``, held for the refractory period;
  ``V < V_rest`` is clamped (``run_regularly`` once per step).
* Noise: Brian2's ``xi`` is integrated with Euler-Maruyama, an increment of
  ``c * sqrt(dt) * N(0, 1)``. The published code adds ``dt * sigma * sqrt(tau_m)
  * N / tau_m`` per step, so ``c = sigma * dt / sqrt(tau_m * dt)`` in ms units
  reproduces it (``noise_scaling="euler_maruyama"``: ``c = sigma / sqrt(tau_m)``).
* Synapses: ``tau_d ds/dt = -s + x``, ``tau_r dx/dt = -x`` per postsynaptic
  neuron; an I spike adds -1 to the x of each E target, an E spike adds w.
  The spec's read-back ``Z(t) = J/C * S(t - d)`` is written as a transmission
  delay d on the spikes, which is the same thing for a linear filter: this is
  the spec's ``synaptic_input="summed"`` (coincident inputs add up; Brian2 has
  no "last presynaptic spike wins" mode).
* STDP on E->I with one trace per neuron (equivalent to per-synapse traces,
  spec): ``dA/dt = -A / tau``, +increment in the spike's reset; an E spike
  (no delay) applies ``w += eta * a_ltd * A_post``, an I spike
  ``w += eta * a_ltp * A_pre``, clipped to [w_min, w_max], from ``onset`` on.
* Stimulus: a ``TimedArray`` of the per-step input to I (E gets its negative),
  computed by the harness (the exact per-step average of the pulse train).
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
import time
from pathlib import Path


def build_network(job: dict, stim_values, record_spikes: bool = False):
    """Create the groups, synapses and monitors in Brian2's magic network; return them in a dict."""
    import brian2 as b2
    from brian2 import ms, mV

    p, stdp = job["params"], job["params"]["plasticity"]
    dt = job["dt_ms"]
    b2.defaultclock.dt = dt * ms
    b2.seed(job["seed"])
    ne, ni = p["num_e"], p["num_i"]
    coupling = p["coupling_fraction"] * (ne + ni)

    def noise_coefficient(sigma: float) -> float:  # mV / sqrt(ms), see the module docstring
        if p["noise_scaling"] == "published":
            return sigma * dt / math.sqrt(p["tau_m"] * dt)
        return sigma / math.sqrt(p["tau_m"])

    stim = b2.TimedArray(stim_values * mV, dt=dt * ms)
    equations = """
    dv/dt = (v_rest - v + strength * s + mu + polarity * stim(t)) / tau_m + noise * xi : volt (unless refractory)
    ds/dt = (-s + x) / tau_d : 1
    dx/dt = -x / tau_r : 1
    dtrace/dt = -trace / tau_trace : 1
    """
    common = dict(
        tau_m=p["tau_m"] * ms,
        v_rest=p["v_rest"] * mV,
        tau_d=p["tau_d"] * ms,
        tau_r=p["tau_r"] * ms,
        stim=stim,
        v_threshold=p["v_threshold"] * mV,
        v_reset=p["v_reset"] * mV,
        increment=stdp["trace_increment"],
    )

    def population(n, mu, sigma, strength, sign, tau_trace, name):
        namespace = dict(
            common,
            mu=mu * mV,
            noise=noise_coefficient(sigma) * mV / ms**0.5,
            strength=strength * mV,
            polarity=sign,
            tau_trace=tau_trace * ms,
        )
        group = b2.NeuronGroup(
            n,
            equations,
            threshold="v >= v_threshold",
            reset="v = v_reset; trace += increment",
            refractory=p["refractory"] * ms,
            method="euler",
            namespace=namespace,
            name=name,
        )
        group.v = p["v_reset"] * mV
        group.run_regularly("v = clip(v, v_rest, inf * mV)", name=f"{name}_floor")
        return group

    exc = population(ne, p["mu_e"], p["sigma_e"], p["j_e"] / coupling, -1.0, stdp["tau_pre"], "exc")
    inh = population(ni, p["mu_i"], p["sigma_i"], p["j_i"] / coupling, 1.0, stdp["tau_post"], "inh")
    delay = p["delay"] * ms
    i_to_e = b2.Synapses(inh, exc, on_pre="x_post -= 1", delay=delay, name="i_to_e")
    i_to_e.connect(p=p["connection_prob"])
    plastic = "int(t >= onset) * int(plasticity_enabled)"
    e_to_i = b2.Synapses(
        exc,
        inh,
        model="w : 1",
        on_pre={"pre": "x_post += w", "depress": f"w = clip(w + eta * a_ltd * trace_post * {plastic}, w_min, w_max)"},
        on_post=f"w = clip(w + eta * a_ltp * trace_pre * {plastic}, w_min, w_max)",
        delay={"pre": delay, "depress": 0 * ms, "post": 0 * ms},
        namespace=dict(
            onset=stdp["onset"] * ms,
            plasticity_enabled=int(stdp["enabled"]),
            eta=stdp["eta"],
            a_ltd=stdp["a_ltd"],
            a_ltp=stdp["a_ltp"],
            w_min=stdp["w_min_mv"] / p["j_i"],
            w_max=stdp["w_max_mv"] / p["j_i"],
        ),
        name="e_to_i",
    )
    e_to_i.connect(p=p["connection_prob"])
    e_to_i.w = stdp["w_init"]
    counts = [
        b2.SpikeMonitor(exc, record=record_spikes, name="spikes_exc"),
        b2.SpikeMonitor(inh, record=False, name="spikes_inh"),
    ]
    objects = [exc, inh, i_to_e, e_to_i, *counts]
    return {
        "exc": exc,
        "inh": inh,
        "i_to_e": i_to_e,
        "e_to_i": e_to_i,
        "spikes": counts,
        "network": b2.Network(objects),
    }


def state_bytes(network) -> int:
    """Bytes of every state array of the network's objects (neurons, synapses, monitors)."""
    from brian2.core.variables import ArrayVariable

    seen, total = set(), 0
    for obj in network.objects:
        for var in getattr(obj, "variables", {}).values():
            if isinstance(var, ArrayVariable) and id(var) not in seen:
                seen.add(id(var))
                try:
                    total += var.get_value().nbytes
                except Exception:  # noqa: BLE001 - some auxiliary variables have no stored value
                    pass
    return total


def activity(net: dict, seconds: float, j_i: float, record_spikes: bool) -> dict:
    """Mean rates over the whole simulated time, synapse counts, final mean J_I * w (and E spikes if recorded)."""
    import numpy as np
    from brian2 import ms

    exc_spikes, inh_spikes = net["spikes"]
    out = {
        "simulated_s": seconds,
        "rate_e_hz": float(exc_spikes.num_spikes) / (net["exc"].N * seconds),
        "rate_i_hz": float(inh_spikes.num_spikes) / (net["inh"].N * seconds),
        "synapses_ei": int(len(net["e_to_i"])),
        "synapses_ie": int(len(net["i_to_e"])),
        "mean_weight_mv": float(np.mean(net["e_to_i"].w[:])) * j_i,
    }
    if record_spikes:
        out["spike_times_ms"] = np.asarray(exc_spikes.t / ms, dtype=float).tolist()
        out["spike_neurons"] = np.asarray(exc_spikes.i, dtype=int).tolist()
    return out


def run_job(job: dict) -> dict:
    import brian2 as b2
    import numpy as np
    from brian2 import ms

    target = job["target"]
    window = job["window_ms"] * ms
    stim_values = np.load(job["stimulus_path"])
    record = bool(job.get("record_spikes", False))
    total_windows = job["warmup"] + job["windows"] * job["repeats"]
    result = {
        "peer": f"brian2-{'cpp' if target == 'cpp_standalone' else 'runtime'}",
        "brian2": b2.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "target": target,
    }
    if target == "cpp_standalone":
        build_dir = job.get("build_dir") or tempfile.mkdtemp(prefix="brian2_ftsts_")
        b2.set_device("cpp_standalone", directory=build_dir, build_on_run=False)
        b2.prefs.devices.cpp_standalone.openmp_threads = job["threads"]
        net = build_network(job, stim_values, record)
        net["network"].run(job["warmup"] * window)
        net["network"].run(job["windows"] * window)  # the timed run; the binary measures it itself
        start = time.perf_counter()
        b2.device.build(directory=build_dir, compile=True, run=False, with_output=False)
        result["compile_s"] = time.perf_counter() - start
        times, walls = [], []
        for _ in range(job["repeats"]):
            start = time.perf_counter()
            b2.device.run(with_output=False)
            walls.append(time.perf_counter() - start)
            times.append(b2.device._last_run_time / job["windows"])
        result["binary_wall_s"] = walls
        result["timing"] = (
            "Network::run of the timed run() inside the compiled binary (omp_get_wtime with "
            f"openmp_threads={job['threads']}, wall clock; std::clock CPU time when 0); "
            "the binary is run once per repeat, each run = warm-up + timed windows"
        )
        seconds = (job["warmup"] + job["windows"]) * job["window_ms"] / 1000.0
        result["threads"] = job["threads"]
    else:
        b2.prefs.codegen.target = "cython"
        try:
            import Cython  # noqa: F401
        except ImportError:
            b2.prefs.codegen.target = "numpy"
        result["codegen"] = b2.prefs.codegen.target
        net = build_network(job, stim_values, record)
        start = time.perf_counter()
        net["network"].run(job["warmup"] * window)  # compiles (or loads the cached) extensions
        result["compile_s"] = time.perf_counter() - start
        times = []
        for _ in range(job["repeats"]):
            start = time.perf_counter()
            net["network"].run(job["windows"] * window)
            times.append((time.perf_counter() - start) / job["windows"])
        result["timing"] = "time.perf_counter around one Network.run of the timed windows per repeat"
        seconds = total_windows * job["window_ms"] / 1000.0
        result["threads"] = 1
    result["seconds_per_window"] = times
    result["activity"] = activity(net, seconds, job["params"]["j_i"], record)
    result["state_bytes"] = state_bytes(net["network"])
    return result


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    job = json.loads(Path(argv[0]).read_text())
    try:
        import brian2  # noqa: F401
    except ImportError as error:
        Path(argv[1]).write_text(json.dumps({"skipped": f"brian2 is not importable by {sys.executable}: {error}"}))
        return 0
    Path(argv[1]).write_text(json.dumps(run_job(job)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
