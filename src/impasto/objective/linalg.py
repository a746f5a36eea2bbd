"""Linear algebra of feature statistics: covariance from moments, square roots of
symmetric positive semi-definite matrices, and the trace of a square root with a stable
gradient. Shapes: means ``(..., C)``, matrices ``(..., C, C)``. Eigendecompositions run
on one thread (:func:`impasto.numerics.eigh`), so the bits do not depend on the thread count."""

from __future__ import annotations

import torch
from torch import Tensor

from impasto.numerics import eigh


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
