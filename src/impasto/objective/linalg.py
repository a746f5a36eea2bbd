"""Linear algebra of feature statistics: covariance from moments, square roots of
symmetric positive semi-definite matrices, and the trace of a square root with a stable
gradient. Shapes: means ``(..., C)``, matrices ``(..., C, C)``.

Every sum of a step that ends in one number is taken here as well, in an order that does
not depend on the number of threads (:func:`ordered_sum`), and every eigendecomposition on
one thread (:func:`eigh`): a run gives the same bits on a worker of one core and on one of
all the cores, so a batch's item is the same file whichever worker paints it."""

from __future__ import annotations

import contextlib
import ctypes
import functools
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch import Tensor

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
    if matrix.device.type != "cpu":
        return torch.linalg.eigh(matrix)
    with _one_mkl_thread():
        return torch.linalg.eigh(matrix)


def covariance(mean: Tensor, second: Tensor) -> Tensor:
    """``E[f fᵀ] - μ μᵀ`` from the mean ``(..., C)`` and raw second moment ``(..., C, C)``."""
    return second - mean.unsqueeze(-1) * mean.unsqueeze(-2)


def psd_sqrt(matrix: Tensor) -> Tensor:
    """Square root of a symmetric positive semi-definite ``(..., C, C)`` matrix, through an
    eigendecomposition in float64 (negative rounding eigenvalues clamped to 0)."""
    values, vectors = eigh(matrix.double())
    root = (vectors * values.clamp(min=0).sqrt().unsqueeze(-2)) @ vectors.transpose(-1, -2)
    return root.to(matrix.dtype)


class _TraceSqrt(torch.autograd.Function):
    """``tr(A^½)`` of a symmetric PSD matrix with a stable gradient.

    ``tr f(A)`` has gradient ``U f'(Λ) Uᵀ``: no ``1/(λᵢ - λⱼ)`` terms, so repeated
    eigenvalues (many dead ReLU channels) are harmless, unlike autograd through
    ``eigh``. ``f'(λ) = 1/(2√λ)`` is bounded by clamping λ at a tiny fraction of the
    largest eigenvalue.
    """

    @staticmethod
    def forward(ctx, matrix: Tensor) -> Tensor:  # type: ignore[override]
        values, vectors = eigh(matrix.double())
        floor = values.amax(dim=-1, keepdim=True).clamp(min=1e-30) * 1e-10
        ctx.save_for_backward(vectors, values.clamp(min=0).maximum(floor))
        ctx.dtype = matrix.dtype
        return values.clamp(min=0).sqrt().sum(dim=-1).to(matrix.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        vectors, values = ctx.saved_tensors
        scale = 0.5 / values.sqrt() * grad.double().unsqueeze(-1)
        return ((vectors * scale.unsqueeze(-2)) @ vectors.transpose(-1, -2)).to(ctx.dtype)


def trace_sqrt(matrix: Tensor) -> Tensor:
    """``tr(A^½)`` for symmetric PSD ``(..., C, C)``; see :class:`_TraceSqrt`."""
    return _TraceSqrt.apply(matrix)
