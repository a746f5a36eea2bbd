"""Targets of the objective, computed once per scale under ``no_grad``.

Several style images are blended into one target per layer: the weighted mean of
their Gram matrices. Since the weights sum to 1,
``sum_i w_i·MSE(G, G_i) = MSE(G, sum_i w_i G_i) + offset`` with
``offset = sum_i w_i·mean(G_i²) - mean((sum_i w_i G_i)²)`` (constant in G): the
gradient is that of one loss per style, at the cost of one. The offset is kept so the
reported style loss equals the weighted mean of the per-style losses, as the classic
implementations print it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from impasto.encoder import Encoder
from impasto.losses import feature_moments, gram, masked_moments, psd_sqrt
from impasto.masks import layer_mask


@dataclass(frozen=True)
class Targets:
    content: dict[str, Tensor]
    """Per content layer: the content image's features ``(1, C, H, W)``."""
    style_gram: dict[str, Tensor]
    """Per style layer: the blended Gram ``(1, C, C)``."""
    style_offset: dict[str, float]
    """Per style layer: the constant that turns the blended loss into the weighted mean."""
    style_mean: dict[str, Tensor] = field(default_factory=dict)
    """Wasserstein only, per style layer: blended feature mean ``(1, C)``."""
    style_cov: dict[str, Tensor] = field(default_factory=dict)
    """Wasserstein only: covariance from the blended mean and second moment ``(1, C, C)``."""
    style_cov_sqrt: dict[str, Tensor] = field(default_factory=dict)
    regions: list[Region] | None = None
    """Regional styles: one per style image, each with its mask; the blended
    ``style_*`` fields are then empty."""


@dataclass(frozen=True)
class Region:
    """One style image's statistics and the part of the output it applies to."""

    weight: float
    """The style's blend weight times the number of styles (equal weights give 1 each)."""
    mask: dict[str, Tensor]
    """Per style layer: the output's mask at that layer's resolution ``(1, 1, h, w)``."""
    share: dict[str, float]
    """Per style layer: the mask's mean; the region's loss is scaled by it, so each
    position gets the gradient it would get from an unmasked run."""
    gram: dict[str, Tensor] = field(default_factory=dict)
    mean: dict[str, Tensor] = field(default_factory=dict)
    cov: dict[str, Tensor] = field(default_factory=dict)
    cov_sqrt: dict[str, Tensor] = field(default_factory=dict)


def normalized(weights: Sequence[float] | None, count: int) -> list[float]:
    """Blend weights scaled to sum 1; equal weights when ``weights`` is None."""
    if weights is None:
        return [1.0 / count] * count
    if len(weights) != count:
        raise ValueError(f"{len(weights)} style weights for {count} style images")
    total = float(sum(weights))
    return [float(w) / total for w in weights]


@torch.no_grad()
def build_targets(
    encoder: Encoder,
    content: Tensor,
    styles: Sequence[Tensor],
    content_layers: Sequence[str],
    style_layers: Sequence[str],
    style_weights: Sequence[float] | None = None,
    style_loss: str = "gram",
) -> Targets:
    """Content features and blended style statistics for images already at their working
    size: Grams for ``gram``; for ``wasserstein``, the weighted means of the feature means
    and raw second moments (one Gaussian per layer, whatever the number of styles)."""
    weights = normalized(style_weights, len(styles))
    content_features = encoder(content)
    content_targets = {name: content_features[name].detach().to(content.dtype) for name in content_layers}
    if style_loss == "wasserstein":
        return _wasserstein_targets(encoder, styles, weights, style_layers, content_targets)
    sums: dict[str, Tensor] = {}
    square_means: dict[str, float] = dict.fromkeys(style_layers, 0.0)
    for style, weight in zip(styles, weights, strict=True):
        features = encoder(style)
        for name in style_layers:
            g = gram(features[name]).double()
            sums[name] = sums[name] + weight * g if name in sums else weight * g
            square_means[name] += weight * g.square().mean().item()
    offsets = {name: max(square_means[name] - sums[name].square().mean().item(), 0.0) for name in style_layers}
    grams = {name: sums[name].to(content.dtype) for name in style_layers}
    return Targets(content_targets, grams, offsets)


def _wasserstein_targets(
    encoder: Encoder,
    styles: Sequence[Tensor],
    weights: list[float],
    style_layers: Sequence[str],
    content_targets: dict[str, Tensor],
) -> Targets:
    means: dict[str, Tensor] = {}
    seconds: dict[str, Tensor] = {}
    for style, weight in zip(styles, weights, strict=True):
        features = encoder(style)
        for name in style_layers:
            mean, second = feature_moments(features[name])
            mean, second = weight * mean.double(), weight * second.double()
            means[name] = means[name] + mean if name in means else mean
            seconds[name] = seconds[name] + second if name in seconds else second
    covs = {n: seconds[n] - means[n].unsqueeze(-1) * means[n].unsqueeze(-2) for n in style_layers}
    return Targets(
        content_targets,
        {},
        dict.fromkeys(style_layers, 0.0),
        {n: means[n].float() for n in style_layers},
        {n: covs[n].float() for n in style_layers},
        {n: psd_sqrt(covs[n]).float() for n in style_layers},
    )


@torch.no_grad()
def build_region_targets(
    encoder: Encoder,
    content: Tensor,
    styles: Sequence[Tensor],
    masks: Tensor,
    style_masks: Sequence[Tensor | None],
    content_layers: Sequence[str],
    style_layers: Sequence[str],
    style_weights: Sequence[float] | None = None,
    style_loss: str = "gram",
) -> Targets:
    """Targets for regional styles: ``masks`` ``(K, 1, H, W)`` at the content's size give
    each of the ``K`` styles its region; ``style_masks`` (each ``(1, 1, h, w)`` at its
    style's size, or None) choose the part of each style image its statistics come from."""
    weights = [w * len(styles) for w in normalized(style_weights, len(styles))]
    content_features = encoder(content)
    content_targets = {name: content_features[name].detach().to(content.dtype) for name in content_layers}
    sizes = {name: tuple(content_features[name].shape[-2:]) for name in style_layers}
    regions = []
    for k, (style, weight) in enumerate(zip(styles, weights, strict=True)):
        features = encoder(style)
        out_masks = {n: layer_mask(masks[k : k + 1], encoder.downsampling(n), sizes[n]) for n in style_layers}
        style_mask = style_masks[k]
        stats = {}
        for name in style_layers:
            feature = features[name].float()
            own = None if style_mask is None else layer_mask(style_mask, encoder.downsampling(name), feature.shape[-2:])
            stats[name] = [t.double() for t in masked_moments(feature, own)]
        share = {n: float(out_masks[n].mean()) for n in style_layers}
        if style_loss == "wasserstein":
            covs = {n: stats[n][1] - stats[n][0].unsqueeze(-1) * stats[n][0].unsqueeze(-2) for n in style_layers}
            region = Region(
                weight,
                out_masks,
                share,
                mean={n: stats[n][0].float() for n in style_layers},
                cov={n: covs[n].float() for n in style_layers},
                cov_sqrt={n: psd_sqrt(covs[n]).float() for n in style_layers},
            )
        else:
            grams = {n: (stats[n][1] / features[n].shape[1]).float() for n in style_layers}
            region = Region(weight, out_masks, share, gram=grams)
        regions.append(region)
    return Targets(content_targets, {}, dict.fromkeys(style_layers, 0.0), regions=regions)
