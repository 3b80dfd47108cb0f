"""Hypothesis strategies for tensors: shapes, broadcasting pairs, values kept away
from the kinks and poles of the op under test."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

DTYPES = (np.float32, np.float64)


def values(lo=-3.0, hi=3.0, away_from=(), margin=0.05):
    """Floats in [lo, hi], at least ``margin`` away from each point in ``away_from``."""
    s = st.floats(lo, hi, allow_nan=False, allow_infinity=False)
    if away_from:
        s = s.filter(lambda v: all(abs(v - p) > margin for p in away_from))
    return s


def shapes(min_dims=0, max_dims=3, min_side=1, max_side=4):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def arrays(shape, dtype=np.float64, elements=None):
    """Drawn in float64, then cast (float32 cannot hold every float64 bound exactly)."""
    s = hnp.arrays(np.float64, shape, elements=elements if elements is not None else values())
    return s if dtype == np.float64 else s.map(lambda a: a.astype(dtype))


@st.composite
def broadcast_pair(draw, dtype=np.float64, elements_a=None, elements_b=None, max_dims=3):
    """Two arrays whose shapes broadcast against each other (size-1 axes, 0-d included)."""
    shapes_ = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=max_dims, max_side=4))
    a = draw(arrays(shapes_.input_shapes[0], dtype, elements_a))
    b = draw(arrays(shapes_.input_shapes[1], dtype, elements_b))
    return a, b


@st.composite
def array_and_axis(draw, dtype=np.float64, elements=None, min_dims=0):
    """An array and an ``axis`` argument for it: None, an int (maybe negative) or a tuple."""
    x = draw(arrays(shapes(min_dims=min_dims), dtype, elements))
    if x.ndim == 0:
        return x, None
    choice = draw(st.sampled_from(["none", "int", "tuple"]))
    if choice == "none":
        return x, None
    if choice == "int":
        return x, draw(st.integers(-x.ndim, x.ndim - 1))
    axes = draw(st.lists(st.integers(0, x.ndim - 1), min_size=1, max_size=x.ndim, unique=True))
    return x, tuple(axes)


@st.composite
def distinct_array(draw, min_dims=0):
    """An array whose entries are pairwise distinct (so max() has no ties)."""
    shape = draw(shapes(min_dims=min_dims))
    seed = draw(st.integers(0, 2**32 - 1))
    n = int(np.prod(shape))
    return (np.random.default_rng(seed).permutation(n) * 0.37 - n * 0.1).reshape(shape)
