"""numba compiles on first use only, and a second process loads from the cache."""

import os
import subprocess
import sys

import pytest

JIT_DISABLED = os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0")

# every module of the kernels package, imported, and the numba dispatchers they define
_DISPATCHERS = """
import importlib, pkgutil
import tinydiff.autograd.kernels as kernels
from numba.core.registry import CPUDispatcher
mods = [importlib.import_module(f"tinydiff.autograd.kernels.{m.name}") for m in pkgutil.iter_modules(kernels.__path__)]
ds = {id(v): v for mod in mods for v in vars(mod).values() if isinstance(v, CPUDispatcher)}.values()
assert ds, "no jitted kernels found"
"""

_CALL_EVERY_KERNEL = """
import numpy as np, tinydiff as td
import tinydiff.autograd.kernels.conv2d as c, tinydiff.autograd.kernels.group_norm as g
""" + _DISPATCHERS + """
x = np.ones((2, 8, 6, 6), np.float32)
for k, s, p in ((3, 1, 1), (3, 2, 1), (1, 1, 0), (3, 1, 0)):
    wt = np.ones((8, 8, k, k), np.float32)
    y = c.conv2d_forward(x, wt, np.ones(8, np.float32), (s, s), (p, p))
    c.conv2d_backward(x, wt, y, (s, s), (p, p))
y, m, r = g.group_norm_forward(x, 2, None, None, 1e-5)
g.group_norm_backward(y, x, m, r, 2, None)
y, m, r = g.group_norm_silu_forward(x, 2, np.ones(8, np.float32), np.ones(8, np.float32), 1e-5)
g.group_norm_silu_backward(y, x, m, r, 2, np.ones(8, np.float32), np.ones(8, np.float32))
used = [d for d in ds if d.signatures]
assert used, "no kernel ran"
print(sum(sum(d.stats.cache_misses.values()) for d in used), sum(sum(d.stats.cache_hits.values()) for d in used))
"""


@pytest.mark.skipif(JIT_DISABLED, reason="no compilation when the JIT is disabled")
def test_importing_tinydiff_compiles_nothing():
    code = "import tinydiff\n" + _DISPATCHERS + "assert not [d for d in ds if d.signatures]\n"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.skipif(JIT_DISABLED, reason="no compilation when the JIT is disabled")
def test_second_process_loads_every_kernel_from_the_cache():
    runs = []
    for _ in range(2):  # the first run may compile (and fill the cache); the second must not
        out = subprocess.run([sys.executable, "-c", _CALL_EVERY_KERNEL], check=True, capture_output=True, text=True)
        misses, hits = map(int, out.stdout.split())
        runs.append((misses, hits))
    misses, hits = runs[1]
    assert misses == 0, f"the second process compiled {misses} kernel signatures"
    assert hits > 0
