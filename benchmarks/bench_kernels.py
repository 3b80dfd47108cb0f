"""Benchmark tinydiff's conv2d and GroupNorm kernels against their NumPy twins and PyTorch.

    python benchmarks/bench_kernels.py --threads 2

Prints a markdown table: for each shape, in float32, the time of forward +
backward (all gradients) and its GFLOP/s for tinydiff's kernels, the NumPy
reference twins and PyTorch (when importable; ``torch.set_num_threads`` equal
to tinydiff's threads), and the throughput ratio tinydiff / PyTorch measured in
the same run.  The conv2d twin is timed twice: as written (plain ``np.einsum``,
the sum spelled out) and with ``optimize=True`` (einsum hands the contraction to
BLAS) -- the "BLAS twin" column, for a fairer idea of what NumPy alone can do.  Also the first-call time (numba compile, or a load from numba's
cache) and numpy's float32 matmul GFLOP/s, the machine's practical ceiling.

FLOP counts: conv2d forward 2*N*O*C*kh*kw*Ho*Wo, forward + backward 3x that
(input and weight gradients; the bias gradient is negligible), counted as
direct convolution even where Winograd does fewer multiplications.  GroupNorm
is memory-bound; its GFLOP/s uses a nominal 20 flops per element for forward +
backward, only to put the rows on one scale.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

# PyTorch, when installed, is loaded before tinydiff: tinydiff sets OMP_WAIT_POLICY=PASSIVE
# for numba's OpenMP pool when it is imported, and PyTorch's OpenMP runtime, loaded after,
# would inherit the setting (it measured slower with it: an unfair comparison)
try:
    import torch  # noqa: F401
except Exception:  # not installed, or broken: the benchmark runs without it
    pass

from tinydiff.autograd.kernels import (  # noqa: E402
    conv2d_backward,
    conv2d_backward_ref,
    conv2d_forward,
    conv2d_forward_ref,
    get_num_threads,
    group_norm_backward,
    group_norm_backward_ref,
    group_norm_forward,
    group_norm_forward_ref,
    set_num_threads,
)

SHAPES = [(64, 32, 28, 28), (64, 64, 14, 14), (64, 64, 7, 7), (128, 32, 8, 8), (128, 64, 4, 4), (32, 64, 32, 32), (32, 128, 16, 16)]
# (label, shape, kernel, stride, padding)
CONVS = [(f"3x3 {s}", s, 3, 1, 1) for s in SHAPES] + [
    ("3x3 s2 (64, 64, 14, 14)", (64, 64, 14, 14), 3, 2, 1),
    ("1x1 (64, 64, 14, 14)", (64, 64, 14, 14), 1, 1, 0),
]
GN_GROUPS = 8
GN_FLOPS_PER_ELEMENT = 20


def best_time(fn, repeats, min_time=0.0):
    """Best (minimum) wall time of ``fn()`` over ``repeats`` runs (at least ``min_time`` s in total).

    The minimum, not the median: on a shared 2-core machine it is the number least
    disturbed by other processes, for tinydiff and PyTorch alike."""
    times = []
    t_start = time.perf_counter()
    while len(times) < repeats or (time.perf_counter() - t_start < min_time and len(times) < 50):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.min(times))


def matmul_ceiling(threads, n=2048):
    """numpy's float32 matmul at ``threads`` BLAS threads (the kernels' thread policy
    keeps numpy's BLAS on one thread, so it is lifted for this measurement only)."""
    from tinydiff.autograd.kernels import threads as policy

    policy._set_openblas_threads("numpy", threads)
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    a @ a
    t = best_time(lambda: a @ a, 5)
    policy._set_openblas_threads("numpy", 1)
    return 2 * n**3 / t / 1e9


def conv_runners(shape, k, s, p, rng):
    N, C, H, W = shape
    x = rng.standard_normal(shape).astype(np.float32)
    w = (rng.standard_normal((C, C, k, k)) / math.sqrt(C * k * k)).astype(np.float32)
    b = rng.standard_normal(C).astype(np.float32)
    st, pd = (s, s), (p, p)
    Ho = (H + 2 * p - k) // s + 1
    Wo = (W + 2 * p - k) // s + 1
    gy = rng.standard_normal((N, C, Ho, Wo)).astype(np.float32)
    flops = 3 * 2 * N * C * C * k * k * Ho * Wo

    def ours():
        conv2d_forward(x, w, b, st, pd)
        conv2d_backward(x, w, gy, st, pd)

    def ours_fwd():
        conv2d_forward(x, w, b, st, pd)

    def ours_bwd():
        conv2d_backward(x, w, gy, st, pd)

    def ref():
        conv2d_forward_ref(x, w, b, st, pd)
        conv2d_backward_ref(x, w, gy, st, pd)

    def ref_blas():
        conv2d_forward_ref(x, w, b, st, pd, optimize=True)
        conv2d_backward_ref(x, w, gy, st, pd, optimize=True)

    return flops, ours, (ref, ref_blas), (ours_fwd, ours_bwd), (x, w, b, gy, st, pd)


def gn_runners(shape, rng):
    x = rng.standard_normal(shape).astype(np.float32)
    C = shape[1]
    wt = rng.standard_normal(C).astype(np.float32)
    bs = rng.standard_normal(C).astype(np.float32)
    gy = rng.standard_normal(shape).astype(np.float32)
    flops = GN_FLOPS_PER_ELEMENT * x.size

    def ours():
        _, mean, rstd = group_norm_forward(x, GN_GROUPS, wt, bs, 1e-5)
        group_norm_backward(gy, x, mean, rstd, GN_GROUPS, wt)

    def ref():
        _, mean, rstd = group_norm_forward_ref(x, GN_GROUPS, wt, bs, 1e-5)
        group_norm_backward_ref(gy, x, mean, rstd, GN_GROUPS, wt)

    return flops, ours, (ref, None), (x, wt, bs, gy)


def torch_conv(torch, args):
    x, w, b, gy, st, pd = (torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in args)
    x.requires_grad_(True)
    w.requires_grad_(True)
    b.requires_grad_(True)

    def run():
        x.grad = w.grad = b.grad = None
        y = torch.nn.functional.conv2d(x, w, b, stride=st, padding=pd)
        y.backward(gy)

    return run


def torch_gn(torch, args):
    x, wt, bs, gy = (torch.from_numpy(a) for a in args)
    x.requires_grad_(True)
    wt.requires_grad_(True)
    bs.requires_grad_(True)

    def run():
        x.grad = wt.grad = bs.grad = None
        y = torch.nn.functional.group_norm(x, GN_GROUPS, wt, bs, 1e-5)
        y.backward(gy)

    return run


def fmt(v, digits=1):
    return "-" if v is None else f"{v:.{digits}f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7, help="timed runs of tinydiff and PyTorch")
    ap.add_argument("--ref-repeats", type=int, default=1, help="timed runs of the NumPy twins")
    ap.add_argument("--no-ref", action="store_true", help="skip the (slow) NumPy twins")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--detail", action="store_true", help="also print forward / backward split")
    ap.add_argument("--only", default="", help="run only rows whose label contains this text")
    args = ap.parse_args()

    # PyTorch first: imported after numba's OpenMP pool has started, it runs ~2x
    # slower here (measured), which would flatter tinydiff
    torch = None
    if not args.no_torch:
        try:
            import torch as _torch

            _torch.set_num_threads(args.threads)
            torch = _torch
        except ImportError:
            pass
    set_num_threads(args.threads)

    rng = np.random.default_rng(0)
    print(f"threads: {get_num_threads()}, numpy {np.__version__}"
          + (f", torch {torch.__version__}" if torch is not None else ", torch not importable"))
    print(f"numpy float32 matmul ceiling (2048^3, {args.threads} threads): {matmul_ceiling(args.threads):.0f} GFLOP/s\n")

    # first-call time: numba compile (or cache load) of every kernel, on tiny inputs
    t0 = time.perf_counter()
    xs = rng.standard_normal((2, 8, 6, 6)).astype(np.float32)
    for k, s, p in ((3, 1, 1), (3, 2, 1), (1, 1, 0)):
        w = rng.standard_normal((8, 8, k, k)).astype(np.float32)
        y = conv2d_forward(xs, w, w[:, 0, 0, 0].copy(), (s, s), (p, p))
        conv2d_backward(xs, w, y, (s, s), (p, p))
    t_conv = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, m, r = group_norm_forward(xs, 4, None, None, 1e-5)
    group_norm_backward(xs, xs, m, r, 4, None)
    t_gn = time.perf_counter() - t0
    print(f"first call (compile or cache load), float32: conv2d all paths {t_conv:.1f} s, group_norm {t_gn:.1f} s\n")

    header = ("| op | shape (N, C, H, W) | tinydiff ms | tinydiff GFLOP/s | NumPy twin ms | vs twin "
              "| BLAS twin ms | vs BLAS twin | PyTorch ms | PyTorch GFLOP/s | tinydiff / PyTorch |")
    print(header)
    print("|" + "---|" * 11)
    ratios = {"conv2d": [], "group_norm": []}
    twin = {"conv2d": [], "group_norm": []}
    blas_twin = {"conv2d": [], "group_norm": []}
    details = []
    rows = [("conv2d", c) for c in CONVS] + [("group_norm", s) for s in SHAPES]
    for kind, spec in rows:
        if kind == "conv2d":
            label, shape, k, s, p = spec
            flops, ours, ref, (f_fwd, f_bwd), targs = conv_runners(shape, k, s, p, rng)
            trun = torch_conv(torch, targs) if torch is not None else None
        else:
            label, shape = f"GN {GN_GROUPS} groups", spec
            flops, ours, ref, targs = gn_runners(shape, rng)
            trun = torch_gn(torch, targs) if torch is not None else None
        if args.only and args.only not in label and args.only != kind:
            continue
        ours()
        t_ours = best_time(ours, args.repeats, 0.3)
        t_ref = t_blas = None
        ref, ref_blas = ref
        if not args.no_ref:
            ref()
            t_ref = best_time(ref, args.ref_repeats)
            if ref_blas is not None:
                ref_blas()
                t_blas = best_time(ref_blas, args.ref_repeats)
        t_torch = None
        if trun is not None:
            trun()
            t_torch = best_time(trun, args.repeats, 0.3)
        ratio = t_torch / t_ours if t_torch else None
        if ratio:
            ratios[kind].append(ratio)
        if t_ref:
            twin[kind].append(t_ref / t_ours)
        if t_blas:
            blas_twin[kind].append(t_blas / t_ours)
        if args.detail and kind == "conv2d":
            details.append((label, best_time(f_fwd, args.repeats), best_time(f_bwd, args.repeats)))
        op = label.split(" (")[0]
        print(f"| {op} | {shape} | {t_ours * 1e3:.2f} | {flops / t_ours / 1e9:.0f} "
              f"| {fmt(t_ref and t_ref * 1e3)} | {fmt(t_ref and t_ref / t_ours, 0)}x "
              f"| {fmt(t_blas and t_blas * 1e3)} | {fmt(t_blas and t_blas / t_ours, 0)}x "
              f"| {fmt(t_torch and t_torch * 1e3, 2)} | {fmt(t_torch and flops / t_torch / 1e9, 0)} "
              f"| {fmt(ratio, 2)} |", flush=True)
    for kind in ("conv2d", "group_norm"):
        g = math.exp(np.mean(np.log(ratios[kind]))) if ratios[kind] else None
        gt = math.exp(np.mean(np.log(twin[kind]))) if twin[kind] else None
        gb = math.exp(np.mean(np.log(blas_twin[kind]))) if blas_twin[kind] else None
        print(f"| **{kind} geometric mean** | | | | | {fmt(gt, 0)}x | | {fmt(gb, 0)}x | | | **{fmt(g, 2)}** |")
    if details:
        print("\n| conv2d | forward ms | backward ms |\n|---|---|---|")
        for label, tf, tb in details:
            print(f"| {label} | {tf * 1e3:.2f} | {tb * 1e3:.2f} |")


if __name__ == "__main__":
    main()
