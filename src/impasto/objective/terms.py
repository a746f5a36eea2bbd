"""The objective as a list of terms.

Each term is a small object built once per scale from the targets: it names the key it
reports under (``content.relu4_2``, ``style.relu1_1``, ``tv``), the layers it reads and
its weight, and computes its weighted value from the current image and its features. The
:class:`Objective` is their sum; the optimiser loop knows nothing of what the terms are,
so a new kind of term (:class:`TemporalTerm`, a video's temporal coherence) is a new class
here, not a change to the loop. How the loss and its gradient are computed (the whole
image, or tiles against global statistics) is the evaluator's business
(:mod:`impasto.engine.optimize`, :mod:`impasto.engine.tiles`). For a tiled evaluation
that never holds a whole picture's features, a term splits its value into sums over
positions (:class:`Summed`: content, Gram, W2) or into a histogram's passes
(:class:`Ranked`: the histogram terms), the regional ones weighted by their masks.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor

from impasto.config import StyleConfig
from impasto.numerics import ordered_mean, ordered_sum
from impasto.objective.histogram import (
    HISTOGRAM_BINS,
    bin_lines,
    bin_positions,
    block_counts,
    channel_extremes,
    channel_values,
    histogram_loss,
    histogram_part,
    masked_counts,
    masked_extremes,
    masked_remap,
    read_blocks,
    read_lines,
    row_blocks,
)
from impasto.objective.losses import (
    content_loss,
    gaussian_distance,
    gram_loss,
    masked_sums,
    second_moment_sum,
    tv_loss,
    wasserstein_loss,
)
from impasto.objective.neighbours import neighbour_sum, sample_directions
from impasto.objective.targets import Region, Targets


class Features:
    """What a term may read: the image, the network's own features (``raw``, in the run's
    precision) and their float32 versions (``wide``), each made once per evaluation.

    The losses of the content, W2 and histogram terms take ``raw`` features as they are
    (their arithmetic promotes bfloat16 to float32 on the fly, and every bfloat16 value is
    exact in float32), so only the regional terms still ask for float32 copies: a copy of
    relu1_1 at 512 px, there and back in the backward, was 5% of a step."""

    def __init__(self, image: Tensor, raw: dict[str, Tensor], wide_layers: Iterable[str]) -> None:
        self.image = image
        self.raw = raw
        wanted = set(wide_layers)
        # Made in the network's layer order, before any term runs (the order of the
        # graph's nodes, hence of the backward's sums, does not depend on the terms).
        self.wide = {name: raw[name].float() for name in raw if name in wanted}


class Term(Protocol):
    """One weighted term of the objective."""

    @property
    def key(self) -> str:
        """The name it is reported under, e.g. ``style.relu3_1``."""
        ...

    @property
    def weight(self) -> float: ...

    @property
    def layers(self) -> tuple[str, ...]:
        """The VGG layers it reads (empty for pixel-space terms)."""
        ...

    @property
    def wide(self) -> bool:
        """Whether it reads float32 features (else the network's own)."""
        ...

    def __call__(self, features: Features) -> Tensor:
        """The weighted value, a 0-d float32 tensor."""
        ...


#: A tile's positions in the whole picture's feature map at a term's layer: (rows, cols).
Where = tuple[slice, slice]


@runtime_checkable
class Summed(Protocol):
    """A term whose value depends on its layer's features only through sums over their
    positions (and a target at the same positions): the whole picture's sums are the sums
    of its tiles' (see :mod:`impasto.engine.tiles`)."""

    @property
    def layer(self) -> str: ...

    def sums(self, features: Tensor, where: Where) -> tuple[Tensor, ...]:
        """This tile's sums (float32), its features at ``where`` in the whole map."""
        ...

    def from_sums(self, sums: Sequence[Tensor], positions: int) -> Tensor:
        """The weighted value from the whole picture's sums over ``positions`` positions."""
        ...


@runtime_checkable
class Ranked(Protocol):
    """A histogram term, in the passes of a tiled evaluation: each tile's extremes (combined
    by min and max over the tiles), its counts in the whole picture's bins (summed), the
    lines read off the whole counts, and each tile's share of the value with its gradient.
    ``where``: the tile's positions in the whole map (for terms with masks)."""

    @property
    def layer(self) -> str: ...

    def extremes(self, features: Tensor, where: Where) -> tuple[Tensor, Tensor]: ...

    def counts(self, features: Tensor, low: Tensor, high: Tensor, where: Where) -> tuple[Tensor, Tensor]: ...

    def lines(self, counts: Tensor, atoms: Tensor, positions: int) -> Tensor: ...

    def part(
        self, features: Tensor, low: Tensor, high: Tensor, lines: Tensor, positions: int, where: Where
    ) -> Tensor: ...


class OneLayer:
    """A term that reads one VGG layer and is reported as ``{group}.{layer}``."""

    group: ClassVar[str]
    layer: str

    @property
    def key(self) -> str:
        return f"{self.group}.{self.layer}"

    @property
    def layers(self) -> tuple[str, ...]:
        return (self.layer,)


@dataclass(frozen=True)
class TargetTerm(OneLayer):
    """``weight · loss(F_l, target)`` on one layer's features (float32 arithmetic); a
    subclass names its ``group`` and measures the loss."""

    layer: str
    target: Tensor = field(repr=False)
    weight: float
    wide: bool = False

    def __call__(self, features: Features) -> Tensor:
        return self.weight * self.measure(features.raw[self.layer])

    def measure(self, features: Tensor) -> Tensor:
        raise NotImplementedError


class ContentTerm(TargetTerm):
    """``weight · MSE(F_l, F_l(content))``."""

    group: ClassVar[str] = "content"

    def measure(self, features: Tensor) -> Tensor:
        return content_loss(features, self.target)

    def sums(self, features: Tensor, where: Where) -> tuple[Tensor, ...]:
        return (ordered_sum((features - self.target[..., where[0], where[1]]).square()),)

    def from_sums(self, sums: Sequence[Tensor], positions: int) -> Tensor:
        return self.weight * (sums[0] / (positions * self.target.shape[1]))


class HistogramTerm(TargetTerm):
    """``weight · histogram loss``: each channel's distribution against the style's, whose
    quantile functions are the target (see :func:`impasto.objective.histogram.histogram_loss`)."""

    group: ClassVar[str] = "histogram"

    def measure(self, features: Tensor) -> Tensor:
        return histogram_loss(features, self.target)

    # The passes of a tiled evaluation (:func:`impasto.objective.histogram.remap`'s steps over tiles).

    def extremes(self, features: Tensor, where: Where) -> tuple[Tensor, Tensor]:
        """A tile's per-channel smallest and largest values, ``(1, C)`` each."""
        return channel_extremes(channel_values(features))

    def counts(self, features: Tensor, low: Tensor, high: Tensor, where: Where) -> tuple[Tensor, Tensor]:
        """A tile's values per bin of the whole picture's histograms (``(C, bins)``) and at
        each channel's minimum (``(C,)``), int64."""
        _, counts, atoms = block_counts(row_blocks(channel_values(features)), low, high, HISTOGRAM_BINS)
        return counts, atoms

    def lines(self, counts: Tensor, atoms: Tensor, positions: int) -> Tensor:
        """The remapping's lines from the whole picture's counts over ``positions``."""
        wide = self.target.dtype
        return bin_lines(counts.to(wide), atoms.to(wide), positions, self.target, HISTOGRAM_BINS)

    def part(self, features: Tensor, low: Tensor, high: Tensor, lines: Tensor, positions: int, where: Where) -> Tensor:
        """A tile's share of the weighted value (the shares add up to it), with its gradient."""
        values = channel_values(features)

        def mapper(v: Tensor) -> list[Tensor]:
            return read_blocks(lines, [bin_positions(block, low, high, HISTOGRAM_BINS) for block in row_blocks(v)])

        return self.weight * histogram_part(values, mapper, positions * values.shape[1])


@dataclass(frozen=True)
class GramTerm(OneLayer):
    """``weight · (MSE(G_l, G_l(style)) + offset)`` on the network's own features: the Gram
    product runs in float32 and its backward in the network's dtype (see
    :func:`impasto.objective.losses.gram`)."""

    group: ClassVar[str] = "style"

    layer: str
    target: Tensor = field(repr=False)
    offset: float
    weight: float
    wide: bool = False

    def __call__(self, features: Features) -> Tensor:
        return self.weight * (gram_loss(features.raw[self.layer], self.target) + self.offset)

    def sums(self, features: Tensor, where: Where) -> tuple[Tensor, ...]:
        return (second_moment_sum(features),)

    def from_sums(self, sums: Sequence[Tensor], positions: int) -> Tensor:
        gram = sums[0] / (positions * self.target.shape[-1])
        return self.weight * (ordered_mean((gram - self.target).square()) + self.offset)


@dataclass(frozen=True)
class WassersteinTerm(OneLayer):
    """``weight · W2²`` between Gaussian fits of the features and of the style."""

    group: ClassVar[str] = "style"

    layer: str
    mean: Tensor = field(repr=False)
    cov: Tensor = field(repr=False)
    cov_sqrt: Tensor = field(repr=False)
    weight: float
    wide: bool = False

    def __call__(self, features: Features) -> Tensor:
        return self.weight * wasserstein_loss(features.raw[self.layer], self.mean, self.cov, self.cov_sqrt)

    def sums(self, features: Tensor, where: Where) -> tuple[Tensor, ...]:
        second = second_moment_sum(features)
        return features.sum(dim=(2, 3), dtype=second.dtype), second

    def from_sums(self, sums: Sequence[Tensor], positions: int) -> Tensor:
        mean, second = sums[0] / positions, sums[1] / positions
        return self.weight * gaussian_distance(mean, second, self.mean, self.cov, self.cov_sqrt)


class RegionalLayer(OneLayer):
    """A term of regional styles at one layer (:class:`Region`: each style's mask there)."""

    regions: tuple[Region, ...]

    def present(self) -> list[Region]:
        """The regions that cover any of this layer, in order."""
        return [r for r in self.regions if r.share[self.layer] > 0]

    def _weights(self, region: Region, where: Where | None = None) -> Tensor:
        """The region's mask at the tile's positions (the whole map's with None), ``(N, 1)``."""
        mask = region.mask[self.layer]
        if where is not None:
            mask = mask[..., where[0], where[1]]
        return mask.permute(0, 2, 3, 1).reshape(-1, 1).to(torch.float32)


@dataclass(frozen=True)
class RegionalTerm(RegionalLayer):
    """Regional styles at one layer: each region's Gram or W2 loss over the positions
    under its mask, scaled by its weight and its share of the image."""

    group: ClassVar[str] = "style"

    layer: str
    regions: tuple[Region, ...] = field(repr=False)
    style_loss: str
    weight: float
    wide: bool = True

    def _region(self, features: Tensor, region: Region) -> Tensor:
        mask = region.mask[self.layer]
        if self.style_loss == "wasserstein":
            name = self.layer
            return wasserstein_loss(features, region.mean[name], region.cov[name], region.cov_sqrt[name], mask)
        return gram_loss(features, region.gram[self.layer], mask)

    def __call__(self, features: Features) -> Tensor:
        wide = features.wide[self.layer]
        loss = sum(r.weight * r.share[self.layer] * self._region(wide, r) for r in self.present()) + wide.new_zeros(())
        return self.weight * loss

    def sums(self, features: Tensor, where: Where) -> tuple[Tensor, ...]:
        """Per region (those with a share), ``Σ m f`` and ``Σ m f fᵀ`` over the tile's
        positions, ``m`` its mask there: the sums of :func:`masked_moments`."""
        wide = features.float()
        return tuple(s for r in self.present() for s in masked_sums(wide, r.mask[self.layer][..., where[0], where[1]]))

    def from_sums(self, sums: Sequence[Tensor], positions: int) -> Tensor:
        loss = sums[0].new_zeros(()) if sums else torch.zeros(())
        for k, region in enumerate(self.present()):
            name = self.layer
            total = ordered_sum(region.mask[name]).clamp(min=1e-8)
            mean, second = sums[2 * k] / total, sums[2 * k + 1] / total
            if self.style_loss == "wasserstein":
                value = gaussian_distance(mean, second, region.mean[name], region.cov[name], region.cov_sqrt[name])
            else:
                value = ordered_mean((second / second.shape[-1] - region.gram[name]).square())
            loss = loss + region.weight * region.share[name] * value
        return self.weight * loss


@dataclass(frozen=True)
class RegionalHistogramTerm(RegionalLayer):
    """Regional styles' histogram term at one layer: for each region, each channel's
    distribution over the positions under its mask (weighted by the mask) against the
    quantiles of its style's part, ``sum m (F - R(F))²`` over the whole picture's values,
    scaled by the region's weight. One region covering the whole picture is the
    :class:`HistogramTerm` exactly; each position gets the gradient it would get from an
    unmasked run with its region's style."""

    group: ClassVar[str] = "histogram"

    layer: str
    regions: tuple[Region, ...] = field(repr=False)
    weight: float
    wide: bool = False

    def __call__(self, features: Features) -> Tensor:
        values = channel_values(features.raw[self.layer])
        loss = values.new_zeros((), dtype=torch.float32)
        for region in self.present():
            weights = self._weights(region).to(values.device)
            target = region.quantiles[self.layer]

            def mapper(v: Tensor, weights: Tensor = weights, target: Tensor = target) -> Tensor:
                return masked_remap(v, weights, target, HISTOGRAM_BINS)

            loss = loss + region.weight * histogram_part(values, mapper, values.numel(), weights)
        return self.weight * loss

    # The passes of a tiled evaluation (:class:`Ranked`), each region's on a leading axis:
    # :func:`impasto.objective.histogram.masked_remap`'s steps over tiles.

    def extremes(self, features: Tensor, where: Where) -> tuple[Tensor, Tensor]:
        """Per region, the tile's per-channel extremes of the positions under its mask,
        ``(R, 1, C)`` each (±inf where the tile has none)."""
        values = channel_values(features)
        lows, highs = zip(*(masked_extremes(values, self._weights(r, where)) for r in self.present()), strict=True)
        return torch.stack(lows), torch.stack(highs)

    def counts(self, features: Tensor, low: Tensor, high: Tensor, where: Where) -> tuple[Tensor, Tensor]:
        """Per region, the tile's values per bin counted by their mask's weight
        ``(R, C, bins)`` and at each channel's minimum ``(R, C)``."""
        values = channel_values(features)
        counts, atoms = [], []
        for k, region in enumerate(self.present()):
            *_, bins, at_low = masked_counts(values, self._weights(region, where), low[k], high[k], HISTOGRAM_BINS)
            counts.append(bins)
            atoms.append(at_low)
        return torch.stack(counts), torch.stack(atoms)

    def lines(self, counts: Tensor, atoms: Tensor, positions: int) -> Tensor:
        """Per region, the remapping's lines from the whole picture's weighted counts."""
        out = []
        for k, region in enumerate(self.present()):
            wide = counts.dtype
            n = ordered_sum(self._weights(region).to(wide))
            target = region.quantiles[self.layer].to(wide)
            out.append(bin_lines(counts[k], atoms[k], n, target, HISTOGRAM_BINS))
        return torch.stack(out)

    def part(self, features: Tensor, low: Tensor, high: Tensor, lines: Tensor, positions: int, where: Where) -> Tensor:
        """The tile's share of the weighted value, with its gradient."""
        values = channel_values(features)
        loss = values.new_zeros((), dtype=torch.float32)
        for k, region in enumerate(self.present()):

            def mapper(v: Tensor, k: int = k) -> Tensor:
                return read_lines(lines[k], *bin_positions(v, low[k], high[k], HISTOGRAM_BINS))

            share = histogram_part(values, mapper, positions * values.shape[1], self._weights(region, where))
            loss = loss + region.weight * share
        return self.weight * loss


@dataclass(frozen=True)
class NeighbourTerm(OneLayer):
    """``weight · mean_p (1 - cos(f_p - μ, s_{n(p)} - μ))``: each position's feature pulled
    toward its nearest sampled feature of the painting(s) in centred cosine (μ the samples'
    mean), the matches found anew at each evaluation and held constant (see
    :mod:`impasto.objective.neighbours`). A sum over positions: tiled exactly."""

    group: ClassVar[str] = "neighbours"

    layer: str
    samples: Tensor = field(repr=False)
    weight: float
    wide: bool = False

    @functools.cached_property
    def keys(self) -> tuple[Tensor, Tensor]:
        """The samples' directions and their centre, made once (:func:`sample_directions`)."""
        return sample_directions(self.samples)

    def __call__(self, features: Features) -> Tensor:
        raw = features.raw[self.layer]
        return self.weight * neighbour_sum(raw, *self.keys) / (raw.shape[-2] * raw.shape[-1])

    def sums(self, features: Tensor, where: Where) -> tuple[Tensor, ...]:
        return (neighbour_sum(features, *self.keys),)

    def from_sums(self, sums: Sequence[Tensor], positions: int) -> Tensor:
        return self.weight * sums[0] / positions


@dataclass(frozen=True)
class RegionalNeighbourTerm(RegionalLayer):
    """Regional styles' neighbour term at one layer: the positions under each region's
    mask (weighted by it) matched among its own painting's samples, each region's mean
    distance scaled by its weight and share, as :class:`RegionalTerm` scales its losses."""

    group: ClassVar[str] = "neighbours"

    layer: str
    regions: tuple[Region, ...] = field(repr=False)
    weight: float
    wide: bool = False

    @functools.cached_property
    def keys(self) -> list[tuple[Tensor, Tensor]]:
        """Each present region's samples' directions and centre, made once."""
        return [sample_directions(region.samples[self.layer]) for region in self.present()]

    def _distances(self, features: Tensor, where: Where | None) -> list[Tensor]:
        return [
            neighbour_sum(features, *keys, self._weights(region, where)[:, 0])
            for region, keys in zip(self.present(), self.keys, strict=True)
        ]

    def __call__(self, features: Features) -> Tensor:
        return self.from_sums(self._distances(features.raw[self.layer], None), 0)

    def sums(self, features: Tensor, where: Where) -> tuple[Tensor, ...]:
        return tuple(self._distances(features, where))

    def from_sums(self, sums: Sequence[Tensor], positions: int) -> Tensor:
        loss = torch.zeros((), device=sums[0].device) if sums else torch.zeros(())
        for total, region in zip(sums, self.present(), strict=True):
            covered = ordered_sum(region.mask[self.layer]).clamp(min=1e-8)
            loss = loss + region.weight * region.share[self.layer] * total / covered
        return self.weight * loss


class PixelTerm:
    """A term of the picture's own pixels, reported as its class's ``key``: it reads no
    layer of the network."""

    key: ClassVar[str]

    @property
    def layers(self) -> tuple[str, ...]:
        return ()

    @property
    def wide(self) -> bool:
        return False


@dataclass(frozen=True)
class TVTerm(PixelTerm):
    """``weight · TV(image)``: smoothness in pixel space."""

    key = "tv"
    weight: float

    def __call__(self, features: Features) -> Tensor:
        return self.weight * tv_loss(features.image)


@dataclass(frozen=True)
class TemporalTerm(PixelTerm):
    """``weight · Σ c · (x − target)² / (3·h·w)``: a video frame held to the previous
    frame's painting warped onto it (``target``) where the flow is reliable (``mask``,
    ``(1, 1, h, w)`` in [0, 1]); Ruder, Dosovitskiy and Brox (2016). Pixel space."""

    key = "temporal"
    target: Tensor = field(repr=False)
    mask: Tensor = field(repr=False)
    weight: float

    def __call__(self, features: Features) -> Tensor:
        difference = features.image.float() - self.target
        return self.weight * ordered_mean(self.mask * difference * difference)


@dataclass(frozen=True)
class LookTerm(PixelTerm):
    """``weight · mean((down(x) − anchor)²)``: the picture seen at the anchor's size
    (antialiased bicubic: as sharp as a viewer shows it) held to ``anchor``
    ``(1, 3, h, w)``, the picture painted at that size: a print keeps its preview's look
    and only gains detail. Pixel space."""

    key = "look"
    anchor: Tensor = field(repr=False)
    weight: float

    def __call__(self, features: Features) -> Tensor:
        image = features.image.float()
        seen = F.interpolate(image, size=self.anchor.shape[-2:], mode="bicubic", align_corners=False, antialias=True)
        return self.weight * ordered_mean((seen - self.anchor).square())


@dataclass(frozen=True)
class Objective:
    """The weighted sum of ``terms``, evaluated on an image and its raw features."""

    terms: tuple[Term, ...]

    @property
    def layers(self) -> tuple[str, ...]:
        """Every layer a term reads, each once."""
        return tuple(dict.fromkeys(layer for term in self.terms for layer in term.layers))

    def __call__(self, image: Tensor, raw: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """The total loss (0-d) and each term's weighted value by key."""
        features = Features(image, raw, (layer for term in self.terms if term.wide for layer in term.layers))
        values = {term.key: term(features) for term in self.terms}
        return torch.stack(list(values.values())).sum(), values


def build_objective(
    targets: Targets,
    *,
    content_layers: Sequence[str],
    style_layers: Sequence[str],
    content_weight: float,
    style_weight: float,
    style_layer_weights: Sequence[float] | None,
    style_loss: str,
    tv_weight: float,
    histogram_weight: float = 0.0,
    neighbour_weight: float = 0.0,
    neighbour_layers: Sequence[str] = (),
) -> Objective:
    """The terms of one scale: content, then style per layer, then the histogram term per
    style layer (layers weighted as the style's; each region's own with regional styles),
    the neighbour term per neighbour layer and TV, when weighted."""
    terms: list[Term] = [ContentTerm(name, targets.content[name], content_weight) for name in content_layers]
    layer_weights = style_layer_weights or (1.0,) * len(style_layers)
    for name, w in zip(style_layers, layer_weights, strict=True):
        weight = style_weight * w
        if targets.regions is not None:
            terms.append(RegionalTerm(name, tuple(targets.regions), style_loss, weight))
        elif style_loss == "wasserstein":
            mean, cov, root = targets.style_mean[name], targets.style_cov[name], targets.style_cov_sqrt[name]
            terms.append(WassersteinTerm(name, mean, cov, root, weight))
        else:
            terms.append(GramTerm(name, targets.style_gram[name], targets.style_offset[name], weight))
    if histogram_weight:
        for name, w in zip(style_layers, layer_weights, strict=True):
            if targets.regions is not None:
                terms.append(RegionalHistogramTerm(name, tuple(targets.regions), histogram_weight * w))
            else:
                terms.append(HistogramTerm(name, targets.style_quantiles[name], histogram_weight * w))
    if neighbour_weight:
        for name in neighbour_layers:
            if targets.regions is not None:
                terms.append(RegionalNeighbourTerm(name, tuple(targets.regions), neighbour_weight))
            else:
                terms.append(NeighbourTerm(name, targets.style_samples[name], neighbour_weight))
    if tv_weight:
        terms.append(TVTerm(tv_weight))
    return Objective(tuple(terms))


def recipe_objective(recipe: StyleConfig, targets: Targets) -> Objective:
    """The objective ``recipe`` asks for at one scale (its content weight as it stands:
    the stylizer passes the one of the output's size)."""
    return build_objective(
        targets,
        content_layers=recipe.content_layers,
        style_layers=recipe.style_layers,
        content_weight=recipe.content_weight,
        style_weight=recipe.style_weight,
        style_layer_weights=recipe.style_layer_weights,
        style_loss=recipe.style_loss,
        tv_weight=recipe.tv_weight,
        histogram_weight=recipe.histogram_weight,
        neighbour_weight=recipe.neighbour_weight,
        neighbour_layers=recipe.neighbour_layers,
    )
