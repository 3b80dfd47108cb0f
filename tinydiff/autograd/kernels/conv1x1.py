"""1x1 convolution kernels (stride 1, no padding): a matrix product per sample, no im2col.

A 1x1 conv mixes channels at every pixel independently.  With the pixels of a
sample laid out as the columns of ``x[n]`` (C, P), P = H*W, which is exactly
NCHW memory, the convolution and its gradients are plain matrix products
(w is the weight (O, C) with its two 1x1 axes dropped):

    y[n]  = w @ x[n] + b[:, None]                 (O, P)
    dx[n] = w^T @ gy[n]                           (C, P)
    dw    = sum_n gy[n] @ x[n]^T                  (O, C)
    db    = sum_n gy[n] @ 1                       (O,)

so the arrays are handed to BLAS as they are: no copy of x or gy is made.

Work split: the work items are (sample n, part): each sample's output rows (and,
in the backward, its input-gradient rows) are cut into ``nsplit`` row ranges
(1 unless there are fewer samples than threads), and the items are cut into
``nw`` contiguous ranges, one per numba thread.  Each thread calls the BLAS
GEMM (numba's ``np.dot``, single threaded, see ``threads.py``) on its items and
writes only its own rows of y / dx; dw and db go to thread-private float64
partial sums that the caller adds up at the end (no atomics).  Plain loops:
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


@njit(parallel=True, cache=True, fastmath={"reassoc"})
def conv1x1_backward(x, wT, gy, dx, dwp, dbp, need_dx, need_dw, need_db, nw, nsplit):
    """Gradients of a 1x1 conv: dx[n] = w^T @ gy[n]; per-thread partials dwp[wk] += gy[n] @ x[n]^T, dbp[wk] += row sums of gy[n].

    wT (C, O) is the transposed weight; dx (N, C, H, W) is written in place (when
    need_dx); dwp (nw, O, C) and dbp (nw, O), float64 and zeroed by the caller,
    receive the partial sums the caller adds over threads.
    Optimizations: no im2col / col2im (the NCHW arrays are the GEMM operands);
    single-threaded BLAS per numba thread; thread-private dw / db partials, so
    no atomics; the bias gradient is summed from the rows of gy[n] while the
    weight-gradient GEMM has them in cache (reassociation allowed, so the sum
    vectorizes; float64 accumulation).
    """
    N, C = x.shape[0], x.shape[1]
    O = wT.shape[1]
    P = x.shape[2] * x.shape[3]
    x3 = x.reshape(N, C, P)
    gy3 = gy.reshape(N, O, P)
    dx3 = dx.reshape(dx.shape[0], dx.shape[1], dx.shape[2] * dx.shape[3])
    items = N * nsplit
    for wk in prange(nw):
        tmp = np.empty((O, C), x.dtype)
        i0, i1 = _range(items, nw, wk)
        for it in range(i0, i1):
            n = it // nsplit
            part = it - n * nsplit
            if need_dx:
                c0, c1 = _range(C, nsplit, part)
                if c1 > c0:
                    np.dot(wT[c0:c1], gy3[n], dx3[n, c0:c1])
            o0, o1 = _range(O, nsplit, part)
            if o1 <= o0:
                continue
            g = gy3[n, o0:o1]
            if need_dw:
                t = tmp[o0:o1]
                np.dot(g, x3[n].T, t)
                for o in range(o1 - o0):
                    for c in range(C):
                        dwp[wk, o0 + o, c] += t[o, c]
            if need_db:
                for o in range(o1 - o0):
                    s = 0.0
                    for p in range(P):
                        s += g[o, p]
                    dbp[wk, o0 + o] += s
