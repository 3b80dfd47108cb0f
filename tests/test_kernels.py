"""The numba kernels equal their NumPy twins, and the twins equal independent oracles.

Oracles: conv2d forward against scipy.signal.correlate2d, summed over channels;
conv2d and GroupNorm backward twins against central finite differences in
float64 along a random direction with a random upstream gradient; GroupNorm
forward against mean / var computed group by group.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import correlate2d

from kernel_strategies import conv_cases, group_norm_cases
from tinydiff.autograd.kernels import (
    conv2d_backward,
    conv2d_backward_ref,
    conv2d_forward,
    conv2d_forward_ref,
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

JIT_DISABLED = os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0")


def tol(dtype, scale=1.0):
    """(rtol, atol) for comparing two ways of computing the same float sums."""
    if dtype == np.float64:
        return dict(rtol=1e-9, atol=1e-9 * scale)
    return dict(rtol=2e-4, atol=2e-4 * scale)


def assert_same(actual, expected, scale=1.0):
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    np.testing.assert_allclose(actual, expected, **tol(expected.dtype, scale))


def conv_scale(case):
    """Typical magnitude of a conv output: sqrt of the number of summed products."""
    return float(np.sqrt(case.w[0].size * max(1, case.gy.shape[0] * case.gy[0, 0].size)))


# --------------------------------------------------------------------------- conv2d: twin vs oracles


def correlate_oracle(x, w, b, stride, padding):
    """conv2d as scipy.signal.correlate2d of each padded input plane, summed over channels."""
    (sh, sw), (ph, pw) = stride, padding
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    n_, c_ = x.shape[:2]
    o_ = w.shape[0]
    out = []
    for n in range(n_):
        per_o = []
        for o in range(o_):
            acc = sum(correlate2d(xp[n, c], w[o, c].astype(np.float64), mode="valid") for c in range(c_))
            acc = acc[::sh, ::sw]
            per_o.append(acc + (b[o] if b is not None else 0.0))
        out.append(per_o)
    return np.array(out)


@given(conv_cases(dtypes=(np.float64,)))
def test_conv2d_forward_ref_equals_scipy_correlate(case):
    expected = correlate_oracle(case.x, case.w, case.b, case.stride, case.padding)
    actual = conv2d_forward_ref(case.x, case.w, case.b, case.stride, case.padding)
    np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-12)


def directional_derivative(f, arrays, i, direction, h=1e-6):
    """(f(.., a_i + h d, ..) - f(.., a_i - h d, ..)) / 2h: central difference along d."""
    plus = list(arrays)
    minus = list(arrays)
    plus[i] = arrays[i] + h * direction
    minus[i] = arrays[i] - h * direction
    return (f(*plus) - f(*minus)) / (2 * h)


@settings(max_examples=15)
@given(conv_cases(dtypes=(np.float64,), max_channels=3, max_size=6), st.integers(0, 2**32 - 1))
def test_conv2d_backward_ref_equals_finite_differences(case, seed):
    rng = np.random.default_rng(seed)
    b = case.b if case.b is not None else np.zeros(case.w.shape[0])

    def loss(x, w, b):  # L = <gy, conv(x, w, b)>, so dL/dx = dx etc.
        return float(np.sum(case.gy * conv2d_forward_ref(x, w, b, case.stride, case.padding)))

    grads = conv2d_backward_ref(case.x, case.w, case.gy, case.stride, case.padding)
    for i, (arr, grad) in enumerate(zip((case.x, case.w, b), grads)):
        d = rng.standard_normal(arr.shape)
        numeric = directional_derivative(loss, (case.x, case.w, b), i, d)
        assert np.isclose(float(np.sum(grad * d)), numeric, rtol=1e-6, atol=1e-7)


# --------------------------------------------------------------------------- conv2d: kernel vs twin


@given(conv_cases())
def test_conv2d_forward_equals_ref(case):
    y = conv2d_forward(case.x, case.w, case.b, case.stride, case.padding)
    expected = conv2d_forward_ref(case.x, case.w, case.b, case.stride, case.padding)
    assert_same(y, expected, scale=conv_scale(case))


@given(conv_cases(), st.sampled_from([(True, True, True), (True, False, False), (False, True, False), (False, False, True)]))
def test_conv2d_backward_equals_ref(case, need):
    need_dx, need_dw, need_db = need
    got = conv2d_backward(case.x, case.w, case.gy, case.stride, case.padding, need_dx, need_dw, need_db)
    expected = conv2d_backward_ref(case.x, case.w, case.gy, case.stride, case.padding)
    for flag, g, e in zip(need, got, expected):
        if flag:
            assert_same(g, e, scale=conv_scale(case))
        else:
            assert g is None


WINOGRAD_AND_EDGE_CASES = [
    # (N, C, O, H, W, k, stride, padding)
    (2, 17, 19, 9, 7, 3, 1, 1),  # Winograd path, channels no multiple of 8 or 16, odd sizes
    (1, 3, 5, 1, 1, 3, 1, 1),  # 1x1 image through a padded 3x3
    (2, 4, 3, 2, 2, 3, 1, 2),  # padding 2: the input-gradient conv has padding 0
    (2, 4, 3, 4, 5, 3, 1, 0),  # padding 0: the input-gradient conv has padding 2
    (3, 6, 6, 8, 8, 3, 2, 1),  # the U-Net's downsample
    (2, 6, 10, 5, 5, 1, 1, 0),  # 1x1 conv
    (2, 3, 4, 5, 6, 2, 2, 0),  # even kernel, stride 2
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n,c,o,h,w,k,s,p", WINOGRAD_AND_EDGE_CASES)
def test_conv2d_kernel_equals_ref_on_named_shapes(n, c, o, h, w, k, s, p, dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((o, c, k, k)).astype(dtype)
    b = rng.standard_normal(o).astype(dtype)
    y = conv2d_forward(x, wt, b, (s, s), (p, p))
    scale = float(np.sqrt(c * k * k * n * h * w))
    assert_same(y, conv2d_forward_ref(x, wt, b, (s, s), (p, p)), scale)
    gy = rng.standard_normal(y.shape).astype(dtype)
    for g, e in zip(conv2d_backward(x, wt, gy, (s, s), (p, p)), conv2d_backward_ref(x, wt, gy, (s, s), (p, p))):
        assert_same(g, e, scale)


@pytest.mark.parametrize("threads", [1, 2])
def test_conv2d_result_does_not_depend_on_thread_count(threads):
    if threads > get_num_threads() and threads > 1:
        try:
            set_num_threads(threads)
        except ValueError:
            pytest.skip("NUMBA_NUM_THREADS is below 2")
    before = get_num_threads()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 5, 6, 7))
    w = rng.standard_normal((4, 5, 3, 3))
    gy = rng.standard_normal((3, 4, 6, 7))
    try:
        set_num_threads(threads)
        got = conv2d_backward(x, w, gy, (1, 1), (1, 1))
        y = conv2d_forward(x, w, None, (1, 1), (1, 1))
    finally:
        set_num_threads(before)
    np.testing.assert_allclose(y, conv2d_forward_ref(x, w, None, (1, 1), (1, 1)), rtol=1e-10, atol=1e-10)
    for g, e in zip(got, conv2d_backward_ref(x, w, gy, (1, 1), (1, 1))):
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-10)


def test_conv2d_returns_fresh_arrays_each_call():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 5, 5)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    y1 = conv2d_forward(x, w, None, (1, 1), (1, 1))
    keep = y1.copy()
    y2 = conv2d_forward(2 * x, w, None, (1, 1), (1, 1))
    assert not np.shares_memory(y1, y2)
    np.testing.assert_array_equal(y1, keep)


def test_conv2d_accepts_non_contiguous_input():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 6, 5, 5))[:, ::2]
    w = rng.standard_normal((3, 3, 3, 3))
    np.testing.assert_allclose(
        conv2d_forward(x, w, None, (1, 1), (1, 1)), conv2d_forward_ref(x, w, None, (1, 1), (1, 1)), rtol=1e-10, atol=1e-10
    )


# --------------------------------------------------------------------------- GroupNorm: twin vs oracles


@given(group_norm_cases(dtypes=(np.float64,), spatial_dims=(0, 1, 2, 3)))
def test_group_norm_forward_ref_equals_per_group_mean_and_var(case):
    x, G = case.x, case.num_groups
    n_, c_ = x.shape[:2]
    cpg = c_ // G
    expected = np.empty_like(x)
    for n in range(n_):
        for g in range(G):
            block = x[n, g * cpg : (g + 1) * cpg]
            expected[n, g * cpg : (g + 1) * cpg] = (block - block.mean()) / np.sqrt(block.var() + 1e-5)
    shape = (1, c_) + (1,) * (x.ndim - 2)
    if case.weight is not None:
        expected = expected * case.weight.reshape(shape)
    if case.bias is not None:
        expected = expected + case.bias.reshape(shape)
    y, mean, rstd = group_norm_forward_ref(x, G, case.weight, case.bias, 1e-5)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    assert mean.shape == rstd.shape == (n_, G)


@settings(max_examples=15)
@given(group_norm_cases(dtypes=(np.float64,)), st.integers(0, 2**32 - 1), st.booleans())
def test_group_norm_backward_refs_equal_finite_differences(case, seed, with_silu):
    rng = np.random.default_rng(seed)
    c_ = case.x.shape[1]
    w = case.weight if case.weight is not None else np.ones(c_)
    b = case.bias if case.bias is not None else np.zeros(c_)
    fwd = group_norm_silu_forward_ref if with_silu else group_norm_forward_ref

    def loss(x, w, b):
        return float(np.sum(case.gy * fwd(x, case.num_groups, w, b, 1e-5)[0]))

    _, mean, rstd = group_norm_forward_ref(case.x, case.num_groups, w, b, 1e-5)
    if with_silu:
        grads = group_norm_silu_backward_ref(case.gy, case.x, mean, rstd, case.num_groups, w, b)
    else:
        grads = group_norm_backward_ref(case.gy, case.x, mean, rstd, case.num_groups, w)
    for i, (arr, grad) in enumerate(zip((case.x, w, b), grads)):
        d = rng.standard_normal(arr.shape)
        numeric = directional_derivative(loss, (case.x, w, b), i, d)
        assert np.isclose(float(np.sum(grad * d)), numeric, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- GroupNorm: kernel vs twin


@pytest.mark.parametrize("with_silu", [False, True], ids=["group_norm", "group_norm_silu"])
@given(case=group_norm_cases(spatial_dims=(0, 1, 2, 3)))
def test_group_norm_kernels_equal_refs(case, with_silu):
    G, x = case.num_groups, case.x
    if with_silu:
        fwd, fwd_ref = group_norm_silu_forward, group_norm_silu_forward_ref
        extra = (case.bias,)
        bwd, bwd_ref = group_norm_silu_backward, group_norm_silu_backward_ref
    else:
        fwd, fwd_ref = group_norm_forward, group_norm_forward_ref
        extra = ()
        bwd, bwd_ref = group_norm_backward, group_norm_backward_ref
    y, mean, rstd = fwd(x, G, case.weight, case.bias, 1e-5)
    y_r, mean_r, rstd_r = fwd_ref(x, G, case.weight, case.bias, 1e-5)
    assert_same(y, y_r, scale=4.0)
    assert_same(mean, mean_r, scale=4.0)
    assert_same(rstd, rstd_r, scale=4.0)
    got = bwd(case.gy, x, mean, rstd, G, case.weight, *extra)
    expected = bwd_ref(case.gy, x, mean, rstd, G, case.weight, *extra)
    scale = 4.0 * float(np.sqrt(x.size))
    for g, e in zip(got, expected):
        assert_same(g, e, scale)


# --------------------------------------------------------------------------- threads and import


def test_set_num_threads_round_trips_and_rejects_bad_counts():
    before = get_num_threads()
    try:
        set_num_threads(1)
        assert get_num_threads() == 1
    finally:
        set_num_threads(before)
    assert get_num_threads() == before
    with pytest.raises(ValueError):
        set_num_threads(0)


def test_importing_the_kernels_compiles_nothing():
    code = (
        "import numba, tinydiff.autograd.kernels as k\n"
        "import tinydiff.autograd.kernels.conv2d as c, tinydiff.autograd.kernels.group_norm as g\n"
        "import tinydiff.autograd.kernels.winograd as w, tinydiff.autograd.kernels.im2col as i\n"
        "from numba.core.registry import CPUDispatcher\n"
        "ds = [v for m in (c, g, w, i) for v in vars(m).values() if isinstance(v, CPUDispatcher)]\n"
        "assert ds, 'no jitted kernels found'\n"
        "compiled = [d.py_func.__name__ for d in ds if d.signatures]\n"
        "assert not compiled, compiled\n"
    )
    if JIT_DISABLED:
        pytest.skip("no dispatchers exist when the JIT is disabled")
    subprocess.run([sys.executable, "-c", code], check=True)
