"""Winograd F(2x2, 3x3) convolution kernels (stride 1, 3x3), forward and weight gradient.

Lavin & Gray 2016, "Fast Algorithms for Convolutional Neural Networks".  One 2x2
output tile of a 3x3 correlation is computed from a 4x4 input tile ``d`` as

    Y = A^T [ (G g G^T) (.) (B^T d B) ] A                (Lavin & Gray, Eq. 8)

with ``(.)`` the element-wise product and

    B^T = [[1, 0,-1, 0],     G = [[1,   0,   0  ],     A^T = [[1, 1, 1, 0],
           [0, 1, 1, 0],          [1/2, 1/2, 1/2],            [0, 1,-1,-1]]
           [0,-1, 1, 0],          [1/2,-1/2, 1/2],
           [0, 1, 0,-1]]          [0,   0,   1  ]]

Summed over input channels, the 16 element-wise products of one tile become 16
matrix products ("16 batched GEMMs"):  ``M[k] = U[k] @ V[k]`` with
``U[k]`` (O, C) the transformed weights and ``V[k]`` (C, tiles) the transformed
input tiles; 16 multiplications per 4 outputs instead of 36 (2.25x fewer).

The weight gradient follows by the chain rule through the same linear maps:
``Z = A gY A^T`` (the 2x2 output-gradient tile lifted to 4x4),
``dU[k] = sum over tiles Z[k] V[k]^T`` (16 GEMMs, long K) and
``dg = G^T dU G``.  The input gradient of a stride-1 conv is itself a stride-1
conv (of gY with the weights flipped and transposed, padding 2 - p), so it
reuses the forward kernel.

Work split: the tiles (all samples, all tile rows and columns, flattened) are
cut into ``nw`` contiguous ranges, one per numba thread; each thread walks its
range in blocks of ``tb`` tiles, keeping V, M (or Z) in thread-private
cache-sized buffers, and calls the BLAS GEMM (numba's ``np.dot``, single
threaded, see ``threads.py``) on those.  Each kernel is plain loops, so it also
runs with ``NUMBA_DISABLE_JIT=1``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = [
    "weight_transform",
    "weight_grad_inverse_transform",
    "winograd_conv3x3",
    "winograd_conv3x3_dw",
]


@njit(cache=True)
def weight_transform(w):
    """U[4i+j, o, c] = (G g G^T)[i, j] for g = w[o, c] (3x3).  Returns (16, O, C), w's dtype.

    The transform is done once per call on O*C*9 numbers, so it is plain scalar code.
    """
    O, C = w.shape[0], w.shape[1]
    U = np.empty((16, O, C), w.dtype)
    t = np.empty((4, 3))
    for o in range(O):
        for c in range(C):
            for j in range(3):
                g0 = np.float64(w[o, c, 0, j])
                g1 = np.float64(w[o, c, 1, j])
                g2 = np.float64(w[o, c, 2, j])
                t[0, j] = g0
                t[1, j] = 0.5 * (g0 + g1 + g2)
                t[2, j] = 0.5 * (g0 - g1 + g2)
                t[3, j] = g2
            for i in range(4):
                g0 = t[i, 0]
                g1 = t[i, 1]
                g2 = t[i, 2]
                U[4 * i + 0, o, c] = g0
                U[4 * i + 1, o, c] = 0.5 * (g0 + g1 + g2)
                U[4 * i + 2, o, c] = 0.5 * (g0 - g1 + g2)
                U[4 * i + 3, o, c] = g2
    return U


@njit(cache=True)
def weight_grad_inverse_transform(dU, dtype_like):
    """dg = G^T dU G for each (o, c): (16, O, C) float64 -> (O, C, 3, 3) in dtype_like's dtype."""
    O, C = dU.shape[1], dU.shape[2]
    dw = np.empty((O, C, 3, 3), dtype_like.dtype)
    t = np.empty((3, 4))
    for o in range(O):
        for c in range(C):
            for j in range(4):
                u0 = dU[0 + j, o, c]
                u1 = dU[4 + j, o, c]
                u2 = dU[8 + j, o, c]
                u3 = dU[12 + j, o, c]
                t[0, j] = u0 + 0.5 * (u1 + u2)
                t[1, j] = 0.5 * (u1 - u2)
                t[2, j] = 0.5 * (u1 + u2) + u3
            for i in range(3):
                u0 = t[i, 0]
                u1 = t[i, 1]
                u2 = t[i, 2]
                u3 = t[i, 3]
                dw[o, c, i, 0] = u0 + 0.5 * (u1 + u2)
                dw[o, c, i, 1] = 0.5 * (u1 - u2)
                dw[o, c, i, 2] = 0.5 * (u1 + u2) + u3
    return dw


@njit(cache=True)
def _input_transform_block(x, pad, th, tw, t0, nt, V):
    """V[k, c, tt] = (B^T d B)[k] for the 4x4 input tile d of tile t0 + tt (zeros past nt).

    Interior tiles load 16 values without bounds checks; border tiles test each
    load against the zero padding (no padded copy of x is ever made).
    """
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    tb = V.shape[2]
    zero = np.zeros(1, x.dtype)[0]
    per_sample = th * tw
    d = np.empty((4, 4), x.dtype)
    for tt in range(tb):
        if tt >= nt:
            for k in range(16):
                for c in range(C):
                    V[k, c, tt] = zero
            continue
        t = t0 + tt
        n = t // per_sample
        r = t - n * per_sample
        ti = r // tw
        tj = r - ti * tw
        r0 = 2 * ti - pad
        c0 = 2 * tj - pad
        interior = r0 >= 0 and c0 >= 0 and r0 + 4 <= H and c0 + 4 <= W
        for c in range(C):
            if interior:
                for i in range(4):
                    for j in range(4):
                        d[i, j] = x[n, c, r0 + i, c0 + j]
            else:
                for i in range(4):
                    rr = r0 + i
                    for j in range(4):
                        cc = c0 + j
                        if rr >= 0 and rr < H and cc >= 0 and cc < W:
                            d[i, j] = x[n, c, rr, cc]
                        else:
                            d[i, j] = zero
            # rows: B^T d
            for j in range(4):
                a0 = d[0, j]
                a1 = d[1, j]
                a2 = d[2, j]
                a3 = d[3, j]
                d[0, j] = a0 - a2
                d[1, j] = a1 + a2
                d[2, j] = a2 - a1
                d[3, j] = a1 - a3
            # columns: (B^T d) B
            for i in range(4):
                a0 = d[i, 0]
                a1 = d[i, 1]
                a2 = d[i, 2]
                a3 = d[i, 3]
                V[4 * i + 0, c, tt] = a0 - a2
                V[4 * i + 1, c, tt] = a1 + a2
                V[4 * i + 2, c, tt] = a2 - a1
                V[4 * i + 3, c, tt] = a1 - a3


@njit(cache=True)
def _output_inverse_block(M, b, has_bias, th, tw, t0, nt, y):
    """y[n, o, 2ti:2ti+2, 2tj:2tj+2] = A^T M[:, o, tt] A (+ b[o]), clipped at the edges."""
    O = M.shape[1]
    Ho, Wo = y.shape[2], y.shape[3]
    per_sample = th * tw
    for tt in range(nt):
        t = t0 + tt
        n = t // per_sample
        r = t - n * per_sample
        ti = r // tw
        tj = r - ti * tw
        oh = 2 * ti
        ow = 2 * tj
        full = oh + 2 <= Ho and ow + 2 <= Wo
        for o in range(O):
            # A^T m (2x4), then (A^T m) A (2x2)
            s00 = M[0, o, tt] + M[4, o, tt] + M[8, o, tt]
            s01 = M[1, o, tt] + M[5, o, tt] + M[9, o, tt]
            s02 = M[2, o, tt] + M[6, o, tt] + M[10, o, tt]
            s03 = M[3, o, tt] + M[7, o, tt] + M[11, o, tt]
            s10 = M[4, o, tt] - M[8, o, tt] - M[12, o, tt]
            s11 = M[5, o, tt] - M[9, o, tt] - M[13, o, tt]
            s12 = M[6, o, tt] - M[10, o, tt] - M[14, o, tt]
            s13 = M[7, o, tt] - M[11, o, tt] - M[15, o, tt]
            y00 = s00 + s01 + s02
            y01 = s01 - s02 - s03
            y10 = s10 + s11 + s12
            y11 = s11 - s12 - s13
            if has_bias:
                bo = b[o]
                y00 += bo
                y01 += bo
                y10 += bo
                y11 += bo
            if full:
                y[n, o, oh, ow] = y00
                y[n, o, oh, ow + 1] = y01
                y[n, o, oh + 1, ow] = y10
                y[n, o, oh + 1, ow + 1] = y11
            else:
                y[n, o, oh, ow] = y00
                if ow + 1 < Wo:
                    y[n, o, oh, ow + 1] = y01
                if oh + 1 < Ho:
                    y[n, o, oh + 1, ow] = y10
                    if ow + 1 < Wo:
                        y[n, o, oh + 1, ow + 1] = y11


@njit(parallel=True, cache=True)
def winograd_conv3x3(x, U, b, has_bias, pad, y, nw, tb):
    """y = conv3x3(x, g) + b, stride 1, zero padding ``pad``, by Winograd F(2x2, 3x3).

    x (N, C, H, W), U = weight_transform(g) (16, O, C), y (N, O, Ho, Wo) written in place.
    Optimizations: 2.25x fewer multiplications than direct conv; the 16 products per
    block are BLAS GEMMs (O x C) @ (C x tb) on thread-private buffers that stay in cache;
    ``nw`` numba threads each own a contiguous range of tiles (no write conflicts:
    output tiles are disjoint); the zero padding is never materialized.
    """
    N, C = x.shape[0], x.shape[1]
    O = U.shape[1]
    Ho, Wo = y.shape[2], y.shape[3]
    th = (Ho + 1) // 2
    tw = (Wo + 1) // 2
    T = N * th * tw
    per = (T + nw - 1) // nw
    for wk in prange(nw):
        V = np.empty((16, C, tb), x.dtype)
        M = np.empty((16, O, tb), x.dtype)
        t_begin = wk * per
        t_end = min(T, t_begin + per)
        for t0 in range(t_begin, t_end, tb):
            nt = min(tb, t_end - t0)
            _input_transform_block(x, pad, th, tw, t0, nt, V)
            for k in range(16):
                np.dot(U[k], V[k], M[k])
            _output_inverse_block(M, b, has_bias, th, tw, t0, nt, y)


@njit(cache=True)
def _grad_transform_block(gy, th, tw, t0, nt, Z):
    """Z[k, o, tt] = (A gY A^T)[k] for the 2x2 output-gradient tile of tile t0 + tt (zeros past)."""
    O, Ho, Wo = gy.shape[1], gy.shape[2], gy.shape[3]
    tb = Z.shape[2]
    zero = np.zeros(1, gy.dtype)[0]
    per_sample = th * tw
    for tt in range(tb):
        if tt >= nt:
            for k in range(16):
                for o in range(O):
                    Z[k, o, tt] = zero
            continue
        t = t0 + tt
        n = t // per_sample
        r = t - n * per_sample
        ti = r // tw
        tj = r - ti * tw
        oh = 2 * ti
        ow = 2 * tj
        for o in range(O):
            g00 = gy[n, o, oh, ow]
            g01 = gy[n, o, oh, ow + 1] if ow + 1 < Wo else zero
            g10 = gy[n, o, oh + 1, ow] if oh + 1 < Ho else zero
            g11 = gy[n, o, oh + 1, ow + 1] if (oh + 1 < Ho and ow + 1 < Wo) else zero
            # rows of A gY (A = [[1,0],[1,1],[1,-1],[0,-1]])
            r00 = g00
            r01 = g01
            r10 = g00 + g10
            r11 = g01 + g11
            r20 = g00 - g10
            r21 = g01 - g11
            r30 = -g10
            r31 = -g11
            Z[0, o, tt] = r00
            Z[1, o, tt] = r00 + r01
            Z[2, o, tt] = r00 - r01
            Z[3, o, tt] = -r01
            Z[4, o, tt] = r10
            Z[5, o, tt] = r10 + r11
            Z[6, o, tt] = r10 - r11
            Z[7, o, tt] = -r11
            Z[8, o, tt] = r20
            Z[9, o, tt] = r20 + r21
            Z[10, o, tt] = r20 - r21
            Z[11, o, tt] = -r21
            Z[12, o, tt] = r30
            Z[13, o, tt] = r30 + r31
            Z[14, o, tt] = r30 - r31
            Z[15, o, tt] = -r31


@njit(parallel=True, cache=True)
def winograd_conv3x3_dw(x, gy, pad, dUp, nw, tb):
    """Per-thread partial weight gradients in the Winograd domain.

    dUp[wk, k] (float64, zeroed by the caller) += sum over thread wk's tiles of
    Z[k] @ V[k]^T with V = B^T d B (input tiles of x) and Z = A gY A^T.  The caller
    sums over threads and maps back with ``weight_grad_inverse_transform``.
    Optimizations: one GEMM (O x tb) @ (tb x C) per k per block on cache-resident
    thread-private buffers; thread-private accumulators, so no atomics.
    """
    N, C = x.shape[0], x.shape[1]
    O, Ho, Wo = gy.shape[1], gy.shape[2], gy.shape[3]
    th = (Ho + 1) // 2
    tw = (Wo + 1) // 2
    T = N * th * tw
    per = (T + nw - 1) // nw
    for wk in prange(nw):
        V = np.empty((16, C, tb), x.dtype)
        Z = np.empty((16, O, tb), x.dtype)
        tmp = np.empty((O, C), x.dtype)
        t_begin = wk * per
        t_end = min(T, t_begin + per)
        for t0 in range(t_begin, t_end, tb):
            nt = min(tb, t_end - t0)
            _input_transform_block(x, pad, th, tw, t0, nt, V)
            _grad_transform_block(gy, th, tw, t0, nt, Z)
            for k in range(16):
                np.dot(Z[k], V[k].T, tmp)
                for o in range(O):
                    for c in range(C):
                        dUp[wk, k, o, c] += tmp[o, c]
