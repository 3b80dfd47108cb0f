"""Hypothesis strategies for the kernel tests: conv2d and GroupNorm problems.

Sizes stay small (the kernels must also be tested as plain Python under
``NUMBA_DISABLE_JIT=1``) but cover the edges: 1x1 images, odd sizes, batch 1,
channel counts that are no multiple of a vector width, every kernel size 1..3,
stride 1..2 and padding 0..2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

DTYPES = (np.float32, np.float64)


@dataclass
class ConvCase:
    x: np.ndarray
    w: np.ndarray
    b: np.ndarray | None
    gy: np.ndarray
    stride: tuple[int, int]
    padding: tuple[int, int]

    def __repr__(self):
        return (
            f"ConvCase(x={self.x.shape}, w={self.w.shape}, bias={self.b is not None}, "
            f"stride={self.stride}, padding={self.padding}, dtype={self.x.dtype})"
        )


@dataclass
class GroupNormCase:
    x: np.ndarray
    num_groups: int
    weight: np.ndarray | None
    bias: np.ndarray | None
    gy: np.ndarray

    def __repr__(self):
        return (
            f"GroupNormCase(x={self.x.shape}, groups={self.num_groups}, "
            f"weight={self.weight is not None}, bias={self.bias is not None}, dtype={self.x.dtype})"
        )


def _rng(draw):
    return np.random.default_rng(draw(st.integers(0, 2**32 - 1)))


@st.composite
def conv_cases(draw, dtypes=DTYPES, max_channels=7, max_size=9):
    """A conv2d problem: x, w, optional b, an upstream gradient gy, stride and padding."""
    dtype = draw(st.sampled_from(dtypes))
    n = draw(st.integers(1, 3))
    c = draw(st.integers(1, max_channels))
    o = draw(st.integers(1, max_channels))
    kh = draw(st.integers(1, 3))
    kw = draw(st.one_of(st.just(kh), st.integers(1, 3)))
    sh = draw(st.integers(1, 2))
    sw = draw(st.one_of(st.just(sh), st.integers(1, 2)))
    ph = draw(st.integers(0, 2))
    pw = draw(st.one_of(st.just(ph), st.integers(0, 2)))
    # the kernel must fit in the padded input
    h = draw(st.integers(max(1, kh - 2 * ph), max_size))
    w_ = draw(st.integers(max(1, kw - 2 * pw), max_size))
    rng = _rng(draw)
    x = rng.standard_normal((n, c, h, w_)).astype(dtype)
    w = rng.standard_normal((o, c, kh, kw)).astype(dtype)
    b = rng.standard_normal(o).astype(dtype) if draw(st.booleans()) else None
    ho = (h + 2 * ph - kh) // sh + 1
    wo = (w_ + 2 * pw - kw) // sw + 1
    gy = rng.standard_normal((n, o, ho, wo)).astype(dtype)
    return ConvCase(x, w, b, gy, (sh, sw), (ph, pw))


@st.composite
def group_norm_cases(draw, dtypes=DTYPES, spatial_dims=(2,)):
    """A GroupNorm problem with inputs whose group std stays well above zero."""
    dtype = draw(st.sampled_from(dtypes))
    n = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 4))
    per_group = draw(st.integers(1, 5))
    c = groups * per_group
    ndim = draw(st.sampled_from(spatial_dims))
    spatial = tuple(draw(st.integers(1, 6)) for _ in range(ndim))
    if c * int(np.prod(spatial, dtype=int)) // groups < 2:
        spatial = spatial[:-1] + (spatial[-1] + 1,) if spatial else (2,)
    rng = _rng(draw)
    shift = draw(st.sampled_from([0.0, 3.0]))
    # a uniform spread of values keeps every group's std above a floor (no near-constant group)
    x = (rng.uniform(-2.0, 2.0, (n, c) + spatial) + shift)
    x.reshape(n, groups, -1)[:, :, 0] = shift - 2.0  # guarantee a spread within each group
    x.reshape(n, groups, -1)[:, :, -1] = shift + 2.0
    x = x.astype(dtype)
    weight = rng.standard_normal(c).astype(dtype) if draw(st.booleans()) else None
    bias = rng.standard_normal(c).astype(dtype) if draw(st.booleans()) else None
    gy = rng.standard_normal(x.shape).astype(dtype)
    return GroupNormCase(x, groups, weight, bias, gy)
