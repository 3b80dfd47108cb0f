"""The conv2d fast paths (1x1 GEMM, fused bias gradient, channels-last im2col) equal the NumPy twin.

``tests/test_kernels.py`` holds the whole of ``conv2d_forward`` / ``conv2d_backward``
to the twin on random problems; here each fast path is pinned down by the shapes
that select it, and the work-splitting arguments (thread count, row parts) are
driven directly so their edge cases run on any machine, even a 1-core one.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kernel_strategies import conv_cases

from tinydiff.autograd.kernels import (
    conv2d_backward,
    conv2d_backward_ref,
    conv2d_forward,
    conv2d_forward_ref,
)
from tinydiff.autograd.kernels.conv1x1 import (
    conv1x1_backward,
    conv1x1_forward,
    conv1x1_split,
)
from tinydiff.autograd.kernels.conv2d import _nhwc_weight
from tinydiff.autograd.kernels.im2col import (
    _channel_block,
    im2col_nhwc_conv_backward,
    im2col_nhwc_conv_forward,
)

JIT_DISABLED = os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0")
NEEDS = [(True, True, True), (True, False, False), (False, True, False), (False, False, True),
         (False, True, True), (True, False, True)]


def assert_close(actual, expected, scale):
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    if expected.dtype == np.float64:
        np.testing.assert_allclose(actual, expected, rtol=1e-9, atol=1e-9 * scale)
    else:
        np.testing.assert_allclose(actual, expected, rtol=2e-4, atol=2e-4 * scale)


def problem(n, c, o, h, w, k, s, p, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((o, c, k, k)).astype(dtype)
    b = rng.standard_normal(o).astype(dtype)
    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    gy = rng.standard_normal((n, o, ho, wo)).astype(dtype)
    return x, wt, b, gy, float(np.sqrt(c * k * k * n * ho * wo))


def check_against_ref(x, wt, b, gy, s, p, scale, need=(True, True, True)):
    st_, pd = (s, s), (p, p)
    assert_close(conv2d_forward(x, wt, b, st_, pd), conv2d_forward_ref(x, wt, b, st_, pd), scale)
    got = conv2d_backward(x, wt, gy, st_, pd, *need)
    expected = conv2d_backward_ref(x, wt, gy, st_, pd)
    for g, e, asked in zip(got, expected, need):
        if asked:
            assert_close(g, e, scale)
        else:
            assert g is None


# --------------------------------------------------------------------------- 1x1 path


@given(
    st.integers(1, 3), st.integers(1, 7), st.integers(1, 7), st.integers(1, 6), st.integers(1, 6),
    st.sampled_from([np.float32, np.float64]), st.booleans(), st.sampled_from(NEEDS), st.integers(0, 2**32 - 1),
)
def test_conv1x1_equals_ref_for_any_sizes_and_gradient_subset(n, c, o, h, w, dtype, with_bias, need, seed):
    x, wt, b, gy, scale = problem(n, c, o, h, w, 1, 1, 0, dtype, seed)
    check_against_ref(x, wt, b if with_bias else None, gy, 1, 0, scale, need)


@pytest.mark.parametrize("nw,nsplit", [(1, 1), (3, 1), (2, 2), (3, 4), (5, 7)])
def test_conv1x1_kernels_split_rows_and_threads_without_changing_the_result(nw, nsplit):
    # more parts than rows (O = 3 < 7) leaves some parts empty; more threads than items leaves threads idle
    x, wt, b, gy, scale = problem(2, 5, 3, 3, 4, 1, 1, 0, np.float64)
    y = np.empty(gy.shape)
    conv1x1_forward(x, wt.reshape(3, 5), b, True, y, nw, nsplit)
    assert_close(y, conv2d_forward_ref(x, wt, b, (1, 1), (0, 0)), scale)
    dx = np.empty_like(x)
    dwp, dbp = np.zeros((nw, 3, 5)), np.zeros((nw, 3))
    conv1x1_backward(x, np.ascontiguousarray(wt.reshape(3, 5).T), gy, dx, dwp, dbp, True, True, True, nw, nsplit)
    dx_ref, dw_ref, db_ref = conv2d_backward_ref(x, wt, gy, (1, 1), (0, 0))
    assert_close(dx, dx_ref, scale)
    assert_close(dwp.sum(axis=0).reshape(3, 5, 1, 1), dw_ref, scale)
    assert_close(dbp.sum(axis=0), db_ref, scale)


@pytest.mark.parametrize("o,nsplit", [(8, 1), (13, 1), (17, 3)])
def test_conv1x1_backward_transposes_gy_in_blocks_of_8_rows_and_a_remainder(o, nsplit):
    # dw^T is computed from a copy of gy[n]^T made 8 rows at a time: full blocks, a remainder, both
    x, wt, b, gy, scale = problem(3, 6, o, 5, 7, 1, 1, 0, np.float32)
    dx = np.empty_like(x)
    dwp, dbp = np.zeros((2, o, 6)), np.zeros((2, o))
    conv1x1_backward(x, np.ascontiguousarray(wt.reshape(o, 6).T), gy, dx, dwp, dbp, True, True, True, 2, nsplit)
    dx_ref, dw_ref, db_ref = conv2d_backward_ref(x, wt, gy, (1, 1), (0, 0))
    assert_close(dx, dx_ref, scale)
    assert_close(dwp.sum(axis=0).reshape(o, 6, 1, 1).astype(np.float32), dw_ref, scale)
    assert_close(dbp.sum(axis=0).astype(np.float32), db_ref, scale)


def test_conv1x1_split_gives_every_thread_work_when_samples_are_few():
    assert conv1x1_split(64, 2) == 1
    assert conv1x1_split(1, 2) == 2
    assert conv1x1_split(3, 8) == 3  # 9 items for 8 threads


def test_conv1x1_returns_fresh_arrays_each_call():
    x, wt, b, gy, _ = problem(2, 4, 4, 3, 3, 1, 1, 0, np.float32)
    y1 = conv2d_forward(x, wt, b, (1, 1), (0, 0))
    g1 = conv2d_backward(x, wt, gy, (1, 1), (0, 0))
    keep = [y1.copy()] + [g.copy() for g in g1]
    y2 = conv2d_forward(2 * x, wt, b, (1, 1), (0, 0))
    g2 = conv2d_backward(2 * x, wt, 2 * gy, (1, 1), (0, 0))
    for a, b_, k in zip([y1, *g1], [y2, *g2], keep):
        assert not np.shares_memory(a, b_)
        np.testing.assert_array_equal(a, k)


# --------------------------------------------------------------------------- every path, every gradient subset

PATH_SHAPES = [
    # (N, C, O, H, W, k, stride, padding), one per algorithm
    (3, 5, 7, 9, 7, 3, 1, 1),  # Winograd
    (2, 4, 3, 4, 5, 3, 1, 0),  # Winograd, input-gradient conv padding 2
    (3, 6, 5, 9, 8, 3, 2, 1),  # im2col, stride 2 (the U-Net's downsample)
    (2, 3, 4, 5, 6, 2, 2, 0),  # im2col, even kernel
    (2, 3, 4, 5, 6, 1, 2, 0),  # 1x1 with stride 2: im2col
    (3, 9, 5, 9, 8, 3, 2, 1),  # channels-last im2col, odd sizes
    (2, 8, 4, 6, 7, 2, 2, 0),  # channels-last im2col, even kernel
    (1, 20, 3, 32, 32, 3, 2, 1),  # channels-last, 32x32 planes: transposes in blocks of 8 channels, 4 left over
    (1, 9, 6, 5, 4, 1, 1, 0),  # 1x1: one sample, rows split over threads
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("need", NEEDS)
@pytest.mark.parametrize("n,c,o,h,w,k,s,p", PATH_SHAPES)
def test_every_conv_path_equals_ref_for_every_gradient_subset(n, c, o, h, w, k, s, p, need, dtype):
    x, wt, b, gy, scale = problem(n, c, o, h, w, k, s, p, dtype)
    check_against_ref(x, wt, b, gy, s, p, scale, need)


# --------------------------------------------------------------------------- channels-last im2col kernels


@given(conv_cases(), st.integers(1, 3), st.integers(1, 3), st.sampled_from(NEEDS[:4]))
def test_channels_last_im2col_kernels_equal_ref_for_any_problem(case, nw, nb, need):
    # conv2d picks this path only for strided convs with >= 8 channels; the kernels themselves take any conv
    x, w, gy = case.x, case.w, case.gy
    (sh, sw), (ph, pw) = case.stride, case.padding
    O, C, kh, kw = w.shape
    b = case.b if case.b is not None else np.zeros(O, x.dtype)
    scale = float(np.sqrt(w[0].size * gy.shape[0] * gy[0, 0].size))
    y = np.empty(gy.shape, x.dtype)
    im2col_nhwc_conv_forward(x, _nhwc_weight(w), b, kh, kw, sh, sw, ph, pw, y, nw, nb)
    assert_close(y, conv2d_forward_ref(x, w, b, case.stride, case.padding), scale)
    need_dx, need_dw, need_db = need
    dx = np.empty_like(x)
    dwp, dbp = np.zeros((nw, O, kh * kw * C)), np.zeros((nw, O))
    im2col_nhwc_conv_backward(x, _nhwc_weight(w), gy, kh, kw, sh, sw, ph, pw, dx, dwp, dbp,
                              need_dx, need_dw, need_db, nw, nb)
    dx_ref, dw_ref, db_ref = conv2d_backward_ref(x, w, gy, case.stride, case.padding)
    if need_dx:
        assert_close(dx, dx_ref, scale)
    if need_dw:
        assert_close(dwp.sum(axis=0).reshape(O, kh, kw, C).transpose(0, 3, 1, 2).astype(x.dtype), dw_ref, scale)
    if need_db:
        assert_close(dbp.sum(axis=0).astype(x.dtype), db_ref, scale)


def test_channel_block_keeps_at_most_8_aliasing_planes_per_cache_set():
    assert _channel_block(32 * 32 * 4, 128) == 8  # 4 KB planes: all alias
    assert _channel_block(16 * 16 * 4, 128) == 32  # 1 KB planes: 4 sets
    assert _channel_block(14 * 14 * 4, 64) == 64  # 784 B planes: no blocking needed
    assert _channel_block(32 * 32 * 4, 3) == 3


# --------------------------------------------------------------------------- numba cache


@pytest.mark.skipif(JIT_DISABLED, reason="no compilation when the JIT is disabled")
def test_1x1_and_channels_last_kernels_load_from_the_cache_in_a_second_process():
    code = (
        "import numpy as np\n"
        "from numba.core.registry import CPUDispatcher\n"
        "import tinydiff.autograd.kernels.conv2d as c, tinydiff.autograd.kernels.conv1x1 as m\n"
        "import tinydiff.autograd.kernels.im2col as i\n"
        "x = np.ones((2, 8, 6, 6), np.float32)\n"
        "for k, s, p in ((1, 1, 0), (3, 2, 1)):\n"
        "    w = np.ones((8, 8, k, k), np.float32)\n"
        "    y = c.conv2d_forward(x, w, np.ones(8, np.float32), (s, s), (p, p))\n"
        "    c.conv2d_backward(x, w, y, (s, s), (p, p))\n"
        "ds = [v for mod in (m, i) for v in vars(mod).values() if isinstance(v, CPUDispatcher) and v.signatures]\n"
        "assert ds\n"
        "print(sum(sum(d.stats.cache_misses.values()) for d in ds))\n"
    )
    for _ in range(2):  # the first run may fill the cache; the second must compile nothing
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert int(out.stdout) == 0
