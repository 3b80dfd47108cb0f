"""tinydiff: denoising diffusion models from scratch in NumPy + numba.

The public face::

    import tinydiff as td
    x = td.tensor([[1.0, 2.0]], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    x.grad  # array([[2., 4.]], dtype=float32)
"""

from .autograd import (
    Function,
    GradcheckError,
    Tensor,
    enable_grad,
    gradcheck,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
    tensor,
)
from .autograd.kernels.threads import get_num_threads, set_num_threads
from .autograd.creation import arange, ones, ones_like, randn, zeros, zeros_like
from .autograd.functional import (
    abs,
    cat,
    clamp,
    clip,
    concat,
    cos,
    exp,
    log,
    matmul,
    max,
    maximum,
    mean,
    minimum,
    pad,
    relu,
    reshape,
    sigmoid,
    silu,
    sin,
    split,
    sqrt,
    stack,
    sum,
    tanh,
    transpose,
    var,
    where,
)

from . import nn, optim  # noqa: E402  (they build on everything above)
from .serialization import load, save  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Tensor", "tensor", "Function", "gradcheck", "GradcheckError",
    "no_grad", "enable_grad", "is_grad_enabled", "set_grad_enabled",
    "set_num_threads", "get_num_threads",
    "zeros", "ones", "zeros_like", "ones_like", "randn", "arange",
    "abs", "cat", "clamp", "clip", "concat", "cos", "exp", "log", "matmul", "max", "maximum",
    "mean", "minimum", "pad", "relu", "reshape", "sigmoid", "silu", "sin", "split", "sqrt",
    "stack", "sum", "tanh", "transpose", "var", "where",
    "nn", "optim", "save", "load",
]
