"""conv2d and group_norm as autograd ops: gradients against finite differences,
dtypes, and the errors bad input gets."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinydiff as td
from tinydiff.autograd import functional as F


def leaf(a):
    return td.tensor(a, requires_grad=True)


@st.composite
def conv_case(draw):
    n, c, o = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    k = draw(st.integers(1, 3))
    stride, pad = draw(st.integers(1, 2)), draw(st.integers(0, 2))
    h = draw(st.integers(max(1, k - 2 * pad), 5))
    w = draw(st.integers(max(1, k - 2 * pad), 5))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, c, h, w)), rng.standard_normal((o, c, k, k)), rng.standard_normal(o), stride, pad)


@given(conv_case(), st.booleans())
def test_conv2d_gradient_matches_finite_differences(case, with_bias):
    x, w, b, stride, pad = case
    tx, tw, tb = leaf(x), leaf(w), leaf(b)
    if with_bias:
        assert td.gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride=stride, padding=pad), tx, tw, tb)
    else:
        assert td.gradcheck(lambda x, w: F.conv2d(x, w, stride=stride, padding=pad), tx, tw)


@given(conv_case())
def test_conv2d_float32_in_float32_out_with_float32_grads(case):
    x, w, b, stride, pad = (a.astype(np.float32) if isinstance(a, np.ndarray) else a for a in case)
    tx, tw, tb = leaf(x), leaf(w), leaf(b)
    y = F.conv2d(tx, tw, tb, stride=(stride, stride), padding=(pad, pad))
    assert y.dtype == np.float32
    y.backward(np.ones(y.shape, np.float32))
    assert tx.grad.dtype == tw.grad.dtype == tb.grad.dtype == np.float32


def test_conv2d_matches_a_direct_sum():
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((1, 2, 4, 4)), rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3)
    y = F.conv2d(td.tensor(x), td.tensor(w), td.tensor(b), padding=1).data
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    for o in range(3):
        for i in range(4):
            for j in range(4):
                assert np.isclose(y[0, o, i, j], b[o] + (xp[0, :, i : i + 3, j : j + 3] * w[o]).sum())


@st.composite
def gn_case(draw):
    g = draw(st.integers(1, 3))
    c = g * draw(st.integers(1, 3))
    n, h, w = draw(st.integers(1, 2)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    x = rng.standard_normal((n, c, h, w)) * 2 + 0.5
    return x, g, rng.standard_normal(c) + 1, rng.standard_normal(c)


@pytest.mark.parametrize("fused_silu", [False, True])
@given(gn_case())
def test_group_norm_gradient_matches_finite_differences(fused_silu, case):
    x, g, gamma, beta = case
    # finite differences need a group spread well above zero
    xg = x.reshape(x.shape[0], g, -1)
    if xg.shape[-1] < 2 or xg.std(axis=-1).min() < 0.1:
        return
    op = F.group_norm_silu if fused_silu else F.group_norm
    assert td.gradcheck(lambda x, w, b: op(x, g, w, b), leaf(x), leaf(gamma), leaf(beta))
    assert td.gradcheck(lambda x: op(x, g), leaf(x))


def test_group_norm_normalises_each_group_and_keeps_dtype():
    x = np.random.default_rng(1).standard_normal((3, 8, 5, 5)).astype(np.float32) * 4 + 2
    y = F.group_norm(td.tensor(x), 4).data
    assert y.dtype == np.float32
    yg = y.reshape(3, 4, -1)
    np.testing.assert_allclose(yg.mean(-1), 0, atol=1e-5)
    np.testing.assert_allclose(yg.var(-1), 1, atol=1e-3)
    silu = F.group_norm_silu(td.tensor(x), 4).data
    np.testing.assert_allclose(silu, y / (1 + np.exp(-y)), rtol=1e-5, atol=1e-6)


BAD_CONV = [
    ("channel mismatch", (2, 3, 5, 5), (4, 2, 3, 3), {}, r"3 channels.*\(2, 3, 5, 5\).*\(4, 2, 3, 3\)"),
    ("3-D input", (3, 5, 5), (4, 3, 3, 3), {}, r"4-D.*\(3, 5, 5\)"),
    ("3-D weight", (2, 3, 5, 5), (4, 3, 3), {}, r"4-D.*\(4, 3, 3\)"),
    ("kernel larger than padded input", (1, 1, 2, 2), (1, 1, 5, 5), {"padding": 1}, r"\(5, 5\).*\(4, 4\)"),
    ("stride zero", (1, 1, 4, 4), (1, 1, 3, 3), {"stride": 0}, "stride"),
]


@pytest.mark.parametrize("name,xs,ws,kw,msg", BAD_CONV, ids=[c[0] for c in BAD_CONV])
def test_conv2d_bad_input_names_the_shapes(name, xs, ws, kw, msg):
    with pytest.raises(ValueError, match=msg):
        F.conv2d(td.zeros(*xs), td.zeros(*ws), **kw)


def test_conv2d_wrong_bias_shape_and_dtype():
    with pytest.raises(ValueError, match=r"\(4,\)"):
        F.conv2d(td.zeros(1, 3, 4, 4), td.zeros(4, 3, 3, 3), td.zeros(3))
    with pytest.raises(TypeError, match="float64"):
        F.conv2d(td.zeros(1, 3, 4, 4), td.zeros(4, 3, 3, 3, dtype=np.float64))


def test_group_norm_bad_input_names_the_shapes():
    with pytest.raises(ValueError, match=r"num_groups=4.*6 channels.*\(2, 6, 4, 4\)"):
        F.group_norm(td.zeros(2, 6, 4, 4), 4)
    with pytest.raises(ValueError, match=r"weight must have shape \(6,\)"):
        F.group_norm(td.zeros(2, 6, 4, 4), 3, weight=td.ones(5))
    with pytest.raises(ValueError, match=r"bias must have shape \(6,\)"):
        F.group_norm(td.zeros(2, 6, 4, 4), 3, bias=td.ones(6, 1))
    with pytest.raises(ValueError, match=r"\(6,\)"):
        F.group_norm(td.zeros(6), 3)
