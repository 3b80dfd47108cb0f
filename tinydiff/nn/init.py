"""Weight initialisation, drawn from a ``np.random.Generator`` the caller can seed.

PyTorch's defaults (He et al. 2015's Kaiming-uniform with ``a = sqrt(5)``), which
for Linear and Conv2d come down to ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` for the
weight and the same for the bias.
"""

from __future__ import annotations

import math

import numpy as np


def as_rng(rng) -> np.random.Generator:
    """A Generator from a Generator, an int seed or None (fresh entropy)."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def kaiming_uniform(shape, fan_in: int, rng, a: float = math.sqrt(5), dtype=np.float32) -> np.ndarray:
    """U(-bound, bound) with ``bound = gain * sqrt(3 / fan_in)``, ``gain = sqrt(2 / (1 + a^2))``."""
    gain = math.sqrt(2.0 / (1 + a * a))
    bound = gain * math.sqrt(3.0 / fan_in)
    return as_rng(rng).uniform(-bound, bound, size=shape).astype(dtype)


def fan_in_uniform(shape, fan_in: int, rng, dtype=np.float32) -> np.ndarray:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's bias initialisation."""
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return as_rng(rng).uniform(-bound, bound, size=shape).astype(dtype)
