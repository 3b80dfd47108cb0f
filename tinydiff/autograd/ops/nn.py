"""Ops specific to neural networks: softmax, log-softmax, embedding lookup,
dropout and the mean-squared error."""

from __future__ import annotations

import numpy as np

from ..function import Function
from ..tensor import Tensor
from ._util import axis_arg, normalize_axes, operands, shape_of


class Softmax(Function):
    """y = exp(x - max) / sum exp(x - max); dx = y (g - sum(g y))."""

    @staticmethod
    def forward(ctx, x, axis):
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        y = e / e.sum(axis=axis, keepdims=True)
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_arrays
        return y * (grad - (grad * y).sum(axis=ctx.axis, keepdims=True)), None


class LogSoftmax(Function):
    """y = x - max - log sum exp(x - max); dx = g - softmax(x) sum(g)."""

    @staticmethod
    def forward(ctx, x, axis):
        shifted = x - x.max(axis=axis, keepdims=True)
        y = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_arrays
        return grad - np.exp(y) * grad.sum(axis=ctx.axis, keepdims=True), None


class Embedding(Function):
    """Rows of ``weight`` picked by integer ``indices``; the backward adds each
    output row's gradient into its row (repeated indices add up)."""

    @staticmethod
    def forward(ctx, indices, weight):
        ctx.save_for_backward(indices)
        ctx.shape = weight.shape
        return weight[indices]

    @staticmethod
    def backward(ctx, grad):
        (indices,) = ctx.saved_arrays
        gw = np.zeros(ctx.shape, dtype=grad.dtype)
        np.add.at(gw, indices, grad)
        return None, gw


class Dropout(Function):
    """Inverted dropout: keep each element with probability 1 - p, scaled by 1 / (1 - p)."""

    @staticmethod
    def forward(ctx, x, scaled_mask):
        ctx.save_for_backward(scaled_mask)
        return x * scaled_mask

    @staticmethod
    def backward(ctx, grad):
        (scaled_mask,) = ctx.saved_arrays
        return grad * scaled_mask, None


class MSELoss(Function):
    """mean((input - target)^2) (or the sum, or per element)."""

    @staticmethod
    def forward(ctx, x, target, reduction):
        diff = x - target
        ctx.save_for_backward(diff)
        ctx.reduction = reduction
        sq = diff * diff
        if reduction == "mean":
            return np.asarray(sq.mean())
        if reduction == "sum":
            return np.asarray(sq.sum())
        return sq

    @staticmethod
    def backward(ctx, grad):
        (diff,) = ctx.saved_arrays
        scale = 2 / diff.size if ctx.reduction == "mean" else 2
        g = grad * diff * scale
        return g, -g, None


def _one_axis(x, axis, dim):
    axis, _ = axis_arg(axis, False, dim)
    axis = -1 if axis is None else axis
    if np.ndim(axis) != 0:
        raise ValueError(f"softmax needs a single axis, got {axis}")
    return normalize_axes(axis, x.ndim)[0]


def softmax(x, axis: int | None = None, *, dim=None) -> Tensor:
    """Numerically stable softmax along ``axis`` (the last one by default)."""
    return Softmax.apply(x, _one_axis(x, axis, dim))


def log_softmax(x, axis: int | None = None, *, dim=None) -> Tensor:
    """Numerically stable log-softmax along ``axis`` (the last one by default)."""
    return LogSoftmax.apply(x, _one_axis(x, axis, dim))


def embedding(indices, weight) -> Tensor:
    """``weight[indices]``: rows of a (num_embeddings, dim) matrix (PyTorch's argument order)."""
    idx = np.asarray(indices.data if isinstance(indices, Tensor) else indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"embedding indices must be integers, got dtype {idx.dtype}")
    if weight.ndim != 2:
        raise ValueError(f"embedding weight must be 2-D, got shape {weight.shape}")
    n = weight.shape[0]
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise IndexError(
            f"embedding indices must lie in [0, {n}), got min {idx.min()} and max {idx.max()}"
        )
    return Embedding.apply(idx, weight)


def dropout(x, p: float = 0.5, training: bool = True, generator=None) -> Tensor:
    """Inverted dropout. ``generator`` is a ``np.random.Generator`` or an int seed, so
    that a run can be repeated exactly; with ``training=False`` or ``p=0`` it is the identity."""
    if not 0 <= p < 1:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    if not training or p == 0:
        return x
    rng = generator if isinstance(generator, np.random.Generator) else np.random.default_rng(generator)
    keep = rng.random(x.shape, dtype=np.float64) >= p
    return Dropout.apply(x, keep.astype(x.dtype) / x.dtype.type(1 - p))


def mse_loss(input, target, reduction: str = "mean") -> Tensor:  # noqa: A002 (PyTorch's name)
    """Mean-squared error, ``mean((input - target)^2)`` (``reduction`` 'mean', 'sum' or 'none')."""
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    x, t = operands(input, target)
    if shape_of(x) != shape_of(t):
        raise ValueError(f"mse_loss: input shape {shape_of(x)} and target shape {shape_of(t)} differ")
    return MSELoss.apply(x, t, reduction)
