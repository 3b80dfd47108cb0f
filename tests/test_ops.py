"""Every op against NumPy (forward values, dtype kept) and against finite
differences (gradient), with hypothesis drawing shapes, axes and values."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import expit

import tinydiff as td
from tinydiff.autograd import functional as F
from strategies import DTYPES, array_and_axis, arrays, broadcast_pair, distinct_array, shapes, values


def leaf(x):
    return td.tensor(x, requires_grad=True)


def assert_forward(out, expected, dtype):
    assert isinstance(out, td.Tensor)
    assert out.dtype == dtype, f"dtype changed from {dtype} to {out.dtype}"
    expected = np.asarray(expected)
    assert out.shape == expected.shape
    tol = 2e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out.data, expected, rtol=tol, atol=tol)


def assert_float32_grads(fn, *arrays_):
    """backward in float32 leaves float32 gradients of the inputs' shapes."""
    ts = [leaf(a.astype(np.float32)) for a in arrays_]
    out = fn(*ts)
    out.backward(np.ones(out.shape, dtype=np.float32))
    for t in ts:
        assert t.grad is not None and t.grad.dtype == np.float32 and t.grad.shape == t.shape


# ------------------------------------------------------------------ unary ops
UNARY = {
    "neg": (lambda t: -t, np.negative, values()),
    "exp": (td.exp, np.exp, values(-2, 2)),
    "log": (td.log, np.log, values(0.2, 3)),
    "sqrt": (td.sqrt, np.sqrt, values(0.2, 3)),
    "abs": (td.abs, np.abs, values(away_from=(0.0,))),
    "tanh": (td.tanh, np.tanh, values()),
    "sigmoid": (td.sigmoid, expit, values()),
    "relu": (td.relu, lambda x: np.maximum(x, 0), values(away_from=(0.0,))),
    "silu": (td.silu, lambda x: x * expit(x), values()),
    "sin": (td.sin, np.sin, values()),
    "cos": (td.cos, np.cos, values()),
    "square": (lambda t: t**2, np.square, values()),
    "cube": (lambda t: t**3, lambda x: x**3, values()),
    "pow_half": (lambda t: t**0.5, np.sqrt, values(0.2, 3)),
    "reciprocal_pow": (lambda t: t**-1, np.reciprocal, values(away_from=(0.0,), margin=0.3)),
    "clip": (lambda t: td.clip(t, -0.5, 0.5), lambda x: np.clip(x, -0.5, 0.5), values(away_from=(-0.5, 0.5))),
    "clip_lower": (lambda t: t.clamp(min=0.25), lambda x: np.maximum(x, 0.25), values(away_from=(0.25,))),
    "upsample": (F.upsample_nearest2d, lambda x: x.repeat(2, axis=-2).repeat(2, axis=-1), values()),
}


@pytest.mark.parametrize("name", UNARY)
@given(data=st.data())
def test_unary_forward_matches_numpy_and_keeps_dtype(name, data):
    op, ref, elements = UNARY[name]
    dtype = data.draw(st.sampled_from(DTYPES))
    min_dims = 2 if name == "upsample" else 0
    x = data.draw(arrays(shapes(min_dims=min_dims), dtype, elements))
    assert_forward(op(td.Tensor(x)), ref(x), dtype)


@pytest.mark.parametrize("name", UNARY)
@given(data=st.data())
def test_unary_gradient_matches_finite_differences(name, data):
    op, _, elements = UNARY[name]
    min_dims = 2 if name == "upsample" else 0
    x = data.draw(arrays(shapes(min_dims=min_dims), np.float64, elements))
    assert td.gradcheck(op, leaf(x))
    assert_float32_grads(op, x)


# ------------------------------------------------------------------ binary ops
def _not_tied(a, b):
    return np.all(np.abs(np.subtract(a, b)) > 1e-3)


BINARY = {
    "add": (lambda a, b: a + b, np.add, None, None),
    "sub": (lambda a, b: a - b, np.subtract, None, None),
    "mul": (lambda a, b: a * b, np.multiply, None, None),
    "div": (lambda a, b: a / b, np.divide, None, values(away_from=(0.0,), margin=0.4)),
    "pow": (lambda a, b: a**b, np.power, values(0.5, 2.0), values(-2, 2)),
    "maximum": (td.maximum, np.maximum, None, None),
    "minimum": (td.minimum, np.minimum, None, None),
}


@pytest.mark.parametrize("name", BINARY)
@given(data=st.data())
def test_binary_forward_broadcasts_as_numpy(name, data):
    op, ref, ea, eb = BINARY[name]
    dtype = data.draw(st.sampled_from(DTYPES))
    a, b = data.draw(broadcast_pair(dtype, ea, eb))
    assert_forward(op(td.Tensor(a), td.Tensor(b)), ref(a, b), dtype)


@pytest.mark.parametrize("name", BINARY)
@given(data=st.data())
def test_binary_gradient_reduced_to_each_input_shape(name, data):
    op, _, ea, eb = BINARY[name]
    a, b = data.draw(broadcast_pair(np.float64, ea, eb))
    if name in ("maximum", "minimum") and not _not_tied(a, b):
        return
    assert td.gradcheck(op, leaf(a), leaf(b))
    assert_float32_grads(op, a, b)


@given(data=st.data())
def test_where_routes_gradient_by_condition(data):
    a, b = data.draw(broadcast_pair())
    cond = np.broadcast_to(a, np.broadcast_shapes(a.shape, b.shape)) > 0
    assert_forward(td.where(cond, td.Tensor(a), td.Tensor(b)), np.where(cond, a, b), np.float64)
    assert td.gradcheck(lambda x, y: td.where(cond, x, y), leaf(a), leaf(b))


SCALAR_EXPRS = {
    "2*x": lambda x: 2 * x,
    "x*2": lambda x: x * 2,
    "1-x": lambda x: 1 - x,
    "x-1": lambda x: x - 1,
    "1+x": lambda x: 1 + x,
    "x/3": lambda x: x / 3,
    "3/x": lambda x: 3 / x,
    "x**2": lambda x: x**2,
    "2**x": lambda x: 2**x,
    "float64 scalar * x": lambda x: np.float64(0.3) * x,
    "x * float64 scalar": lambda x: x * np.float64(0.3),
}


@pytest.mark.parametrize("expr", SCALAR_EXPRS)
@given(x=arrays(shapes(), np.float64, values(0.3, 3)))
def test_python_and_numpy_scalars_on_either_side_keep_float32(expr, x):
    fn = SCALAR_EXPRS[expr]
    x32 = x.astype(np.float32)
    out = fn(td.Tensor(x32))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.data, np.asarray(fn(x32)).astype(np.float32), rtol=1e-5, atol=1e-6)
    assert td.gradcheck(fn, leaf(x))
    assert_float32_grads(fn, x)


# ------------------------------------------------------------------ reductions
REDUCTIONS = {
    "sum": (td.sum, np.sum),
    "mean": (td.mean, np.mean),
    "var": (td.var, np.var),
    "max": (td.max, np.max),
}


@pytest.mark.parametrize("name", REDUCTIONS)
@given(data=st.data(), keepdims=st.booleans())
def test_reduction_forward_and_gradient(name, data, keepdims):
    op, ref = REDUCTIONS[name]
    if name == "max":
        x = data.draw(distinct_array())
        axis = None if x.ndim == 0 else data.draw(st.one_of(st.none(), st.integers(-x.ndim, x.ndim - 1)))
    else:
        x, axis = data.draw(array_and_axis())
    for dtype in DTYPES:
        xd = x.astype(dtype)
        assert_forward(op(td.Tensor(xd), axis=axis, keepdims=keepdims), ref(xd, axis=axis, keepdims=keepdims), dtype)
    assert td.gradcheck(lambda t: op(t, axis=axis, keepdims=keepdims), leaf(x))
    assert_float32_grads(lambda t: op(t, axis=axis, keepdims=keepdims), x)


def test_reductions_accept_pytorch_dim_and_keepdim():
    x = td.tensor(np.arange(24.0).reshape(2, 3, 4))
    for name in REDUCTIONS:
        a = getattr(x, name)(dim=1, keepdim=True)
        b = getattr(x, name)(axis=1, keepdims=True)
        assert a.shape == (2, 1, 4)
        np.testing.assert_array_equal(a.data, b.data)


def test_unbiased_variance_with_ddof():
    x = np.random.default_rng(0).standard_normal((4, 5))
    np.testing.assert_allclose(td.tensor(x).var(axis=1, ddof=1).data, x.var(axis=1, ddof=1))
    assert td.gradcheck(lambda t: t.var(axis=0, ddof=1), leaf(x))


def test_max_shares_gradient_between_ties():
    x = leaf(np.array([1.0, 3.0, 3.0]))
    x.max().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.5, 0.5])


# ------------------------------------------------------------------ shape ops
@given(x=arrays(shapes(min_dims=1)), data=st.data())
def test_reshape_transpose_swapaxes(x, data):
    target = (x.size,) if data.draw(st.booleans()) else tuple(reversed(x.shape))
    assert_forward(td.Tensor(x).reshape(target), x.reshape(target), np.float64)
    assert td.gradcheck(lambda t: t.reshape(*target) * np.arange(x.size).reshape(target), leaf(x))
    perm = tuple(data.draw(st.permutations(range(x.ndim))))
    assert_forward(td.Tensor(x).transpose(*perm), x.transpose(perm), np.float64)
    assert td.gradcheck(lambda t: t.permute(perm), leaf(x))
    assert_forward(td.Tensor(x).T, x.T, np.float64)
    a, b = data.draw(st.integers(0, x.ndim - 1)), data.draw(st.integers(-x.ndim, -1))
    assert_forward(td.Tensor(x).swapaxes(a, b), np.swapaxes(x, a, b), np.float64)
    assert td.gradcheck(lambda t: t.swapaxes(a, b), leaf(x))


INDEXES = {
    "int": 1,
    "negative int": -1,
    "slice": (slice(None), slice(1, 3)),
    "step slice": (slice(None, None, 2),),
    "None and ellipsis": (Ellipsis, None, 2),
    "repeated integer array": np.array([0, 2, 0, 0]),
    "integer list on axis 1": (slice(None), [1, 1, 3]),
    "two integer arrays": (np.array([0, 2]), slice(None), np.array([4, 4])),
    "boolean mask": np.array([True, False, True]),
}


@pytest.mark.parametrize("name", INDEXES)
@given(x=arrays((3, 4, 5)))
def test_getitem_like_numpy_with_scatter_add_backward(name, x):
    index = INDEXES[name]
    np_index = tuple(np.asarray(i) if isinstance(i, list) else i for i in index) if isinstance(index, tuple) else index
    assert_forward(td.Tensor(x)[index], x[np_index], np.float64)
    assert td.gradcheck(lambda t: t[index], leaf(x))


def test_getitem_accumulates_repeated_indices():
    x = leaf(np.zeros(3))
    x[np.array([0, 0, 2])].sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 0.0, 1.0])


@given(data=st.data(), n=st.integers(1, 3))
def test_concat_stack_split(data, n):
    base = data.draw(shapes(min_dims=1))
    axis = data.draw(st.integers(-len(base), len(base) - 1))
    xs = []
    for _ in range(n):
        shape = list(base)
        shape[axis] = data.draw(st.integers(1, 3))
        xs.append(data.draw(arrays(tuple(shape))))
    assert_forward(td.concat([td.Tensor(x) for x in xs], axis=axis), np.concatenate(xs, axis=axis), np.float64)
    assert td.gradcheck(lambda *ts: td.concat(ts, axis=axis), *[leaf(x) for x in xs])
    same = [data.draw(arrays(base)) for _ in range(n)]
    sax = data.draw(st.integers(0, len(base)))
    assert_forward(td.stack([td.Tensor(x) for x in same], axis=sax), np.stack(same, axis=sax), np.float64)
    assert td.gradcheck(lambda *ts: td.stack(ts, dim=sax), *[leaf(x) for x in same])
    joined = np.concatenate(same, axis=axis)
    parts = td.split(td.Tensor(joined), n, axis=axis)
    for part, ref in zip(parts, np.split(joined, n, axis=axis)):
        assert_forward(part, ref, np.float64)
    w = np.arange(1, n + 1)
    assert td.gradcheck(lambda t: sum(p * float(k) for p, k in zip(td.split(t, n, axis=axis), w)), leaf(joined))


@given(x=arrays(shapes(min_dims=1)), data=st.data())
def test_pad_and_its_crop_backward(x, data):
    widths = [tuple(data.draw(st.lists(st.integers(0, 2), min_size=2, max_size=2))) for _ in range(x.ndim)]
    assert_forward(td.pad(td.Tensor(x), widths, value=1.5), np.pad(x, widths, constant_values=1.5), np.float64)
    assert td.gradcheck(lambda t: td.pad(t, widths), leaf(x))


@given(data=st.data())
def test_broadcast_to_sums_back(data):
    x = data.draw(arrays(shapes()))
    target = (2,) + tuple(s if s != 1 else 3 for s in x.shape)
    assert_forward(td.Tensor(x).broadcast_to(target), np.broadcast_to(x, target), np.float64)
    assert td.gradcheck(lambda t: t.broadcast_to(target), leaf(x))


# ------------------------------------------------------------------ matmul
MATMUL_SHAPES = [
    ((3,), (3,)),
    ((3,), (3, 2)),
    ((2, 3), (3,)),
    ((2, 3), (3, 4)),
    ((5, 2, 3), (3, 4)),
    ((2, 1, 2, 3), (5, 3, 2)),
    ((4,), (2, 4, 3)),
    ((2, 4, 3), (3,)),
]


@pytest.mark.parametrize("sa,sb", MATMUL_SHAPES)
@given(data=st.data())
def test_matmul_follows_numpy_including_1d_and_batch_broadcast(sa, sb, data):
    a, b = data.draw(arrays(sa)), data.draw(arrays(sb))
    for dtype in DTYPES:
        assert_forward(td.Tensor(a.astype(dtype)) @ td.Tensor(b.astype(dtype)), np.matmul(a, b).astype(dtype), dtype)
    assert td.gradcheck(td.matmul, leaf(a), leaf(b))
    assert_float32_grads(lambda x, y: x @ y, a, b)


# ------------------------------------------------------------------ nn ops
@given(data=st.data())
def test_softmax_and_log_softmax(data):
    x, _ = data.draw(array_and_axis(min_dims=1, elements=values(-10, 10)))
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    ref = e / e.sum(axis=axis, keepdims=True)
    assert_forward(F.softmax(td.Tensor(x), axis=axis), ref, np.float64)
    assert_forward(F.log_softmax(td.Tensor(x), dim=axis), np.log(ref), np.float64)
    assert td.gradcheck(lambda t: F.softmax(t, axis=axis), leaf(x))
    assert td.gradcheck(lambda t: F.log_softmax(t, axis=axis), leaf(x))


def test_softmax_is_stable_for_large_inputs():
    x = td.tensor(np.array([1000.0, 1001.0, 1002.0], dtype=np.float32))
    y = F.softmax(x)
    assert np.isfinite(y.data).all() and abs(y.data.sum() - 1) < 1e-6
    assert np.isfinite(F.log_softmax(x).data).all()


@given(data=st.data())
def test_embedding_gathers_rows_and_scatters_gradient(data):
    w = data.draw(arrays((5, 3)))
    idx = np.array(data.draw(st.lists(st.integers(0, 4), min_size=1, max_size=8)))
    assert_forward(F.embedding(idx, td.Tensor(w)), w[idx], np.float64)
    assert td.gradcheck(lambda t: F.embedding(idx, t), leaf(w))


def test_dropout_is_seeded_scaled_and_off_in_eval():
    x = td.ones(1000, 10)
    a = F.dropout(x, 0.3, training=True, generator=7)
    b = F.dropout(x, 0.3, training=True, generator=7)
    np.testing.assert_array_equal(a.data, b.data)
    kept = a.data != 0
    np.testing.assert_allclose(a.data[kept], 1 / 0.7, rtol=1e-6)
    assert abs(kept.mean() - 0.7) < 0.02
    assert a.dtype == np.float32
    assert F.dropout(x, 0.3, training=False) is x
    w = np.random.default_rng(1).standard_normal((4, 6))
    assert td.gradcheck(lambda t: F.dropout(t, 0.5, generator=3), leaf(w))


@given(data=st.data())
def test_mse_loss_all_reductions(data):
    a, b = data.draw(arrays(shapes())), None
    b = data.draw(arrays(a.shape))
    for reduction, ref in (("mean", np.mean((a - b) ** 2)), ("sum", np.sum((a - b) ** 2)), ("none", (a - b) ** 2)):
        assert_forward(F.mse_loss(td.Tensor(a), td.Tensor(b), reduction=reduction), ref, np.float64)
        assert td.gradcheck(lambda x, y: F.mse_loss(x, y, reduction=reduction), leaf(a), leaf(b))


def test_astype_is_explicit_and_casts_gradient_back():
    x = leaf(np.array([1.0, 2.0], dtype=np.float32))
    y = x.astype(np.float64)
    assert y.dtype == np.float64
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [2.0, 4.0])


# ------------------------------------------------------------------ compositions
def test_small_mlp_gradient():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 3))
    w1, b1 = leaf(rng.standard_normal((3, 8))), leaf(rng.standard_normal(8))
    w2, b2 = leaf(rng.standard_normal((8, 2))), leaf(rng.standard_normal(2))

    def mlp(w1, b1, w2, b2):
        return td.tanh(td.Tensor(x) @ w1 + b1).silu() @ w2 + b2

    assert td.gradcheck(mlp, w1, b1, w2, b2)


def test_softmax_cross_entropy_gradient_and_closed_form():
    rng = np.random.default_rng(1)
    logits = leaf(rng.standard_normal((6, 4)))
    labels = rng.integers(0, 4, size=6)

    def xent(z):
        return -F.log_softmax(z, axis=1)[np.arange(6), labels].mean()

    assert td.gradcheck(xent, logits)
    xent(logits).backward()
    p = np.exp(logits.data) / np.exp(logits.data).sum(1, keepdims=True)
    onehot = np.eye(4)[labels]
    np.testing.assert_allclose(logits.grad, (p - onehot) / 6, rtol=1e-10)


def test_long_float32_composition_keeps_every_grad_float32():
    rng = np.random.default_rng(2)
    params = [leaf(rng.standard_normal(s).astype(np.float32)) for s in [(4, 6), (6,), (6, 3), (1, 3)]]
    x = td.Tensor(rng.standard_normal((5, 4)).astype(np.float32))
    w1, b1, w2, g = params
    h = td.silu(x @ w1 + b1)
    h = td.concat([h, h.sigmoid()], axis=0)[::2]
    h = (h @ w2) * g
    h = F.softmax(h.reshape(3, 3, -1) if h.size % 9 == 0 else h, axis=-1)
    loss = (h.var(axis=0) + h.max(axis=-1, keepdims=True).exp() / 2 + td.sqrt(h * h + 1)).mean()
    loss = F.mse_loss(loss.reshape(1), td.tensor([0.5])) + 1 - 2 * loss
    assert loss.dtype == np.float32
    loss.backward()
    for p in params:
        assert p.grad.dtype == np.float32 and p.grad.shape == p.shape
