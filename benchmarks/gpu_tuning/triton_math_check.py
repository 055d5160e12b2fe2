"""Do Triton's float32 math functions give eager torch's bits on this GPU? (needs CUDA and Triton)

    python benchmarks/gpu_tuning/triton_math_check.py

The Triton backend relies on it for its in-kernel noise (log, sqrt, sin, cos) and divisions; plain ``/``,
``tl.sqrt`` and contracted multiply-adds are printed for contrast (they round differently).
"""

import math

import torch
import triton
import triton.language as tl

NAMES = ["tl.log", "tl.sin", "tl.cos", "tl.sqrt_rn", "tl.div_rn", "/ (contrast)", "tl.sqrt (contrast)", "a*b+u"]


@triton.jit
def _math(u_ptr, a_ptr, b_ptr, out_ptr, n, BLOCK: tl.constexpr):
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = i < n
    u = tl.load(u_ptr + i, mask=m, other=0.5)
    a = tl.load(a_ptr + i, mask=m, other=1.0)
    b = tl.load(b_ptr + i, mask=m, other=1.0)
    angle = u * 6.283185307179586
    radius_sq = tl.log(u) * -2.0
    tl.store(out_ptr + 0 * n + i, tl.log(u), mask=m)
    tl.store(out_ptr + 1 * n + i, tl.sin(angle), mask=m)
    tl.store(out_ptr + 2 * n + i, tl.cos(angle), mask=m)
    tl.store(out_ptr + 3 * n + i, tl.sqrt_rn(radius_sq), mask=m)
    tl.store(out_ptr + 4 * n + i, tl.div_rn(a, b), mask=m)
    tl.store(out_ptr + 5 * n + i, a / b, mask=m)
    tl.store(out_ptr + 6 * n + i, tl.sqrt(radius_sq), mask=m)
    tl.store(out_ptr + 7 * n + i, a * b + u, mask=m)


def main() -> None:
    n = 1 << 22
    g = torch.Generator(device="cuda").manual_seed(1)
    u = (torch.randint(0, 1 << 23, (n,), device="cuda", generator=g).float() + 0.5) * 2.0**-23  # as rng draws
    a = torch.randn(n, device="cuda", generator=g) * 10
    b = torch.randn(n, device="cuda", generator=g) * 3 + 0.1
    angle = u * (2.0 * math.pi)
    radius_sq = u.log().mul(-2.0)
    eager = [u.log(), angle.sin(), angle.cos(), radius_sq.sqrt(), a / b, a / b, radius_sq.sqrt(), a * b + u]
    for fusion in (False, True):
        out = torch.full((len(NAMES), n), float("nan"), device="cuda")
        _math[(triton.cdiv(n, 1024),)](u, a, b, out, n, BLOCK=1024, enable_fp_fusion=fusion)
        for name, got, want in zip(NAMES, out, eager):
            print(
                f"enable_fp_fusion={fusion!s:5} {name:18s} differs from eager torch in "
                f"{int((got != want).sum())} of {n}"
            )


if __name__ == "__main__":
    main()
