"""Exponential moving average of the weights (Ho et al. 2020 sample with it, decay 0.9999)."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from ._scratch import Scratch


class EMA:
    r"""``EMA(model, decay=0.9999)``: a shadow copy of every parameter of ``model``.

    After each optimizer step, ``update()`` moves each shadow array toward the
    parameter::

        shadow <- decay * shadow + (1 - decay) * param          (in place)

    This is Ho et al. 2020's plain EMA (decay 0.9999 for CIFAR-10): the shadow starts
    as a copy of the initial weights and ``decay`` is fixed; there is no warm-up of the
    decay (some codebases use ``min(decay, (1 + n) / (10 + n))`` early on; not here).
    Shadow arrays have the parameter's dtype (float32 for a float32 model).

    ``copy_to(model)`` loads the shadow weights into a model (e.g. a copy for
    sampling); ``state_dict()`` is ``{"decay", "num_updates", "shadow": name -> array}``,
    so ``model.load_state_dict(ckpt["ema"]["shadow"])`` also works without an ``EMA``.
    """

    def __init__(self, model, decay: float = 0.9999):
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"decay must be in [0, 1], got {decay}")
        self.decay = float(decay)
        self.num_updates = 0
        self._params = OrderedDict(model.named_parameters())
        self.shadow = OrderedDict((name, p.data.copy()) for name, p in self._params.items())
        self._scratch = Scratch()

    def update(self) -> None:
        """``shadow = decay * shadow + (1 - decay) * param`` for every parameter, in place."""
        decay = self.decay
        for name, p in self._params.items():
            s = self.shadow[name]
            tmp = self._scratch.get(s)
            np.multiply(p.data, 1.0 - decay, out=tmp)
            s *= decay
            s += tmp
        self.num_updates += 1

    def copy_to(self, model=None) -> None:
        """Copy the shadow weights into ``model``'s parameters (default: the tracked model)."""
        if model is None:
            for name, p in self._params.items():
                p.data[...] = self.shadow[name]
        else:
            model.load_state_dict(self.shadow)

    def state_dict(self) -> dict:
        return {
            "decay": self.decay,
            "num_updates": self.num_updates,
            "shadow": OrderedDict((k, v.copy()) for k, v in self.shadow.items()),
        }

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore ``decay``, ``num_updates`` and the shadow arrays (copied, in the
        tracked parameters' dtypes). Raises ``KeyError`` / ``ValueError`` naming every
        missing or unexpected name and every shape mismatch, before changing anything."""
        shadow = state_dict["shadow"]
        missing = [k for k in self.shadow if k not in shadow]
        unexpected = [k for k in shadow if k not in self.shadow]
        if missing or unexpected:
            raise KeyError(f"EMA.load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        mismatched = [
            f"{k}: checkpoint {tuple(np.shape(shadow[k]))} vs model {v.shape}"
            for k, v in self.shadow.items()
            if tuple(np.shape(shadow[k])) != v.shape
        ]
        if mismatched:
            raise ValueError("EMA.load_state_dict: shape mismatch for " + "; ".join(mismatched))
        for k, v in self.shadow.items():
            v[...] = np.asarray(shadow[k], dtype=v.dtype)
        self.decay = float(state_dict["decay"])
        self.num_updates = int(state_dict["num_updates"])

    def __repr__(self) -> str:
        return f"EMA(decay={self.decay}, {len(self.shadow)} parameters, num_updates={self.num_updates})"
