"""Global switch for recording the autograd graph (``no_grad`` / ``enable_grad``).

Sampling loops and optimiser updates run under ``no_grad()`` so that no graph (and
none of the activations it would keep alive) is built.
"""

from __future__ import annotations

import contextlib

_grad_enabled = True


def is_grad_enabled() -> bool:
    """Whether new ops record themselves in the graph."""
    return _grad_enabled


def set_grad_enabled(mode: bool) -> None:
    global _grad_enabled
    _grad_enabled = bool(mode)


class _GradMode(contextlib.ContextDecorator):
    """Context manager (and decorator) that sets grad mode and restores it on exit,
    also when the block raises."""

    _mode: bool

    def __enter__(self):
        self._prev = is_grad_enabled()
        set_grad_enabled(self._mode)
        return self

    def __exit__(self, *exc):
        set_grad_enabled(self._prev)
        return False


class no_grad(_GradMode):
    """``with tinydiff.no_grad(): ...`` -- ops inside build no graph."""

    _mode = False


class enable_grad(_GradMode):
    """Re-enables graph recording inside a ``no_grad`` block."""

    _mode = True


__all__ = ["is_grad_enabled", "set_grad_enabled", "no_grad", "enable_grad"]
