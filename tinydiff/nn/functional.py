"""The stateless forms of the layers (PyTorch's ``torch.nn.functional`` names).

Every function here is an autograd op defined once in ``tinydiff.autograd.ops``;
this module gathers the ones a network is built from.
"""

from ..autograd.functional import (  # noqa: F401
    conv2d,
    dropout,
    embedding,
    group_norm,
    group_norm_silu,
    linear,
    log_softmax,
    mse_loss,
    relu,
    sigmoid,
    silu,
    softmax,
    tanh,
    upsample_nearest2d,
)


def interpolate(input, scale_factor: int = 2, mode: str = "nearest"):  # noqa: A002
    """Nearest-neighbour upsampling (the only mode the U-Net needs)."""
    if mode != "nearest":
        raise ValueError(f"interpolate supports mode='nearest' only, got {mode!r}")
    return upsample_nearest2d(input, scale_factor)
