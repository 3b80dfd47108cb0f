"""``Function``: one differentiable op, its forward and backward side by side.

Subclasses write two static methods on plain NumPy arrays::

    class Exp(Function):
        @staticmethod
        def forward(ctx, x):
            y = np.exp(x)
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, grad):
            (y,) = ctx.saved_arrays
            return grad * y

``Exp.apply(t)`` unwraps tensors, runs ``forward``, wraps the result and, when grad
mode is on and an input requires grad, records a ``Node`` for ``backward``.
``backward`` returns one gradient per positional input (``None`` for non-tensors or
inputs needing none); the engine sums broadcast gradients back to each input's
shape, so ops never unbroadcast themselves, and checks shape and dtype.
Backward functions must not modify ``grad`` in place: it may be shared.
"""

from __future__ import annotations

import numpy as np

from .grad_mode import is_grad_enabled
from .tensor import Node, Tensor


class Context:
    """What forward leaves for backward: saved arrays and plain attributes."""

    def __init__(self, needs_input_grad: tuple):
        self.needs_input_grad = needs_input_grad
        self.saved_arrays: tuple = ()

    def save_for_backward(self, *arrays) -> None:
        self.saved_arrays = arrays


class Function:
    """Base class of every op; see the module docstring."""

    @staticmethod
    def forward(ctx: Context, *args, **kwargs) -> np.ndarray:
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args, **kwargs) -> Tensor:
        needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        record = is_grad_enabled() and any(needs)
        ctx = Context(needs)
        raw = [a.data if isinstance(a, Tensor) else a for a in args]
        out = cls.forward(ctx, *raw, **kwargs)
        result = Tensor(out)
        if record:
            result.requires_grad = True
            result._node = Node(cls, ctx, tuple(a if isinstance(a, Tensor) else None for a in args))
        return result
