"""2-D convolution (cross-correlation, as PyTorch) as an autograd op.

The arithmetic lives in the numba kernels (``autograd/kernels/conv2d.py``, with
its plain-NumPy twin beside it); this module checks the arguments and connects
forward and backward to the graph.
"""

from __future__ import annotations

import numpy as np

from ..function import Function
from ..kernels import conv2d_backward, conv2d_forward
from ..tensor import Tensor


class Conv2d(Function):
    """y = conv2d(x, w) + b; the backward returns dx, dw, db from one kernel call."""

    @staticmethod
    def forward(ctx, x, w, b, stride, padding):
        x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
        ctx.save_for_backward(x, w)
        ctx.stride, ctx.padding = stride, padding
        return conv2d_forward(x, w, b, stride, padding)

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_arrays
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        dx, dw, db = conv2d_backward(x, w, grad, ctx.stride, ctx.padding, need_x, need_w, need_b)
        return dx, dw, db, None, None


def _pair(v, name: str) -> tuple:
    pair = (v, v) if np.ndim(v) == 0 else tuple(v)
    if len(pair) != 2 or any(int(p) != p for p in pair):
        raise ValueError(f"conv2d: {name} must be an int or a pair of ints, got {v!r}")
    return int(pair[0]), int(pair[1])


def conv2d(input, weight, bias=None, stride=1, padding=0) -> Tensor:  # noqa: A002 (PyTorch's name)
    """2-D cross-correlation of an NCHW ``input`` with an OIHW ``weight`` (PyTorch's signature).

    ``y[n, o, i, j] = bias[o] + sum_{c,p,q} x_pad[n, c, i*sh + p, j*sw + q] * weight[o, c, p, q]``
    """
    x, w = input, weight
    if not isinstance(x, Tensor) or not isinstance(w, Tensor):
        raise TypeError("conv2d: input and weight must be Tensors")
    if x.ndim != 4:
        raise ValueError(f"conv2d: input must be 4-D (N, C, H, W), got shape {x.shape}")
    if w.ndim != 4:
        raise ValueError(f"conv2d: weight must be 4-D (O, C, kh, kw), got shape {w.shape}")
    if x.shape[1] != w.shape[1]:
        raise ValueError(
            f"conv2d: input has {x.shape[1]} channels (shape {x.shape}) but weight expects "
            f"{w.shape[1]} (shape {w.shape})"
        )
    stride, padding = _pair(stride, "stride"), _pair(padding, "padding")
    if min(stride) < 1 or min(padding) < 0:
        raise ValueError(f"conv2d: stride must be >= 1 and padding >= 0, got {stride} and {padding}")
    hp, wp = x.shape[2] + 2 * padding[0], x.shape[3] + 2 * padding[1]
    if w.shape[2] > hp or w.shape[3] > wp:
        raise ValueError(
            f"conv2d: kernel {w.shape[2:]} is larger than the padded input {(hp, wp)} "
            f"(input shape {x.shape}, padding {padding})"
        )
    if bias is not None and (not isinstance(bias, Tensor) or bias.shape != (w.shape[0],)):
        raise ValueError(f"conv2d: bias must be a Tensor of shape ({w.shape[0]},), got {getattr(bias, 'shape', bias)}")
    for name, t in (("weight", w), ("bias", bias)):
        if t is not None and t.dtype != x.dtype:
            raise TypeError(f"conv2d: {name} dtype {t.dtype} differs from input dtype {x.dtype}")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"conv2d works in float32 or float64, got {x.dtype}")
    return Conv2d.apply(x, w, bias, stride, padding)
