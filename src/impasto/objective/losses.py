"""Loss terms as pure functions of tensors.

Shapes: features ``(B, C, H, W)``, Gram matrices ``(B, C, C)``, images ``(B, 3, H, W)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from impasto.numerics import ordered_mean, ordered_sum
from impasto.objective.linalg import covariance, trace_sqrt


class _FlatGram(torch.autograd.Function):
    """``F Fᵀ`` for ``(B, C, N)``, the product in at least float32, with a one-product
    backward ``(dG + dGᵀ) F`` in the features' own dtype.

    Autograd's own backward of ``bmm(F, Fᵀ)`` makes two products, one through a
    transposed view; this one is 2x (deep layers) to 3x (relu1_1) faster on a CPU. For
    bfloat16 features (autocast) the forward product is float32: products of bfloat16
    values are exact in float32, so the Gram loses nothing to rounding; the gradient
    flows on into a bfloat16 network, so its product is bfloat16 (2.4x faster than
    float32 on a CPU with AVX-512 BF16, accumulating in float32).
    """

    @staticmethod
    def forward(ctx, flat: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(flat)
        wide = flat.to(torch.promote_types(flat.dtype, torch.float32))
        return torch.bmm(wide, wide.transpose(1, 2))

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        (flat,) = ctx.saved_tensors
        return torch.bmm((grad + grad.transpose(1, 2)).to(flat.dtype), flat)


class _PositionGram(torch.autograd.Function):
    """``Xᵀ X`` for positions-major ``(B, N, C)`` features (channels-last maps, viewed
    without a copy), the product in at least float32, the backward ``X (dG + dGᵀ)`` in
    the features' dtype and layout; see :class:`_FlatGram`."""

    @staticmethod
    def forward(ctx, rows: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(rows)
        wide = rows.to(torch.promote_types(rows.dtype, torch.float32))
        return torch.bmm(wide.transpose(1, 2), wide)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        (rows,) = ctx.saved_tensors
        return torch.bmm(rows, (grad + grad.transpose(1, 2)).to(rows.dtype))


def second_moment_sum(features: Tensor) -> Tensor:
    """``Σ_p f_p f_pᵀ`` over the positions of ``(B, C, H, W)`` features, ``(B, C, C)``
    in at least float32, without copying the features whatever their memory layout."""
    return (_PositionGram if _rows(features) else _FlatGram).apply(_positions(features))


def gram(features: Tensor) -> Tensor:
    """Gram matrix ``F Fᵀ / (C·H·W)`` of ``(B, C, H, W)`` features, shape ``(B, C, C)``.

    The product and the result are at least float32 (see :class:`_FlatGram`). Dividing by
    ``C·H·W`` (not only ``H·W``) makes the mean squared error between two
    Grams equal ``1/C²`` times that of Grams divided by ``H·W``: the per-layer
    ``1/C²`` weighting of Gatys et al. and of the classic implementations.
    """
    _, c, h, w = features.shape
    return second_moment_sum(features) / (c * h * w)


def content_loss(features: Tensor, target: Tensor) -> Tensor:
    """Mean squared error between features and their target."""
    return ordered_mean((features - target).square())


def gram_loss(features: Tensor, target_gram: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean squared error between the Gram of ``features`` and a target Gram ``(B|1, C, C)``.

    With ``mask`` ``(1, 1, H, W)``, the Gram of the positions under it, weighted by it
    and normalised by its sum instead of ``H·W``."""
    if mask is None:
        return ordered_mean((gram(features) - target_gram).square())
    _, second = masked_moments(features, mask)
    return ordered_mean((second / features.shape[1] - target_gram).square())


def tv_loss(image: Tensor) -> Tensor:
    """Total variation: mean squared difference of horizontal plus of vertical neighbours.

    Squared rather than absolute differences, so that the loss is smooth (L-BFGS
    expects that). 0 for a constant image; 2 for a 0/1 checkerboard.
    """
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return ordered_mean(dx.square()) + ordered_mean(dy.square())


def feature_moments(features: Tensor) -> tuple[Tensor, Tensor]:
    """Mean ``(B, C)`` and raw second moment ``E[f fᵀ]`` ``(B, C, C)`` over positions, in
    at least float32, without copying the features whatever their memory layout; see
    :class:`_Moments`."""
    return _Moments.apply(features)


class _Moments(torch.autograd.Function):
    """``(mean, E[f fᵀ])`` of ``(B, C, H, W)`` features with one backward for both:
    ``X (dS + dSᵀ) / N + dμ / N`` as a single batched product that adds the mean's share,
    in the features' dtype and layout (autograd's own would make the mean's gradient a
    full-size tensor and add it to the product's: two more passes over the features).
    The forward products are at least float32, as :class:`_FlatGram`'s."""

    @staticmethod
    def forward(ctx, features: Tensor) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        h, w = features.shape[-2:]
        wide = _positions(features).to(torch.promote_types(features.dtype, torch.float32))
        ctx.save_for_backward(features)
        n = h * w
        if _rows(features):
            return wide.mean(dim=1), torch.bmm(wide.transpose(1, 2), wide) / n
        return wide.mean(dim=2), torch.bmm(wide, wide.transpose(1, 2)) / n

    @staticmethod
    def backward(ctx, grad_mean: Tensor | None, grad_second: Tensor | None) -> Tensor:  # type: ignore[override]
        (features,) = ctx.saved_tensors
        b, c, h, w = features.shape
        n = h * w
        flat = _positions(features)
        shift = (grad_mean if grad_mean is not None else features.new_zeros(b, c, dtype=torch.float32)) / n
        if grad_second is None:
            grad_second = shift.new_zeros(b, c, c)
        symmetric = ((grad_second + grad_second.transpose(1, 2)) / n).to(features.dtype)
        shift = shift.to(features.dtype)
        if _rows(features):  # (B, N, C): the gradient in channels-last layout
            grad = torch.baddbmm(shift.unsqueeze(1), flat, symmetric)
            return grad.view(b, h, w, c).permute(0, 3, 1, 2)
        grad = torch.baddbmm(shift.unsqueeze(2), symmetric, flat)
        return grad.view(b, c, h, w)


def _rows(features: Tensor) -> bool:
    """Whether ``(B, C, H, W)`` features lie positions-major (channels-last)."""
    return not features.is_contiguous() and features.is_contiguous(memory_format=torch.channels_last)


def _positions(features: Tensor) -> Tensor:
    """The features as ``(B, N, C)`` rows (channels-last) or ``(B, C, N)`` (otherwise), a view."""
    b, c, h, w = features.shape
    if _rows(features):
        return features.permute(0, 2, 3, 1).reshape(b, h * w, c)
    return features.reshape(b, c, h * w)


def masked_moments(features: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
    """:func:`feature_moments` over the positions weighted by ``mask`` ``(1, 1, H, W)``
    in [0, 1] (None = every position): ``sum m f / sum m`` and ``sum m f fᵀ / sum m``."""
    if mask is None:
        return feature_moments(features)
    total = ordered_sum(mask).clamp(min=1e-8)
    first, second = masked_sums(features, mask)
    return first / total, second / total


def masked_sums(features: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """``Σ m f`` ``(B, C)`` and ``Σ m f fᵀ`` ``(B, C, C)`` over the positions of ``(B, C, H, W)``
    features, ``m`` the ``(1, 1, H, W)`` mask: what :func:`masked_moments` divides by
    ``Σ m`` (and a tiled evaluation adds up over tiles)."""
    second = second_moment_sum(features * mask.sqrt())
    return (features * mask).sum(dim=(2, 3), dtype=second.dtype), second


def wasserstein_loss(
    features: Tensor, target_mean: Tensor, target_cov: Tensor, target_cov_sqrt: Tensor, mask: Tensor | None = None
) -> Tensor:
    """Squared 2-Wasserstein distance between Gaussian fits of features and a target.

    ``mean((μ - μₛ)²) + tr(Σ + Σₛ - 2 (Σₛ^½ Σ Σₛ^½)^½) / C`` for ``(1, C, H, W)``
    features (those under ``mask``, weighted by it, when given); the target is given by
    its mean ``(1, C)``, covariance and the covariance's square root ``(1, C, C)``.

    With fewer positions than channels (the deep layers at the coarse scales: relu5_1 of a
    128 px picture has 48 positions for 512 channels) the covariance has rank below its
    size, and the trace is taken through an ``N x N`` matrix instead (see
    :func:`_few_positions_wasserstein`).
    """
    if mask is None and features.shape[0] == 1 and features.shape[-2] * features.shape[-1] < features.shape[1]:
        return _few_positions_wasserstein(features, target_mean, target_cov, target_cov_sqrt)
    mean, second = masked_moments(features, mask)
    return gaussian_distance(mean, second, target_mean, target_cov, target_cov_sqrt)


def gaussian_distance(
    mean: Tensor, second: Tensor, target_mean: Tensor, target_cov: Tensor, target_cov_sqrt: Tensor
) -> Tensor:
    """:func:`wasserstein_loss` from the features' mean ``(B, C)`` and raw second moment
    ``E[f fᵀ]`` ``(B, C, C)``: what a tiled evaluation sums over tiles."""
    cov = covariance(mean, second)
    c = mean.shape[-1]
    cross = trace_sqrt(target_cov_sqrt @ cov @ target_cov_sqrt)
    trace = torch.diagonal(cov, dim1=-2, dim2=-1).sum(-1) + torch.diagonal(target_cov, dim1=-2, dim2=-1).sum(-1)
    distance = (mean - target_mean).square().mean(dim=-1) + (trace - 2 * cross) / c
    return distance.clamp(min=0).mean()


def _few_positions_wasserstein(
    features: Tensor, target_mean: Tensor, target_cov: Tensor, target_cov_sqrt: Tensor
) -> Tensor:
    """:func:`wasserstein_loss` of ``(1, C, H, W)`` features with ``N = H·W < C``.

    With ``X`` the centred features ``(N, C)``, ``Σ = XᵀX / N`` and ``A = Σₛ^½``, the
    matrix ``A Σ A = YᵀY / N`` (``Y = X A``) has the non-zero eigenvalues of ``Y Yᵀ / N``,
    an ``N x N`` matrix: its trace of a square root is the same, found by an eigensolver
    on ``N`` instead of ``C`` (a 48 x 48 problem for a 512 x 512 one). ``tr Σ`` is
    ``|X|² / N``. The same value as the general path, without its ``C - N`` eigenvalues
    that are zero but for rounding."""
    _, c, h, w = features.shape
    n = h * w
    flat = features.permute(0, 2, 3, 1).reshape(n, c).to(torch.promote_types(features.dtype, torch.float32))
    mean = flat.mean(dim=0, keepdim=True)
    centred = flat - mean
    projected = centred @ target_cov_sqrt[0].to(centred.dtype)
    cross = trace_sqrt(projected @ projected.T / n)
    trace = ordered_sum(centred.square()) / n + torch.diagonal(target_cov[0]).sum()
    distance = (mean - target_mean).square().mean() + (trace - 2 * cross) / c
    return distance.clamp(min=0)
