"""The graph engine: accumulation, no_grad, freeing, depth, errors, memory."""

import gc

import numpy as np
import pytest

import tinydiff as td
from tinydiff.autograd import Function
from tinydiff.autograd.tensor import Tensor


def test_tensor_from_python_is_float32_and_numpy_keeps_dtype():
    assert td.tensor(1.5).dtype == np.float32
    assert td.tensor([[1, 2], [3, 4]]).dtype == np.float32
    assert td.tensor(np.arange(3)).dtype == np.int64
    assert td.tensor(np.ones(2, dtype=np.float64)).dtype == np.float64
    assert td.tensor([1, 2], dtype=np.float64).dtype == np.float64


def test_tensor_copies_its_input():
    a = np.zeros(3, dtype=np.float32)
    t = td.tensor(a)
    a[0] = 5
    assert t.data[0] == 0


def test_tensor_basics():
    t = td.tensor([[1.0, 2.0, 3.0]])
    assert t.shape == (1, 3) and t.ndim == 2 and t.size == 3
    assert np.asarray(t).dtype == np.float32
    assert t.numpy() is t.data
    assert td.tensor(2.5).item() == 2.5
    assert t.T.shape == (3, 1)
    assert "tensor(" in repr(t)
    with pytest.raises(ValueError, match="one element"):
        t.item()


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(ValueError, match="floating-point"):
        td.tensor(np.arange(3), requires_grad=True)


def test_comparisons_are_not_differentiable():
    x = td.tensor([1.0, -2.0], requires_grad=True)
    m = x > 0
    assert m.dtype == np.bool_ and not m.requires_grad
    np.testing.assert_array_equal(m.data, [True, False])


def test_gradient_accumulates_when_a_tensor_is_used_twice():
    x = td.tensor([3.0], requires_grad=True)
    y = x * x + x  # dy/dx = 2x + 1
    y.backward()
    np.testing.assert_allclose(x.grad, [7.0])


def test_gradients_accumulate_across_backward_calls_until_zeroed():
    x = td.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad, [6.0, 6.0])
    x.zero_grad()
    assert x.grad is None


def test_leaf_grad_is_not_aliased_to_another_leaf():
    a = td.tensor([1.0], requires_grad=True)
    b = td.tensor([1.0], requires_grad=True)
    (a + b).sum().backward()
    a.grad[0] = 100.0
    assert b.grad[0] == 1.0


def test_no_grad_builds_no_graph_and_restores_state_even_on_error():
    x = td.tensor([1.0], requires_grad=True)
    with td.no_grad():
        y = x * 2
        assert not td.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf
    assert td.is_grad_enabled()
    with pytest.raises(ZeroDivisionError):
        with td.no_grad():
            1 / 0
    assert td.is_grad_enabled()

    @td.no_grad()
    def f(t):
        return t * 2

    assert not f(x).requires_grad
    with td.no_grad():
        with td.enable_grad():
            assert (x * 2).requires_grad
        assert not td.is_grad_enabled()


def test_backward_of_non_scalar_needs_a_gradient():
    x = td.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match=r"shape \(2,\)"):
        y.backward()
    y.backward(np.array([1.0, 10.0]))
    np.testing.assert_allclose(x.grad, [2.0, 20.0])
    assert x.grad.dtype == np.float32
    with pytest.raises(ValueError, match="grad has shape"):
        (x * 2).backward(np.ones(3))


def test_backward_twice_needs_retain_graph():
    x = td.tensor([2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad, [8.0])
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_backward_without_grad_requirement_is_an_error():
    with pytest.raises(RuntimeError, match="does not require grad"):
        td.tensor([1.0]).sum().backward()


def test_chain_100000_ops_deep_has_no_recursion_limit():
    x = td.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0 + 0.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [1.0])


def test_retain_grad_keeps_an_intermediate_gradient():
    x = td.tensor([1.0, 2.0], requires_grad=True)
    h = (x * 3).retain_grad()
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad, 2 * h.data)
    np.testing.assert_allclose(x.grad, 18 * x.data)


def _live_tensors():
    gc.collect()
    return sum(isinstance(o, Tensor) for o in gc.get_objects())


def test_graph_is_freed_after_backward_and_del():
    before = _live_tensors()
    x = td.tensor(np.ones((4, 4)), requires_grad=True)
    w = td.tensor(np.ones((4, 4)), requires_grad=True)
    h = x
    for _ in range(20):
        h = td.tanh(h @ w) + h
    loss = (h * h).mean()
    loss.backward()
    del h, loss
    # only the two leaves survive: the backward released every node
    assert _live_tensors() == before + 2
    del x, w
    assert _live_tensors() == before


def test_backward_releases_saved_arrays_of_intermediates_still_referenced():
    x = td.tensor(np.ones(3), requires_grad=True)
    h = x.exp()
    h.sum().backward()
    assert h._node.released and h._node.ctx is None


def test_binary_ops_name_both_shapes_when_they_do_not_broadcast():
    a, b = td.tensor(np.ones((2, 3))), td.tensor(np.ones((4,)))
    for op in (lambda: a + b, lambda: a * b, lambda: a - b, lambda: a / b, lambda: td.maximum(a, b)):
        with pytest.raises(ValueError, match=r"\(2, 3\) and \(4,\)"):
            op()


def test_matmul_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(4, 5\)"):
        td.tensor(np.ones((2, 3))) @ td.tensor(np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"\(2, 2, 3\) and \(3, 3, 4\)"):
        td.tensor(np.ones((2, 2, 3))) @ td.tensor(np.ones((3, 3, 4)))


def test_mixed_float_dtypes_are_an_error_not_a_promotion():
    with pytest.raises(TypeError, match="float32 and float64"):
        td.tensor([1.0]) + td.tensor(np.ones(1))


def test_reshape_and_index_errors_name_the_shape():
    t = td.tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"\(2, 3\) into shape \(4, 2\)"):
        t.reshape(4, 2)
    with pytest.raises(IndexError, match=r"\(2, 3\)"):
        t[5]


def test_function_returning_wrong_gradient_shape_is_caught():
    class Broken(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return grad[:1]

    x = td.tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match="Broken.backward"):
        Broken.apply(x).sum().backward()


def test_gradcheck_catches_a_wrong_backward():
    class WrongSquare(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_arrays
            return grad * x  # should be 2 x

    x = td.tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    with pytest.raises(td.GradcheckError, match=r"index \(2,\).*backward gives"):
        td.gradcheck(WrongSquare.apply, x)


def test_gradcheck_catches_an_error_that_sums_to_zero():
    """With an all-ones upstream gradient this bug would pass unseen."""

    class CenterWrong(Function):
        @staticmethod
        def forward(ctx, x):
            return x - x.mean()

        @staticmethod
        def backward(ctx, grad):
            return grad - grad.mean() + (np.arange(grad.size) - (grad.size - 1) / 2)

    x = td.tensor(np.array([0.1, 0.2, 0.3, 0.4]), requires_grad=True)
    with pytest.raises(td.GradcheckError):
        td.gradcheck(CenterWrong.apply, x)


def test_gradcheck_requires_float64():
    with pytest.raises(ValueError, match="float64"):
        td.gradcheck(lambda t: t * 2, td.tensor([1.0], requires_grad=True))


def test_gradcheck_samples_elements_and_restores_inputs():
    x = td.tensor(np.linspace(-1, 1, 50), requires_grad=True)
    before = x.data.copy()
    assert td.gradcheck(lambda t: t.tanh() * t, x, max_elements=5)
    np.testing.assert_array_equal(x.data, before)
    assert x.grad is None
