"""The objective and its exact gradient, tile by tile: an evaluator for pictures whose
whole-image network pass does not fit in memory.

Each tile runs through the network with a halo (a margin of the pixels around it) wide
enough that every feature inside the tile is the feature the whole picture gives. The
terms never see a whole picture's feature map: each splits its value into sums over
positions (:class:`impasto.objective.terms.Summed`: content, Gram, W2, and the regional
ones as sums weighted by their masks) or into the histogram's passes
(:class:`impasto.objective.terms.Ranked`: range, counts in the whole picture's bins,
values read off the bins' lines; a regional histogram's per region, counted by its mask's
weights). One evaluation:

1. **Sums** (no gradient): every tile's sums, added; the histograms' ranges.
2. **Counts** (no gradient, histogram term only): every tile's counts in the whole
   picture's bins, added.
3. The loss from the sums, and autograd's gradient with respect to each sum (and to the
   pixels, for TV and the temporal term).
4. **Gradient**: each tile runs through the network again, with autograd; its sums (and
   its share of the histogram term) are back-propagated with step 3's gradients, and its
   input gradient (halo included) is added into the picture's.

Every sum is the whole picture's, so the loss and the gradient are the whole picture's
(to float rounding). What is held at once: the picture, the terms' sums and counts, the
photo's content target, and one window's network pass. A term that does not split into
sums (a caller's own) is evaluated from whole feature maps assembled tile by tile
(:meth:`Tiled._held`), then back-propagated tile by tile the same way.

Tiles are aligned to the deepest pooling used (16 px for relu5_1), so every window sees
the pooling grid the whole picture sees; windows are cut at the picture's edges (where
the network's zero padding then applies, as for the whole picture).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from impasto.model.encoder import Encoder
from impasto.objective.histogram import (
    QUANTILE_BINS,
    bin_counts,
    bin_positions,
    channel_extremes,
    channel_values,
    resample_quantiles,
)
from impasto.objective.losses import second_moment_sum
from impasto.objective.neighbours import SAMPLES, positions_of, sample_positions
from impasto.objective.targets import QUANTILES, Statistics, StatisticsBase, StatisticsKind, StyleStatistics
from impasto.objective.terms import Features, Objective, Ranked, Summed, Where
from impasto.runtime import network_precision


def margins(encoder: Encoder, layers: Sequence[str]) -> tuple[int, int]:
    """``(halo, align)`` in pixels for ``layers``: how far a feature's support reaches
    beyond the pixels it stands for (the sum over convolutions of their reach at their
    stride), rounded up to ``align``, the stride of the deepest pooling."""
    reach, stride = 0, 1
    for name in encoder.names_for(layers):
        if name.startswith("conv"):
            reach += (encoder.conv(name).kernel_size[0] // 2) * stride
        elif name.startswith("pool"):
            stride *= 2
    halo = -(-reach // stride) * stride
    return halo, stride


@dataclass(frozen=True)
class Window:
    """One tile: its pixels ``inner`` (rows, cols as (start, stop)) and the window run
    through the network, ``outer`` (the tile with its halo, cut at the picture's edges)."""

    inner: tuple[tuple[int, int], tuple[int, int]]
    outer: tuple[tuple[int, int], tuple[int, int]]

    def cut(self, image: Tensor) -> Tensor:
        """The window's pixels of ``image`` (a view)."""
        (r0, r1), (c0, c1) = self.outer
        return image[..., r0:r1, c0:c1]

    def feature_slices(self, stride: int) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
        """Where the tile's features sit in the whole picture's map and in the window's
        own, at a layer ``stride`` times smaller than the picture."""
        whole, own = [], []
        for (start, stop), (outer_start, _) in zip(self.inner, self.outer, strict=True):
            first, last = start // stride, stop // stride
            whole.append(slice(first, last))
            own.append(slice(first - outer_start // stride, last - outer_start // stride))
        return (whole[0], whole[1]), (own[0], own[1])


def windows(height: int, width: int, tile: int, halo: int, align: int) -> list[Window]:
    """The tiles of a ``height x width`` picture: ``tile`` px a side (rounded down to
    ``align``; the last ones take what is left), each with its window."""
    tile = max(align, tile // align * align)

    def spans(length: int) -> Iterator[tuple[tuple[int, int], tuple[int, int]]]:
        for start in range(0, length, tile):
            stop = min(length, start + tile)
            if length - stop < align:  # a sliver under the alignment joins this tile
                stop = length
            yield (start, stop), (max(0, start - halo), min(length, stop + halo))
            if stop == length:
                return

    return [
        Window((rows, cols), (outer_rows, outer_cols))
        for rows, outer_rows in spans(height)
        for cols, outer_cols in spans(width)
    ]


def layer_strides(encoder: Encoder, layers: Sequence[str]) -> dict[str, int]:
    return {name: encoder.downsampling(name) for name in layers}


def window_features(
    network: Encoder,
    part: Tensor,
    window: Window,
    layers: Sequence[str],
    strides: dict[str, int],
    pooling: str | None,
    autocast: torch.dtype | None,
) -> tuple[dict[str, Tensor], dict[str, Where]]:
    """A window's features at ``layers`` inside its tile (``part``: the window's pixels),
    and where they sit in the whole picture's maps."""
    with network_precision(part.device.type, autocast):
        out = network(part, layers, pooling)
    inside, where = {}, {}
    for name in layers:
        (wr, wc), (orow, ocol) = window.feature_slices(strides[name])
        inside[name], where[name] = out[name][..., orow, ocol], (wr, wc)
    return inside, where


def features_in_tiles(
    network: Encoder,
    image: Tensor,
    layers: Sequence[str],
    pooling: str | None,
    tile: int,
    autocast: torch.dtype | None = None,
    after_window: Callable[[], object] | None = None,
) -> dict[str, Tensor]:
    """The whole picture's features at ``layers``, made tile by tile without gradient
    (each tile's features are those of the whole picture); ``after_window()`` after each."""
    height, width = image.shape[-2:]
    strides = layer_strides(network, layers)
    halo, align = margins(network, layers)
    maps: dict[str, Tensor] = {}
    with torch.no_grad():
        for window in windows(height, width, tile, halo, align):
            inside, where = window_features(network, window.cut(image), window, layers, strides, pooling, autocast)
            for name, feature in inside.items():
                if name not in maps:
                    h, w = height // strides[name], width // strides[name]
                    maps[name] = feature.new_empty((1, feature.shape[1], h, w))
                maps[name][..., where[name][0], where[name][1]] = feature
            del inside
            if after_window is not None:
                after_window()
    return maps


def statistics_in_tiles(
    network: Encoder,
    image: Tensor,
    layers: Sequence[str],
    kind: StatisticsKind,
    pooling: str | None,
    tile: int,
    autocast: torch.dtype | None = None,
) -> Statistics:
    """A painting's statistics (:func:`impasto.objective.targets.style_statistics`, kinds
    ``gram`` and ``moments``, with or without quantiles) tile by tile, for a painting too
    large for one network pass (a scan as large as the print). The Gram
    and the moments are sums over positions, the same to float rounding; the quantiles
    are read off each channel's histogram (:data:`QUANTILE_BINS` bins between its exact
    smallest and largest value, counted in a second pass; values at the smallest value,
    a ReLU's zeros, kept apart), linear inside a bin."""
    quantiles = kind.quantiles
    if kind.base is StatisticsBase.MASKED:
        raise ValueError("statistics under a mask are not made in tiles")
    height, width = image.shape[-2:]
    strides = layer_strides(network, layers)
    halo, align = margins(network, layers)
    plan = windows(height, width, tile, halo, align)

    def tiles() -> Iterator[tuple[dict[str, Tensor], dict[str, Where]]]:
        for window in plan:
            yield window_features(network, window.cut(image), window, layers, strides, pooling, autocast)

    # as style_statistics samples them: at the layers of both
    sampler = {n: TiledSamples(height // strides[n], width // strides[n]) for n in layers if n in kind.samples}

    firsts: dict[str, Tensor] = {}
    seconds: dict[str, Tensor] = {}
    lows: dict[str, Tensor] = {}
    highs: dict[str, Tensor] = {}
    with torch.no_grad():
        for inside, where in tiles():  # first pass: the sums, each channel's range, the samples
            for name, samples in sampler.items():
                samples.add(inside[name], where[name])
            for name in layers:
                feature = inside[name]
                second = second_moment_sum(feature).double()
                first = feature.sum(dim=(2, 3), dtype=torch.float64)
                seconds[name] = seconds[name] + second if name in seconds else second
                firsts[name] = firsts[name] + first if name in firsts else first
                if quantiles:
                    low, high = channel_extremes(channel_values(feature.float()))
                    lows[name] = torch.minimum(lows[name], low) if name in lows else low
                    highs[name] = torch.maximum(highs[name], high) if name in highs else high
        counts: dict[str, Tensor] = {}
        atoms: dict[str, Tensor] = {}
        if quantiles:
            for inside, _ in tiles():  # second pass: the counts in each channel's bins
                for name in layers:
                    feature = inside[name]
                    values = channel_values(feature.float())
                    _, flat = bin_positions(values, lows[name], highs[name], QUANTILE_BINS)
                    part = bin_counts(flat, values.shape[1], QUANTILE_BINS).long()
                    at_low = (values == lows[name]).sum(0).long()
                    counts[name] = counts[name] + part if name in counts else part
                    atoms[name] = atoms[name] + at_low if name in atoms else at_low
    stats: Statistics = {}
    for name in layers:
        positions = (height // strides[name]) * (width // strides[name])
        if kind.base is StatisticsBase.GRAM:
            stats[name] = StyleStatistics(gram=seconds[name] / (seconds[name].shape[-1] * positions))
        else:
            stats[name] = StyleStatistics(mean=firsts[name] / positions, second=seconds[name] / positions)
        if quantiles:
            read = quantiles_from_counts(counts[name], atoms[name], lows[name][0], highs[name][0], QUANTILES)
            stats[name] = stats[name].with_quantiles(read)
        if name in sampler:
            stats[name] = stats[name].with_samples(sampler[name].rows())
    return stats


class TiledSamples:
    """A painting's sampled features (:func:`impasto.objective.neighbours.painting_samples`)
    gathered tile by tile: the positions the whole ``height`` x ``width`` map would take,
    each from the tile it lies in, in the same order."""

    def __init__(self, height: int, width: int) -> None:
        self.width = width
        chosen = sample_positions(SAMPLES, height * width)
        self.count = chosen.numel()
        self.rank = torch.full((height * width,), -1, dtype=torch.long)
        self.rank[chosen] = torch.arange(self.count)
        self.found: Tensor | None = None

    def add(self, features: Tensor, where: Where) -> None:
        rows, cols = where
        across = torch.arange(cols.start, cols.stop)
        index = (torch.arange(rows.start, rows.stop)[:, None] * self.width + across).reshape(-1)
        rank = self.rank[index]
        kept = rank >= 0
        values = positions_of(features)[kept.to(features.device)]
        if self.found is None:
            self.found = values.new_empty((self.count, values.shape[1]))
        self.found[rank[kept].to(values.device)] = values

    def rows(self) -> Tensor:
        assert self.found is not None
        return self.found


def quantiles_from_counts(counts: Tensor, atoms: Tensor, low: Tensor, high: Tensor, count: int) -> Tensor:
    """``count`` quantiles per channel, evenly spaced from the smallest value to the
    largest as :func:`impasto.objective.histogram.channel_quantiles` reads them off the sorted
    values, from a histogram: ``counts`` ``(C, B)`` between ``low`` and ``high`` ``(C,)``,
    ``atoms`` ``(C,)`` of the first bin's values exactly at ``low``; values spread evenly
    inside a bin. float64 ``(C, count)``."""
    c, bins = counts.shape
    low, high = low.double(), high.double()
    width = ((high - low) / bins).unsqueeze(1)
    # The atom as a bin of its own, of no width, before the first bin.
    parts = torch.cat([atoms.unsqueeze(1), counts[:, :1] - atoms.unsqueeze(1), counts[:, 1:]], 1).double()
    steps = torch.arange(bins, dtype=torch.float64, device=counts.device)
    starts = low.unsqueeze(1) + torch.cat([steps.new_zeros(1), steps]).unsqueeze(0) * width
    widths = torch.cat([width.new_zeros(c, 1), width.expand(c, bins)], 1)
    ends = parts.cumsum(1)
    total = ends[:, -1:]

    def value(rank: Tensor) -> Tensor:  # the value of a whole rank: its bin, evenly spread
        at = torch.searchsorted(ends, rank, right=True).clamp_(max=bins)
        before = ends.gather(1, at) - parts.gather(1, at)
        inside = ((rank - before + 0.5) / parts.gather(1, at).clamp(min=1)).clamp_(0, 1)
        return starts.gather(1, at) + inside * widths.gather(1, at)

    # As the sorted values are read: linear between the two whole ranks around each level.
    ranks = torch.linspace(0, 1, count, dtype=torch.float64, device=counts.device).unsqueeze(0) * (total - 1)
    below = ranks.floor()
    above = torch.minimum(below + 1, total - 1)
    values = torch.lerp(value(below), value(above), ranks - below)
    values[:, 0], values[:, -1] = low, high
    return resample_quantiles(values, count)


def streams(objective: Objective) -> bool:
    """Whether every feature term of ``objective`` can be evaluated from sums over tiles
    (else the tiled evaluation holds the whole picture's feature maps)."""
    return all(isinstance(term, (Summed, Ranked)) for term in objective.terms if term.layers)


@dataclass(frozen=True)
class Tiled:
    """The tiled evaluator: ``tile`` px tiles (see the module's description).
    ``on_window(done, total)`` is called after each window an evaluation runs through the
    network, every pass counted (a step of a print is minutes of them)."""

    network: Encoder
    objective: Objective
    autocast: torch.dtype | None = None
    pooling: str | None = None
    tile: int = 512
    on_window: Callable[[int, int], object] | None = None

    def _counter(self, total: int) -> Callable[[], object]:
        """A function to call after each of an evaluation's ``total`` windows."""
        report = self.on_window
        if report is None:
            return lambda: None
        done = itertools.count(1)
        return lambda: report(next(done), total)

    def __call__(self, image: Tensor, *, backward: bool) -> tuple[Tensor, dict[str, Tensor]]:
        if streams(self.objective):
            return self._streamed(image, backward)
        return self._held(image, backward)

    def _plan(self, image: Tensor) -> tuple[list[Window], dict[str, int]]:
        layers = self.objective.layers
        if not layers:
            return [], {}
        halo, align = margins(self.network, layers)
        height, width = image.shape[-2:]
        return windows(height, width, self.tile, halo, align), layer_strides(self.network, layers)

    def _inside(
        self, part: Tensor, window: Window, strides: dict[str, int]
    ) -> tuple[dict[str, Tensor], dict[str, Where]]:
        """A window's features inside its tile, and where they sit in the whole maps."""
        return window_features(self.network, part, window, self.objective.layers, strides, self.pooling, self.autocast)

    def _streamed(self, image: Tensor, backward: bool) -> tuple[Tensor, dict[str, Tensor]]:
        """Statistics summed over tiles: nothing of the whole picture is held but its
        pixels, the terms' sums and the histograms' counts (see the module's description)."""
        terms = self.objective.terms
        plan, strides = self._plan(image)
        height, width = image.shape[-2:]
        positions = {name: (height // stride) * (width // stride) for name, stride in strides.items()}
        summed = [term for term in terms if isinstance(term, Summed)]
        ranked = [term for term in terms if isinstance(term, Ranked)]
        pixels = image.detach()
        tick = self._counter(len(plan) * (1 + bool(ranked) + bool(backward or ranked)))
        totals: list[list[Tensor]] = [[] for _ in summed]
        lows: list[Tensor] = []
        highs: list[Tensor] = []
        with torch.no_grad():
            for window in plan:  # first pass: the sums, the histograms' ranges
                inside, where = self._inside(window.cut(pixels), window, strides)
                for k, term in enumerate(summed):
                    sums = term.sums(inside[term.layer], where[term.layer])
                    totals[k] = list(sums) if not totals[k] else [a + b for a, b in zip(totals[k], sums, strict=True)]
                for k, hterm in enumerate(ranked):
                    low, high = hterm.extremes(inside[hterm.layer], where[hterm.layer])
                    if k == len(lows):
                        lows.append(low)
                        highs.append(high)
                    else:
                        lows[k], highs[k] = torch.minimum(lows[k], low), torch.maximum(highs[k], high)
                del inside
                tick()
            lines: list[Tensor] = []
            if ranked:  # second pass: the histograms' counts in the whole picture's bins
                counts: list[tuple[Tensor, Tensor]] = []
                for window in plan:
                    inside, where = self._inside(window.cut(pixels), window, strides)
                    for k, hterm in enumerate(ranked):
                        bins, atoms = hterm.counts(inside[hterm.layer], lows[k], highs[k], where[hterm.layer])
                        if k == len(counts):
                            counts.append((bins, atoms))
                        else:
                            counts[k] = (counts[k][0] + bins, counts[k][1] + atoms)
                    del inside
                    tick()
                lines = [hterm.lines(*counts[k], positions[hterm.layer]) for k, hterm in enumerate(ranked)]
        leaves = [[t.requires_grad_(backward) for t in sums] for sums in totals]
        values: dict[str, Tensor] = {}
        with torch.set_grad_enabled(backward):
            for k, term in enumerate(summed):
                values[term.key] = term.from_sums(leaves[k], positions[term.layer])
            features = Features(image, {}, ())
            for pixel_term in terms:
                if not pixel_term.layers:
                    values[pixel_term.key] = pixel_term(features)
            known = [value for value in values.values() if value.requires_grad]
            if backward and known:
                torch.autograd.backward(known)
        if backward and image.grad is None:  # no pixel-space term: the features carry all of it
            image.grad = torch.zeros_like(pixels)
        shares = [pixels.new_zeros((), dtype=torch.float32) for _ in ranked]
        upstream_sums = [[leaf.grad for leaf in sums] for sums in leaves] if backward else []
        if backward or ranked:  # last pass: each tile's gradient, the histograms' values
            for window in plan:
                with torch.set_grad_enabled(backward):
                    part = window.cut(pixels).clone().requires_grad_(backward)
                    inside, where = self._inside(part, window, strides)
                    outputs: list[Tensor] = []
                    upstream: list[Tensor] = []
                    for k, term in enumerate(summed if backward else ()):
                        for value, grad in zip(
                            term.sums(inside[term.layer], where[term.layer]), upstream_sums[k], strict=True
                        ):
                            if grad is not None:
                                outputs.append(value)
                                upstream.append(grad)
                    for k, hterm in enumerate(ranked):
                        share = hterm.part(
                            inside[hterm.layer], lows[k], highs[k], lines[k], positions[hterm.layer], where[hterm.layer]
                        )
                        shares[k] = shares[k] + share.detach()
                        outputs.append(share)
                        upstream.append(torch.ones_like(share))
                    if backward and outputs:
                        torch.autograd.backward(outputs, upstream)
                        assert part.grad is not None and image.grad is not None
                        window.cut(image.grad).add_(part.grad)
                    del inside, outputs, part
                tick()
        for k, hterm in enumerate(ranked):
            values[hterm.key] = shares[k]
        ordered = {term.key: values[term.key].detach() for term in terms}
        return torch.stack(list(ordered.values())).sum(), ordered

    def _held(self, image: Tensor, backward: bool) -> tuple[Tensor, dict[str, Tensor]]:
        """The whole picture's feature maps held, the terms run on them as they are (for
        terms that do not split into sums: a caller's own)."""
        layers = self.objective.layers
        plan, strides = self._plan(image)
        pixels = image.detach()
        tick = self._counter(len(plan) * (1 + backward))
        maps = (
            features_in_tiles(self.network, pixels, layers, self.pooling, self.tile, self.autocast, tick)
            if layers
            else {}
        )
        if not backward:
            with torch.no_grad():
                return self.objective(pixels, maps)
        leaves = {name: m.requires_grad_(True) for name, m in maps.items()}
        loss, terms = self.objective(image, leaves)
        loss.backward()
        if image.grad is None:  # no pixel-space term: the features carry all of it
            image.grad = torch.zeros_like(pixels)
        grads = {name: leaf.grad for name, leaf in leaves.items() if leaf.grad is not None}
        for window in plan:
            part = window.cut(pixels).clone().requires_grad_(True)
            with network_precision(image.device.type, self.autocast):
                out = self.network(part, tuple(grads), self.pooling)
            outputs, upstream = [], []
            for name, grad in grads.items():
                (wr, wc), (orow, ocol) = window.feature_slices(strides[name])
                outputs.append(out[name][..., orow, ocol])
                upstream.append(grad[..., wr, wc].to(out[name].dtype))
            torch.autograd.backward(outputs, upstream)
            assert part.grad is not None
            window.cut(image.grad).add_(part.grad)
            del out, outputs, part
            tick()
        return loss.detach(), {k: v.detach() for k, v in terms.items()}
