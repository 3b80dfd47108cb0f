"""Tensors made from scratch (float32 unless a dtype is given)."""

from __future__ import annotations

import numpy as np

from .tensor import DEFAULT_DTYPE, Tensor


def _shape(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def zeros(*shape, dtype=DEFAULT_DTYPE, requires_grad: bool = False) -> Tensor:
    return Tensor(np.zeros(_shape(shape), dtype=dtype), requires_grad=requires_grad)


def ones(*shape, dtype=DEFAULT_DTYPE, requires_grad: bool = False) -> Tensor:
    return Tensor(np.ones(_shape(shape), dtype=dtype), requires_grad=requires_grad)


def zeros_like(x: Tensor, requires_grad: bool = False) -> Tensor:
    return Tensor(np.zeros_like(x.data), requires_grad=requires_grad)


def ones_like(x: Tensor, requires_grad: bool = False) -> Tensor:
    return Tensor(np.ones_like(x.data), requires_grad=requires_grad)


def randn(*shape, dtype=DEFAULT_DTYPE, generator=None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples; ``generator`` is a ``np.random.Generator`` or a seed."""
    rng = generator if isinstance(generator, np.random.Generator) else np.random.default_rng(generator)
    return Tensor(rng.standard_normal(_shape(shape), dtype=dtype), requires_grad=requires_grad)


def arange(*args, dtype=DEFAULT_DTYPE) -> Tensor:
    return Tensor(np.arange(*args, dtype=dtype))
