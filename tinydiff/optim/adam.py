"""Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019), PyTorch's update rules."""

from __future__ import annotations

import math

import numpy as np

from .optimizer import Optimizer


class Adam(Optimizer):
    r"""``Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0)``.

    Kingma & Ba 2015, Algorithm 1, with PyTorch's L2 weight decay. For each parameter
    ``p`` with gradient ``g``, at its step ``t`` (1-based, counted per parameter)::

        g     <- g + weight_decay * p                      (L2 penalty, if weight_decay != 0)
        m_t   =  beta1 * m_{t-1} + (1 - beta1) * g          (first moment,  m_0 = 0)
        v_t   =  beta2 * v_{t-1} + (1 - beta2) * g * g      (second moment, v_0 = 0)
        m_hat =  m_t / (1 - beta1**t)                       (bias corrections)
        v_hat =  v_t / (1 - beta2**t)
        p     <- p - lr * m_hat / (sqrt(v_hat) + eps)

    ``eps`` is added to ``sqrt(v_hat)``, after the bias correction, as in the paper and
    in PyTorch (TensorFlow's Adam adds it to ``sqrt(v_t)`` instead). The code computes
    the last line as PyTorch does, ``p -= (lr / (1 - beta1**t)) * m_t / (sqrt(v_t) /
    sqrt(1 - beta2**t) + eps)``, which is the same expression.

    State per parameter: ``step`` (int), ``exp_avg`` (m), ``exp_avg_sq`` (v), the
    arrays in the parameter's dtype. ``p.grad`` itself is never modified.
    """

    _hyperparameters = ("betas", "eps", "weight_decay")
    _decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(params, lr)
        beta1, beta2 = betas
        if not 0.0 <= beta1 < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {beta1}")
        if not 0.0 <= beta2 < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {beta2}")
        if not eps >= 0.0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not weight_decay >= 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        # Python floats, so that NumPy keeps float32 arithmetic in float32
        self.betas = (float(beta1), float(beta2))
        self.eps = float(eps)
        self.weight_decay = float(weight_decay)

    def _update(self, p, g, state):
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p)
            state["exp_avg_sq"] = np.zeros_like(p)
        state["step"] += 1
        t = state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        beta1, beta2 = self.betas
        lr, wd = self.lr, self.weight_decay
        tmp = self._scratch.get(p, 0)

        if wd != 0:
            if self._decoupled:
                # AdamW: p <- p - lr * wd * p, before the Adam step
                p *= 1.0 - lr * wd
            else:
                # Adam: L2 penalty folded into the gradient, g <- g + wd * p
                gd = self._scratch.get(p, 1)
                np.multiply(p, wd, out=gd)
                gd += g
                g = gd

        # m_t = beta1 * m_{t-1} + (1 - beta1) * g
        m *= beta1
        np.multiply(g, 1.0 - beta1, out=tmp)
        m += tmp
        # v_t = beta2 * v_{t-1} + (1 - beta2) * g * g
        v *= beta2
        np.multiply(g, g, out=tmp)
        tmp *= 1.0 - beta2
        v += tmp

        bias_correction1 = 1.0 - beta1**t
        bias_correction2 = 1.0 - beta2**t
        step_size = lr / bias_correction1
        # denominator: sqrt(v_hat) + eps = sqrt(v_t) / sqrt(1 - beta2**t) + eps
        denom = np.sqrt(v, out=tmp)
        denom /= math.sqrt(bias_correction2)
        denom += self.eps
        # p <- p - step_size * m_t / denom
        np.divide(m, denom, out=tmp)
        tmp *= step_size
        p -= tmp


class AdamW(Adam):
    r"""``AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2)``.

    Adam with decoupled weight decay (Loshchilov & Hutter 2019, Algorithm 2), as
    PyTorch implements it: the decay shrinks the weights directly instead of being
    added to the gradient, so it does not pass through Adam's ``1 / sqrt(v_hat)``
    scaling. At step ``t``::

        p     <- p - lr * weight_decay * p                  (decoupled decay, first)
        m_t, v_t, m_hat, v_hat  as in Adam, from the raw gradient g
        p     <- p - lr * m_hat / (sqrt(v_hat) + eps)

    The paper writes the decay as ``eta_t * lambda * p`` with ``eta_t`` the schedule
    multiplier; PyTorch (and this code) use ``lr * weight_decay``, so the decay
    follows the learning-rate schedule (the warm-up included).
    """

    _decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
