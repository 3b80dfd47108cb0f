"""Matrix product with NumPy's rules: batched, broadcasting, and the 1-D cases."""

from __future__ import annotations

import numpy as np

from ..function import Function
from ..tensor import Tensor, _unbroadcast
from ._util import operands, shape_of


class MatMul(Function):
    """y = a @ b; da = g @ b^T, db = a^T @ g (1-D operands promoted as NumPy does)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.matmul(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_arrays
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
        g2 = grad.reshape(batch + (a2.shape[-2], b2.shape[-1]))
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = _unbroadcast(np.matmul(g2, np.swapaxes(b2, -1, -2)), a2.shape).reshape(a.shape)
        if ctx.needs_input_grad[1]:
            gb = _unbroadcast(np.matmul(np.swapaxes(a2, -1, -2), g2), b2.shape).reshape(b.shape)
        return ga, gb


def matmul(a, b) -> Tensor:
    a, b = operands(a, b)
    sa, sb = shape_of(a), shape_of(b)
    ka = sa[-1] if len(sa) else None
    kb = (sb[-2] if len(sb) > 1 else sb[0]) if len(sb) else None
    if not sa or not sb or ka != kb:
        raise ValueError(f"matmul: shapes {sa} and {sb} are not aligned")
    try:
        np.broadcast_shapes(sa[:-2], sb[:-2])
    except ValueError:
        raise ValueError(f"matmul: batch dimensions of shapes {sa} and {sb} do not broadcast") from None
    return MatMul.apply(a, b)


class Linear(Function):
    """y = x W^T + b over the last axis of x (PyTorch's layout: W is (out, in))."""

    @staticmethod
    def forward(ctx, x, w, b):
        ctx.save_for_backward(x, w)
        y = x @ w.T
        if b is not None:
            y += b  # y is a fresh array: adding in place saves a temporary
        return y

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_arrays
        need_x, need_w, need_b = ctx.needs_input_grad
        g2 = grad.reshape(-1, grad.shape[-1])
        gx = (grad @ w) if need_x else None
        gw = (g2.T @ x.reshape(-1, x.shape[-1])) if need_w else None
        gb = g2.sum(axis=0) if need_b else None
        return gx, gw, gb


def linear(input, weight, bias=None) -> Tensor:  # noqa: A002 (PyTorch's name)
    """``input @ weight.T + bias`` with ``weight`` of shape (out_features, in_features)."""
    x, w = input, weight
    if w.ndim != 2 or x.ndim < 1 or x.shape[-1] != w.shape[1]:
        raise ValueError(
            f"linear: input of shape {x.shape} does not fit weight of shape {w.shape} "
            f"(expected input (..., {w.shape[1] if w.ndim == 2 else '?'}))"
        )
    if bias is not None and bias.shape != (w.shape[0],):
        raise ValueError(f"linear: bias must have shape ({w.shape[0]},), got {bias.shape}")
    operands(*(t for t in (x, w, bias) if t is not None))  # same dtype or a clear error
    return Linear.apply(x, w, bias)
