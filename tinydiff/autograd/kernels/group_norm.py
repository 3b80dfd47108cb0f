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


@njit(parallel=True, cache=True, fastmath=_FASTMATH)
def _gn_forward(x, G, wexp, bexp, eps, silu, y, mean, rstd):
    """GroupNorm (then SiLU if ``silu``) forward over x (N, C, L); y, mean, rstd written in place.

    Optimizations: one prange task per (sample, group), N*G tasks, each a
    contiguous slab of C/G*L values that stays in L1/L2 across its passes; the
    statistics loop over the flat slab (long loops vectorize even when L is 16);
    one-pass statistics, the sum and sum of squares of x - x[first] accumulated
    in float64 (the shift keeps the variance formula free of cancellation for
    any realistic data), with reassociation allowed (``fastmath``
    reassoc/contract only) so the sums vectorize; normalization and affine folded into one
    multiply-adds per value over the flat slab, with weight and bias expanded
    to one value per element (wexp, bexp: (C*L,)), done in x's dtype so the loop
    vectorizes; SiLU applied in the same pass (no intermediate array).
    """
    N, C, L = x.shape
    cpg = C // G
    m = cpg * L
    xg = x.reshape(N, G, m)  # a group's values are one contiguous slab
    yg = y.reshape(N, G, m)
    # per-task scalars in x's dtype (scale, shift, 1), allocated once: an allocation
    # inside the loop cost more than the arithmetic on small images
    scratch = np.empty((N * G, 3), x.dtype)
    for task in prange(N * G):
        n = task // G
        g = task - n * G
        c0 = g * cpg
        sc = scratch[task]
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
        we = wexp[c0 * L : c0 * L + m]
        be = bexp[c0 * L : c0 * L + m]
        if silu:
            for i in range(m):
                h = (xs[i] * rr + mr) * we[i] + be[i]
                ys[i] = h / (one + np.exp(-h))
        elif L >= 128:
            # long channels: per-channel scale and shift, two streams instead of four
            for c in range(c0, c0 + cpg):
                sc[0] = r * wexp[c * L]
                sc[1] = bexp[c * L] - mu * (r * wexp[c * L])
                scale = sc[0]
                shift = sc[1]
                for l in range(L):
                    y[n, c, l] = x[n, c, l] * scale + shift
        else:
            for i in range(m):
                ys[i] = (xs[i] * rr + mr) * we[i] + be[i]


@njit(parallel=True, cache=True, fastmath=_FASTMATH)
def _gn_backward(gy, x, mean, rstd, G, weight, bias, wexp, silu, dx, dwp, dbp):
    """Fused GroupNorm (or GroupNorm + SiLU) backward over (N, C, L); dx, dwp, dbp written.

    dwp, dbp (N, C) float64 receive per-sample sums of gh * x_hat and gh, with
    gh = gy (or gy * silu'(h) when ``silu``); the caller sums them over n.
    Optimizations: one prange task per (sample, group); pass 1 gathers the
    per-channel sums sum(gh) and sum(gh * x) in float64 (from which
    sum(gh * x_hat) = rstd * (sum(gh * x) - mean * sum(gh))) and the group sums;
    pass 2 writes dx = gh * w[c] * r + x * b + d over the flat slab (weight
    expanded per value), one vectorizable multiply-add chain per value.  With SiLU, pass 1 stores gh into dx (still in cache), so
    the sigmoid is evaluated once per value.
    """
    N, C, L = x.shape
    cpg = C // G
    m = cpg * L
    xg = x.reshape(N, G, m)
    gg = gy.reshape(N, G, m)
    dg = dx.reshape(N, G, m)
    scratch = np.empty((N * G, 5), x.dtype)  # per-task scalars in x's dtype
    for task in prange(N * G):
        n = task // G
        g = task - n * G
        c0 = g * cpg
        sc = scratch[task]
        mu = np.float64(mean[n, g])
        r = np.float64(rstd[n, g])
        s1 = 0.0
        s2 = 0.0
        for c in range(c0, c0 + cpg):
            a = 0.0
            b = 0.0
            if silu:
                sc[0] = r * weight[c]
                sc[1] = bias[c] - mu * (r * weight[c])
                sc[2] = 1.0
                scale = sc[0]
                shift = sc[1]
                one = sc[2]
                for l in range(L):
                    h = x[n, c, l] * scale + shift
                    sg = one / (one + np.exp(-h))
                    gh = gy[n, c, l] * (sg * (one + h * (one - sg)))
                    dx[n, c, l] = gh
                    a += gh
                    b += gh * x[n, c, l]
            else:
                for l in range(L):
                    a += gy[n, c, l]
                    b += gy[n, c, l] * x[n, c, l]
            ghxh = r * (b - mu * a)
            dbp[n, c] = a
            dwp[n, c] = ghxh
            s1 += weight[c] * a
            s2 += weight[c] * ghxh
        # dx = rstd * (gh*w - s1/m - x_hat * s2/m) = (gh * w) * r + x * kx + k0, flat
        sc[0] = r
        sc[3] = -r * r * s2 / m
        sc[4] = mu * r * r * s2 / m - r * s1 / m
        rr = sc[0]
        bx = sc[3]
        b0 = sc[4]
        xs = xg[n, g]
        gs = gg[n, g]
        ds = dg[n, g]
        we = wexp[c0 * L : c0 * L + m]
        if silu:
            for i in range(m):
                ds[i] = ds[i] * we[i] * rr + xs[i] * bx + b0
        elif L >= 128:
            for c in range(c0, c0 + cpg):
                sc[0] = r * weight[c]
                aw = sc[0]
                for l in range(L):
                    dx[n, c, l] = gy[n, c, l] * aw + x[n, c, l] * bx + b0
        else:
            for i in range(m):
                ds[i] = gs[i] * we[i] * rr + xs[i] * bx + b0


def _affine(weight, bias, C, dtype):
    w = np.ones(C, np.float64) if weight is None else np.asarray(weight, np.float64)
    b = np.zeros(C, np.float64) if bias is None else np.asarray(bias, np.float64)
    return w, b


def _forward(x, num_groups, weight, bias, eps, silu):
    x3 = _as_ncl(x)
    N, C, _ = x3.shape
    w, b = _affine(weight, bias, C, x.dtype)
    L = x3.shape[2]
    wexp = np.repeat(w.astype(x.dtype), L)
    bexp = np.repeat(b.astype(x.dtype), L)
    y = np.empty_like(x3)
    mean = np.empty((N, num_groups))
    rstd = np.empty((N, num_groups))
    _gn_forward(x3, num_groups, wexp, bexp, float(eps), silu, y, mean, rstd)
    return y.reshape(x.shape), mean.astype(x.dtype), rstd.astype(x.dtype)


def _backward(gy, x, mean, rstd, num_groups, weight, bias, silu):
    x3 = _as_ncl(x)
    gy3 = _as_ncl(np.asarray(gy, x.dtype))
    N, C, _ = x3.shape
    w, b = _affine(weight, bias, C, x.dtype)
    dx = np.empty_like(x3)
    dwp = np.empty((N, C))
    dbp = np.empty((N, C))
    wexp = np.repeat(w.astype(x.dtype), x3.shape[2])
    _gn_backward(
        gy3, x3, np.ascontiguousarray(mean), np.ascontiguousarray(rstd), num_groups, w, b, wexp, silu, dx, dwp, dbp
    )
    return dx.reshape(x.shape), dwp.sum(axis=0).astype(x.dtype), dbp.sum(axis=0).astype(x.dtype)


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
