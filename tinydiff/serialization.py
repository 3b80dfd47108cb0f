"""Checkpoints without pickle: ``save(obj, path)`` / ``load(path)``.

What can be saved: nested ``dict`` (string keys; ``OrderedDict`` too), ``list``,
``tuple``, ``np.ndarray`` (any dtype but ``object``), NumPy scalars, and Python
``int`` (any size: a PCG64 generator's state holds 128-bit integers), ``float``,
``bool``, ``str`` and ``None``. That covers model, EMA and optimizer state dicts, the
step count and ``np.random.Generator.bit_generator.state``::

    td.save({"model": model.state_dict(), "ema": ema.state_dict(),
             "optimizer": opt.state_dict(), "step": step,
             "rng": rng.bit_generator.state}, "ckpt.npz")
    ckpt = td.load("ckpt.npz")

The format is an ordinary ``.npz`` (a zip of ``.npy`` files, readable with
``np.load(path, allow_pickle=False)``): each array is an entry ``a0``, ``a1``, ...,
and the entry ``__tinydiff_manifest__`` is a uint8 array holding UTF-8 JSON that
describes the structure, in order: ``{"type": "dict", "items": [[key, node], ...]}``,
``{"type": "array", "key": "a0", "dtype": "<f4", "shape": [3, 4]}``,
``{"type": "int", "value": "340282366920938463463374607431768211457"}`` (decimal text,
exact), ``{"type": "float", "value": "0x1.999999999999ap-4"}`` (``float.hex``: exact,
NaN and infinities included), and so on. Nothing is ever unpickled, so loading a
checkpoint cannot run code.

``save`` is atomic: it writes a temporary file in the destination's directory,
flushes and fsyncs it, renames it over ``path`` with ``os.replace`` and fsyncs the
directory. An interrupted save leaves the previous checkpoint intact (after a hard
crash a stray ``.<name>.<random>.tmp`` file may remain; it is safe to delete).
``path`` is used as given: no ``.npz`` suffix is appended.

``load`` raises ``ValueError`` naming the path for anything that is not a complete
tinydiff checkpoint (a truncated file, random bytes, a plain ``.npz``, an archive
holding object arrays), and returns dicts in their saved key order.
"""

from __future__ import annotations

import json
import os
import secrets
import zipfile

import numpy as np

MANIFEST_KEY = "__tinydiff_manifest__"
FORMAT_NAME = "tinydiff-checkpoint"
FORMAT_VERSION = 1


# ---------------------------------------------------------------- encoding
def _encode(obj, where: str, arrays: dict) -> dict:
    """The manifest node for ``obj``; arrays are collected into ``arrays``."""
    if obj is None:
        return {"type": "none"}
    if isinstance(obj, np.generic):  # first: np.float64 and np.str_ subclass float and str
        return _encode_array(obj, where, arrays)
    if isinstance(obj, bool):  # before int: bool is a subclass of int
        return {"type": "bool", "value": obj}
    if isinstance(obj, int):
        return {"type": "int", "value": str(int(obj))}
    if isinstance(obj, float):
        return {"type": "float", "value": float(obj).hex()}
    if isinstance(obj, str):
        return {"type": "str", "value": str(obj)}
    if isinstance(obj, np.ndarray):
        return _encode_array(obj, where, arrays)
    if isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            if not isinstance(k, str):
                raise TypeError(f"cannot save a dict key of type {type(k).__name__} ({k!r}) at {where}: keys must be str")
            items.append([k, _encode(v, f"{where}[{k!r}]", arrays)])
        return {"type": "dict", "items": items}
    if isinstance(obj, (list, tuple)):
        kind = "tuple" if isinstance(obj, tuple) else "list"
        return {"type": kind, "items": [_encode(v, f"{where}[{i}]", arrays) for i, v in enumerate(obj)]}
    hint = " (save its .data, or a state_dict())" if hasattr(obj, "requires_grad") else ""
    raise TypeError(f"cannot save a value of type {type(obj).__name__} at {where}{hint}")


def _encode_array(obj, where: str, arrays: dict) -> dict:
    """An ndarray (saved as is) or a NumPy scalar (saved as a 0-d array, loaded as a scalar)."""
    if isinstance(obj, np.ndarray) and type(obj) is not np.ndarray:
        raise TypeError(f"cannot save {type(obj).__name__} at {where}: only plain np.ndarray")
    arr = np.asarray(obj)
    if arr.dtype.hasobject:
        raise TypeError(f"cannot save an array of dtype {arr.dtype} at {where}: object arrays need pickle")
    key = f"a{len(arrays)}"
    arrays[key] = arr
    return {
        "type": "array" if isinstance(obj, np.ndarray) else "numpy_scalar",
        "key": key,
        "dtype": arr.dtype.str,
        "shape": list(arr.shape),
    }


def _write_npz(f, manifest: dict, arrays: dict) -> None:
    """An uncompressed .npz, as ``np.savez`` writes it, manifest first; never pickles."""
    text = json.dumps(manifest, ensure_ascii=True, separators=(",", ":"))
    entries = {MANIFEST_KEY: np.frombuffer(text.encode("ascii"), dtype=np.uint8), **arrays}
    with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, arr in entries.items():
            with zf.open(name + ".npy", mode="w", force_zip64=True) as out:
                np.lib.format.write_array(out, arr, allow_pickle=False)


def _fsync_directory(directory: str) -> None:
    if os.name == "nt":  # directories cannot be opened for fsync on Windows
        return
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save(obj, path) -> None:
    """Write ``obj`` (nested dicts / lists / arrays / scalars) to ``path`` atomically.

    Raises ``TypeError`` naming the place of any value that cannot be saved without
    pickle, before touching the disk.
    """
    path = os.fspath(path)
    arrays: dict = {}
    manifest = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "root": _encode(obj, "obj", arrays)}

    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(8)}.tmp")
    # O_EXCL: never clobber; mode 0o666 so the umask applies as for any new file
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            _write_npz(f, manifest, arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(directory)


# ---------------------------------------------------------------- decoding
class _Corrupt(Exception):
    """Raised inside ``load`` and turned into one ``ValueError`` naming the path."""


def _decode(node, arrays: dict, used: set):
    if not isinstance(node, dict) or "type" not in node:
        raise _Corrupt(f"malformed manifest node {node!r:.80}")
    kind = node["type"]
    if kind == "none":
        return None
    if kind == "bool":
        return bool(node["value"])
    if kind == "int":
        return int(node["value"])
    if kind == "float":
        return float.fromhex(node["value"])
    if kind == "str":
        return str(node["value"])
    if kind in ("array", "numpy_scalar"):
        key = node["key"]
        if key not in arrays:
            raise _Corrupt(f"the manifest names an array {key!r} that the archive does not hold")
        arr = arrays[key]
        if arr.dtype.str != node["dtype"] or list(arr.shape) != list(node["shape"]):
            raise _Corrupt(
                f"array {key!r} has dtype {arr.dtype.str} and shape {list(arr.shape)}, "
                f"the manifest says {node['dtype']} and {node['shape']}"
            )
        used.add(key)
        return arr if kind == "array" else arr[()]
    if kind == "dict":
        return {str(k): _decode(v, arrays, used) for k, v in node["items"]}
    if kind == "list":
        return [_decode(v, arrays, used) for v in node["items"]]
    if kind == "tuple":
        return tuple(_decode(v, arrays, used) for v in node["items"])
    raise _Corrupt(f"unknown manifest node type {kind!r}")


def _read(f) -> object:
    head = f.read(4)
    f.seek(0)
    if head != b"PK\x03\x04":
        raise _Corrupt(f"it is not an .npz (zip) archive: it starts with {head!r}")
    with np.load(f, allow_pickle=False) as npz:
        names = list(npz.files)
        if MANIFEST_KEY not in names:
            raise _Corrupt("it is an .npz archive without a tinydiff manifest")
        raw = npz[MANIFEST_KEY]
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise _Corrupt("the manifest entry is not a byte string")
        manifest = json.loads(raw.tobytes().decode("utf-8"))
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
            raise _Corrupt("the manifest does not describe a tinydiff checkpoint")
        if manifest.get("version") != FORMAT_VERSION:
            raise _Corrupt(
                f"format version {manifest.get('version')!r}; this tinydiff reads version {FORMAT_VERSION}"
            )
        arrays = {name: npz[name] for name in names if name != MANIFEST_KEY}
    used: set = set()
    obj = _decode(manifest["root"], arrays, used)
    if used != set(arrays):
        raise _Corrupt(f"the archive holds arrays the manifest does not mention: {sorted(set(arrays) - used)}")
    return obj


def load(path):
    """Read a checkpoint written by :func:`save`. Arrays keep their dtype and shape.

    ``FileNotFoundError`` if there is no file; ``ValueError`` naming ``path`` if the
    file is not a complete, well-formed tinydiff checkpoint.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        try:
            return _read(f)
        except (_Corrupt, ValueError, KeyError, TypeError, EOFError, OSError, zipfile.BadZipFile,
                UnicodeDecodeError, RecursionError) as exc:
            raise ValueError(f"{path}: not a readable tinydiff checkpoint: {exc}") from exc
