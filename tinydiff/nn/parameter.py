"""``Parameter``: a leaf tensor that a ``Module`` registers as learnable."""

from __future__ import annotations

import numpy as np

from ..autograd import Tensor


class Parameter(Tensor):
    """A tensor with ``requires_grad=True`` that modules collect in ``parameters()``."""

    __slots__ = ()

    def __init__(self, data, requires_grad: bool = True):
        super().__init__(np.asarray(data), requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter(" + super().__repr__()[len("tensor(") :]
