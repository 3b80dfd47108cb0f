"""The fast paths of the GroupNorm kernels: the vectorized exp behind the fused SiLU,
the blocked SiLU loops, the short-channel and long-channel loops, and the thread chunks.

Oracles: np.exp in float64 for the polynomial exp; the NumPy twins for the kernels
(the general hypothesis comparison lives in test_kernels.py; here the shapes are
picked to reach each branch: slabs longer than one SiLU block, L below and above
the long-channel threshold, fewer (sample, group) tasks than threads).
"""

from __future__ import annotations

import numpy as np
import pytest

from tinydiff.autograd.kernels import (
    get_num_threads,
    group_norm_backward,
    group_norm_backward_ref,
    group_norm_forward,
    group_norm_forward_ref,
    group_norm_silu_backward,
    group_norm_silu_backward_ref,
    group_norm_silu_forward,
    group_norm_silu_forward_ref,
    set_num_threads,
)
from tinydiff.autograd.kernels.group_norm import _EXP_BLOCK, _silu_parts


def _exp_neg(h):
    """exp(-h) through the kernel's helper (identity affine), as float64."""
    h = np.ascontiguousarray(h)
    fast = h.dtype == np.float32
    hh, p, two_k = np.empty_like(h), np.empty_like(h), np.empty(h.size, np.int32)
    one, zero = h.dtype.type(1), h.dtype.type(0)
    _silu_parts(h, one, zero, np.ones_like(h), np.zeros_like(h), fast, hh, p, two_k)
    np.testing.assert_array_equal(hh, h)
    return p.astype(np.float64) * two_k.view(np.float32)


def test_float32_exp_has_relative_error_below_1e_6_over_the_normal_range():
    h = np.linspace(-87.0, 87.0, 400_001).astype(np.float32)
    h = np.concatenate([h, np.float32([0.0, -0.0, 1e-30, -1e-30, 0.5 * np.log(2), -0.5 * np.log(2)])])
    got = _exp_neg(h)
    expected = np.exp(-h.astype(np.float64))
    assert np.max(np.abs(got / expected - 1.0)) < 1e-6


def test_float32_exp_stays_finite_and_positive_beyond_the_clamp():
    h = np.float32([-1e30, -200.0, -88.5, 88.5, 200.0, 1e30])
    got = _exp_neg(h)
    assert np.all(np.isfinite(got)) and np.all(got > 0)
    sigmoid = 1.0 / (1.0 + got)
    np.testing.assert_allclose(sigmoid, [0, 0, 0, 1, 1, 1], atol=1e-37)


def test_float64_exp_is_libm_exp_to_the_last_bit_or_one():
    h = np.linspace(-700.0, 700.0, 10_001)
    np.testing.assert_allclose(_exp_neg(h), np.exp(-h), rtol=4e-16, atol=0)


def _case(shape, G, dtype, seed=0, scale=1.0, offset=0.0):
    rng = np.random.default_rng(seed)
    C = shape[1]
    x = (rng.standard_normal(shape) * scale + offset).astype(dtype)
    w = (rng.standard_normal(C) * 2).astype(dtype)
    b = rng.standard_normal(C).astype(dtype)
    gy = rng.standard_normal(shape).astype(dtype)
    return x, G, w, b, gy


def _check(x, G, w, b, gy, silu):
    rtol = 1e-10 if x.dtype == np.float64 else 1e-5
    atol = rtol * 4.0 * np.sqrt(x.size)
    if silu:
        fwd, fwd_ref = group_norm_silu_forward, group_norm_silu_forward_ref
        bwd, bwd_ref, extra = group_norm_silu_backward, group_norm_silu_backward_ref, (b,)
    else:
        fwd, fwd_ref = group_norm_forward, group_norm_forward_ref
        bwd, bwd_ref, extra = group_norm_backward, group_norm_backward_ref, ()
    y, mean, rstd = fwd(x, G, w, b, 1e-5)
    y_r, mean_r, rstd_r = fwd_ref(x, G, w, b, 1e-5)
    for a, e in ((y, y_r), (mean, mean_r), (rstd, rstd_r)):
        assert a.dtype == e.dtype == x.dtype and a.shape == e.shape
        np.testing.assert_allclose(a, e, rtol=rtol, atol=rtol * 4.0)
    got = bwd(gy, x, mean, rstd, G, w, *extra)
    expected = bwd_ref(gy, x, mean, rstd, G, w, *extra)
    for a, e in zip(got, expected):
        assert a.dtype == e.dtype == x.dtype and a.shape == e.shape
        np.testing.assert_allclose(a, e, rtol=rtol, atol=atol)


SHAPES = [
    ((3, 16, 10, 10), 2),  # slab 800 > one SiLU block, not a multiple of it; L < 128
    ((2, 8, 16, 16), 4),  # L = 256: the long-channel loops
    ((5, 6, 4, 4), 3),  # short channels, L = 16
    ((17, 8, 3, 3), 4),  # short channels: per-position sums over many samples per chunk
    ((2, 4, 7), 2),  # 1-D positions, L = 7
    ((1, 2, 1, 1), 1),  # one task, one value per channel
]


@pytest.mark.parametrize("silu", [False, True], ids=["group_norm", "group_norm_silu"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,G", SHAPES)
def test_kernels_equal_twins_on_every_branch(shape, G, dtype, silu):
    assert 800 > _EXP_BLOCK
    _check(*_case(shape, G, dtype), silu)


@pytest.mark.parametrize("silu", [False, True], ids=["group_norm", "group_norm_silu"])
def test_kernels_equal_twins_with_large_activations(silu):
    # weight up to ~8 and bias: h reaches |h| > 30, where sigmoid saturates
    x, G, w, b, gy = _case((2, 8, 5, 5), 2, np.float32, seed=1)
    _check(x, G, w * 4, b * 10, gy, silu)


@pytest.mark.parametrize("silu", [False, True], ids=["group_norm", "group_norm_silu"])
def test_kernels_equal_twins_with_a_large_mean(silu):
    # the one-pass statistics shift by the slab's first value: no cancellation in the
    # variance (the normalization x * rstd - mean * rstd, in x's dtype, still loses
    # log10(|mean| / std) digits, so the mean here is 30 standard deviations)
    _check(*_case((2, 4, 6, 6), 2, np.float32, seed=2, scale=0.1, offset=3.0), silu)


@pytest.mark.parametrize("threads", [1, 2])
def test_fewer_tasks_than_threads_and_any_thread_count_give_the_same_result(threads):
    x, G, w, b, gy = _case((1, 4, 9, 9), 2, np.float32, seed=3)
    before = get_num_threads()
    try:
        set_num_threads(1)
        ref = group_norm_silu_forward(x, G, w, b, 1e-5)
        set_num_threads(min(threads, before))
        got = group_norm_silu_forward(x, G, w, b, 1e-5)
    finally:
        set_num_threads(before)
    for a, e in zip(got, ref):
        np.testing.assert_array_equal(a, e)
