"""General conv2d kernels (any kernel size, stride, padding) by im2col + BLAS GEMM.

For a block of ``nb`` samples the patches are unrolled into ``cols``
(C*kh*kw, nb*Ho*Wo) and the convolution is one GEMM:

    y_block (O, nb*Ho*Wo) = w2 (O, C*kh*kw) @ cols
    dw     += gY_block @ cols^T
    dcols   = w2^T @ gY_block         -> col2im (scatter-add) into dx

Work split: the sample blocks are shared out over ``nw`` numba threads; each
thread owns its buffers (a few hundred KB, so they stay in cache and below the
allocator's mmap threshold), calls single-threaded BLAS (see ``threads.py``),
keeps a private dw accumulator and writes only its own samples of y and dx,
so no two threads write the same memory.  Plain loops: also runs with
``NUMBA_DISABLE_JIT=1``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["im2col_conv_forward", "im2col_conv_backward"]


@njit(cache=True)
def _valid_range(pad, k, stride, size, n_out):
    """[lo, hi) of output positions o whose input o*stride - pad + k lies in [0, size)."""
    lo = 0
    while lo < n_out and lo * stride - pad + k < 0:
        lo += 1
    hi = n_out
    while hi > lo and (hi - 1) * stride - pad + k >= size:
        hi -= 1
    return lo, hi


@njit(cache=True)
def _fill_cols(x, n0, cnt, kh, kw, sh, sw, ph, pw, Ho, Wo, cols):
    """cols[(c*kh + i)*kw + j, s*Ho*Wo + oh*Wo + ow] = x_padded[n0+s, c, oh*sh + i, ow*sw + j].

    The zero-padding borders are found once per kernel offset (``_valid_range``),
    so the copy loops have no bounds tests.
    """
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    P = Ho * Wo
    nbP = cols.shape[1]
    zero = np.zeros(1, x.dtype)[0]
    for c in range(C):
        for i in range(kh):
            oh_lo, oh_hi = _valid_range(ph, i, sh, H, Ho)
            for j in range(kw):
                ow_lo, ow_hi = _valid_range(pw, j, sw, W, Wo)
                row = (c * kh + i) * kw + j
                for s in range(cnt):
                    n = n0 + s
                    for oh in range(Ho):
                        base = s * P + oh * Wo
                        if oh < oh_lo or oh >= oh_hi:
                            for ow in range(Wo):
                                cols[row, base + ow] = zero
                            continue
                        ih = oh * sh - ph + i
                        for ow in range(ow_lo):
                            cols[row, base + ow] = zero
                        off = j - pw
                        for ow in range(ow_lo, ow_hi):
                            cols[row, base + ow] = x[n, c, ih, ow * sw + off]
                        for ow in range(ow_hi, Wo):
                            cols[row, base + ow] = zero
                for q in range(cnt * P, nbP):
                    cols[row, q] = zero


@njit(parallel=True, cache=True)
def im2col_conv_forward(x, w2, b, kh, kw, sh, sw, ph, pw, y, nw, nb):
    """y = conv2d(x, w) + b (b zeros when there is no bias) via per-block im2col and one GEMM per block of ``nb`` samples.

    w2 is the weight reshaped to (O, C*kh*kw); y (N, O, Ho, Wo) is written in place.
    Optimizations: thread-private cache-sized buffers, single-threaded BLAS per
    numba thread, ``nb`` chosen by the caller so the GEMM has enough columns.
    """
    N = x.shape[0]
    O, K = w2.shape[0], w2.shape[1]
    Ho, Wo = y.shape[2], y.shape[3]
    P = Ho * Wo
    y3 = y.reshape(N, O, P)
    nblocks = (N + nb - 1) // nb
    per = (nblocks + nw - 1) // nw
    for wk in prange(nw):
        cols = np.empty((K, nb * P), x.dtype)
        out = np.empty((O, nb * P), x.dtype)
        for blk in range(wk * per, min(nblocks, (wk + 1) * per)):
            n0 = blk * nb
            cnt = min(nb, N - n0)
            _fill_cols(x, n0, cnt, kh, kw, sh, sw, ph, pw, Ho, Wo, cols)
            np.dot(w2, cols, out)
            for s in range(cnt):
                for o in range(O):
                    bo = b[o]
                    for p in range(P):
                        y3[n0 + s, o, p] = out[o, s * P + p] + bo


@njit(parallel=True, cache=True, fastmath={"reassoc"})
def im2col_conv_backward(x, w2T, gy, kh, kw, sh, sw, ph, pw, dx, dwp, dbp, need_dx, need_dw, need_db, nw, nb):
    """Input, weight and bias gradients of conv2d via im2col / col2im.

    w2T (C*kh*kw, O) is the transposed reshaped weight; dx (N, C, H, W) must be
    zeroed by the caller (col2im scatter-adds into it); dwp (nw, O, C*kh*kw) and
    dbp (nw, O), float64, zeroed, receive per-thread partial weight and bias
    gradients (the caller sums over threads).
    Optimizations: as in the forward; dx blocks belong to one thread, so the
    scatter-add needs no atomics; the bias gradient is summed from each gy row
    just copied into the GEMM block (in L1, no separate pass over gy;
    reassociation allowed so the float64 sum vectorizes -- the only reduction
    loop here, every other loop is element-wise).
    """
    N, C, H, W = x.shape[0], x.shape[1], x.shape[2], x.shape[3]
    K, O = w2T.shape[0], w2T.shape[1]
    Ho, Wo = gy.shape[2], gy.shape[3]
    P = Ho * Wo
    gy3 = gy.reshape(N, O, P)
    nblocks = (N + nb - 1) // nb
    per = (nblocks + nw - 1) // nw
    for wk in prange(nw):
        cols = np.empty((K, nb * P), x.dtype)
        g = np.empty((O, nb * P), x.dtype)
        tmp = np.empty((O, K), x.dtype)
        for blk in range(wk * per, min(nblocks, (wk + 1) * per)):
            n0 = blk * nb
            cnt = min(nb, N - n0)
            for o in range(O):
                for s in range(cnt):
                    for p in range(P):
                        g[o, s * P + p] = gy3[n0 + s, o, p]
                if need_db:
                    acc = 0.0
                    for q in range(cnt * P):
                        acc += g[o, q]
                    dbp[wk, o] += acc
                for q in range(cnt * P, nb * P):
                    g[o, q] = 0
            if need_dw:
                _fill_cols(x, n0, cnt, kh, kw, sh, sw, ph, pw, Ho, Wo, cols)
                np.dot(g, cols.T, tmp)
                for o in range(O):
                    for k in range(K):
                        dwp[wk, o, k] += tmp[o, k]
            if need_dx:
                np.dot(w2T, g, cols)  # cols now holds dcols
                for c in range(C):
                    for i in range(kh):
                        oh_lo, oh_hi = _valid_range(ph, i, sh, H, Ho)
                        for j in range(kw):
                            ow_lo, ow_hi = _valid_range(pw, j, sw, W, Wo)
                            row = (c * kh + i) * kw + j
                            off = j - pw
                            for s in range(cnt):
                                n = n0 + s
                                for oh in range(oh_lo, oh_hi):
                                    ih = oh * sh - ph + i
                                    base = s * P + oh * Wo
                                    for ow in range(ow_lo, ow_hi):
                                        dx[n, c, ih, ow * sw + off] += cols[row, base + ow]
