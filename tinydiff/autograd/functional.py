"""The public functions of every op (what ``Tensor``'s operators and methods call)."""

from .ops.elementwise import (  # noqa: F401
    abs,
    add,
    astype,
    clamp,
    clip,
    cos,
    div,
    exp,
    log,
    maximum,
    minimum,
    mul,
    neg,
    pow,
    relu,
    sigmoid,
    silu,
    sin,
    sqrt,
    sub,
    tanh,
    where,
)
from .ops.linalg import linear, matmul  # noqa: F401
from .ops.nn import dropout, embedding, log_softmax, mse_loss, softmax  # noqa: F401
from .ops.reduce import max, mean, sum, var  # noqa: F401
from .ops.shape import (  # noqa: F401
    broadcast_to,
    cat,
    concat,
    getitem,
    pad,
    permute,
    reshape,
    split,
    stack,
    swapaxes,
    transpose,
    upsample_nearest2d,
)
from .ops.conv import conv2d  # noqa: F401,E402
from .ops.norm import group_norm, group_norm_silu  # noqa: F401,E402
