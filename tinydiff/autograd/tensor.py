"""``Tensor``: an ``np.ndarray`` plus the bookkeeping of reverse-mode autodiff.

A tensor produced by an op remembers the op (a :class:`Node`: the ``Function``,
its context of saved arrays, and its parent tensors). ``backward()`` walks these
nodes in reverse topological order, iteratively (Kahn's algorithm on the count of
consumers, as HIPS autograd does), so a chain of any depth works, and releases each
node as soon as its gradient has been passed on, so memory is freed during the walk.

Gradients are plain ``np.ndarray`` of the tensor's shape and dtype, stored in
``.grad`` of the leaves (tensors created by the user with ``requires_grad=True``).
"""

from __future__ import annotations

import numbers

import numpy as np

from .grad_mode import no_grad

DEFAULT_DTYPE = np.float32


class Node:
    """One recorded op: which Function ran, what it saved, and on which tensors."""

    __slots__ = ("fn", "ctx", "parents", "released")

    def __init__(self, fn, ctx, parents):
        self.fn = fn
        self.ctx = ctx
        self.parents = parents  # one entry per positional input: Tensor or None
        self.released = False

    def release(self):
        """Drop saved arrays and parent links; the graph above can now be freed."""
        self.ctx = None
        self.parents = ()
        self.released = True


def _as_array(data, dtype=None) -> np.ndarray:
    """Python numbers and lists become float32; NumPy arrays keep their dtype."""
    if isinstance(data, Tensor):
        arr = data.data
    elif isinstance(data, np.ndarray):
        arr = data
    elif isinstance(data, np.generic):
        arr = np.asarray(data)
    else:
        arr = np.asarray(data, dtype=DEFAULT_DTYPE if dtype is None else dtype)
    if dtype is not None and arr.dtype != np.dtype(dtype):
        arr = arr.astype(dtype)
    return arr


class Tensor:
    """An n-dimensional array that records the ops applied to it.

    ``Tensor(data)`` wraps ``data`` without copying when it already is an ndarray;
    use :func:`tinydiff.tensor` to build one from Python data (float32 by default).
    """

    __slots__ = ("data", "grad", "requires_grad", "_node", "_retains_grad", "__weakref__")
    __array_priority__ = 1000  # ndarray <op> Tensor defers to Tensor's reflected op

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        self.data = _as_array(data, dtype)
        self.grad = None
        self._node = None
        self._retains_grad = False
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    # ------------------------------------------------------------------ basics
    def requires_grad_(self, flag: bool = True) -> "Tensor":
        if flag and not np.issubdtype(self.data.dtype, np.floating):
            raise ValueError(
                f"only floating-point tensors can require grad, got dtype {self.data.dtype}"
            )
        self.requires_grad = bool(flag)
        return self

    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied)."""
        return self.data

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.item()

    def __array__(self, dtype=None, copy=None):
        if dtype is not None and np.dtype(dtype) != self.data.dtype:
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise ValueError(
                f"the truth value of a tensor of shape {self.shape} is ambiguous; use .any() / .all()"
            )
        return bool(self.data)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        extra = f", dtype={self.dtype}" if self.dtype != DEFAULT_DTYPE else ""
        if self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    __hash__ = object.__hash__

    def detach(self) -> "Tensor":
        """A tensor sharing the data, cut off from the graph."""
        return Tensor(self.data)

    def retain_grad(self) -> "Tensor":
        """Keep ``.grad`` on this non-leaf tensor after ``backward()``."""
        self._retains_grad = True
        return self

    def zero_grad(self) -> None:
        self.grad = None

    # ------------------------------------------------------------------ backward
    def backward(self, grad=None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) * grad into every leaf's ``.grad``.

        ``grad`` is the upstream gradient; it may be omitted only for a tensor with
        one element. Unless ``retain_graph`` is true the graph is released on the way,
        and a second ``backward()`` through it raises.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward() on a tensor that does not require grad: no input of the "
                "computation had requires_grad=True (or it ran under no_grad())"
            )
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward() without a gradient works only for a tensor with one element; "
                    f"this one has shape {self.shape}: call backward(grad) with an array of that shape"
                )
            grad = np.ones_like(self.data)
        else:
            grad = _as_array(grad, self.dtype)
            if grad.shape != self.shape:
                raise ValueError(
                    f"backward(grad): grad has shape {grad.shape} but the tensor has shape {self.shape}"
                )
        with no_grad():
            _run_backward(self, grad, retain_graph)

    # ------------------------------------------------------------------ operators
    # (defined in ops; bound here so that ``x + y`` reads naturally)
    def __add__(self, other):
        return _F.add(self, other)

    def __radd__(self, other):
        return _F.add(other, self)

    def __sub__(self, other):
        return _F.sub(self, other)

    def __rsub__(self, other):
        return _F.sub(other, self)

    def __mul__(self, other):
        return _F.mul(self, other)

    def __rmul__(self, other):
        return _F.mul(other, self)

    def __truediv__(self, other):
        return _F.div(self, other)

    def __rtruediv__(self, other):
        return _F.div(other, self)

    def __pow__(self, other):
        return _F.pow(self, other)

    def __rpow__(self, other):
        return _F.pow(other, self)

    def __matmul__(self, other):
        return _F.matmul(self, other)

    def __rmatmul__(self, other):
        return _F.matmul(other, self)

    def __neg__(self):
        return _F.neg(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return _F.abs(self)

    def __getitem__(self, index):
        return _F.getitem(self, index)

    # comparisons: non-differentiable boolean tensors
    def _compare(self, other, op):
        other = other.data if isinstance(other, Tensor) else other
        return Tensor(op(self.data, other))

    def __lt__(self, other):
        return self._compare(other, np.less)

    def __le__(self, other):
        return self._compare(other, np.less_equal)

    def __gt__(self, other):
        return self._compare(other, np.greater)

    def __ge__(self, other):
        return self._compare(other, np.greater_equal)

    def __eq__(self, other):
        return self._compare(other, np.equal)

    def __ne__(self, other):
        return self._compare(other, np.not_equal)

    def any(self) -> bool:
        return bool(self.data.any())

    def all(self) -> bool:
        return bool(self.data.all())

    # ------------------------------------------------------------------ methods
    def exp(self):
        return _F.exp(self)

    def log(self):
        return _F.log(self)

    def sqrt(self):
        return _F.sqrt(self)

    def abs(self):
        return _F.abs(self)

    def tanh(self):
        return _F.tanh(self)

    def sigmoid(self):
        return _F.sigmoid(self)

    def relu(self):
        return _F.relu(self)

    def silu(self):
        return _F.silu(self)

    def sin(self):
        return _F.sin(self)

    def cos(self):
        return _F.cos(self)

    def clip(self, min=None, max=None):
        return _F.clip(self, min, max)

    clamp = clip

    def sum(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return _F.sum(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def mean(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return _F.mean(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def var(self, axis=None, keepdims=False, ddof=0, *, dim=None, keepdim=None):
        return _F.var(self, axis, keepdims, ddof=ddof, dim=dim, keepdim=keepdim)

    def max(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return _F.max(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def reshape(self, *shape):
        return _F.reshape(self, *shape)

    view = reshape

    def flatten(self, start_dim: int = 0):
        return _F.reshape(self, self.shape[:start_dim] + (-1,))

    def transpose(self, *axes):
        """NumPy's transpose: a permutation of all axes (reversed when none is given).
        For PyTorch's two-axis ``transpose(d0, d1)`` use :meth:`swapaxes`."""
        return _F.transpose(self, *axes)

    def permute(self, *dims):
        return _F.transpose(self, *dims)

    def swapaxes(self, axis1: int, axis2: int):
        return _F.swapaxes(self, axis1, axis2)

    @property
    def T(self):
        return _F.transpose(self)

    def broadcast_to(self, shape):
        return _F.broadcast_to(self, shape)

    def astype(self, dtype):
        return _F.astype(self, dtype)

    def float(self):
        return _F.astype(self, np.float32)

    def double(self):
        return _F.astype(self, np.float64)


def _unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum a gradient over the axes along which its input was broadcast."""
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    if lead < 0 or any(n != 1 and n != grad.shape[lead + i] for i, n in enumerate(shape)):
        return grad  # not a broadcast of shape: the caller reports the mismatch
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1
    )
    return grad.sum(axis=axes, keepdims=True).reshape(shape)


def _run_backward(root: Tensor, grad: np.ndarray, retain_graph: bool) -> None:
    # 1. count, for every tensor reachable from root, how many recorded ops consume it
    pending: dict[int, int] = {}
    stack = [root]
    seen = {id(root)}
    while stack:
        t = stack.pop()
        node = t._node
        if node is None:
            continue
        if node.released:
            raise RuntimeError(
                "trying to backward through the graph a second time (its saved arrays were "
                "freed by the first backward()); pass retain_graph=True to the first call"
            )
        for p in node.parents:
            if p is None or not p.requires_grad:
                continue
            pending[id(p)] = pending.get(id(p), 0) + 1
            if id(p) not in seen:
                seen.add(id(p))
                stack.append(p)

    # 2. walk in reverse topological order: a tensor is processed once all its
    #    consumers have handed it their gradient
    grads = {id(root): grad}
    ready = [root]
    while ready:
        t = ready.pop()
        g = grads.pop(id(t))
        node = t._node
        if node is None or t._retains_grad:
            # never in-place: g may be shared with another tensor's gradient
            t.grad = g.copy() if t.grad is None else t.grad + g
        if node is None:
            continue
        in_grads = node.fn.backward(node.ctx, g)
        if not isinstance(in_grads, tuple):
            in_grads = (in_grads,)
        if len(in_grads) != len(node.parents):
            raise RuntimeError(
                f"{node.fn.__name__}.backward returned {len(in_grads)} gradients "
                f"for {len(node.parents)} inputs"
            )
        for p, pg in zip(node.parents, in_grads):
            if p is None or not p.requires_grad:
                continue
            if pg is None:
                pg = np.zeros_like(p.data)
            pg = _unbroadcast(pg, p.shape)
            if pg.shape != p.shape or pg.dtype != p.dtype:
                raise RuntimeError(
                    f"{node.fn.__name__}.backward gave a gradient of shape {pg.shape} "
                    f"dtype {pg.dtype} for an input of shape {p.shape} dtype {p.dtype}"
                )
            key = id(p)
            grads[key] = grads[key] + pg if key in grads else pg
            pending[key] -= 1
            if pending[key] == 0:
                ready.append(p)
        if not retain_graph:
            node.release()


def tensor(data, dtype=None, requires_grad: bool = False) -> Tensor:
    """Build a tensor, copying ``data``.

    Python numbers and (nested) lists become float32 unless ``dtype`` says otherwise;
    NumPy arrays keep their dtype.
    """
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, (np.ndarray, np.generic)):
        arr = np.array(data, dtype=dtype, copy=True)
    elif isinstance(data, (bool, numbers.Number, list, tuple)):
        arr = np.array(data, dtype=DEFAULT_DTYPE if dtype is None else dtype)
    else:
        raise TypeError(f"tensor() takes numbers, lists or NumPy arrays, got {type(data).__name__}")
    return Tensor(arr, requires_grad=requires_grad)


from . import functional as _F  # noqa: E402  (ops need Tensor defined first)
