"""The numerics a run's bits rest on, below every other layer: sums to one number added in
an order that does not depend on the number of threads (:func:`ordered_sum`), symmetric
eigendecompositions on one thread (:func:`eigh`), and the allocator kept warm between
steps (:func:`kept_allocations`).

With these, a run gives the same bits on a worker of one core and on one of all the cores,
so a batch's item is the same file whichever worker paints it. That is a setting
(:func:`same_bits`; ``Runtime.same_bits``, on in batches, off for one picture): off, sums
and eigendecompositions take torch's own threaded paths (about 5% of a step faster on a
CPU, ``benchmarks/same_bits.py``; the last bits then depend on the thread count). On a
GPU the plain reductions are taken: their order is the kernel's, and no promise is made
there."""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import functools
import platform
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch import Tensor

from impasto.errors import ImpastoWarning

#: Whether the calling thread's run keeps the same bits on any thread count.
_SAME_BITS: contextvars.ContextVar[bool] = contextvars.ContextVar("impasto_same_bits", default=True)
#: The torch releases whose reductions these sums were checked against (their split of a
#: sum between threads: TensorIterator's grain size).
TESTED_TORCH = ((2, 1), (2, 13))


@contextlib.contextmanager
def same_bits(enabled: bool = True) -> Iterator[None]:
    """Within (in this thread): sums in a fixed order and eigendecompositions on one thread
    (``enabled``), or torch's own threaded ones. Enabled on a CPU, it warns once when what
    the promise rests on is missing (:func:`same_bits_warning`)."""
    if enabled:
        message = same_bits_warning()
        if message:
            _warn_once(message)
    token = _SAME_BITS.set(enabled)
    try:
        yield
    finally:
        _SAME_BITS.reset(token)


def same_bits_warning() -> str | None:
    """Why "the same bits on any thread count" may not hold with this torch, or None."""
    version = tuple(int(part) for part in torch.__version__.split("+")[0].split(".")[:2] if part.isdigit())
    if not TESTED_TORCH[0] <= version <= TESTED_TORCH[1]:
        low, high = (".".join(map(str, v)) for v in TESTED_TORCH)
        return (f"torch {torch.__version__} is outside {low}-{high}, where a step's sums were checked to add up "
                "alike on any thread count; a run may differ in its last bits between thread counts")  # fmt: skip
    if torch.backends.mkl.is_available() and _mkl_local_threads() is None:
        return ("this torch's MKL does not let impasto hold an eigendecomposition to one thread; a run may differ "
                "in its last bits between thread counts")  # fmt: skip
    return None


@functools.cache
def _warn_once(message: str) -> None:
    warnings.warn(message, ImpastoWarning, stacklevel=4)


#: Above this many values torch splits a sum to one number between threads (its grain
#: size): below it a sum is added up by one thread, in one order.
SERIAL_SUM = 32768


def ordered_sum(values: Tensor) -> Tensor:
    """The sum of every value of ``values`` (in their dtype, added in at least float32),
    added in the same order on any number of threads.

    torch adds a large tensor into one number by giving each thread a part and adding the
    parts, so the total's last bits depend on the thread count (and L-BFGS carries them
    on). A sum along dimensions that leaves several values is split over those values
    instead, each added whole by one thread in one order: so the values are first summed
    within each index of their outermost dimension in memory (a channels-last map's rows,
    a contiguous map's channels), then those partial sums the same way."""
    if not _SAME_BITS.get():
        return values.sum(dtype=torch.promote_types(values.dtype, torch.float32)).to(values.dtype)
    return _partial_sum(values).to(values.dtype)


def _partial_sum(values: Tensor) -> Tensor:
    wide = torch.promote_types(values.dtype, torch.float32)
    if values.numel() <= SERIAL_SUM:
        return values.sum(dtype=wide)
    if values.dim() == 1:  # rows of 4096 (the rest added alone)
        whole = values.numel() // 4096 * 4096
        return _partial_sum(values[:whole].reshape(-1, 4096)) + values[whole:].sum(dtype=wide)
    # the outermost dimension in memory that has more than one index
    outer = max(range(values.dim()), key=lambda d: (values.shape[d] > 1, values.stride(d)))
    return _partial_sum(values.sum(dim=[d for d in range(values.dim()) if d != outer], dtype=wide))


def ordered_mean(values: Tensor) -> Tensor:
    """The mean of every value of ``values``: :func:`ordered_sum` over their count."""
    return ordered_sum(values) / values.numel()


def ordered_dot(a: Tensor, b: Tensor) -> Tensor:
    """``sum(a * b)`` of two tensors of one shape, in :func:`ordered_sum`'s order."""
    return ordered_sum(a * b)


@functools.cache
def _mkl_local_threads() -> Callable[[int], int] | None:
    """MKL's ``mkl_set_num_threads_local`` (the calling thread's count, returning the one
    it had), from the library torch is built on; None where torch has no MKL."""
    if not torch.backends.mkl.is_available():
        return None
    for library in (Path(torch.__file__).parent / "lib").glob("libtorch_cpu.*"):
        with contextlib.suppress(OSError, AttributeError):
            function = ctypes.CDLL(str(library)).MKL_Set_Num_Threads_Local
            function.argtypes, function.restype = [ctypes.c_int], ctypes.c_int
            return function
    return None


@contextlib.contextmanager
def _one_mkl_thread() -> Iterator[None]:
    """MKL on one thread for the calling thread, in this context (torch's own threads and
    other threads' MKL unchanged; the count it had comes back on the way out)."""
    function = _mkl_local_threads()
    if function is None:
        yield
        return
    before = function(1)
    try:
        yield
    finally:
        function(before)


def eigh(matrix: Tensor) -> tuple[Tensor, Tensor]:
    """``torch.linalg.eigh`` of a symmetric ``(..., C, C)`` matrix, on a CPU on one MKL
    thread: LAPACK's threaded eigensolver gives other bits on 2 threads than on 1 (every
    time, from 64 x 64 up; 512 x 512 in float64 takes 35 ms on one thread, 22 ms on two,
    here)."""
    if matrix.device.type != "cpu" or not _SAME_BITS.get():
        return torch.linalg.eigh(matrix)
    with _one_mkl_thread():
        return torch.linalg.eigh(matrix)


#: glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: Free memory at the top of the heap kept for the next allocation rather than handed back,
#: within a run; and glibc's defaults, restored after it.
_TRIM_THRESHOLD = 2**30
_DEFAULT_TRIM_THRESHOLD = _DEFAULT_MMAP_THRESHOLD = 128 * 2**10
_MMAP_THRESHOLD = 32 * 2**20
_malloc_lock = threading.Lock()
_malloc_runs = 0


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """The C library, where it is glibc (whose ``mallopt`` and ``malloc_trim`` are used);
    found once (``platform.libc_ver`` reads the interpreter's binary)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


@contextlib.contextmanager
def kept_allocations() -> Iterator[None]:
    """Within (runs in any thread): tensors up to 32 MiB come from the heap, whose freed top
    is kept for the next step's tensors; when the last run ends, glibc's defaults are back
    and what is free is handed back (``malloc_trim``).

    glibc served each feature-sized tensor with a fresh ``mmap`` and unmapped it when it
    was freed, so every step faulted its pages in again: 11,000 page faults a step at
    256 px, 137,000 at 512 px (300 and 68,000 with this). Tensors above 32 MiB (glibc's
    largest threshold) are still mapped apiece: with ``mmap`` off altogether, 512 px
    steps faulted no more, but the heap's holes raised the peak of a 1024 px run from
    2.8 to 3.6 GB, above the memory check's estimate (benchmarks/memory.py). Elsewhere
    than glibc nothing changes."""
    global _malloc_runs
    libc = _glibc()
    if libc is None:
        yield
        return
    with _malloc_lock:
        if _malloc_runs == 0:
            libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
            libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)
        _malloc_runs += 1
    try:
        yield
    finally:
        with _malloc_lock:
            _malloc_runs -= 1
            if _malloc_runs == 0:
                libc.mallopt(_M_MMAP_THRESHOLD, _DEFAULT_MMAP_THRESHOLD)
                libc.mallopt(_M_TRIM_THRESHOLD, _DEFAULT_TRIM_THRESHOLD)
                libc.malloc_trim(0)
