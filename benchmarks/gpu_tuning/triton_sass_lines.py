"""The Triton kernel's step loop in machine code, line by line: two kernel sources side by side, no GPU needed.

    python benchmarks/gpu_tuning/triton_sass_lines.py --size full --base 8c16152
    python benchmarks/gpu_tuning/triton_sass_lines.py --size small --base my_old_kernel.py --min-change 5

Compiles the kernel of this tree and a base (a kernel source file, or a commit whose
``neuroloop_gpu/network/triton_kernel.py`` is taken) for sm_90 as the CUDA backend launches it (see
``benchmarks/gpu_tuning/triton_registers.py``), disassembles both with line information (``nvdisasm -g``, shipped
with Triton), says whether the two whole kernels are the same machine code, and counts the instructions
of the step loop (the kernel's outermost loop: its longest backward branch) by the source line they come
from. Lines are matched by their text, so that the two
sources may differ in line numbers; instructions inlined from Triton's library count under its line, and
code that the compiler merged or moved (the sine's and cosine's slow paths, say) may count under a line
next to the one it came from.

These are static counts: a walk's body counts once however many tiles it takes, and the Kuramoto sample's
branch once though it runs every tenth step. They show where a change moved instructions, barriers
(``BAR``), shuffles (``SHFL``) and spills (``LDL``/``STL``), not how long a step takes; time that on a GPU
with ``benchmarks/gpu_tuning/triton_variants.py``.
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import tempfile
from pathlib import Path

import triton
import triton_registers
from triton_variants import load_kernel_file

KERNEL = Path(__file__).parents[2] / "neuroloop_gpu" / "network" / "triton_kernel.py"
COUNTED = {"BAR": "barriers", "SHFL": "shuffles", "LDL": "spill loads", "STL": "spill stores"}
# an instruction of an nvdisasm listing: /*address*/ [predicate] OPCODE operands;
INSTRUCTION = re.compile(r"/\*([0-9a-f]{4,})\*/\s+((?:@!?U?P\w+\s+)?)([A-Z][A-Z0-9_.]*)(.*?);")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="a kernel source file, or a commit to take the kernel from")
    parser.add_argument("--size", default="full", help="small, full or NE/NI")
    parser.add_argument("--synaptic-input", default="published", choices=["published", "summed"])
    parser.add_argument("--warps", type=int, default=0, help="warps per program (0: the backend's)")
    parser.add_argument("--min-change", type=int, default=3, help="list lines whose count changed by this much")
    args = parser.parse_args()

    arguments, shape, options = triton_registers.cuda_launch(args.size, args.synaptic_input)
    options["num_warps"] = args.warps or options["num_warps"]
    with tempfile.TemporaryDirectory() as folder:
        base = Path(args.base)
        if not base.is_file():
            base = Path(folder) / f"kernel_{args.base}.py"
            shown = subprocess.run(
                ["git", "show", f"{args.base}:neuroloop_gpu/network/triton_kernel.py"], capture_output=True, text=True
            )
            if shown.returncode:
                raise SystemExit(
                    f"--base {args.base!r}: neither a kernel source file nor a commit of this "
                    f"repository with neuroloop_gpu/network/triton_kernel.py ({shown.stderr.strip()})"
                )
            base.write_text(shown.stdout)
        listings = [disassembly(path, arguments, shape, options) for path in (base, KERNEL)]
        loops = [step_loop(listing, path.read_text().splitlines()) for listing, path in zip(listings, (base, KERNEL))]
    codes = [machine_code(listing) for listing in listings]
    verdict = "the same machine code" if codes[0] == codes[1] else "machine code differs"
    print(f"whole kernel, sm_90: {len(codes[0])} -> {len(codes[1])} instructions, {verdict}")
    print(f"step loop, size {args.size}, {options['num_warps']} warps, sm_90: {args.base} -> this tree")
    for name, count in [("instructions", lambda ops: len(ops))] + [
        (label, lambda ops, prefix=prefix: sum(op.startswith(prefix) for op, _ in ops))
        for prefix, label in COUNTED.items()
    ]:
        before, after = (count(ops) for ops in loops)
        print(f"  {name:13s} {before:6d} -> {after:6d} ({after - before:+d})")
    by_line = [collections.Counter(line for _, line in ops) for ops in loops]
    changed = [(by_line[1][line] - by_line[0][line], line) for line in set(by_line[0]) | set(by_line[1])]
    for change, line in sorted(c for c in changed if abs(c[0]) >= args.min_change):
        print(f"  {by_line[0][line]:6d} {by_line[1][line]:6d} {change:+6d}  {line}")


def disassembly(kernel_file: Path, arguments: tuple, shape: dict, options: dict) -> str:
    """``nvdisasm -g`` of the kernel in ``kernel_file`` compiled for sm_90 with the CUDA backend's launch."""
    compiled = triton_registers.compile_kernel(load_kernel_file(str(kernel_file)), arguments, shape, options, 90)
    return triton_registers.disassemble(compiled, "nvdisasm", "-g", "-c")


def machine_code(listing: str) -> list[str]:
    """Every instruction of an ``nvdisasm`` listing with its operands, in order (source lines left out)."""
    return ["".join(found.group(2, 3, 4)) for found in INSTRUCTION.finditer(listing)]


def step_loop(listing: str, kernel_lines: list[str]) -> list[tuple[str, str]]:
    """(opcode, source line text) of each instruction of the outermost loop of an ``nvdisasm -g`` listing
    of a kernel whose source is ``kernel_lines``. Lines outside Triton's own package are the kernel's: a
    cubin from Triton's cache names the file that source was first compiled from, which may be gone."""
    sources: dict[str, list[str]] = {}
    library = Path(triton.__file__).parent
    labels, pending, instructions, line = {}, [], [], "(no line)"
    for text in listing.splitlines():
        if located := re.search(r'## File "([^"]+)", line (\d+)', text):
            path, number = located.group(1), int(located.group(2))
            if path not in sources:
                sources[path] = (
                    Path(path).read_text().splitlines() if Path(path).is_relative_to(library) else kernel_lines
                )
            lines = sources[path]
            line = (lines[number - 1].strip() if 0 < number <= len(lines) else "") or "(no line)"
        elif label := re.match(r"\s*(\.L_x_\d+):", text):
            pending.append(label.group(1))
        elif instruction := INSTRUCTION.search(text):
            address = int(instruction.group(1), 16)
            labels.update((name, address) for name in pending)
            pending = []
            instructions.append((address, instruction.group(3), instruction.group(4), line))
    backward = [
        (address - labels[target.group(1)], labels[target.group(1)], address)
        for address, opcode, operands, _ in instructions
        if opcode == "BRA"
        and (target := re.search(r"(\.L_x_\d+)", operands))
        and labels.get(target.group(1), address) < address
    ]
    if not backward:
        raise ValueError("no loop in the kernel's machine code")
    _, first, last = max(backward)
    return [(opcode, line) for address, opcode, _, line in instructions if first <= address <= last]


if __name__ == "__main__":
    main()
