"""Stochastic gradient descent with momentum, PyTorch's rule (Sutskever et al. 2013 style)."""

from __future__ import annotations

import numpy as np

from .optimizer import Optimizer


class SGD(Optimizer):
    r"""``SGD(params, lr, momentum=0, dampening=0, weight_decay=0, nesterov=False)``.

    For each parameter ``p`` with gradient ``g``, at step ``t`` (1-based), as PyTorch::

        g   <- g + weight_decay * p                           (L2 penalty, if weight_decay != 0)
        b_1 =  g                                              (first step: the buffer is a copy of g)
        b_t =  momentum * b_{t-1} + (1 - dampening) * g       (t > 1)
        d   =  g + momentum * b_t   if nesterov  else  b_t    (if momentum != 0; else d = g)
        p   <- p - lr * d

    The "momentum buffer" ``b`` is PyTorch's form, in which ``lr`` multiplies the
    buffer rather than entering it (Sutskever et al. 2013 put ``lr`` inside); the two
    agree while ``lr`` is constant. ``p.grad`` itself is never modified.
    """

    _hyperparameters = ("momentum", "dampening", "weight_decay", "nesterov")

    def __init__(self, params, lr: float, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        super().__init__(params, lr)
        if not momentum >= 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not weight_decay >= 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        self.momentum = float(momentum)
        self.dampening = float(dampening)
        self.weight_decay = float(weight_decay)
        self.nesterov = bool(nesterov)

    def _update(self, p, g, state):
        tmp = self._scratch.get(p, 0)
        if self.weight_decay != 0:
            d = self._scratch.get(p, 1)
            np.multiply(p, self.weight_decay, out=d)
            d += g  # g + weight_decay * p, without touching p.grad
            g = d
        if self.momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = g.copy()
            else:
                buf *= self.momentum
                if self.dampening == 0:
                    buf += g
                else:
                    np.multiply(g, 1.0 - self.dampening, out=tmp)
                    buf += tmp
            if self.nesterov:
                np.multiply(buf, self.momentum, out=tmp)
                tmp += g
                g = tmp
            else:
                g = buf
        np.multiply(g, self.lr, out=tmp)
        p -= tmp
