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

__all__ = ["im2col_conv_forward", "im2col_conv_backward", "im2col_nhwc_conv_forward", "im2col_nhwc_conv_backward"]


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


# --------------------------------------------------------------------------- channels-last variant
#
# The NCHW ``cols`` above is filled by copying rows of Wo floats (strided for
# stride 2): short, gathered copies that cost as much as the GEMM.  The
# channels-last variant first transposes each block of samples to a zero-padded
# (nb, H + 2ph, W + 2pw, C) buffer; the transposed patch matrix
#
#     colsT[s*Ho*Wo + oh*Wo + ow, (i*kw + j)*C + c] = x_padded[n0+s, c, oh*sh + i, ow*sw + j]
#
# is then filled by copies of C contiguous floats, with no bounds tests (the
# padding is in the buffer).  The weight is reshaped to match:
# w2[o, (i*kw + j)*C + c] = w[o, c, i, j].  A partial last block simply uses the
# first cnt*Ho*Wo rows of colsT (a contiguous slice), so nothing is zero-filled.


@njit(cache=True)
def _channel_block(plane_bytes, C):
    """Channels per block in the NCHW <-> NHWC copies: at most 8 x's planes per L1 set.

    Walking a (h, w) position down the channels touches one cache line per plane;
    planes 4 KB apart (a 32x32 float32 plane) all map to the same L1 set, and with
    8 ways those lines evict each other before their next float is used (measured
    3x slower).  Planes ``plane_bytes`` apart spread over 4096 / gcd(plane_bytes,
    4096) sets, so blocks of 8 times that many channels stay resident.
    """
    a, b = plane_bytes, 4096
    while b:
        a, b = b, a % b
    return min(C, 8 * (4096 // a))


@njit(cache=True)
def _to_padded_nhwc(x, n0, cnt, ph, pw, xb):
    """xb[s, ph + h, pw + w, c] = x[n0 + s, c, h, w] for s < cnt (xb's border is left as it is: zero).

    Contiguous stores along c, in channel blocks (``_channel_block``)."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    tc = _channel_block(H * W * x.itemsize, C)
    for s in range(cnt):
        for c0 in range(0, C, tc):
            c1 = min(C, c0 + tc)
            for h in range(H):
                for w in range(W):
                    for c in range(c0, c1):
                        xb[s, ph + h, pw + w, c] = x[n0 + s, c, h, w]


@njit(cache=True)
def _from_padded_nhwc(dxb, n0, cnt, ph, pw, dx):
    """dx[n0 + s, c, h, w] = dxb[s, ph + h, pw + w, c] for s < cnt, in channel blocks as ``_to_padded_nhwc``."""
    C, H, W = dx.shape[1], dx.shape[2], dx.shape[3]
    tc = _channel_block(H * W * dx.itemsize, C)
    for s in range(cnt):
        for c0 in range(0, C, tc):
            c1 = min(C, c0 + tc)
            for h in range(H):
                for w in range(W):
                    for c in range(c0, c1):
                        dx[n0 + s, c, h, w] = dxb[s, ph + h, pw + w, c]


@njit(cache=True)
def _cols_nhwc(xb, cnt, kh, kw, sh, sw, Ho, Wo, colsT, to_cols):
    """im2col, ``to_cols``: colsT[s*Ho*Wo + oh*Wo + ow, (i*kw + j)*C + c] = xb[s, oh*sh + i, ow*sw + j, c];
    otherwise its adjoint, col2im: every column entry added back into its pixel of xb."""
    C = xb.shape[3]
    for s in range(cnt):
        for oh in range(Ho):
            for ow in range(Wo):
                r = (s * Ho + oh) * Wo + ow
                for i in range(kh):
                    for j in range(kw):
                        k0 = (i * kw + j) * C
                        ih = oh * sh + i
                        iw = ow * sw + j
                        if to_cols:
                            for c in range(C):
                                colsT[r, k0 + c] = xb[s, ih, iw, c]
                        else:
                            for c in range(C):
                                xb[s, ih, iw, c] += colsT[r, k0 + c]


@njit(parallel=True, cache=True)
def im2col_nhwc_conv_forward(x, w2, b, kh, kw, sh, sw, ph, pw, y, nw, nb):
    """y = conv2d(x, w) + b via channels-last im2col and one GEMM per block of ``nb`` samples.

    w2 (O, kh*kw*C) is the weight in (i, j, c) column order (see above); y
    (N, O, Ho, Wo) is written in place.
    Optimizations: the patch matrix is filled by contiguous C-long copies from a
    thread-private zero-padded channels-last block (no bounds tests, no strided
    gathers, also for stride 2); thread-private cache-sized buffers; single-threaded
    BLAS per numba thread; bias added while copying the GEMM block out.
    """
    N, C, H, W = x.shape[0], x.shape[1], x.shape[2], x.shape[3]
    O, K = w2.shape[0], w2.shape[1]
    Ho, Wo = y.shape[2], y.shape[3]
    P = Ho * Wo
    y3 = y.reshape(N, O, P)
    nblocks = (N + nb - 1) // nb
    per = (nblocks + nw - 1) // nw
    for wk in prange(nw):
        xb = np.zeros((nb, H + 2 * ph, W + 2 * pw, C), x.dtype)
        colsT = np.empty((nb * P, K), x.dtype)
        out = np.empty(O * nb * P, x.dtype)
        for blk in range(wk * per, min(nblocks, (wk + 1) * per)):
            n0 = blk * nb
            cnt = min(nb, N - n0)
            m = cnt * P
            _to_padded_nhwc(x, n0, cnt, ph, pw, xb)
            _cols_nhwc(xb, cnt, kh, kw, sh, sw, Ho, Wo, colsT, True)
            o2 = out[: O * m].reshape(O, m)
            np.dot(w2, colsT[:m].T, o2)
            for s in range(cnt):
                for o in range(O):
                    bo = b[o]
                    for p in range(P):
                        y3[n0 + s, o, p] = o2[o, s * P + p] + bo


@njit(parallel=True, cache=True, fastmath={"reassoc"})
def im2col_nhwc_conv_backward(x, w2, gy, kh, kw, sh, sw, ph, pw, dx, dwp, dbp, need_dx, need_dw, need_db, nw, nb):
    """Input, weight and bias gradients of conv2d via channels-last im2col / col2im.

    w2 (O, kh*kw*C) as in the forward; dx (N, C, H, W) is written in place (every
    sample once, no zeroing needed); dwp (nw, O, kh*kw*C) and dbp (nw, O), float64,
    zeroed, receive per-thread partial weight and bias gradients.
        dw   += gY_block (O, m) @ colsT (m, K)
        dcolsT = gY_block^T @ w2 (m, K)  -> scatter-add into a padded channels-last
                 block (contiguous C-long adds), transposed into dx
    Optimizations: as in the forward; thread-private accumulators and dx blocks,
    so no atomics; the bias gradient summed from each gy row as it is copied into
    the GEMM block (reassociation allowed for that sum, the only reduction loop).
    """
    N, C, H, W = x.shape[0], x.shape[1], x.shape[2], x.shape[3]
    O, K = w2.shape[0], w2.shape[1]
    Ho, Wo = gy.shape[2], gy.shape[3]
    P = Ho * Wo
    Hp, Wp = H + 2 * ph, W + 2 * pw
    gy3 = gy.reshape(N, O, P)
    nblocks = (N + nb - 1) // nb
    per = (nblocks + nw - 1) // nw
    for wk in prange(nw):
        xb = np.zeros((nb, Hp, Wp, C) if need_dw else (1, 1, 1, 1), x.dtype)
        dxb = np.empty((nb, Hp, Wp, C) if need_dx else (1, 1, 1, 1), x.dtype)
        colsT = np.empty((nb * P, K), x.dtype)
        g = np.empty(O * nb * P, x.dtype)
        tmp = np.empty((O, K), x.dtype)
        for blk in range(wk * per, min(nblocks, (wk + 1) * per)):
            n0 = blk * nb
            cnt = min(nb, N - n0)
            m = cnt * P
            g2 = g[: O * m].reshape(O, m)
            for o in range(O):
                for s in range(cnt):
                    for p in range(P):
                        g2[o, s * P + p] = gy3[n0 + s, o, p]
                if need_db:
                    acc = 0.0
                    for q in range(m):
                        acc += g2[o, q]
                    dbp[wk, o] += acc
            if need_dw:
                _to_padded_nhwc(x, n0, cnt, ph, pw, xb)
                _cols_nhwc(xb, cnt, kh, kw, sh, sw, Ho, Wo, colsT, True)
                np.dot(g2, colsT[:m], tmp)
                for o in range(O):
                    for k in range(K):
                        dwp[wk, o, k] += tmp[o, k]
            if need_dx:
                dcT = colsT[:m]
                np.dot(g2.T, w2, dcT)
                dxb[:cnt] = 0
                _cols_nhwc(dxb, cnt, kh, kw, sh, sw, Ho, Wo, dcT, False)
                _from_padded_nhwc(dxb, n0, cnt, ph, pw, dx)
