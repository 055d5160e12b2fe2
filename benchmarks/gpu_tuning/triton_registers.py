"""Registers, spills and programs per SM of the Triton kernel's CUDA flavour, compiled here: no GPU needed.

    python benchmarks/gpu_tuning/triton_registers.py --size small --warps 2 4 --tiles 0 128 --maxnreg 0 128

Each variant (warps x spike tile x register cap, as in ``benchmarks/gpu_tuning/triton_variants.py``) is compiled for
``--arch`` (default sm_90, the H100/H200) with Triton's own ptxas, as the CUDA backend compiles it (noise in
the kernel, reciprocal divisions), and ``cuobjdump --dump-resource-usage`` (shipped with Triton) gives its
registers per thread and stack (spills), ``cuobjdump -sass`` its machine code (instructions, shuffles and
barriers in the whole kernel: static counts, not executed ones). Programs per SM follow from the 64K-register
file (allocated 8 per thread at a time), at most 64 warps and 32 programs per SM. Prints one JSON line per
variant. The test suite runs it (tests/test_triton_backend.py), so the CUDA flavour of the kernel is compiled
in CPU CI too.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import subprocess
import tempfile

import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from triton.runtime.jit import mangle_type

from neuroloop_gpu.bench.workload import parse_size
from neuroloop_gpu.network import NetworkBatch, triton_step
from neuroloop_gpu.network.monitors import WindowMonitor
from neuroloop_gpu.network.triton_kernel import steps_kernel  # compiled flavour: no TRITON_INTERPRET here

REGISTERS_PER_SM, WARPS_PER_SM, PROGRAMS_PER_SM = 65536, 64, 32


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="full", help="small, full or NE/NI")
    parser.add_argument("--synaptic-input", default="published", choices=["published", "summed"])
    parser.add_argument("--warps", type=int, nargs="+", default=[0], help="warps per program (0: the default)")
    parser.add_argument(
        "--tiles", nargs="+", default=["0"], help="synapses per spike tile, E:I for tiles of their own (0: default)"
    )
    parser.add_argument(
        "--maxnreg", type=int, nargs="+", default=None, help="register caps (0: none; default: the backend's)"
    )
    parser.add_argument(
        "--settings", nargs="+", default=["-"], help="compile-time settings, KEY=VALUE[,KEY=VALUE] (-: the stepper's)"
    )
    parser.add_argument("--arch", type=int, default=90, help="compute capability x 10")
    args = parser.parse_args()

    arguments, keywords, default = cuda_launch(args.size, args.synaptic_input)
    caps = args.maxnreg if args.maxnreg is not None else [default.get("maxnreg", 0)]
    for warps, tile, settings, maxnreg in itertools.product(args.warps, args.tiles, args.settings, caps):
        shape = triton_step.tuned_shape(keywords, tile, settings)
        options = dict(default, num_warps=warps or default["num_warps"])
        options.pop("maxnreg", None)  # the cap asked for, 0: none
        if maxnreg:
            options["maxnreg"] = maxnreg
        usage = resources(compile_kernel(steps_kernel, arguments, shape, options, args.arch))
        warps_used = options["num_warps"]
        allocated = -(-usage["registers"] // 8) * 8  # registers are allocated 8 per thread at a time
        programs = min(PROGRAMS_PER_SM, WARPS_PER_SM // warps_used, REGISTERS_PER_SM // (allocated * 32 * warps_used))
        print(
            json.dumps(
                dict(
                    size=args.size,
                    synaptic_input=args.synaptic_input,
                    arch=args.arch,
                    num_warps=warps_used,
                    tile=tile,
                    settings=settings,
                    maxnreg=maxnreg,
                    **usage,
                    programs_per_sm=programs,
                    warps_per_sm=programs * warps_used,
                )
            ),
            flush=True,
        )


def cuda_launch(size: str, synaptic_input: str) -> tuple[tuple, dict, dict]:
    """A launch of the kernel as the CUDA backend makes it for two networks of ``size`` (``"small"``,
    ``"full"`` or NE/NI), built on the CPU: its arguments, its keywords (constants and compile-time
    shape, with in-kernel noise and reciprocal divisions as on CUDA) and the backend's launch options."""
    triton_step.load_kernel = lambda interpret: steps_kernel  # the stepper is built on the CPU below
    params = parse_size(size).params(synaptic_input=synaptic_input)
    net = NetworkBatch(2, params, device="cpu", backend="eager", synapses="event")
    steps = triton_step.TritonSteps(
        net.constants, params.connection_prob, 2, net.connectivity.ei_post.shape[1], net.kop_every, torch.device("cpu")
    )
    monitor = WindowMonitor(
        net.state, net.steps_per_window, net.kop_every, net.record, params.v_reset, net.synapse_valid(), params.j_i
    )
    arguments, keywords = steps.arguments(net.connectivity, net.state, torch.zeros(10, 2), 0, monitor, None, 0)
    keywords.update(RECIPROCAL=True, NOISE_IN_KERNEL=True)  # as on CUDA
    return arguments, keywords, triton_step.launch_options(keywords["BLOCK_N"])


def compile_kernel(kernel, arguments: tuple, shape: dict, options: dict, arch: int):
    """``kernel`` (a ``steps_kernel``) compiled for ``arch`` with these arguments' types and this compile-time shape."""
    values = {**dict(zip(kernel.arg_names, arguments)), **shape}
    signature, constexprs = {}, {}
    for index, param in enumerate(kernel.params):
        if param.is_constexpr:
            signature[param.name], constexprs[(index,)] = "constexpr", values[param.name]
        else:
            signature[param.name] = mangle_type(values[param.name])
    return triton.compile(ASTSource(kernel, signature, constexprs), target=GPUTarget("cuda", arch, 32), options=options)


def resources(kernel) -> dict:
    """Registers per thread and stack bytes (spills) from cuobjdump's resource usage of the cubin, and
    the static counts of its machine instructions, shuffles, barriers and local (spill) stores and loads."""
    report, sass = (disassemble(kernel, "cuobjdump", option) for option in ("--dump-resource-usage", "-sass"))
    registers, stack = re.search(r"REG:(\d+)\s+STACK:(\d+)", report).groups()
    # an instruction line: /*offset*/ [predicate] OPCODE...
    opcodes = re.findall(r"/\*[0-9a-f]{4,}\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_]*)", sass)
    return dict(
        registers=int(registers),
        stack_bytes=int(stack),
        instructions=len(opcodes),
        shuffles=opcodes.count("SHFL"),
        barriers=opcodes.count("BAR"),
        spill_stores=opcodes.count("STL"),
        spill_loads=opcodes.count("LDL"),
    )


def disassemble(kernel, tool: str, *options: str) -> str:
    """The output of one of Triton's CUDA tools (``cuobjdump``, ``nvdisasm``) on the compiled kernel's cubin."""
    path = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", tool)
    with tempfile.NamedTemporaryFile(suffix=".cubin") as cubin:
        cubin.write(kernel.asm["cubin"])
        cubin.flush()
        return subprocess.run([path, *options, cubin.name], capture_output=True, text=True, check=True).stdout


if __name__ == "__main__":
    main()
