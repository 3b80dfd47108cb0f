"""The autograd engine: ``Tensor``, ``Function``, the differentiable ops, ``gradcheck``."""

from . import functional
from .function import Context, Function
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .gradcheck import GradcheckError, gradcheck
from .tensor import Tensor, tensor

__all__ = [
    "Tensor",
    "tensor",
    "Function",
    "Context",
    "functional",
    "no_grad",
    "enable_grad",
    "is_grad_enabled",
    "set_grad_enabled",
    "gradcheck",
    "GradcheckError",
]
