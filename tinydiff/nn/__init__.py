"""Layers and models: ``Module``, ``Parameter``, the layers, the U-Net."""

from .module import Module
from .parameter import Parameter

__all__ = ["Module", "Parameter"]
