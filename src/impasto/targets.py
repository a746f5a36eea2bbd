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
from dataclasses import dataclass

import torch
from torch import Tensor

from impasto.encoder import Encoder
from impasto.losses import gram


@dataclass(frozen=True)
class Targets:
    content: dict[str, Tensor]
    """Per content layer: the content image's features ``(1, C, H, W)``."""
    style_gram: dict[str, Tensor]
    """Per style layer: the blended Gram ``(1, C, C)``."""
    style_offset: dict[str, float]
    """Per style layer: the constant that turns the blended loss into the weighted mean."""


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
) -> Targets:
    """Content features and blended style Grams for images already at their working size."""
    weights = normalized(style_weights, len(styles))
    content_features = encoder(content)
    content_targets = {name: content_features[name].detach().to(content.dtype) for name in content_layers}
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
