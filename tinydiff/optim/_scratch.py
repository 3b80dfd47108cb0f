"""Reusable work buffers, so that an optimizer step allocates nothing.

An update such as Adam's needs a few element-wise intermediates (``g * g``, the
denominator ``sqrt(v_hat) + eps``, ...). Allocating them afresh for every parameter
of a 35M-parameter model on every iteration costs time and churns memory, so each
optimizer keeps one flat buffer per (dtype, slot), grown to the largest parameter it
has seen, and hands out views of it shaped like the parameter at hand.
"""

from __future__ import annotations

import numpy as np


class Scratch:
    """``get(like, slot)`` returns an uninitialised array with ``like``'s shape and
    dtype, a view of a buffer that is reused on the next call with the same slot."""

    def __init__(self):
        self._buffers: dict = {}

    def get(self, like: np.ndarray, slot: int = 0) -> np.ndarray:
        key = (like.dtype.str, slot)
        buf = self._buffers.get(key)
        if buf is None or buf.size < like.size:
            buf = np.empty(like.size, dtype=like.dtype)
            self._buffers[key] = buf
        return buf[: like.size].reshape(like.shape)
