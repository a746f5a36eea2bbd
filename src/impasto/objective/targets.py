"""Targets of the objective, computed once per scale under ``no_grad``.

Each style image's statistics are computed on their own (:func:`style_statistics`, which
the stylizer caches) and then blended. Several style images become one target per layer:
the weighted mean of their Gram matrices. Since the weights sum to 1,
``sum_i w_i·MSE(G, G_i) = MSE(G, sum_i w_i G_i) + offset`` with
``offset = sum_i w_i·mean(G_i²) - mean((sum_i w_i G_i)²)`` (constant in G): the
gradient is that of one loss per style, at the cost of one. The offset is kept so the
reported style loss equals the weighted mean of the per-style losses, as the classic
implementations print it. For the Wasserstein loss the means and raw second moments are
blended: one Gaussian per layer, whatever the number of styles. A histogram term's
targets are per-channel quantile functions, blended by their weighted mean (in one
dimension that is the 2-Wasserstein barycentre of the styles' distributions).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from impasto.errors import ConfigError
from impasto.imageio import size_of
from impasto.model.encoder import Encoder
from impasto.numerics import ordered_mean
from impasto.objective.histogram import masked_quantiles
from impasto.objective.linalg import covariance, psd_sqrt
from impasto.objective.losses import feature_moments, gram, masked_moments
from impasto.objective.masks import layer_mask
from impasto.objective.neighbours import painting_samples

#: Quantiles kept per channel of a style layer for the histogram term: its distribution
#: read at 1024 levels (a 384 px painting has 110,000 values per channel at relu1_1; the
#: cache keeps 1024).
QUANTILES = 1024


class StatisticsBase(enum.Enum):
    """What a painting's statistics are at each style layer (see :class:`StatisticsKind`)."""

    GRAM = "gram"
    """The Gram of the network's own features."""
    MOMENTS = "moments"
    """Their mean and raw second moment."""
    MASKED = "masked"
    """The moments of float32 features under a mask (regional runs)."""


@dataclass(frozen=True)
class StatisticsKind:
    """What :func:`style_statistics` computes for a run: its ``base`` (:class:`StatisticsBase`:
    the Gram, the moments, or the moments under a mask); with ``quantiles``,
    each channel's quantiles too (the histogram term); at the layers of ``samples``, the
    features at a bounded set of positions too (the neighbour term)."""

    base: StatisticsBase
    quantiles: bool = False
    samples: tuple[str, ...] = ()


@dataclass(frozen=True)
class StyleStatistics:
    """One painting's statistics at one style layer, float64: its Gram ``(1, C, C)``
    (``gram``), or its features' ``mean`` ``(1, C)`` and raw second moment ``second``
    ``(1, C, C)`` (``moments``, ``masked``); with the histogram term each channel's
    ``quantiles`` ``(C, QUANTILES)``; with the neighbour term the features at a bounded
    set of positions, ``samples`` ``(M, C)`` float32 (:func:`impasto.objective.neighbours.painting_samples`)."""

    gram: Tensor | None = None
    mean: Tensor | None = None
    second: Tensor | None = None
    quantiles: Tensor | None = None
    samples: Tensor | None = None

    def to(self, device: torch.device | str) -> StyleStatistics:
        """The same statistics on ``device``."""
        moved = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return StyleStatistics(**{k: None if v is None else v.to(device) for k, v in moved.items()})

    def with_quantiles(self, quantiles: Tensor) -> StyleStatistics:
        return dataclasses.replace(self, quantiles=quantiles)

    def with_samples(self, samples: Tensor) -> StyleStatistics:
        return dataclasses.replace(self, samples=samples)


#: Per style layer, one painting's statistics.
Statistics = dict[str, StyleStatistics]


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
    style_quantiles: dict[str, Tensor] = field(default_factory=dict)
    """Histogram term only, per style layer: blended quantile functions ``(C, QUANTILES)``."""
    style_samples: dict[str, Tensor] = field(default_factory=dict)
    """Neighbour term only, per style layer: the paintings' sampled features ``(M, C)``,
    each painting's share of them its blend weight's."""
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
    quantiles: dict[str, Tensor] = field(default_factory=dict)
    """Per style layer, with the histogram term: the quantile functions of the part of the
    style image the region takes its statistics from."""
    samples: dict[str, Tensor] = field(default_factory=dict)
    """Per style layer, with the neighbour term: that part's sampled features ``(M, C)``."""


def normalized(weights: Sequence[float] | None, count: int) -> list[float]:
    """Blend weights scaled to sum 1; equal weights when ``weights`` is None."""
    if weights is None:
        return [1.0 / count] * count
    if len(weights) != count:
        raise ConfigError("style_weights", f"gives {len(weights)} weights for {count} style images")
    total = float(sum(weights))
    return [float(w) / total for w in weights]


def statistics_kind(
    style_loss: str, regional: bool, histogram: bool = False, neighbour_layers: Sequence[str] = ()
) -> StatisticsKind:
    """What :func:`style_statistics` computes for a run (see :class:`StatisticsKind`)."""
    if regional:
        base = StatisticsBase.MASKED
    else:
        base = StatisticsBase.GRAM if style_loss == "gram" else StatisticsBase.MOMENTS
    return StatisticsKind(base, histogram, tuple(neighbour_layers))


@torch.no_grad()
def style_statistics(
    encoder: Callable[..., dict[str, Tensor]],
    style: Tensor,
    layers: Sequence[str],
    kind: StatisticsKind,
    own_mask: Tensor | None = None,
    downsampling: Callable[[str], int] | None = None,
) -> Statistics:
    """One style image's statistics at its working size, float64, per layer of ``layers``:
    its Gram for ``gram``; its feature mean and raw second moment for ``moments``, or for
    ``masked`` over the positions under ``own_mask`` ``(1, 1, h, w)`` (None = all), whose
    resolution per layer ``downsampling(layer)`` gives. With ``kind.quantiles`` each
    channel's quantiles too (:data:`QUANTILES` of them, float32 features; ``masked``: of
    the positions under ``own_mask``)."""
    features = encoder(style, layers)
    stats: Statistics = {}
    for name in layers:
        own = None
        if kind.base is StatisticsBase.GRAM:
            stats[name] = StyleStatistics(gram=gram(features[name]).double())
        elif kind.base is StatisticsBase.MOMENTS:
            mean, second = (t.double() for t in feature_moments(features[name]))
            stats[name] = StyleStatistics(mean=mean, second=second)
        else:
            feature = features[name].float()
            if own_mask is not None:
                assert downsampling is not None
                own = layer_mask(own_mask, downsampling(name), size_of(feature))
            mean, second = (t.double() for t in masked_moments(feature, own))
            stats[name] = StyleStatistics(mean=mean, second=second)
        if kind.quantiles:
            stats[name] = stats[name].with_quantiles(masked_quantiles(features[name].float(), own, QUANTILES).double())
        if name in kind.samples:
            stats[name] = stats[name].with_samples(painting_samples(features[name], under=own))
    return stats


@torch.no_grad()
def _given(statistic: Tensor | None) -> Tensor:
    """A statistic the kind of the run has (a missing one is a bug: a cache mixed kinds)."""
    if statistic is None:
        raise ValueError("style statistics of another kind than the run's")
    return statistic


def content_targets(encoder: Callable[..., dict[str, Tensor]], content: Tensor, layers: Sequence[str]) -> dict:
    """The content image's features at ``layers``, in the content's dtype."""
    features = encoder(content, layers)
    return {name: features[name].detach().to(content.dtype) for name in layers}


def blend_targets(
    content: dict[str, Tensor],
    stats: Sequence[Statistics],
    weights: Sequence[float],
    layers: Sequence[str],
    kind: StatisticsKind,
) -> Targets:
    """Blended targets from per-style ``gram`` or ``moments`` statistics (and quantiles,
    see :class:`StatisticsKind`); ``weights`` sum to 1."""
    quantiles: dict[str, Tensor] = {}
    if kind.quantiles:
        for name in layers:
            blend = [w * _given(style[name].quantiles) for style, w in zip(stats, weights, strict=True)]
            quantiles[name] = torch.stack(blend).sum(0).float()
    samples = {name: blend_samples([_given(style[name].samples) for style in stats], weights) for name in kind.samples}
    if kind.base is StatisticsBase.MOMENTS:
        means: dict[str, Tensor] = {}
        seconds: dict[str, Tensor] = {}
        for style, weight in zip(stats, weights, strict=True):
            for name in layers:
                mean, second = weight * _given(style[name].mean), weight * _given(style[name].second)
                means[name] = means[name] + mean if name in means else mean
                seconds[name] = seconds[name] + second if name in seconds else second
        covs = {n: covariance(means[n], seconds[n]) for n in layers}
        return Targets(
            content,
            {},
            dict.fromkeys(layers, 0.0),
            {n: means[n].float() for n in layers},
            {n: covs[n].float() for n in layers},
            {n: psd_sqrt(covs[n]).float() for n in layers},
            quantiles,
            samples,
        )
    sums: dict[str, Tensor] = {}
    square_means: dict[str, float] = dict.fromkeys(layers, 0.0)
    for style, weight in zip(stats, weights, strict=True):
        for name in layers:
            g = _given(style[name].gram)
            sums[name] = sums[name] + weight * g if name in sums else weight * g
            square_means[name] += weight * ordered_mean(g.square()).item()
    offsets = {name: max(square_means[name] - ordered_mean(sums[name].square()).item(), 0.0) for name in layers}
    dtype = next(iter(content.values())).dtype
    return Targets(
        content, {name: sums[name].to(dtype) for name in layers}, offsets, style_quantiles=quantiles,
        style_samples=samples,
    )  # fmt: skip


def blend_samples(samples: Sequence[Tensor], weights: Sequence[float]) -> Tensor:
    """One painting's samples, or several paintings' together, each giving the share of
    the rows its blend weight gives it (at least one row each): ``(M, C)``."""
    if len(samples) == 1:
        return samples[0]
    count = max(s.shape[0] for s in samples)
    return torch.cat([s[: max(1, round(w * count))] for s, w in zip(samples, weights, strict=True)])


def region_targets(
    content: dict[str, Tensor],
    stats: Sequence[Statistics],
    weights: Sequence[float],
    masks: Tensor,
    layers: Sequence[str],
    style_loss: str,
    downsampling: Callable[[str], int],
    sizes: dict[str, tuple[int, int]],
) -> Targets:
    """Targets for regional styles from per-style ``masked`` statistics (with quantiles
    when they have them, see :class:`StatisticsKind`): ``masks`` ``(K, 1, H, W)`` at the
    content's size give each of the ``K`` styles its region; ``sizes`` are the feature
    sizes per layer; ``weights`` sum to 1."""
    regions = []
    for k, (style, weight) in enumerate(zip(stats, weights, strict=True)):
        quantiles = {n: q.float() for n in layers if (q := style[n].quantiles) is not None}
        samples = {n: q for n in layers if (q := style[n].samples) is not None}
        means = {n: _given(style[n].mean) for n in layers}
        seconds = {n: _given(style[n].second) for n in layers}
        out_masks = {n: layer_mask(masks[k : k + 1], downsampling(n), sizes[n]) for n in layers}
        share = {n: float(ordered_mean(out_masks[n])) for n in layers}
        scaled = weight * len(stats)
        if style_loss == "wasserstein":
            covs = {n: covariance(means[n], seconds[n]) for n in layers}
            region = Region(
                scaled,
                out_masks,
                share,
                mean={n: means[n].float() for n in layers},
                cov={n: covs[n].float() for n in layers},
                cov_sqrt={n: psd_sqrt(covs[n]).float() for n in layers},
                quantiles=quantiles,
                samples=samples,
            )
        else:
            gram_targets = {n: (seconds[n] / seconds[n].shape[-1]).float() for n in layers}
            region = Region(scaled, out_masks, share, gram=gram_targets, quantiles=quantiles, samples=samples)
        regions.append(region)
    return Targets(content, {}, dict.fromkeys(layers, 0.0), regions=regions)


@torch.no_grad()
def build_targets(
    encoder: Encoder,
    content: Tensor,
    styles: Sequence[Tensor],
    content_layers: Sequence[str],
    style_layers: Sequence[str],
    style_weights: Sequence[float] | None = None,
    style_loss: str = "gram",
    histogram: bool = False,
    neighbour_layers: Sequence[str] = (),
) -> Targets:
    """Content features and blended style statistics for images already at their working
    size, without a cache (the stylizer keeps one); ``histogram`` adds quantiles,
    ``neighbour_layers`` the paintings' samples there."""
    weights = normalized(style_weights, len(styles))
    kind = statistics_kind(style_loss, regional=False, histogram=histogram, neighbour_layers=neighbour_layers)
    stats = [style_statistics(encoder, style, style_layers, kind) for style in styles]
    return blend_targets(content_targets(encoder, content, content_layers), stats, weights, style_layers, kind)


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
    histogram: bool = False,
    neighbour_layers: Sequence[str] = (),
) -> Targets:
    """Regional targets without a cache; ``style_masks`` (each ``(1, 1, h, w)`` at its
    style's size, or None) choose the part of each style image its statistics come from;
    ``histogram`` adds that part's quantiles, ``neighbour_layers`` its samples there."""
    weights = normalized(style_weights, len(styles))
    kind = statistics_kind(style_loss, regional=True, histogram=histogram, neighbour_layers=neighbour_layers)
    stats = [
        style_statistics(encoder, style, style_layers, kind, own, encoder.downsampling)
        for style, own in zip(styles, style_masks, strict=True)
    ]
    targets = content_targets(encoder, content, content_layers)
    sizes = _feature_sizes(encoder, content, style_layers)
    return region_targets(targets, stats, weights, masks, style_layers, style_loss, encoder.downsampling, sizes)


def _feature_sizes(encoder: Encoder, image: Tensor, layers: Sequence[str]) -> dict[str, tuple[int, int]]:
    """``(h, w)`` of each layer's feature maps for ``image``: halved (rounding down) at every pooling."""
    h, w = image.shape[-2:]
    return {n: (h // encoder.downsampling(n), w // encoder.downsampling(n)) for n in layers}
