"""Check ``backward()`` against central finite differences, in float64.

The scalar that is differentiated is ``sum(u * fn(*inputs))`` with a random upstream
gradient ``u`` (chainer's and PyTorch's practice): with ``u`` all ones, any error
whose gradient sums to zero -- as in every normalisation -- would go unseen.
"""

from __future__ import annotations

import numpy as np

from .grad_mode import enable_grad, no_grad
from .tensor import Tensor


class GradcheckError(AssertionError):
    """``backward()`` and finite differences disagree."""


def _scalar(fn, inputs, u) -> float:
    out = fn(*inputs)
    return float(np.sum(u * out.data))


def gradcheck(
    fn,
    *inputs: Tensor,
    eps: float = 1e-6,
    atol: float = 1e-6,
    rtol: float = 1e-4,
    max_elements: int | None = None,
    seed: int = 0,
) -> bool:
    """Compare the gradients of ``fn`` with respect to ``inputs`` against finite differences.

    ``inputs`` are float64 tensors with ``requires_grad=True`` (parameters used inside
    ``fn`` may be passed too: they are perturbed in place and restored). Each checked
    element ``i`` needs ``|analytic - numeric| <= atol + rtol * |numeric|`` with
    ``numeric = (f(x + eps e_i) - f(x - eps e_i)) / (2 eps)``. ``max_elements`` checks
    a random sample of that many elements per input instead of all of them.
    Raises :class:`GradcheckError` naming the input, the worst element and both values;
    returns True otherwise.
    """
    if not inputs:
        raise ValueError("gradcheck needs at least one input tensor")
    for k, t in enumerate(inputs):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise ValueError(f"gradcheck input {k} must be a Tensor with requires_grad=True")
        if t.dtype != np.float64:
            raise ValueError(
                f"gradcheck runs in float64, input {k} is {t.dtype}: pass x.astype(np.float64) "
                "(and build any module in float64)"
            )
    rng = np.random.default_rng(seed)
    with enable_grad():
        out = fn(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    u = rng.standard_normal(out.shape)
    saved = [t.grad for t in inputs]
    for t in inputs:
        t.grad = None
    out.backward(u.astype(out.dtype))
    analytic = [t.grad if t.grad is not None else np.zeros_like(t.data) for t in inputs]
    for t, g in zip(inputs, saved):
        t.grad = g

    with no_grad():
        for k, (t, a) in enumerate(zip(inputs, analytic)):
            if a.shape != t.shape or a.dtype != t.dtype:
                raise GradcheckError(
                    f"input {k}: gradient has shape {a.shape} dtype {a.dtype}, "
                    f"expected {t.shape} {t.dtype}"
                )
            flat = t.data.reshape(-1)  # a view: perturbing it perturbs the input
            if not np.shares_memory(flat, t.data):
                raise ValueError(f"gradcheck input {k} must be a contiguous array")
            idx = np.arange(flat.size)
            if max_elements is not None and flat.size > max_elements:
                idx = rng.choice(flat.size, size=max_elements, replace=False)
            worst = None
            for i in idx:
                orig = flat[i]
                flat[i] = orig + eps
                f_plus = _scalar(fn, inputs, u)
                flat[i] = orig - eps
                f_minus = _scalar(fn, inputs, u)
                flat[i] = orig
                numeric = (f_plus - f_minus) / (2 * eps)
                got = a.reshape(-1)[i]
                excess = abs(got - numeric) - (atol + rtol * abs(numeric))
                if excess > 0 and (worst is None or excess > worst[0]):
                    worst = (excess, i, got, numeric)
            if worst is not None:
                _, i, got, numeric = worst
                where = np.unravel_index(i, t.shape)
                raise GradcheckError(
                    f"input {k} (shape {t.shape}): gradient mismatch at index {tuple(int(j) for j in where)}: "
                    f"backward gives {got:.8g}, finite differences give {numeric:.8g} "
                    f"(atol={atol}, rtol={rtol}, eps={eps})"
                )
    return True
