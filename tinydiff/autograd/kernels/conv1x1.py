"""1x1 convolution kernels (stride 1, no padding): a matrix product per sample, no im2col.

A 1x1 conv mixes channels at every pixel independently.  With the pixels of a
sample laid out as the columns of ``x[n]`` (C, P), P = H*W, which is exactly
NCHW memory, the convolution and its gradients are plain matrix products
(w is the weight (O, C) with its two 1x1 axes dropped):

    y[n]  = w @ x[n] + b[:, None]                 (O, P)
    dx[n] = w^T @ gy[n]                           (C, P)
    dw^T  = sum_n x[n] @ gy[n]^T                  (C, O)
    db    = sum_n gy[n] @ 1                       (O,)

so x, w and gy are handed to BLAS as they are, with one exception: for the
weight gradient each thread first copies gy[n]^T into a (P, O) buffer.  Both
operands of gy[n] @ x[n]^T run along the summed axis P, and OpenBLAS packs
such a "transposed" operand slowly: measured (64 samples of 64x196x64, one
thread) 1.28 ms for gy[n] @ x[n]^T, 0.89 ms for x[n] @ gyT[n] plus 0.22 ms
for the copies.

Work split: the work items are (sample n, part): each sample's output rows (and,
in the backward, its input-gradient rows) are cut into ``nsplit`` row ranges
(1 unless there are fewer samples than threads), and the items are cut into
``nw`` contiguous ranges, one per numba thread.  Each thread calls the BLAS
GEMM (numba's ``np.dot``, single threaded, see ``threads.py``) on its items and
writes only its own rows of y / dx (and, for dw^T, its own rows c0:c1 of the
sample's product); dw and db go to thread-private float64 partial sums that
the caller adds up at the end (no atomics).  Plain loops:
also runs with ``NUMBA_DISABLE_JIT=1``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["conv1x1_backward", "conv1x1_forward", "conv1x1_split"]


def conv1x1_split(n, nw):
    """Row parts per sample: enough (sample, part) items that every one of ``nw`` threads has work."""
    return max(1, -(-nw // max(1, n)))


@njit(cache=True)
def _range(total, parts, i):
    """[begin, end) of part i of ``total`` items cut into ``parts`` contiguous ranges."""
    per = (total + parts - 1) // parts
    begin = min(total, i * per)
    return begin, min(total, begin + per)


@njit(parallel=True, cache=True)
def conv1x1_forward(x, w, b, has_bias, y, nw, nsplit):
    """y[n] = w @ x[n] (+ b) for every sample n; x (N, C, H, W), w (O, C), y (N, O, H, W) written in place.

    Optimizations: no im2col copy (NCHW samples are already the GEMM's (C, P)
    operand); one single-threaded BLAS GEMM per (sample, row part) on each of
    ``nw`` numba threads; the bias is added to a sample's output rows right
    after their GEMM, while they are still in cache.
    """
    N, C = x.shape[0], x.shape[1]
    O = w.shape[0]
    P = x.shape[2] * x.shape[3]
    x3 = x.reshape(N, C, P)
    y3 = y.reshape(N, O, P)
    items = N * nsplit
    for wk in prange(nw):
        i0, i1 = _range(items, nw, wk)
        for it in range(i0, i1):
            n = it // nsplit
            o0, o1 = _range(O, nsplit, it - n * nsplit)
            if o1 <= o0:
                continue
            yo = y3[n, o0:o1]
            np.dot(w[o0:o1], x3[n], yo)
            if has_bias:
                for o in range(o1 - o0):
                    bo = b[o0 + o]
                    for p in range(P):
                        yo[o, p] += bo


@njit(cache=True)
def _transpose(g, gt):
    """gt[p, o] = g[o, p] for g (O, P): blocks of 8 rows of g, so every write fills 32 contiguous bytes of gt."""
    O, P = g.shape
    O8 = O - O % 8
    for o0 in range(0, O8, 8):
        for p in range(P):
            for o in range(8):
                gt[p, o0 + o] = g[o0 + o, p]
    for p in range(P):
        for o in range(O8, O):
            gt[p, o] = g[o, p]


@njit(parallel=True, cache=True, fastmath={"reassoc"})
def conv1x1_backward(x, wT, gy, dx, dwp, dbp, need_dx, need_dw, need_db, nw, nsplit):
    """Gradients of a 1x1 conv: dx[n] = w^T @ gy[n]; per-thread partials dwp[wk] += gy[n] @ x[n]^T, dbp[wk] += row sums of gy[n].

    wT (C, O) is the transposed weight; dx (N, C, H, W) is written in place (when
    need_dx); dwp (nw, O, C) and dbp (nw, O), float64 and zeroed by the caller,
    receive the partial sums the caller adds over threads.
    Optimizations: no im2col / col2im (the NCHW arrays are the GEMM operands);
    single-threaded BLAS per numba thread; the weight gradient is computed
    transposed, dw^T[c0:c1] += x[n, c0:c1] @ gy[n]^T, with gy[n]^T first
    copied to a thread-private (P, O) buffer (8 rows of gy[n] at a time): a
    plain (NN) product that OpenBLAS runs ~45% faster than gy[n] @ x[n]^T,
    whose operands both run along the summed axis, and that more than pays
    for the copy; thread-private float64 dw^T / db accumulators (no atomics),
    added to the caller's dwp / dbp once per thread; the bias gradient is
    summed in x's dtype over one row of gy[n] at a time (reassociation
    allowed, so the sum vectorizes), and each row sum added in float64.
    """
    N, C = x.shape[0], x.shape[1]
    O = wT.shape[1]
    P = x.shape[2] * x.shape[3]
    x3 = x.reshape(N, C, P)
    gy3 = gy.reshape(N, O, P)
    dx3 = dx.reshape(dx.shape[0], dx.shape[1], dx.shape[2] * dx.shape[3])
    items = N * nsplit
    for wk in prange(nw):
        gt = np.empty((P, O), x.dtype)
        tmp = np.empty((C, O), x.dtype)
        acc = np.zeros((C, O))
        zero = x.dtype.type(0)
        i0, i1 = _range(items, nw, wk)
        for it in range(i0, i1):
            n = it // nsplit
            part = it - n * nsplit
            g = gy3[n]
            c0, c1 = _range(C, nsplit, part)
            if need_dx and c1 > c0:
                np.dot(wT[c0:c1], g, dx3[n, c0:c1])
            if need_db and part == 0:
                for o in range(O):
                    s = zero
                    for p in range(P):
                        s += g[o, p]
                    dbp[wk, o] += s
            if need_dw and c1 > c0:
                _transpose(g, gt)
                t = tmp[c0:c1]
                np.dot(x3[n, c0:c1], gt, t)
                for c in range(c1 - c0):
                    for o in range(O):
                        acc[c0 + c, o] += t[c, o]
        if need_dw and i1 > i0:
            for o in range(O):
                for c in range(C):
                    dwp[wk, o, c] += acc[c, o]
