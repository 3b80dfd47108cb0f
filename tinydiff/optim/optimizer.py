"""``Optimizer``: the part every update rule shares.

As in PyTorch, an optimizer holds the parameters it updates and, per parameter, a
``state`` dict (moment arrays, step counts). Unlike PyTorch there is a single
parameter group: the hyperparameters are plain attributes (``opt.lr``,
``opt.weight_decay``, ...), and ``opt.lr`` is what a learning-rate schedule sets.

``state_dict()`` mirrors PyTorch's layout,
``{"state": {"0": {...}, "1": {...}}, "param_groups": [{"lr": ..., ..., "params": [0, 1, ...]}]}``,
with two differences so that it saves without pickle: the per-parameter state is
keyed by the parameter's index as a *string*, and holds only NumPy arrays and plain
Python numbers (the step count is an ``int``).
"""

from __future__ import annotations

import numpy as np

from ..autograd import Tensor, enable_grad, no_grad
from ._scratch import Scratch


class Optimizer:
    """Base class: ``params`` (a list), ``lr``, ``state`` (one dict per parameter),
    ``zero_grad()``, ``step()``, ``state_dict()``, ``load_state_dict()``.

    A subclass lists its hyperparameters in ``_hyperparameters`` and writes
    ``_update(p, g, state)``, which changes the array ``p`` in place given its
    gradient ``g`` (same shape and dtype) and the parameter's ``state`` dict.
    """

    _hyperparameters: tuple = ()

    def __init__(self, params, lr: float):
        if isinstance(params, Tensor):
            raise TypeError(
                "params must be an iterable of Tensors (e.g. model.parameters()), got a single Tensor"
            )
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        seen = set()
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only update Tensors, but params[{i}] is {type(p).__name__}")
            if id(p) in seen:
                raise ValueError(f"params[{i}] appears more than once in the parameter list")
            seen.add(id(p))
        if not lr >= 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        self.params: list = params
        self.lr = float(lr)
        self.state: list = [{} for _ in params]
        self._scratch = Scratch()

    @property
    def lr(self) -> float:
        """The learning rate of the next ``step()`` (a schedule sets it between steps)."""
        return self._lr

    @lr.setter
    def lr(self, value) -> None:
        # a Python float, so that float32 updates stay in float32 arithmetic
        self._lr = float(value)

    # ------------------------------------------------------------ the update
    def zero_grad(self) -> None:
        """Set every parameter's ``.grad`` to ``None`` (PyTorch's ``set_to_none=True``)."""
        for p in self.params:
            p.grad = None

    def step(self, closure=None):
        """Update every parameter that has a gradient, in place on ``p.data``.

        Parameters whose ``.grad`` is ``None`` are skipped (their state is untouched).
        ``closure``, if given, re-evaluates the model and returns the loss (as in PyTorch);
        ``step`` returns that loss.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for i, p in enumerate(self.params):
                g = p.grad
                if g is None:
                    continue
                if g.shape != p.data.shape or g.dtype != p.data.dtype:
                    raise ValueError(
                        f"params[{i}]: gradient has shape {g.shape} and dtype {g.dtype} but the "
                        f"parameter has shape {p.data.shape} and dtype {p.data.dtype}"
                    )
                self._update(p.data, g, self.state[i])
        return loss

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------ state
    def hyperparameters(self) -> dict:
        """``{"lr": ..., <the rule's other hyperparameters>}`` as plain Python values."""
        return {"lr": self.lr, **{k: getattr(self, k) for k in self._hyperparameters}}

    def state_dict(self) -> dict:
        """A copy of the optimizer's state (arrays copied), laid out as PyTorch's."""
        state = {
            str(i): {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
            for i, s in enumerate(self.state)
            if s
        }
        group = {**self.hyperparameters(), "params": list(range(len(self.params)))}
        return {"state": state, "param_groups": [group]}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore hyperparameters (``lr`` included, as PyTorch does) and per-parameter
        state from ``state_dict()``'s output. Arrays are copied into the parameter's dtype.

        Raises ``ValueError`` naming what does not match (number of parameters, an
        unknown index, a state array whose shape differs from its parameter's) before
        changing anything.
        """
        groups = state_dict["param_groups"]
        if len(groups) != 1:
            raise ValueError(f"expected 1 parameter group, the state dict has {len(groups)}")
        group = groups[0]
        n = len(group["params"])
        if n != len(self.params):
            raise ValueError(
                f"the state dict is for {n} parameters but this optimizer has {len(self.params)}"
            )
        new_state = [{} for _ in self.params]
        for key, s in state_dict["state"].items():
            i = int(key)
            if not 0 <= i < n:
                raise ValueError(f"state for parameter index {key}, but there are only {n} parameters")
            p = self.params[i].data
            for k, v in s.items():
                if isinstance(v, np.ndarray):
                    if v.shape != p.shape:
                        raise ValueError(
                            f"state[{key}][{k!r}] has shape {v.shape} but params[{i}] has shape {p.shape}"
                        )
                    v = np.array(v, dtype=p.dtype, copy=True)
                new_state[i][k] = v
        for k in ("lr",) + tuple(self._hyperparameters):
            if k in group:
                v = group[k]
                if isinstance(v, (list, tuple)):
                    v = tuple(float(x) for x in v)
                elif not isinstance(v, bool):
                    v = float(v)
                setattr(self, k, v)
        self.state = new_state

    def __repr__(self) -> str:
        hp = ", ".join(f"{k}={v}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({len(self.params)} parameters, {hp})"
