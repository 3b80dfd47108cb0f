"""GroupNorm forward and backward on NumPy arrays: fused numba kernels and reference twins.

Wu & He 2018, "Group Normalization", Eq. 1-2.  For each sample n and group g
(channels c in g, C/G of them, and all positions l):

    mean = 1/m sum x,   var = 1/m sum (x - mean)^2  (biased),   m = (C/G) * L
    x_hat = (x - mean) * rstd,   rstd = 1 / sqrt(var + eps)
    y[n, c, l] = x_hat[n, c, l] * weight[c] + bias[c]

Closed-form backward, with gw = gy * weight[c] and sums over the group:

    dx = rstd * (gw - mean_over_group(gw) - x_hat * mean_over_group(gw * x_hat))
    dweight[c] = sum_{n, l} gy * x_hat,   dbias[c] = sum_{n, l} gy

Any (N, C, *) input is handled as (N, C, L).  Results have x's dtype; statistics
are accumulated in float64.  Every returned array is freshly allocated.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .threads import get_num_threads

__all__ = [
    "group_norm_forward",
    "group_norm_backward",
    "group_norm_forward_ref",
    "group_norm_backward_ref",
    "group_norm_silu_forward",
    "group_norm_silu_backward",
    "group_norm_silu_forward_ref",
    "group_norm_silu_backward_ref",
]


def _as_ncl(a):
    return np.ascontiguousarray(a).reshape(a.shape[0], a.shape[1], -1)


# --------------------------------------------------------------------------- reference twins


def group_norm_forward_ref(x, num_groups, weight, bias, eps):
    """Reference GroupNorm forward -> (y, mean, rstd), mean and rstd shaped (N, num_groups)."""
    N, C = x.shape[:2]
    xg = x.reshape(N, num_groups, -1).astype(np.float64)
    mean = xg.mean(axis=2)
    var = xg.var(axis=2)
    rstd = 1.0 / np.sqrt(var + eps)
    x_hat = ((xg - mean[:, :, None]) * rstd[:, :, None]).reshape(x.shape)
    shape = (1, C) + (1,) * (x.ndim - 2)
    y = x_hat
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y.astype(x.dtype), mean.astype(x.dtype), rstd.astype(x.dtype)


def group_norm_backward_ref(gy, x, mean, rstd, num_groups, weight):
    """Reference GroupNorm backward -> (dx, dweight, dbias), closed form (module docstring)."""
    N, C = x.shape[:2]
    G = num_groups
    shape = (1, C) + (1,) * (x.ndim - 2)
    gy64 = gy.astype(np.float64)
    mean = mean.astype(np.float64)
    rstd = rstd.astype(np.float64)
    x_hat = (x.reshape(N, G, -1) - mean[:, :, None]) * rstd[:, :, None]
    gw = gy64 * (weight.reshape(shape) if weight is not None else 1.0)
    gw = gw.reshape(N, G, -1)
    dx = rstd[:, :, None] * (
        gw - gw.mean(axis=2, keepdims=True) - x_hat * (gw * x_hat).mean(axis=2, keepdims=True)
    )
    reduce_axes = (0,) + tuple(range(2, x.ndim))
    dweight = (gy64 * x_hat.reshape(x.shape)).sum(axis=reduce_axes)
    dbias = gy64.sum(axis=reduce_axes)
    return dx.reshape(x.shape).astype(x.dtype), dweight.astype(x.dtype), dbias.astype(x.dtype)


def _silu(a):
    return a / (1.0 + np.exp(-a))


def group_norm_silu_forward_ref(x, num_groups, weight, bias, eps):
    """Reference silu(group_norm(x)) -> (y, mean, rstd); silu(a) = a * sigmoid(a)."""
    h, mean, rstd = group_norm_forward_ref(x, num_groups, weight, bias, eps)
    h = h.astype(np.float64)
    return _silu(h).astype(x.dtype), mean, rstd


def group_norm_silu_backward_ref(gy, x, mean, rstd, num_groups, weight, bias):
    """Reference backward of silu(group_norm(x)): recompute h, multiply by silu'(h), then GroupNorm's."""
    N, C = x.shape[:2]
    shape = (1, C) + (1,) * (x.ndim - 2)
    x_hat = (x.reshape(N, num_groups, -1) - mean.astype(np.float64)[:, :, None]) * rstd.astype(
        np.float64
    )[:, :, None]
    h = x_hat.reshape(x.shape)
    if weight is not None:
        h = h * weight.reshape(shape)
    if bias is not None:
        h = h + bias.reshape(shape)
    s = 1.0 / (1.0 + np.exp(-h))
    gh = gy * (s * (1.0 + h * (1.0 - s)))  # d silu / dh = s + h s (1 - s)
    return group_norm_backward_ref(gh, x, mean, rstd, num_groups, weight)


# --------------------------------------------------------------------------- fast kernels


_FASTMATH = {"reassoc", "contract"}  # lets LLVM vectorize the float64 sums (no nnan/ninf)

# exp for float32 (see _silu_parts): Cody-Waite range reduction, degree-5 minimax polynomial
_LOG2E = np.float32(1.4426950408889634)
_ROUND = np.float32(12582912.0)  # 1.5 * 2^23: (a + _ROUND) - _ROUND rounds a to an integer
_LN2_HI = np.float32(0.693359375)  # 8 significant bits: k * _LN2_HI is exact
_LN2_LO = np.float32(-2.12194440e-4)  # ln 2 - _LN2_HI
_TWO23 = np.float32(8388608.0)  # 2^23: the float32 exponent field starts at bit 23
_BIAS_BITS = np.float32(127 * 8388608.0)  # bits of 1.0, (127 << 23); exact in float32
_EXP_HI = np.float32(88.0)  # exp(88) < 2^127 * 1.42: finite
_EXP_LO = np.float32(-87.0)  # 2^-126, the smallest normal
# minimax exp(r) ~ sum _Qj r^j on |r| <= ln2/2 (Remez, relative error 7.7e-8)
_Q0 = np.float32(1.0000001192092896)
_Q1 = np.float32(0.9999997019767761)
_Q2 = np.float32(0.4999888241291046)
_Q3 = np.float32(0.1666756421327591)
_Q4 = np.float32(0.041916318237781525)
_Q5 = np.float32(0.008298572152853012)
_EXP_BLOCK = 512  # values per SiLU block: the block's scratch stays in L1


@njit(cache=True, fastmath={"contract"}, error_model="numpy")
def _silu_parts(x, scale, shift, w, b, fast, h, p, two_k):
    """h = (x * scale + shift) * w + b and exp(-h) = p * two_k.view(float32), elementwise.

    p and h in x's dtype, two_k int32 bits.  ``fast`` (float32 input):
    exp(t), t = -h, by Cody-Waite reduction, exp(t) = 2^k exp(r) with
    k = round(t log2 e) (the 1.5 * 2^23 trick) and r = t - k ln2 (ln2 split in
    two, so k * _LN2_HI is exact), exp(r) by a degree-5 minimax polynomial on
    |r| <= ln2/2 (relative error 2e-7), and 2^k built from integer bits,
    (k + 127) << 23 = k * 2^23 + 127 * 2^23 (exact in float32, so one FMA and one
    conversion to int32), so every step is a vector instruction (numba has no
    scalar bitcast, hence the int32 output the caller reads back as float32).
    np.exp calls the scalar libm expf per value, which LLVM cannot vectorize
    (~10x slower).  t is clamped to [-87, 88]: 2^k stays a normal float32.
    Otherwise (float64) np.exp, exact, and two_k = the bits of 1.0.
    What vectorization needs here: float32 constants only (a Python float
    promotes the chain to float64, where the 1.5 * 2^23 trick no longer
    rounds), no ``reassoc`` fastmath (it may fold (a + _ROUND) - _ROUND into a),
    and ``error_model="numpy"`` on the callers' divisions (numba's default
    Python error model tests every divisor for zero, which keeps the loop scalar).
    """
    if fast:
        for i in range(x.size):
            hi = (x[i] * scale + shift) * w[i] + b[i]
            h[i] = hi
            t = min(max(np.float32(-hi), _EXP_LO), _EXP_HI)
            k = (t * _LOG2E + _ROUND) - _ROUND
            r = (t - k * _LN2_HI) - k * _LN2_LO
            q = _Q5 * r + _Q4
            q = q * r + _Q3
            q = q * r + _Q2
            q = q * r + _Q1
            p[i] = q * r + _Q0
            two_k[i] = np.int32(k * _TWO23 + _BIAS_BITS)  # (k + 127) << 23, one exact FMA
    else:
        for i in range(x.size):
            hi = (x[i] * scale + shift) * w[i] + b[i]
            h[i] = hi
            p[i] = np.exp(-hi)
            two_k[i] = np.int32(127 << 23)


@njit(cache=True)
def _expand(v, L, x, needed):
    """v (C,) repeated L times each, in x's dtype: (C * L,), or (0,) when not ``needed``.

    Built inside the kernels (C * L values, serial): cheaper than np.repeat and
    astype calls in the wrapper on small images, and skipped for long channels.
    """
    C = v.size
    out = np.empty(C * L if needed else 0, x.dtype)
    if needed:
        for c in range(C):
            for l in range(L):
                out[c * L + l] = v[c]
    return out


@njit(parallel=True, cache=True, fastmath=_FASTMATH, error_model="numpy")
def _gn_forward(x, G, weight, bias, eps, silu, fast, nchunks, y, mean, rstd):
    """GroupNorm (then SiLU if ``silu``) forward over x (N, C, L); y, mean, rstd written in place.

    Optimizations: one prange chunk per thread (``nchunks``), each a contiguous
    run of (sample, group) tasks with its scratch allocated once (an allocation
    per task cost more than the arithmetic on small images); each task a
    contiguous slab of C/G*L values that stays in L1/L2 across its passes; the
    statistics loop over the flat slab (long loops vectorize even when L is 16);
    one-pass statistics, the sum and sum of squares of x - x[first] accumulated
    in float64 (the shift keeps the variance formula free of cancellation for
    any realistic data), with reassociation allowed (``fastmath``
    reassoc/contract only) so the sums vectorize; normalization and affine folded into one
    multiply-adds per value over the flat slab, with weight and bias expanded
    to one value per element (wexp, bexp: (C*L,), built here only when used), done in x's dtype so the loop
    vectorizes; SiLU (``fast``: float32, polynomial exp) in blocks of _EXP_BLOCK values that stay in L1: h written
    to y, exp(-h) by the vectorized polynomial in ``_silu_parts`` (float32), then
    y = h / (1 + exp(-h)) in place.
    """
    N, C, L = x.shape
    cpg = C // G
    m = cpg * L
    T = N * G
    xg = x.reshape(N, G, m)  # a group's values are one contiguous slab
    yg = y.reshape(N, G, m)
    flat = silu or L < 128  # short channels (and SiLU) loop over the flat slab
    wexp = _expand(weight, L, x, flat)
    bexp = _expand(bias, L, x, flat)
    for chunk in prange(nchunks):
        # per-chunk scratch: scalars in x's dtype (scale, shift, 1) and the SiLU block
        sc = np.empty(3, x.dtype)
        pbuf = np.empty(min(m, _EXP_BLOCK), x.dtype)
        kbuf = np.empty(min(m, _EXP_BLOCK), np.int32)
        kfbuf = kbuf.view(np.float32)
        for task in range(chunk * T // nchunks, (chunk + 1) * T // nchunks):
            n = task // G
            g = task - n * G
            c0 = g * cpg
            xs = xg[n, g]
            # one pass: sums of d = x - x0, shifted by the slab's first value, in float64
            # (var = E[d^2] - E[d]^2 then only cancels if |mean - x0| >> std * 1e7)
            x0 = np.float64(xs[0])
            s = 0.0
            ss = 0.0
            for i in range(m):
                d = xs[i] - x0
                s += d
                ss += d * d
            md = s / m
            mu = x0 + md
            var = max(ss / m - md * md, 0.0)
            r = 1.0 / np.sqrt(var + eps)
            mean[n, g] = mu
            rstd[n, g] = r
            # y = (x - mu) * r * weight[c] + bias[c], over the flat slab with the per-value
            # weight / bias expanded once per call (so the loop is long and vectorizes)
            sc[0] = r
            sc[1] = -mu * r
            sc[2] = 1.0
            rr = sc[0]
            mr = sc[1]
            one = sc[2]
            ys = yg[n, g]
            # slices, not wexp[off + i]: an index numba cannot prove non-negative gets a
            # wrap-around test that stops vectorization
            if silu:
                we = wexp[c0 * L : c0 * L + m]
                be = bexp[c0 * L : c0 * L + m]
                for j0 in range(0, m, _EXP_BLOCK):
                    j1 = min(j0 + _EXP_BLOCK, m)
                    nb = j1 - j0
                    yb = ys[j0:j1]
                    xb = xs[j0:j1]
                    wb = we[j0:j1]
                    bb = be[j0:j1]
                    pb = pbuf[:nb]
                    kb = kfbuf[:nb]
                    _silu_parts(xb, rr, mr, wb, bb, fast, yb, pb, kbuf[:nb])
                    for i in range(nb):
                        yb[i] = yb[i] / (one + pb[i] * kb[i])
            elif L >= 128:
                # long channels: per-channel scale and shift, two streams instead of four
                for c in range(c0, c0 + cpg):
                    sc[0] = r * weight[c]
                    sc[1] = bias[c] - mu * (r * weight[c])
                    scale = sc[0]
                    shift = sc[1]
                    for l in range(L):
                        y[n, c, l] = x[n, c, l] * scale + shift
            else:
                we = wexp[c0 * L : c0 * L + m]
                be = bexp[c0 * L : c0 * L + m]
                for i in range(m):
                    ys[i] = (xs[i] * rr + mr) * we[i] + be[i]


@njit(parallel=True, cache=True, fastmath=_FASTMATH, error_model="numpy")
def _gn_backward(gy, x, mean, rstd, G, weight, bias, silu, fast, nchunks, dx, dweight, dbias):
    """Fused GroupNorm (or GroupNorm + SiLU) backward over (N, C, L); dx, dweight, dbias written.

    dweight, dbias (C,) receive the sums over n and l of gh * x_hat and gh, with
    gh = gy (or gy * silu'(h) when ``silu``): float64 rows (dwp, dbp) added up
    after the parallel loop; for long channels (L >= 128) per-sample rows (N, C)
    (a task writes only its own sample's row, so the threads share no cache
    line but at a chunk boundary, unlike per-chunk rows that every task
    updates), for short channels per-chunk rows (nchunks, C), each written once
    at the end of its chunk.
    Optimizations: one prange chunk per thread, a contiguous run of (sample,
    group) tasks with its scratch allocated once; with SiLU, pass 0 writes gh
    into dx over the flat slab in L1-sized blocks (h recomputed from x with the
    expanded weight and bias, exp(-h) by the vectorized ``_silu_parts``), so the
    sigmoid is evaluated once per value and vectorizes; pass 1, long channels:
    the per-channel sums sum(gh) and sum(gh * x) in float64 (from which
    sum(gh * x_hat) = rstd * (sum(gh * x) - mean * sum(gh))) and the group sums;
    pass 1, short channels (L < 128, where per-channel loops of 16-64 values
    spent their time in loop set-up and horizontal reductions: ~45% of the
    backward on 7x7 images): one flat loop over the slab that adds gh and
    gh * x_hat (x_hat = x * r - mean * r, in x's dtype) into per-chunk,
    per-position accumulators (acc_b, acc_w: (C * L,) in x's dtype, one slab
    per group, summed over the chunk's samples and reduced per channel in
    float64 once per chunk) and accumulates the group sums of gh * w and
    gh * w * x_hat in float64 (two horizontal reductions per task instead of
    two per channel; backward -20% on (64, 64, 7, 7) and (128, 64, 4, 4));
    pass 2 writes dx = gh * w[c] * r + x * b + d over the flat slab (weight
    expanded per value), one vectorizable multiply-add chain per value.
    """
    N, C, L = x.shape
    cpg = C // G
    m = cpg * L
    T = N * G
    xg = x.reshape(N, G, m)
    gg = gy.reshape(N, G, m)
    dg = dx.reshape(N, G, m)
    flat = silu or L < 128
    wexp = _expand(weight, L, x, flat)
    bexp = _expand(bias, L, x, silu)
    short = L < 128  # pass 1 accumulates per position across the chunk's samples
    rows = nchunks if short else N
    dwp = np.empty((rows, C))
    dbp = np.empty((rows, C))
    for chunk in prange(nchunks):
        sc = np.empty(5, x.dtype)  # per-chunk scalars in x's dtype
        # short channels: per-position sums of gh and gh * x_hat over the chunk's samples,
        # in x's dtype, one slab per group (C * L values each; empty for long channels)
        acc_b = np.zeros(C * L if short else 0, x.dtype)
        acc_w = np.zeros(C * L if short else 0, x.dtype)
        pbuf = np.empty(min(m, _EXP_BLOCK), x.dtype)
        kbuf = np.empty(min(m, _EXP_BLOCK), np.int32)
        kfbuf = kbuf.view(np.float32)
        for task in range(chunk * T // nchunks, (chunk + 1) * T // nchunks):
            n = task // G
            g = task - n * G
            c0 = g * cpg
            mu = np.float64(mean[n, g])
            r = np.float64(rstd[n, g])
            xs = xg[n, g]
            ds = dg[n, g]
            gs = gg[n, g]
            we = wexp[c0 * L : c0 * L + m]  # empty when not flat
            if silu:
                # pass 0: gh = gy * silu'(h) = gy * s * (1 + h * (1 - s)), s = sigmoid(h), into dx
                sc[0] = r
                sc[1] = -mu * r
                sc[2] = 1.0
                rr = sc[0]
                mr = sc[1]
                one = sc[2]
                be = bexp[c0 * L : c0 * L + m]
                for j0 in range(0, m, _EXP_BLOCK):
                    j1 = min(j0 + _EXP_BLOCK, m)
                    nb = j1 - j0
                    db = ds[j0:j1]
                    xb = xs[j0:j1]
                    gb = gs[j0:j1]
                    wb = we[j0:j1]
                    bb = be[j0:j1]
                    pb = pbuf[:nb]
                    kb = kfbuf[:nb]
                    _silu_parts(xb, rr, mr, wb, bb, fast, db, pb, kbuf[:nb])
                    for i in range(nb):
                        h = db[i]
                        sg = one / (one + pb[i] * kb[i])
                        db[i] = gb[i] * (sg * (one + h * (one - sg)))
                gs = ds  # the rest is GroupNorm's backward with gy := gh
            s1 = 0.0
            s2 = 0.0
            if short:
                # one flat pass, no per-channel reductions: x_hat = x * r + (-mu * r) in
                # x's dtype, gh and gh * x_hat added to the chunk's per-position sums
                # (reduced per channel once per chunk), the group sums of gh * w and
                # gh * w * x_hat accumulated in float64
                sc[0] = r
                sc[1] = -mu * r
                rr = sc[0]
                mr = sc[1]
                ab = acc_b[c0 * L : c0 * L + m]
                aw = acc_w[c0 * L : c0 * L + m]
                for i in range(m):
                    gi = gs[i]
                    xh = xs[i] * rr + mr
                    ab[i] += gi
                    aw[i] += gi * xh
                    gw = np.float64(gi * we[i])
                    s1 += gw
                    s2 += gw * xh
            else:
                for c in range(cpg):
                    a = 0.0
                    b = 0.0
                    gc = gs[c * L : (c + 1) * L]
                    xc = xs[c * L : (c + 1) * L]
                    for l in range(L):
                        a += gc[l]
                        b += gc[l] * xc[l]
                    ghxh = r * (b - mu * a)
                    dbp[n, c0 + c] = a
                    dwp[n, c0 + c] = ghxh
                    s1 += weight[c0 + c] * a
                    s2 += weight[c0 + c] * ghxh
            # dx = rstd * (gh*w - s1/m - x_hat * s2/m) = (gh * w) * r + x * kx + k0, flat
            sc[0] = r
            sc[3] = -r * r * s2 / m
            sc[4] = mu * r * r * s2 / m - r * s1 / m
            rr = sc[0]
            bx = sc[3]
            b0 = sc[4]
            # with SiLU gh is dx itself: written as ds[i] = ds[i] ..., since LLVM's
            # run-time overlap test fails for two names of one array and it then
            # falls back to the scalar loop (2x slower)
            if silu:
                for i in range(m):
                    ds[i] = ds[i] * we[i] * rr + xs[i] * bx + b0
            elif L >= 128:
                for c in range(cpg):
                    sc[0] = r * weight[c0 + c]
                    aw = sc[0]
                    gc = gs[c * L : (c + 1) * L]
                    xc = xs[c * L : (c + 1) * L]
                    dc = ds[c * L : (c + 1) * L]
                    for l in range(L):
                        dc[l] = gc[l] * aw + xc[l] * bx + b0
            else:
                for i in range(m):
                    ds[i] = gs[i] * we[i] * rr + xs[i] * bx + b0
        if short:
            # the chunk's per-position sums reduced per channel, in float64, into its own row
            for c in range(C):
                a = 0.0
                b = 0.0
                for l in range(L):
                    a += acc_b[c * L + l]
                    b += acc_w[c * L + l]
                dbp[chunk, c] = a
                dwp[chunk, c] = b
    sw = dwp[0].copy()
    sb = dbp[0].copy()
    for n in range(1, rows):
        for c in range(C):
            sw[c] += dwp[n, c]
            sb[c] += dbp[n, c]
    for c in range(C):
        dweight[c] = sw[c]
        dbias[c] = sb[c]


def _affine(weight, bias, C, dtype):
    w = np.ones(C, np.float64) if weight is None else np.asarray(weight, np.float64)
    b = np.zeros(C, np.float64) if bias is None else np.asarray(bias, np.float64)
    return w, b


def _forward(x, num_groups, weight, bias, eps, silu):
    x3 = _as_ncl(x)
    N, C, _ = x3.shape
    w, b = _affine(weight, bias, C, x.dtype)
    y = np.empty_like(x3)
    mean = np.empty((N, num_groups), x.dtype)
    rstd = np.empty((N, num_groups), x.dtype)
    nchunks = max(1, min(N * num_groups, get_num_threads()))
    _gn_forward(x3, num_groups, w, b, float(eps), silu, x.dtype == np.float32, nchunks, y, mean, rstd)
    return y.reshape(x.shape), mean, rstd


def _backward(gy, x, mean, rstd, num_groups, weight, bias, silu):
    x3 = _as_ncl(x)
    gy3 = _as_ncl(np.asarray(gy, x.dtype))
    N, C, _ = x3.shape
    w, b = _affine(weight, bias, C, x.dtype)
    dx = np.empty_like(x3)
    dweight = np.empty(C, x.dtype)
    dbias = np.empty(C, x.dtype)
    nchunks = max(1, min(N * num_groups, get_num_threads()))
    mean = np.ascontiguousarray(mean)
    rstd = np.ascontiguousarray(rstd)
    fast = x.dtype == np.float32
    _gn_backward(gy3, x3, mean, rstd, num_groups, w, b, silu, fast, nchunks, dx, dweight, dbias)
    return dx.reshape(x.shape), dweight, dbias


def group_norm_forward(x, num_groups, weight, bias, eps):
    """Fast GroupNorm forward -> (y, mean, rstd); x (N, C, *), weight/bias (C,) or None.

    mean and rstd are (N, num_groups) in x's dtype (saved for the backward).
    """
    return _forward(x, num_groups, weight, bias, eps, False)


def group_norm_backward(gy, x, mean, rstd, num_groups, weight):
    """Fast fused GroupNorm backward -> (dx, dweight, dbias).

    dweight and dbias are always computed (they do not depend on whether the
    parameters exist; weight None means weight = 1); drop those not needed.
    """
    return _backward(gy, x, mean, rstd, num_groups, weight, None, False)


def group_norm_silu_forward(x, num_groups, weight, bias, eps):
    """Fast silu(group_norm(x)) in one pass -> (y, mean, rstd)."""
    return _forward(x, num_groups, weight, bias, eps, True)


def group_norm_silu_backward(gy, x, mean, rstd, num_groups, weight, bias):
    """Fast fused backward of silu(group_norm(x)) -> (dx, dweight, dbias).

    Needs ``bias`` too: the SiLU derivative is evaluated at h = x_hat * weight + bias,
    recomputed from x, mean and rstd rather than stored.
    """
    return _backward(gy, x, mean, rstd, num_groups, weight, bias, True)
