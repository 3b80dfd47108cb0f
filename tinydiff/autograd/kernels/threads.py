"""Thread control for the numba kernels, and the BLAS policy that goes with it.

``set_num_threads(n)`` sets the number of numba threads the kernels use
(``NUMBA_NUM_THREADS`` in the environment sets the maximum, and the default,
as numba itself does).

The BLAS policy.  Two BLAS libraries live in one tinydiff process:

* numpy's (``numpy.dot`` / ``@`` called from Python, e.g. by the Linear op);
* scipy's (numba's ``np.dot`` *inside* a jitted function calls the BLAS that
  ``scipy.linalg.cython_blas`` exports).

The conv kernels split the work over numba threads themselves and call the
BLAS GEMM from *inside* each numba thread, on a cache-sized block.  If scipy's
BLAS then started threads of its own, 2 numba threads x 2 BLAS threads would
fight over 2 cores.  So the first kernel call (and every ``set_num_threads``)
sets scipy's OpenBLAS to ONE thread: one BLAS thread per numba thread.
numpy's BLAS gets one thread as well. Measured on the U-Net training step
(``benchmarks/bench_unet.py``, 2 cores): numba's OpenMP pool and numpy's
OpenBLAS pool each keep spinning after their job, so alternating between a
2-thread kernel and a 2-thread numpy matmul makes each wait for the other's
spinning threads -- small GroupNorm and GEMM calls ran 10-80x slower and the
digits step took 531 ms; with numpy's BLAS on one thread, 165 ms. The matmuls
left to numpy (Linear layers, attention) are small next to the convolutions.
Both are set through the OpenBLAS C API
(``*_set_num_threads``) found in the already-loaded shared library; no extra
dependency.  When the BLAS is not OpenBLAS (e.g. MKL) nothing is changed; set
``OPENBLAS_NUM_THREADS`` / ``MKL_NUM_THREADS=1`` yourself if you see
oversubscription.  The policy holds for the whole process (numpy matmuls and
``scipy.linalg`` calls become single-threaded); call
``set_kernel_blas_policy(False)`` before the first kernel call to opt out.
"""

from __future__ import annotations

import ctypes
import glob
import os

import numba

# numba's OpenMP pool busy-waits between parallel regions by default. On a shared
# 2-core machine that spinning fights any other busy process: with one core taken
# by another program, a GroupNorm call took 3.8 ms instead of 0.19 ms and a digits
# training step 378 ms instead of 244 ms; on an idle machine the passive policy
# measured the same. Set before numba starts its pool (at the first kernel call);
# an OMP_WAIT_POLICY already in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__all__ = ["set_num_threads", "get_num_threads", "set_kernel_blas_policy"]

_policy_enabled = True
_policy_applied = False


def _openblas_libs(package: str):
    """ctypes handles of the OpenBLAS shared libraries bundled with ``package``."""
    try:
        mod = __import__(package)
    except ImportError:  # pragma: no cover - numpy and scipy are dependencies
        return []
    base = os.path.dirname(os.path.abspath(mod.__file__))
    patterns = [
        os.path.join(base, "..", f"{package}.libs", "*openblas*.so*"),
        os.path.join(base, ".libs", "*openblas*"),
    ]
    libs = []
    for pattern in patterns:
        for path in sorted(glob.glob(pattern)):
            try:
                # RTLD_NOLOAD-like behaviour is not portable; dlopen of an
                # already-loaded library returns the same handle.
                libs.append(ctypes.CDLL(path))
            except OSError:  # pragma: no cover
                pass
    return libs


def _set_openblas_threads(package: str, n: int) -> bool:
    """Call ``<prefix>openblas_set_num_threads(n)`` in ``package``'s OpenBLAS."""
    names = (
        "scipy_openblas_set_num_threads64_",
        "scipy_openblas_set_num_threads",
        "openblas_set_num_threads64_",
        "openblas_set_num_threads",
    )
    done = False
    for lib in _openblas_libs(package):
        for name in names:
            fn = getattr(lib, name, None)
            if fn is not None:
                fn.argtypes = [ctypes.c_int]
                fn.restype = None
                fn(int(n))
                done = True
                break
    return done


def set_kernel_blas_policy(enabled: bool) -> None:
    """Enable (default) or disable the BLAS thread policy described above."""
    global _policy_enabled
    _policy_enabled = bool(enabled)


def _apply_blas_policy(n: int) -> None:
    global _policy_applied
    _policy_applied = True
    if not _policy_enabled:
        return
    import scipy.linalg.cython_blas  # noqa: F401  (loads scipy's BLAS, as numba does)

    _set_openblas_threads("scipy", 1)
    _set_openblas_threads("numpy", 1)


def ensure_blas_policy() -> None:
    """Apply the BLAS policy once; the kernels call this before their first run."""
    if not _policy_applied:
        _apply_blas_policy(get_num_threads())


def set_num_threads(n: int) -> None:
    """Use ``n`` threads in the kernels (1 <= n <= NUMBA_NUM_THREADS).

    Also applies the BLAS policy (module docstring): scipy's BLAS, called
    inside the kernels, and numpy's BLAS single-threaded.
    """
    n = int(n)
    limit = numba.config.NUMBA_NUM_THREADS
    if not 1 <= n <= limit:
        raise ValueError(
            f"number of threads must be in 1..{limit} (NUMBA_NUM_THREADS), got {n}"
        )
    numba.set_num_threads(n)
    _apply_blas_policy(n)


def get_num_threads() -> int:
    """The number of threads the kernels use now."""
    return numba.get_num_threads()
