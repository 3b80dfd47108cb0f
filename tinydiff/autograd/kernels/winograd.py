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

Work split: the tile rows (sample n, tile row ti; ``N * th`` of them) are cut
into ``nw`` contiguous ranges, one per numba thread; each thread walks its
range in blocks of ``rpb`` tile rows (``rpb * tw`` tiles), keeping V, M (or Z)
in thread-private cache-sized buffers, and calls the BLAS GEMM (numba's
``np.dot``, single threaded, see ``threads.py``) on those.  The transforms run
along a tile row, the tile column ``tj`` innermost: stores into V / M / Z are
contiguous, the input rows are first copied into a small zero-padded row
buffer (so no bounds tests in the inner loop), and LLVM vectorizes the loop.  Each kernel is plain loops, so it also
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
def _input_transform_block(x, pad, th, tw, q0, nq, rb, V):
    """V[k, c*nt + qq*tw + tj] = (B^T d B)[k] for the 4x4 input tile d at tile row q0 + qq, column tj.

    V is (16, plane stride): plane k holds the (C, nt) matrix V[k], nt = nq * tw.
    rb (4, 2*tw + 2) is a scratch buffer receiving the 4 input rows of a tile row,
    zero-padded, so the inner loop over tj has no bounds tests.
    """
    nt = nq * tw
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    Wp = rb.shape[1]
    zero = np.zeros(1, x.dtype)[0]
    for c in range(C):
        for qq in range(nq):
            q = q0 + qq
            n = q // th
            ti = q - n * th
            r0 = 2 * ti - pad
            for i in range(4):
                row = r0 + i
                if row >= 0 and row < H:
                    for j in range(pad):
                        rb[i, j] = zero
                    for j in range(W):
                        rb[i, pad + j] = x[n, c, row, j]
                    for j in range(pad + W, Wp):
                        rb[i, j] = zero
                else:
                    for j in range(Wp):
                        rb[i, j] = zero
            base = qq * tw
            ct = c * nt
            for tj in range(tw):
                cc = 2 * tj
                # rows: B^T d, per column j
                t00 = rb[0, cc] - rb[2, cc]
                t01 = rb[0, cc + 1] - rb[2, cc + 1]
                t02 = rb[0, cc + 2] - rb[2, cc + 2]
                t03 = rb[0, cc + 3] - rb[2, cc + 3]
                t10 = rb[1, cc] + rb[2, cc]
                t11 = rb[1, cc + 1] + rb[2, cc + 1]
                t12 = rb[1, cc + 2] + rb[2, cc + 2]
                t13 = rb[1, cc + 3] + rb[2, cc + 3]
                t20 = rb[2, cc] - rb[1, cc]
                t21 = rb[2, cc + 1] - rb[1, cc + 1]
                t22 = rb[2, cc + 2] - rb[1, cc + 2]
                t23 = rb[2, cc + 3] - rb[1, cc + 3]
                t30 = rb[1, cc] - rb[3, cc]
                t31 = rb[1, cc + 1] - rb[3, cc + 1]
                t32 = rb[1, cc + 2] - rb[3, cc + 2]
                t33 = rb[1, cc + 3] - rb[3, cc + 3]
                # columns: (B^T d) B
                t = base + tj
                V[0, ct + t] = t00 - t02
                V[1, ct + t] = t01 + t02
                V[2, ct + t] = t02 - t01
                V[3, ct + t] = t01 - t03
                V[4, ct + t] = t10 - t12
                V[5, ct + t] = t11 + t12
                V[6, ct + t] = t12 - t11
                V[7, ct + t] = t11 - t13
                V[8, ct + t] = t20 - t22
                V[9, ct + t] = t21 + t22
                V[10, ct + t] = t22 - t21
                V[11, ct + t] = t21 - t23
                V[12, ct + t] = t30 - t32
                V[13, ct + t] = t31 + t32
                V[14, ct + t] = t32 - t31
                V[15, ct + t] = t31 - t33


@njit(cache=True)
def _output_inverse_block(M, b, has_bias, th, tw, q0, nq, ob, y):
    """y[n, o, 2ti:2ti+2, :] = A^T M[:, o*nt + tile] A (+ b[o]) for the tile rows q0 .. q0+nq-1.

    ob (2, 2*tw) is a scratch buffer for the two output rows of a tile row; rows
    and columns past Ho, Wo are dropped when it is copied out.
    """
    O = y.shape[1]
    Ho, Wo = y.shape[2], y.shape[3]
    nt = nq * tw
    zero = np.zeros(1, y.dtype)[0]
    for o in range(O):
        bo = b[o] if has_bias else zero
        ot = o * nt
        for qq in range(nq):
            q = q0 + qq
            n = q // th
            ti = q - n * th
            base = qq * tw
            for tj in range(tw):
                t = ot + base + tj
                # A^T m (2x4), then (A^T m) A (2x2)
                s00 = M[0, t] + M[4, t] + M[8, t]
                s01 = M[1, t] + M[5, t] + M[9, t]
                s02 = M[2, t] + M[6, t] + M[10, t]
                s03 = M[3, t] + M[7, t] + M[11, t]
                s10 = M[4, t] - M[8, t] - M[12, t]
                s11 = M[5, t] - M[9, t] - M[13, t]
                s12 = M[6, t] - M[10, t] - M[14, t]
                s13 = M[7, t] - M[11, t] - M[15, t]
                ob[0, 2 * tj] = s00 + s01 + s02
                ob[0, 2 * tj + 1] = s01 - s02 - s03
                ob[1, 2 * tj] = s10 + s11 + s12
                ob[1, 2 * tj + 1] = s11 - s12 - s13
            oh = 2 * ti
            for j in range(Wo):
                y[n, o, oh, j] = ob[0, j] + bo
            if oh + 1 < Ho:
                for j in range(Wo):
                    y[n, o, oh + 1, j] = ob[1, j] + bo


@njit(cache=True)
def _plane_stride(n):
    """Elements between the 16 planes of a V / M / Z buffer: n rounded up to 1024, plus 16.

    Planes a power of two bytes apart map onto the same L1 sets, and writing 16 of
    them at once thrashes the cache (measured 2-7x slower transforms); the odd
    64-byte offset spreads them.
    """
    return (n + 1023) // 1024 * 1024 + 16


@njit(cache=True)
def _split(total, nw, wk):
    """[begin, end) of worker wk's share of ``total`` items cut into nw contiguous ranges."""
    per = (total + nw - 1) // nw
    begin = min(total, wk * per)
    return begin, min(total, begin + per)


@njit(parallel=True, cache=True)
def winograd_conv3x3(x, U, b, has_bias, pad, y, nw, rpb):
    """y = conv3x3(x, g) + b, stride 1, zero padding ``pad``, by Winograd F(2x2, 3x3).

    x (N, C, H, W), U = weight_transform(g) (16, O, C), y (N, O, Ho, Wo) written in place.
    Optimizations: 2.25x fewer multiplications than direct conv; per block of ``rpb``
    tile rows, the 16 products are BLAS GEMMs (O x C) @ (C x rpb*tw) on thread-private
    buffers that stay in cache; transforms vectorized along the tile row (module
    docstring); ``nw`` numba threads each own a contiguous range of tile rows (output
    tiles are disjoint, so no write conflicts); the zero padding is never materialized
    beyond a 4-row scratch buffer.
    """
    N, C = x.shape[0], x.shape[1]
    O = U.shape[1]
    Ho, Wo = y.shape[2], y.shape[3]
    th = (Ho + 1) // 2
    tw = (Wo + 1) // 2
    rows = N * th
    for wk in prange(nw):
        V = np.empty((16, _plane_stride(C * rpb * tw)), x.dtype)
        M = np.empty((16, _plane_stride(O * rpb * tw)), x.dtype)
        rb = np.empty((4, 2 * tw + 2), x.dtype)
        ob = np.empty((2, 2 * tw), x.dtype)
        q_begin, q_end = _split(rows, nw, wk)
        for q0 in range(q_begin, q_end, rpb):
            nq = min(rpb, q_end - q0)
            nt = nq * tw
            _input_transform_block(x, pad, th, tw, q0, nq, rb, V)
            for k in range(16):
                np.dot(U[k], V[k, : C * nt].reshape(C, nt), M[k, : O * nt].reshape(O, nt))
            _output_inverse_block(M, b, has_bias, th, tw, q0, nq, ob, y)


@njit(cache=True)
def _grad_transform_block(gy, th, tw, q0, nq, gb, Z, need_db, dbr):
    """Z[k, o*nt + qq*tw + tj] = (A gY A^T)[k] for the 2x2 output-gradient tile (zeros past Ho, Wo).

    gb (2, 2*tw) receives the two gY rows of a tile row, zero-padded.  When
    ``need_db``, dbr[o, :] (float64, (O, 2*tw)) += the two rows, element-wise
    (so the loop vectorizes): every gY element is copied exactly once, so the
    row sums of dbr are the bias gradient, taken while gY is in cache.
    """
    O, Ho, Wo = gy.shape[1], gy.shape[2], gy.shape[3]
    zero = np.zeros(1, gy.dtype)[0]
    W2 = gb.shape[1]
    nt = nq * tw
    for o in range(O):
        for qq in range(nq):
            q = q0 + qq
            n = q // th
            ti = q - n * th
            oh = 2 * ti
            for i in range(2):
                if oh + i < Ho:
                    for j in range(Wo):
                        gb[i, j] = gy[n, o, oh + i, j]
                    for j in range(Wo, W2):
                        gb[i, j] = zero
                else:
                    for j in range(W2):
                        gb[i, j] = zero
            if need_db:
                for j in range(W2):
                    dbr[o, j] += np.float64(gb[0, j]) + np.float64(gb[1, j])
            base = qq * tw
            for tj in range(tw):
                t = o * nt + base + tj
                g00 = gb[0, 2 * tj]
                g01 = gb[0, 2 * tj + 1]
                g10 = gb[1, 2 * tj]
                g11 = gb[1, 2 * tj + 1]
                # rows of A gY (A = [[1,0],[1,1],[1,-1],[0,-1]]), then columns
                r10 = g00 + g10
                r11 = g01 + g11
                r20 = g00 - g10
                r21 = g01 - g11
                Z[0, t] = g00
                Z[1, t] = g00 + g01
                Z[2, t] = g00 - g01
                Z[3, t] = -g01
                Z[4, t] = r10
                Z[5, t] = r10 + r11
                Z[6, t] = r10 - r11
                Z[7, t] = -r11
                Z[8, t] = r20
                Z[9, t] = r20 + r21
                Z[10, t] = r20 - r21
                Z[11, t] = -r21
                Z[12, t] = -g10
                Z[13, t] = -g10 - g11
                Z[14, t] = g11 - g10
                Z[15, t] = g11


@njit(parallel=True, cache=True)
def winograd_conv3x3_dw(x, gy, pad, dUp, need_db, dbp, nw, rpb):
    """Per-thread partial weight (and bias) gradients in the Winograd domain.

    dUp[wk, k] (float64, zeroed by the caller) += sum over thread wk's tiles of
    Z[k] @ V[k]^T with V = B^T d B (input tiles of x) and Z = A gY A^T.  The caller
    sums over threads and maps back with ``weight_grad_inverse_transform``.
    When ``need_db``, dbp[wk, o] (float64, zeroed) += the sum of thread wk's gY
    values of channel o; the caller sums over threads.
    Optimizations: one GEMM (O x nt) @ (nt x C) per k per block on cache-resident
    thread-private buffers; vectorized transforms; thread-private accumulators, so
    no atomics; the bias gradient accumulated from the gY rows the gradient
    transform has just copied (no separate pass over gY).
    """
    N, C = x.shape[0], x.shape[1]
    O, Ho, Wo = gy.shape[1], gy.shape[2], gy.shape[3]
    th = (Ho + 1) // 2
    tw = (Wo + 1) // 2
    rows = N * th
    for wk in prange(nw):
        V = np.empty((16, _plane_stride(C * rpb * tw)), x.dtype)
        Z = np.empty((16, _plane_stride(O * rpb * tw)), x.dtype)
        rb = np.empty((4, 2 * tw + 2), x.dtype)
        gb = np.empty((2, 2 * tw), x.dtype)
        tmp = np.empty((O, C), x.dtype)
        dbr = np.zeros((O, 2 * tw) if need_db else (1, 1))
        q_begin, q_end = _split(rows, nw, wk)
        for q0 in range(q_begin, q_end, rpb):
            nq = min(rpb, q_end - q0)
            nt = nq * tw
            _input_transform_block(x, pad, th, tw, q0, nq, rb, V)
            _grad_transform_block(gy, th, tw, q0, nq, gb, Z, need_db, dbr)
            for k in range(16):
                np.dot(Z[k, : O * nt].reshape(O, nt), V[k, : C * nt].reshape(C, nt).T, tmp)
                for o in range(O):
                    for c in range(C):
                        dUp[wk, k, o, c] += tmp[o, c]
        if need_db:
            for o in range(O):
                acc = 0.0
                for j in range(2 * tw):
                    acc += dbr[o, j]
                dbp[wk, o] += acc
