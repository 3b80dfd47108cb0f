"""Gradient clipping by the global L2 norm (PyTorch's ``clip_grad_norm_``)."""

from __future__ import annotations

import math

import numpy as np

from ..autograd import Tensor


def clip_grad_norm_(params, max_norm: float, error_if_nonfinite: bool = False) -> float:
    r"""Scale all gradients together so that their joint L2 norm is at most ``max_norm``.

    ::

        total_norm = sqrt(sum over parameters p of sum(p.grad ** 2))
        clip_coef  = max_norm / (total_norm + 1e-6)
        if clip_coef < 1:  p.grad *= clip_coef   for every p   (in place)

    which is PyTorch's rule (``clip_coef`` clamped to 1, so gradients are only ever
    shrunk). Returns ``total_norm`` *before* clipping, as a Python float. Parameters
    whose ``.grad`` is ``None`` are ignored. Each parameter's squared norm is a BLAS
    dot product in the gradient's dtype; the sum over parameters is in float64.

    The ``.grad`` arrays are scaled in place, as PyTorch does; the autograd engine
    gives every leaf a ``.grad`` array of its own, so no other tensor sees the change.
    With ``error_if_nonfinite=True`` a NaN or infinite total norm raises ``RuntimeError``.
    """
    if isinstance(params, Tensor):
        params = [params]
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return 0.0
    sum_sq = 0.0
    for g in grads:
        flat = g.reshape(-1)
        sum_sq += float(np.dot(flat, flat))
    total_norm = math.sqrt(sum_sq)
    if error_if_nonfinite and not math.isfinite(total_norm):
        raise RuntimeError(
            f"the total norm of the gradients is {total_norm}; set error_if_nonfinite=False to clip anyway"
        )
    clip_coef = float(max_norm) / (total_norm + 1e-6)
    if clip_coef < 1.0:
        for g in grads:
            g *= clip_coef
    return total_norm
