"""Argument handling shared by the ops: constants take the tensor's dtype, shapes
must broadcast, axis arguments accept NumPy's and PyTorch's spellings."""

from __future__ import annotations

import numpy as np

from ..tensor import Tensor


def operands(*xs):
    """Tensors pass through; Python/NumPy constants become arrays of the tensors' dtype.

    Two tensors of different dtypes are an error rather than a silent promotion.
    """
    ref = next((x for x in xs if isinstance(x, Tensor)), None)
    if ref is None:
        raise TypeError("an op needs at least one Tensor operand")
    out = []
    for x in xs:
        if isinstance(x, Tensor):
            if x.dtype != ref.dtype:
                raise TypeError(
                    f"dtype mismatch: {ref.dtype} and {x.dtype} (shapes {ref.shape} and "
                    f"{x.shape}); convert one explicitly with .astype()"
                )
            out.append(x)
        else:
            arr = np.asarray(x.data if isinstance(x, Tensor) else x)
            if np.issubdtype(ref.dtype, np.floating) or arr.dtype.kind in "biu":
                arr = arr.astype(ref.dtype, copy=False)
            out.append(arr)
    return out


def broadcast_shape(*shapes) -> tuple:
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        raise ValueError(
            "shapes " + " and ".join(str(tuple(s)) for s in shapes) + " do not broadcast"
        ) from None


def shape_of(x) -> tuple:
    return x.shape if isinstance(x, (Tensor, np.ndarray)) else np.shape(x)


def axis_arg(axis, keepdims, dim=None, keepdim=None):
    """Merge NumPy's ``axis``/``keepdims`` with PyTorch's ``dim``/``keepdim``."""
    if dim is not None:
        if axis is not None and axis != dim:
            raise TypeError(f"got both axis={axis} and dim={dim}")
        axis = dim
    if keepdim is not None:
        keepdims = keepdim
    if isinstance(axis, list):
        axis = tuple(axis)
    return axis, bool(keepdims)


def normalize_axes(axis, ndim: int) -> tuple:
    """``axis`` (None, int or tuple) as a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if np.ndim(axis) == 0 else tuple(axis)
    out = []
    for a in axes:
        a = int(a)
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"axis {a} is out of range for an array of {ndim} dimensions")
        out.append(a % max(ndim, 1))
    return tuple(sorted(out))
