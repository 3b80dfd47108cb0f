"""numba kernels for the two hot operations of the U-Net: conv2d and GroupNorm.

Pure-array interface (NumPy arrays in, NumPy arrays out; nothing here knows
about Tensor or autograd).  Each fast kernel has a plain-NumPy reference twin
(``*_ref``) with the same signature, and the tests hold the kernels to them.
Importing this package compiles nothing: every kernel is ``@njit(cache=True)``
and compiles (or loads from numba's cache) on its first call.
"""

from .conv2d import (
    conv2d_backward,
    conv2d_backward_ref,
    conv2d_forward,
    conv2d_forward_ref,
    conv2d_output_shape,
)
from .group_norm import (
    group_norm_backward,
    group_norm_backward_ref,
    group_norm_forward,
    group_norm_forward_ref,
    group_norm_silu_backward,
    group_norm_silu_backward_ref,
    group_norm_silu_forward,
    group_norm_silu_forward_ref,
)
from .threads import get_num_threads, set_num_threads

__all__ = [
    "conv2d_forward",
    "conv2d_backward",
    "conv2d_forward_ref",
    "conv2d_backward_ref",
    "conv2d_output_shape",
    "group_norm_forward",
    "group_norm_backward",
    "group_norm_forward_ref",
    "group_norm_backward_ref",
    "group_norm_silu_forward",
    "group_norm_silu_backward",
    "group_norm_silu_forward_ref",
    "group_norm_silu_backward_ref",
    "set_num_threads",
    "get_num_threads",
]
