"""Ops that move elements around without arithmetic: reshape, transpose, indexing,
concatenation, padding, broadcasting, nearest-neighbour upsampling."""

from __future__ import annotations

import numpy as np

from ..function import Function
from ..tensor import Tensor
from ._util import normalize_axes, operands


class Reshape(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.shape), None


class Transpose(Function):
    @staticmethod
    def forward(ctx, x, axes):
        ctx.axes = axes
        return np.transpose(x, axes)

    @staticmethod
    def backward(ctx, grad):
        return np.transpose(grad, np.argsort(ctx.axes)), None


class GetItem(Function):
    """``x[index]``; the backward scatters (adding up repeated integer indices)."""

    @staticmethod
    def forward(ctx, x, index):
        ctx.shape, ctx.dtype, ctx.index = x.shape, x.dtype, index
        return np.asarray(x[index])

    @staticmethod
    def backward(ctx, grad):
        gx = np.zeros(ctx.shape, dtype=ctx.dtype)
        if _is_basic(ctx.index):
            gx[ctx.index] = grad
        else:
            np.add.at(gx, ctx.index, grad)
        return gx, None


class Concat(Function):
    @staticmethod
    def forward(ctx, *xs, axis):
        ctx.axis = axis
        ctx.bounds = np.cumsum([x.shape[axis] for x in xs])[:-1]
        return np.concatenate(xs, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        return tuple(np.split(grad, ctx.bounds, axis=ctx.axis))


class Stack(Function):
    @staticmethod
    def forward(ctx, *xs, axis):
        ctx.axis = axis
        return np.stack(xs, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        return tuple(np.moveaxis(grad, ctx.axis, 0))


class Pad(Function):
    """Constant padding with NumPy's ``pad_width``; the backward crops."""

    @staticmethod
    def forward(ctx, x, pad_width, value):
        ctx.crop = tuple(slice(lo, lo + n) for (lo, _), n in zip(pad_width, x.shape))
        return np.pad(x, pad_width, mode="constant", constant_values=value)

    @staticmethod
    def backward(ctx, grad):
        return grad[ctx.crop], None, None


class BroadcastTo(Function):
    @staticmethod
    def forward(ctx, x, shape):
        return np.broadcast_to(x, shape).copy()

    @staticmethod
    def backward(ctx, grad):
        return grad, None  # the engine sums it back to the input's shape


class UpsampleNearest2d(Function):
    """Each pixel of the last two axes repeated ``s`` x ``s`` times; the backward sums
    every ``s`` x ``s`` block back into its pixel."""

    @staticmethod
    def forward(ctx, x, s):
        *lead, h, w = x.shape
        ctx.s = s
        wide = np.broadcast_to(x[..., :, None, :, None], (*lead, h, s, w, s))
        return wide.reshape(*lead, h * s, w * s)

    @staticmethod
    def backward(ctx, grad):
        s = ctx.s
        *lead, hs, ws = grad.shape
        return grad.reshape(*lead, hs // s, s, ws // s, s).sum(axis=(-3, -1)), None


def _is_basic(index) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return all(
        p is None or p is Ellipsis or isinstance(p, (slice, int, np.integer)) for p in parts
    )


def _shape_arg(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


def reshape(x, *shape) -> Tensor:
    """``reshape(x, 2, 3)`` or ``reshape(x, (2, 3))``; one dimension may be -1."""
    shape = _shape_arg(shape)
    try:
        np.empty(x.shape, dtype=np.int8).reshape(shape)  # validates without touching data
    except ValueError:
        raise ValueError(f"cannot reshape a tensor of shape {x.shape} into shape {shape}") from None
    return Reshape.apply(x, shape)


def transpose(x, *axes) -> Tensor:
    """NumPy's transpose: ``axes`` is a permutation of all axes (reversed if omitted)."""
    axes = _shape_arg(axes) if axes else tuple(reversed(range(x.ndim)))
    if sorted(a % max(x.ndim, 1) for a in axes) != list(range(x.ndim)):
        raise ValueError(f"axes {axes} are not a permutation of the {x.ndim} axes of shape {x.shape}")
    return Transpose.apply(x, tuple(a % x.ndim for a in axes))


permute = transpose


def swapaxes(x, axis1: int, axis2: int) -> Tensor:
    """Exchange two axes (PyTorch's ``transpose(dim0, dim1)``)."""
    axes = list(range(x.ndim))
    a, b = normalize_axes(axis1, x.ndim)[0], normalize_axes(axis2, x.ndim)[0]
    axes[a], axes[b] = axes[b], axes[a]
    return Transpose.apply(x, tuple(axes))


def _index_arg(index):
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, list):
        return np.asarray(index)
    if isinstance(index, tuple):
        return tuple(_index_arg(i) for i in index)
    return index


def getitem(x, index) -> Tensor:
    """``x[index]`` with slices, ints, None, Ellipsis, integer or boolean arrays."""
    index = _index_arg(index)
    try:
        np.empty(x.shape, dtype=np.int8)[index]
    except IndexError as err:
        raise IndexError(f"index {index!r} is invalid for a tensor of shape {x.shape}: {err}") from None
    return GetItem.apply(x, index)


def concat(tensors, axis: int = 0, *, dim=None) -> Tensor:
    """Join tensors along an existing axis (``np.concatenate`` / ``torch.cat``)."""
    axis = axis if dim is None else dim
    xs = operands(*tensors)
    ref = xs[0].shape
    ax = normalize_axes(axis, len(ref))[0]
    for t in xs:
        if t.ndim != len(ref) or t.shape[:ax] + t.shape[ax + 1 :] != ref[:ax] + ref[ax + 1 :]:
            raise ValueError(
                f"concat along axis {axis}: shapes {[tuple(t.shape) for t in xs]} differ off that axis"
            )
    return Concat.apply(*xs, axis=ax)


cat = concat


def stack(tensors, axis: int = 0, *, dim=None) -> Tensor:
    """Join same-shaped tensors along a new axis."""
    axis = axis if dim is None else dim
    xs = operands(*tensors)
    if len({t.shape for t in xs}) != 1:
        raise ValueError(f"stack needs equal shapes, got {[tuple(t.shape) for t in xs]}")
    return Stack.apply(*xs, axis=normalize_axes(axis, xs[0].ndim + 1)[0])


def split(x, indices_or_sections, axis: int = 0, *, dim=None) -> list:
    """NumPy's split: an int ``n`` gives ``n`` equal parts; a list gives split points.
    (PyTorch's ``torch.chunk(x, n)`` is ``split(x, n)``.)"""
    axis = normalize_axes(axis if dim is None else dim, x.ndim)[0]
    size = x.shape[axis]
    if isinstance(indices_or_sections, (int, np.integer)):
        n = int(indices_or_sections)
        if n <= 0 or size % n:
            raise ValueError(f"cannot split axis {axis} of size {size} into {n} equal parts")
        bounds = [i * (size // n) for i in range(n + 1)]
    else:
        bounds = [0, *[int(i) for i in indices_or_sections], size]
    lead = (slice(None),) * axis
    return [getitem(x, lead + (slice(a, b),)) for a, b in zip(bounds[:-1], bounds[1:])]


def pad(x, pad_width, value: float = 0.0) -> Tensor:
    """Constant padding, NumPy's ``pad_width``: an int, a pair, or one pair per axis."""
    pw = np.asarray(pad_width, dtype=np.int64)
    try:
        pw = np.broadcast_to(pw.reshape(-1, 2) if pw.size == 2 * x.ndim else pw, (x.ndim, 2))
    except ValueError:
        raise ValueError(f"pad_width {pad_width} does not fit a tensor of shape {x.shape}") from None
    if (pw < 0).any():
        raise ValueError(f"pad widths must be non-negative, got {pad_width}")
    return Pad.apply(x, tuple(map(tuple, pw.tolist())), np.asarray(value, dtype=x.dtype))


def broadcast_to(x, shape) -> Tensor:
    shape = tuple(shape)
    try:
        np.broadcast_shapes(x.shape, shape)
        np.broadcast_to(np.empty(x.shape, dtype=np.int8), shape)
    except ValueError:
        raise ValueError(f"cannot broadcast a tensor of shape {x.shape} to shape {shape}") from None
    return BroadcastTo.apply(x, shape)


def upsample_nearest2d(x, scale_factor: int = 2) -> Tensor:
    """Nearest-neighbour upsampling of the last two axes by an integer factor."""
    if x.ndim < 2:
        raise ValueError(f"upsample_nearest2d needs at least 2 dimensions, got shape {x.shape}")
    s = int(scale_factor)
    if s < 1 or s != scale_factor:
        raise ValueError(f"scale_factor must be a positive integer, got {scale_factor}")
    return UpsampleNearest2d.apply(x, s)
