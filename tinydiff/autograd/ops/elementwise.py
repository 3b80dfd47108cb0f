"""Elementwise ops: arithmetic and the usual functions, each with its derivative."""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from ..function import Function
from ..tensor import Tensor
from ._util import broadcast_shape, operands, shape_of


# ---------------------------------------------------------------- arithmetic
class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, grad):
        return grad, grad


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, grad):
        return grad, -grad


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_arrays
        ga = grad * b if ctx.needs_input_grad[0] else None
        gb = grad * a if ctx.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_arrays
        ga = grad / b if ctx.needs_input_grad[0] else None
        gb = -grad * a / (b * b) if ctx.needs_input_grad[1] else None
        return ga, gb


class Neg(Function):
    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, grad):
        return -grad


class PowScalar(Function):
    """x ** p for a constant exponent p: d/dx = p x^(p-1)."""

    @staticmethod
    def forward(ctx, x, p):
        ctx.save_for_backward(x)
        ctx.p = p
        return x**p

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_arrays
        p = ctx.p
        return grad * (p * x ** (p - 1)), None


class Pow(Function):
    """a ** b with a tensor exponent: d/da = b a^(b-1), d/db = a^b log a."""

    @staticmethod
    def forward(ctx, a, b):
        y = a**b
        ctx.save_for_backward(a, b, y)
        return y

    @staticmethod
    def backward(ctx, grad):
        a, b, y = ctx.saved_arrays
        ga = grad * b * a ** (b - 1) if ctx.needs_input_grad[0] else None
        gb = grad * y * np.log(a) if ctx.needs_input_grad[1] else None
        return ga, gb


def _binary(fn, a, b):
    a, b = operands(a, b)
    broadcast_shape(shape_of(a), shape_of(b))
    return fn.apply(a, b)


def add(a, b) -> Tensor:
    return _binary(Add, a, b)


def sub(a, b) -> Tensor:
    return _binary(Sub, a, b)


def mul(a, b) -> Tensor:
    return _binary(Mul, a, b)


def div(a, b) -> Tensor:
    return _binary(Div, a, b)


def neg(x) -> Tensor:
    return Neg.apply(x)


def pow(a, b) -> Tensor:  # noqa: A001 (the op's name)
    """``a ** b``. A Python/NumPy scalar exponent is a constant; a tensor exponent gets a gradient."""
    if isinstance(a, Tensor) and not isinstance(b, Tensor) and np.ndim(b) == 0:
        p = float(b)
        p = int(p) if p.is_integer() else p  # keeps x ** 2 exact and dtype-stable
        return PowScalar.apply(a, p)
    return _binary(Pow, a, b)


# ---------------------------------------------------------------- functions
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


class Log(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.log(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_arrays
        return grad / x


class Sqrt(Function):
    @staticmethod
    def forward(ctx, x):
        y = np.sqrt(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_arrays
        return grad / (2 * y)


class Abs(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.abs(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_arrays
        return grad * np.sign(x)


class Tanh(Function):
    @staticmethod
    def forward(ctx, x):
        y = np.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_arrays
        return grad * (1 - y * y)


class Sigmoid(Function):
    @staticmethod
    def forward(ctx, x):
        y = expit(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_arrays
        return grad * y * (1 - y)


class ReLU(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.maximum(x, 0)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_arrays
        return grad * (x > 0)


class SiLU(Function):
    """silu(x) = x sigmoid(x); d/dx = s (1 + x (1 - s)) with s = sigmoid(x)."""

    @staticmethod
    def forward(ctx, x):
        s = expit(x)
        ctx.save_for_backward(x, s)
        return x * s

    @staticmethod
    def backward(ctx, grad):
        x, s = ctx.saved_arrays
        return grad * (s * (1 + x * (1 - s)))


class Sin(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.sin(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_arrays
        return grad * np.cos(x)


class Cos(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.cos(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_arrays
        return -grad * np.sin(x)


class Clip(Function):
    """Gradient 1 inside [lo, hi] (bounds included, as PyTorch's clamp), 0 outside."""

    @staticmethod
    def forward(ctx, x, lo, hi):
        ctx.save_for_backward(x)
        ctx.lo, ctx.hi = lo, hi
        return np.clip(x, lo, hi)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_arrays
        inside = np.ones(x.shape, dtype=bool)
        if ctx.lo is not None:
            inside &= x >= ctx.lo
        if ctx.hi is not None:
            inside &= x <= ctx.hi
        return grad * inside, None, None


class Maximum(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.maximum(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_arrays
        first = a >= b  # ties go to the first argument
        return grad * first, grad * ~first


class Minimum(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.minimum(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_arrays
        first = a <= b
        return grad * first, grad * ~first


class Where(Function):
    @staticmethod
    def forward(ctx, cond, a, b):
        ctx.save_for_backward(cond)
        return np.where(cond, a, b)

    @staticmethod
    def backward(ctx, grad):
        (cond,) = ctx.saved_arrays
        return None, np.where(cond, grad, 0), np.where(cond, 0, grad)


class AsType(Function):
    """An explicit dtype conversion; the gradient is converted back."""

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.dtype = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad.astype(ctx.dtype), None


def exp(x) -> Tensor:
    return Exp.apply(x)


def log(x) -> Tensor:
    return Log.apply(x)


def sqrt(x) -> Tensor:
    return Sqrt.apply(x)


def abs(x) -> Tensor:  # noqa: A001
    return Abs.apply(x)


def tanh(x) -> Tensor:
    return Tanh.apply(x)


def sigmoid(x) -> Tensor:
    return Sigmoid.apply(x)


def relu(x) -> Tensor:
    return ReLU.apply(x)


def silu(x) -> Tensor:
    """SiLU / swish, ``x * sigmoid(x)`` (the U-Net's activation)."""
    return SiLU.apply(x)


def sin(x) -> Tensor:
    return Sin.apply(x)


def cos(x) -> Tensor:
    return Cos.apply(x)


def clip(x, min=None, max=None) -> Tensor:  # noqa: A002 (PyTorch's names)
    if min is None and max is None:
        raise ValueError("clip() needs at least one of min and max")
    lo = None if min is None else np.asarray(min, dtype=x.dtype)
    hi = None if max is None else np.asarray(max, dtype=x.dtype)
    return Clip.apply(x, lo, hi)


clamp = clip


def maximum(a, b) -> Tensor:
    return _binary(Maximum, a, b)


def minimum(a, b) -> Tensor:
    return _binary(Minimum, a, b)


def where(condition, a, b) -> Tensor:
    """Elements of ``a`` where ``condition`` holds, else of ``b`` (gradient to each accordingly)."""
    cond = np.asarray(condition.data if isinstance(condition, Tensor) else condition)
    if cond.dtype != np.bool_:
        raise TypeError(f"where() needs a boolean condition, got dtype {cond.dtype}")
    a, b = operands(a, b)
    broadcast_shape(cond.shape, shape_of(a), shape_of(b))
    return Where.apply(cond, a, b)


def astype(x, dtype) -> Tensor:
    return AsType.apply(x, np.dtype(dtype))
