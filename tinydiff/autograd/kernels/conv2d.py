"""conv2d forward and backward on NumPy arrays: the fast kernels and their reference twins.

Cross-correlation, as in PyTorch (Goodfellow et al. 2016, Eq. 9.6):

    y[n, o, i, j] = b[o] + sum_{c, p, q} x_pad[n, c, i*sh + p, j*sw + q] * w[o, c, p, q]

with ``x_pad`` the input zero-padded by ``padding`` on each side, so that
``Ho = (H + 2*ph - kh) // sh + 1`` and likewise ``Wo``.  Its gradients:

    db[o]          = sum_{n, i, j} gy[n, o, i, j]
    dw[o, c, p, q] = sum_{n, i, j} gy[n, o, i, j] * x_pad[n, c, i*sh + p, j*sw + q]
    dx_pad[n, c, i*sh + p, j*sw + q] += sum_o gy[n, o, i, j] * w[o, c, p, q]

The fast path picks its algorithm by shape (chosen by measurement, see
``benchmarks/bench_kernels.py``):

* 3x3, stride 1, equal padding <= 2: Winograd F(2x2, 3x3) (``winograd.py``); the
  input gradient is the stride-1 conv of gy with the flipped, transposed weights.
* 1x1, stride 1, no padding: one GEMM per sample on the NCHW arrays as they are
  (``conv1x1.py``), no im2col copy; bias gradient fused into the backward.
* strided convs with a kernel larger than 1x1 and >= 8 input channels (the U-Net's
  downsampling 3x3, stride 2): channels-last im2col + GEMM (``im2col.py``), whose
  patch copies are contiguous C-long runs instead of strided gathers of Wo floats
  (3x3 stride 2 (64,64,14,14), forward + backward: 15.3 -> 10.1 ms at 1 thread).
* everything else: NCHW im2col + GEMM per block of samples (``im2col.py``);
  measured faster than channels-last for stride 1, 1x1 kernels and few channels.

Buffers: every returned array is freshly allocated and owned by the caller;
the kernels keep no state between calls.  Arrays: x, w, b share one dtype
(float32 or float64) and the results have that dtype.  The caller (the autograd
op) validates shapes and dtypes.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange
from numpy.lib.stride_tricks import sliding_window_view

from .conv1x1 import conv1x1_backward, conv1x1_forward, conv1x1_split
from .im2col import (
    im2col_conv_backward,
    im2col_conv_forward,
    im2col_nhwc_conv_backward,
    im2col_nhwc_conv_forward,
)
from .threads import ensure_blas_policy, get_num_threads
from .winograd import (
    weight_grad_inverse_transform,
    weight_transform,
    winograd_conv3x3,
    winograd_conv3x3_dw,
)

__all__ = [
    "conv2d_forward",
    "conv2d_backward",
    "conv2d_forward_ref",
    "conv2d_backward_ref",
    "conv2d_output_shape",
]


def conv2d_output_shape(x_shape, w_shape, stride, padding):
    """(N, O, Ho, Wo) of conv2d for input shape (N, C, H, W) and weight shape (O, C, kh, kw)."""
    N, _, H, W = x_shape
    O, _, kh, kw = w_shape
    return (N, O, (H + 2 * padding[0] - kh) // stride[0] + 1, (W + 2 * padding[1] - kw) // stride[1] + 1)


# --------------------------------------------------------------------------- reference twins


def conv2d_forward_ref(x, w, b, stride, padding, optimize=False):
    """Reference conv2d forward: pad, take every (kh, kw) window, contract with the weight.

    ``np.einsum`` spells out the sum of the module docstring; ``optimize=True`` lets it
    route the contraction through BLAS (same result, much faster, less plain)."""
    (sh, sw), (ph, pw) = stride, padding
    kh, kw = w.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    win = sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]  # (N, C, Ho, Wo, kh, kw)
    y = np.einsum("nchwpq,ocpq->nohw", win, w, optimize=optimize)
    if b is not None:
        y = y + b[None, :, None, None]
    return y.astype(x.dtype, copy=False)


def conv2d_backward_ref(x, w, gy, stride, padding, need_dx=True, need_dw=True, need_db=True, optimize=False):
    """Reference conv2d backward: dw by the same windows, dx by a scatter-add per kernel offset
    (``optimize`` as in :func:`conv2d_forward_ref`)."""
    (sh, sw), (ph, pw) = stride, padding
    N, C, H, W = x.shape
    kh, kw = w.shape[2:]
    Ho, Wo = gy.shape[2:]
    dx = dw = db = None
    if need_db:
        db = gy.sum(axis=(0, 2, 3)).astype(x.dtype, copy=False)
    if need_dw:
        xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        win = sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
        dw = np.einsum("nohw,nchwpq->ocpq", gy, win, optimize=optimize).astype(x.dtype, copy=False)
    if need_dx:
        dxp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), x.dtype)
        for p in range(kh):
            for q in range(kw):
                # every output (i, j) read x_pad[i*sh + p, j*sw + q] with weight w[:, :, p, q]
                dxp[:, :, p : p + sh * Ho : sh, q : q + sw * Wo : sw] += np.einsum(
                    "nohw,oc->nchw", gy, w[:, :, p, q], optimize=optimize
                )
        dx = dxp[:, :, ph : ph + H, pw : pw + W].copy()
    return dx, dw, db


# --------------------------------------------------------------------------- fast kernels


def _use_winograd(w_shape, stride, padding):
    return (
        w_shape[2] == 3
        and w_shape[3] == 3
        and stride[0] == 1
        and stride[1] == 1
        and padding[0] == padding[1]
        and padding[0] <= 2
    )


def _use_1x1(w_shape, stride, padding):
    return w_shape[2] == 1 and w_shape[3] == 1 and stride == (1, 1) and padding == (0, 0)


def _use_channels_last(w_shape, stride):
    return stride != (1, 1) and w_shape[2] * w_shape[3] > 1 and w_shape[1] >= 8


def _nhwc_weight(w):
    """w2[o, (i*kw + j)*C + c] = w[o, c, i, j]: the weight in the channels-last patch order."""
    O, C, kh, kw = w.shape
    return np.ascontiguousarray(w.transpose(0, 2, 3, 1)).reshape(O, kh * kw * C)


def _winograd_rows_per_block(c_in, c_out, tw):
    """Tile rows per GEMM block: ~128 tiles (measured best: an efficient GEMM whose
    V and M blocks stay in L2), at least one row."""
    target = 128 if max(c_in, c_out) <= 64 else 96
    return max(1, target // tw)


def _im2col_samples_per_block(n, nw, p):
    """Samples per im2col block: at least ~256 GEMM columns, but work for every thread."""
    nb = max(1, -(-256 // p))
    return max(1, min(nb, -(-n // nw)))


@njit(parallel=True, cache=True, fastmath={"reassoc"})
def _bias_grad(gy):
    """db[o] = sum over n, i, j of gy[n, o, i, j]; float64 accumulation, prange over channels,
    reassociation allowed so the sum vectorizes."""
    N, O = gy.shape[0], gy.shape[1]
    L = gy.shape[2] * gy.shape[3]
    g = gy.reshape(N, O, L)
    db = np.empty(O, gy.dtype)
    for o in prange(O):
        s = 0.0
        for n in range(N):
            for l in range(L):
                s += g[n, o, l]
        db[o] = s
    return db


def conv2d_forward(x, w, b, stride, padding):
    """Fast conv2d forward.  x (N, C, H, W), w (O, C, kh, kw), b (O,) or None -> y (N, O, Ho, Wo)."""
    ensure_blas_policy()
    stride = (int(stride[0]), int(stride[1]))
    padding = (int(padding[0]), int(padding[1]))
    x = np.ascontiguousarray(x)
    w = np.ascontiguousarray(w, dtype=x.dtype)
    O, C, kh, kw = w.shape
    has_bias = b is not None
    b = np.ascontiguousarray(b, dtype=x.dtype) if has_bias else np.zeros(O, x.dtype)
    y = np.empty(conv2d_output_shape(x.shape, w.shape, stride, padding), x.dtype)
    nw = get_num_threads()
    if _use_1x1(w.shape, stride, padding):
        conv1x1_forward(x, w.reshape(O, C), b, has_bias, y, nw, conv1x1_split(x.shape[0], nw))
    elif _use_winograd(w.shape, stride, padding):
        U = weight_transform(w)
        winograd_conv3x3(x, U, b, has_bias, padding[0], y, nw, _winograd_rows_per_block(C, O, (y.shape[3] + 1) // 2))
    elif _use_channels_last(w.shape, stride):
        nb = _im2col_samples_per_block(x.shape[0], nw, y.shape[2] * y.shape[3])
        im2col_nhwc_conv_forward(x, _nhwc_weight(w), b, kh, kw, stride[0], stride[1], padding[0], padding[1], y, nw, nb)
    else:
        w2 = w.reshape(O, C * kh * kw)
        nb = _im2col_samples_per_block(x.shape[0], nw, y.shape[2] * y.shape[3])
        im2col_conv_forward(x, w2, b, kh, kw, stride[0], stride[1], padding[0], padding[1], y, nw, nb)
    return y


def conv2d_backward(x, w, gy, stride, padding, need_dx=True, need_dw=True, need_db=True):
    """Fast conv2d backward: (dx, dw, db), None for each gradient not asked for."""
    ensure_blas_policy()
    stride = (int(stride[0]), int(stride[1]))
    padding = (int(padding[0]), int(padding[1]))
    x = np.ascontiguousarray(x)
    w = np.ascontiguousarray(w, dtype=x.dtype)
    gy = np.ascontiguousarray(gy, dtype=x.dtype)
    N, C = x.shape[:2]
    O, _, kh, kw = w.shape
    nw = get_num_threads()
    dx = dw = db = None
    if _use_1x1(w.shape, stride, padding) and (need_dx or need_dw):
        dxa = np.empty_like(x) if need_dx else np.empty((1, 1, 1, 1), x.dtype)
        dwp = np.zeros((nw, O, C)) if need_dw else np.zeros((1, 1, 1))
        dbp = np.zeros((nw, O)) if need_db else np.zeros((1, 1))
        wT = np.ascontiguousarray(w.reshape(O, C).T)
        conv1x1_backward(x, wT, gy, dxa, dwp, dbp, need_dx, need_dw, need_db, nw, conv1x1_split(N, nw))
        if need_dx:
            dx = dxa
        if need_dw:
            dw = dwp.sum(axis=0).reshape(O, C, 1, 1).astype(x.dtype)
        if need_db:
            db = dbp.sum(axis=0).astype(x.dtype)
        return dx, dw, db
    if need_db and not need_dw:
        db = _bias_grad(gy)  # no weight-gradient pass to fuse it into
    if not (need_dx or need_dw):
        return dx, dw, db
    # otherwise the bias gradient is fused into the weight-gradient pass (float64 thread partials)
    fuse_db = need_db and need_dw
    dbp = np.zeros((nw, O) if fuse_db else (1, 1))
    if _use_winograd(w.shape, stride, padding):
        rpb = _winograd_rows_per_block(C, O, (gy.shape[3] + 1) // 2)
        if need_dx:
            # dx = conv(gy, w flipped in space, in/out channels swapped), padding 2 - p
            wf = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
            dx = np.empty_like(x)
            winograd_conv3x3(gy, weight_transform(wf), np.zeros(C, x.dtype), False, 2 - padding[0], dx, nw, rpb)
        if need_dw:
            dUp = np.zeros((nw, 16, O, C))
            winograd_conv3x3_dw(x, gy, padding[0], dUp, fuse_db, dbp, nw, rpb)
            dw = weight_grad_inverse_transform(dUp.sum(axis=0), x)
    elif _use_channels_last(w.shape, stride):
        nb = _im2col_samples_per_block(N, nw, gy.shape[2] * gy.shape[3])
        dxa = np.empty_like(x) if need_dx else np.empty((1, 1, 1, 1), x.dtype)
        dwp = np.zeros((nw, O, kh * kw * C)) if need_dw else np.zeros((1, 1, 1))
        im2col_nhwc_conv_backward(
            x, _nhwc_weight(w), gy, kh, kw, stride[0], stride[1], padding[0], padding[1],
            dxa, dwp, dbp, need_dx, need_dw, fuse_db, nw, nb,
        )
        if need_dx:
            dx = dxa
        if need_dw:
            dw = np.ascontiguousarray(dwp.sum(axis=0).reshape(O, kh, kw, C).transpose(0, 3, 1, 2)).astype(x.dtype)
    else:
        w2T = np.ascontiguousarray(w.reshape(O, C * kh * kw).T)
        nb = _im2col_samples_per_block(N, nw, gy.shape[2] * gy.shape[3])
        dxa = np.zeros_like(x) if need_dx else np.zeros((1, 1, 1, 1), x.dtype)
        dwp = np.zeros((nw, O, C * kh * kw)) if need_dw else np.zeros((1, 1, 1))
        im2col_conv_backward(
            x, w2T, gy, kh, kw, stride[0], stride[1], padding[0], padding[1],
            dxa, dwp, dbp, need_dx, need_dw, fuse_db, nw, nb,
        )
        if need_dx:
            dx = dxa
        if need_dw:
            dw = dwp.sum(axis=0).reshape(O, C, kh, kw).astype(x.dtype)
    if fuse_db:
        db = dbp.sum(axis=0).astype(x.dtype)
    return dx, dw, db
