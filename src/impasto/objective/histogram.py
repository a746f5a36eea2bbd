"""The histogram term's machinery: per-channel quantile functions of features (the
target), and the exact matching of a picture's features to them (each value remapped to
the target's value at its rank), in row blocks so that no step holds a sorted copy of a
large map. Shapes: features ``(B, C, H, W)``, quantiles ``(C, Q)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from impasto.numerics import ordered_sum


def channel_quantiles(features: Tensor, count: int) -> Tensor:
    """Per channel of ``(1, C, H, W)`` features, ``count`` quantiles evenly spaced from the
    smallest value to the largest: ``(C, count)``."""
    values = features.reshape(features.shape[1], -1).sort(dim=1).values
    return resample_quantiles(values, count)


def masked_quantiles(features: Tensor, mask: Tensor | None, count: int) -> Tensor:
    """:func:`channel_quantiles` of the positions weighted by ``mask`` ``(1, 1, H, W)`` in
    [0, 1] (None = every position): each channel's values sorted, each placed at the
    middle of its weight's share of the ranks (equal weights give the unweighted
    quantiles), read at ``count`` evenly spaced levels; positions of weight 0 take no part."""
    if mask is None:
        return channel_quantiles(features, count)
    weights = mask.reshape(-1)
    keep = weights > 0
    if not bool(keep.any()):
        return channel_quantiles(features, count)
    values = features.reshape(features.shape[1], -1)[:, keep]
    weights = weights[keep].to(values.dtype)
    if values.shape[1] == 1:
        return values.expand(-1, count).clone()
    values, order = values.sort(dim=1)
    w = weights[order]  # (C, N): each channel's weights in its own sorted order
    cumulative = w.cumsum(1)
    first, last = w[:, :1], w[:, -1:]
    ranks = (cumulative - w / 2 - first / 2) / (cumulative[:, -1:] - first / 2 - last / 2)
    levels = torch.linspace(0, 1, count, dtype=values.dtype, device=values.device).expand(values.shape[0], -1)
    above = torch.searchsorted(ranks.contiguous(), levels.contiguous()).clamp_(1, values.shape[1] - 1)
    r0, r1 = ranks.gather(1, above - 1), ranks.gather(1, above)
    v0, v1 = values.gather(1, above - 1), values.gather(1, above)
    t = ((levels - r0) / (r1 - r0).clamp(min=1e-12)).clamp_(0, 1)
    return v0 + t * (v1 - v0)


def resample_quantiles(quantiles: Tensor, count: int) -> Tensor:
    """Quantile functions ``(C, K)`` read at ``count`` evenly spaced levels (linear)."""
    if quantiles.shape[1] == count:
        return quantiles
    return F.interpolate(quantiles.unsqueeze(0), size=count, mode="linear", align_corners=True)[0]


#: Bins of each channel's histogram in the histogram loss.
HISTOGRAM_BINS = 1024
#: Bins of each channel's histogram from which a painting's quantiles are read when it is
#: too large for one pass (:func:`impasto.engine.tiles.statistics_in_tiles`): a quantile
#: is then off by at most 1/4096 of its channel's range, four times finer than the
#: histogram loss's own bins.
QUANTILE_BINS = 4096


def channel_values(features: Tensor) -> Tensor:
    """``(1, C, H, W)`` features as ``(H·W, C)`` columns (a view of channels-last ones)."""
    return features.permute(0, 2, 3, 1).reshape(-1, features.shape[1])


def histogram_loss(features: Tensor, target_quantiles: Tensor, bins: int = HISTOGRAM_BINS) -> Tensor:
    """The histogram loss of Risser et al. (2017): ``mean((F - R(F))²)`` over ``(1, C, H, W)``
    features, where ``R`` remaps each channel's values onto the target's distribution
    (given by its quantile functions ``(C, K)``) and is held constant, so the gradient is
    ``2 (F - R(F)) / n``: that of the squared 1-D 2-Wasserstein distance per channel,
    which sees what a Gaussian fit does not (the many zeros of a ReLU layer, a painting's
    few saturated colours).

    ``R`` reads a value's rank off a ``bins``-bin histogram of its channel (linear within
    its bin) instead of sorting: sorting a 384 px picture's relu1_1 (7 million values) took
    420 ms on 2 cores, about a whole step; each pass over them takes 5-10 ms, so this makes
    as few as it can, over the values as they lie in memory (positions by channels: a view
    of channels-last features)."""
    values = channel_values(features)
    wide = torch.promote_types(values.dtype, torch.float32)
    return histogram_part(values, lambda v: remap(v, target_quantiles.to(wide), bins), values.numel())


def histogram_part(
    values: Tensor, mapper: Callable[[Tensor], Tensor | list[Tensor]], total: int, weights: Tensor | None = None
) -> Tensor:
    """``sum(m (x - R(x))²) / total`` over ``values`` ``(N, C)``, ``R = mapper`` held
    constant (its values ``(N, C)``, or those of consecutive blocks of rows:
    :func:`row_blocks`), ``m`` the positions' ``weights`` ``(N, 1)`` (None = 1; see
    :class:`_Histogram`)."""
    return _Histogram.apply(values, mapper, total, weights)


class _Histogram(torch.autograd.Function):
    """``sum(m (x - R(x))²) / total`` with ``R(x) = mapper(x)`` held constant; saves
    ``m (x - R(x))`` for the backward, block by block as the mapper gives them (no tensor of
    the whole layer's values in float32: see :func:`row_blocks`). ``total`` is the count of
    values of the whole picture (a tile's share of a tiled evaluation sums to the whole
    picture's mean)."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx, values: Tensor, mapper: Callable[[Tensor], Tensor | list[Tensor]], total: int, weights: Tensor | None
    ) -> Tensor:
        mapped = mapper(values)
        differences = []
        start = 0
        for block in mapped if isinstance(mapped, list) else [mapped]:
            rows = values[start : start + block.shape[0]]
            differences.append(torch.sub(rows, block, out=block))
            start += block.shape[0]
        if weights is None:
            squares = [ordered_sum(difference.square()) for difference in differences]
            loss = add_up(squares) / total
        else:
            (difference,) = differences
            loss = ordered_sum(difference.square() * weights) / total
            difference.mul_(weights)
        ctx.save_for_backward(*differences)
        ctx.dtype, ctx.total, ctx.shape = values.dtype, total, values.shape
        return loss

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None, None]:  # type: ignore[override]
        differences = ctx.saved_tensors
        scale = 2 * grad / ctx.total
        # The product in the difference's dtype, rounded once to the features' on the way out.
        out = differences[0].new_empty(ctx.shape, dtype=ctx.dtype)
        start = 0
        for difference in differences:
            torch.mul(difference, scale, out=out[start : start + difference.shape[0]])
            start += difference.shape[0]
        return out, None, None, None


def masked_remap(values: Tensor, weights: Tensor, target_quantiles: Tensor, bins: int) -> Tensor:
    """:func:`remap` through the distribution of the positions weighted by ``weights``
    ``(N, 1)`` in [0, 1]: each column's histogram between the extremes of the positions
    of weight > 0, their values counted by weight. Values of weight 0 are mapped as well,
    off their bin's line, and are to be weighted out by the caller."""
    wide = torch.promote_types(values.dtype, torch.float32)
    low, high = masked_extremes(values, weights)
    position, flat, counts, atoms = masked_counts(values, weights, low, high, bins)
    n = ordered_sum(weights.to(wide))
    lines = bin_lines(counts, atoms, n, target_quantiles.to(wide), bins)
    return read_lines(lines, position, flat)


def masked_extremes(values: Tensor, weights: Tensor) -> tuple[Tensor, Tensor]:
    """Each column's smallest and largest value of ``values`` ``(N, C)`` among the rows of
    weight > 0 (``weights`` ``(N, 1)``), ``(1, C)`` each in at least float32; ±inf where
    no row has weight."""
    wide = torch.promote_types(values.dtype, torch.float32)
    inside = weights > 0
    low = torch.where(inside, values, values.new_tensor(float("inf"))).amin(dim=0, keepdim=True).to(wide)
    high = torch.where(inside, values, values.new_tensor(float("-inf"))).amax(dim=0, keepdim=True).to(wide)
    return low, high


def masked_counts(
    values: Tensor, weights: Tensor, low: Tensor, high: Tensor, bins: int
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """:func:`bin_positions` of ``values`` ``(N, C)`` between ``low`` and ``high``, and each
    column's values per bin ``(C, bins)`` and at its minimum ``(C,)``, counted by the rows'
    ``weights`` ``(N, 1)`` (in ``low``'s dtype)."""
    wide = low.dtype
    position, flat = bin_positions(values, low, high, bins)
    c = values.shape[1]
    stride = bin_stride(bins)
    counts = torch.zeros(c * stride, dtype=wide, device=values.device)
    counts.index_add_(0, flat, weights.to(wide).expand(-1, c).reshape(-1))
    atoms = ((values <= low) * weights).sum(0, dtype=wide)
    return position, flat, counts.view(c, stride)[:, :bins], atoms


def remap(values: Tensor, target_quantiles: Tensor, bins: int) -> list[Tensor]:
    """Each column of ``values`` ``(N, C)`` mapped through its own distribution's CDF (a
    ``bins``-bin histogram between the column's extremes, linear within a bin) and the
    target's quantile function ``(C, K)``: values of rank r become the target's quantile r.
    The mapped values come as :func:`row_blocks` of rows, in order (``torch.cat`` makes
    them one ``(N, C)`` tensor).

    Per bin, the target's values at the bin's first and last rank make a line; a value is
    read off its bin's line by its place in the bin (one look-up of a pair a value).

    Every pass over the values is one of torch's fast ones for an ``(N, C)`` column
    layout (benchmarks/step_profile.py): ``amin`` and ``amax`` apart (``aminmax`` over the
    first dimension was 10x slower), int32 bin indices into tables whose channels lie
    :func:`bin_stride` apart (see there), counts by ``bincount``, the intercept and slope
    of a bin read together, the places and look-ups in blocks of rows
    (:func:`row_blocks`). A tiled evaluation makes the same steps over tiles: the
    extremes, then the counts, summed over the tiles, then each tile's values read off the
    lines."""
    n = values.shape[0]
    # Positions, ranks and the result in at least float32 (bfloat16 features are read as
    # they are: every bfloat16 value is exact in float32).
    low, high = channel_extremes(values)
    places, counts, atoms = block_counts(row_blocks(values), low, high, bins)
    lines = bin_lines(counts.to(low.dtype), atoms.to(low.dtype), n, target_quantiles, bins)
    return read_blocks(lines, places)


#: Values (rows × channels) of one block of :func:`row_blocks`.
BLOCK_VALUES = 1 << 21


def row_blocks(values: Tensor) -> list[Tensor]:
    """``values`` ``(N, C)`` as blocks of whole rows, about :data:`BLOCK_VALUES` values
    each (one block when they are no more). The histogram's places, indices, looked-up
    lines and the count of a column's minima (whose ``sum`` casts the comparisons to its
    dtype first) of a block are 4-16 MiB: glibc serves tensors above 32 MiB with a fresh
    ``mmap`` apiece, even within :func:`impasto.numerics.kept_allocations`, so at 512 px
    relu1_1's whole-layer ones (12.6 million values) faulted 150 MB of pages in at every
    step; a block's come from the heap, reused, and every value is the same (the term's
    share of a 512 px step: 201-203 → 78-96 ms, benchmarks/step_profile.py)."""
    n, c = values.shape
    rows = max(1, BLOCK_VALUES // max(1, c))
    return [values[start : start + rows] for start in range(0, n, rows)] if n > rows else [values]


def add_up(parts: list[Tensor]) -> Tensor:
    """The sum of blocks' parts, in order (the one block's own when there is one)."""
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total


def block_counts(
    blocks: list[Tensor], low: Tensor, high: Tensor, bins: int
) -> tuple[list[tuple[Tensor, Tensor]], Tensor, Tensor]:
    """Each block's :func:`bin_positions`, and over all the blocks the values per bin
    ``(C, bins)`` and at each column's minimum ``low`` ``(C,)``, int64."""
    c = blocks[0].shape[1]
    places = [bin_positions(block, low, high, bins) for block in blocks]
    counts = add_up([bin_counts(flat, c, bins) for _, flat in places])
    return places, counts, add_up([(block <= low).sum(0) for block in blocks])


def read_blocks(lines: Tensor, places: list[tuple[Tensor, Tensor]]) -> list[Tensor]:
    """:func:`read_lines` of each block's ``(position, flat)``: the blocks' values."""
    return [read_lines(lines, position, flat) for position, flat in places]


def channel_extremes(values: Tensor) -> tuple[Tensor, Tensor]:
    """Each column's smallest and largest value, ``(1, C)`` each, in at least float32."""
    wide = torch.promote_types(values.dtype, torch.float32)
    return values.amin(dim=0, keepdim=True).to(wide), values.amax(dim=0, keepdim=True).to(wide)


def bin_stride(bins: int) -> int:
    """Entries between two channels' rows in a table of ``bins`` bins a channel (counts,
    lines): ``bins`` and a few more. With rows exactly 1024 entries apart every channel's
    first bin (where a ReLU layer's zeros, half of its values, are counted) lay at the same
    offset modulo 4 KiB, in the same few sets of the L1 cache, and counting relu1_1 at
    256 px took 14 ms instead of 4 (benchmarks/step_profile.py); the padding puts them in
    different sets. The padding entries are never read."""
    return bins + 16


def bin_positions(values: Tensor, low: Tensor, high: Tensor, bins: int) -> tuple[Tensor, Tensor]:
    """Each value's place among its column's ``bins`` bins between ``low`` and ``high``
    (``position``, a float in [0, bins)) and its bin's index in a table of
    :func:`bin_stride` entries a channel."""
    c = values.shape[1]
    span = high - low
    # Just under `bins` at the maximum, so that its bin is the last one; a constant column
    # (a dead channel) is all in its first bin. (v - low) is exactly 0 at the minimum,
    # where v·scale - low·scale could round far off with a large scale.
    scale = torch.where(span > 0, bins * (1 - 1e-6) / span, torch.zeros_like(span))
    position = torch.sub(values, low).mul_(scale)
    # The clamp only guards the index (a NaN feature); the engine reports the NaN loss.
    stride = bin_stride(bins)
    offsets = torch.arange(0, c * stride, stride, dtype=torch.int32, device=values.device)
    flat = position.to(torch.int32).clamp_(0, bins - 1).add_(offsets).reshape(-1)
    return position, flat


def bin_counts(flat: Tensor, c: int, bins: int) -> Tensor:
    """Values per bin, ``(C, bins)`` int64, from :func:`bin_positions`'s indices
    (``bincount``: single-threaded, and still faster here than ``index_add_`` on two
    threads)."""
    stride = bin_stride(bins)
    return torch.bincount(flat, minlength=c * stride).view(c, stride)[:, :bins]


def bin_lines(counts: Tensor, atoms: Tensor, n: int | Tensor, target_quantiles: Tensor, bins: int) -> Tensor:
    """Per bin, the intercept and slope that map a place in the bin to the target's value,
    ``(C · stride, 2)`` (:func:`bin_stride`), from the bins' ``counts`` ``(C, bins)`` of
    ``n`` values a column, ``atoms`` ``(C,)`` of them at the column's minimum."""
    c = counts.shape[0]
    edges = torch.cat([counts.new_zeros(c, 1), counts.cumsum(1)], 1) / n  # rank at each bin edge
    # The lowest value is often an atom (the zeros of a ReLU layer: half of them, say): the
    # first bin's line starts above it, so the small positive values that share its bin
    # are ranked above all the zeros, as they are. The zeros themselves, through which no
    # gradient passes, go together to the target at the atom's top rank.
    edges[:, 0] = atoms / n
    start = read_quantiles(target_quantiles, edges)  # (C, bins + 1)
    slope = start[:, 1:] - start[:, :-1]
    intercept = start[:, :-1] - torch.arange(bins, dtype=counts.dtype, device=counts.device) * slope
    lines = start.new_zeros(c, bin_stride(bins), 2)
    lines[:, :bins] = torch.stack([intercept, slope], dim=-1)
    return lines.view(-1, 2)


#: A line's (intercept, slope) as one element of twice the size, for :func:`read_lines`.
_PAIR_DTYPES = {torch.float32: torch.float64, torch.float64: torch.complex128}


def read_lines(lines: Tensor, position: Tensor, flat: Tensor) -> Tensor:
    """Values at ``position`` in bins ``flat`` read off their bin's line: ``(N, C)``.

    A line's intercept and slope are looked up as one element of twice their size (a
    float32 pair as one float64's bytes): ``index_select`` of 8-byte scalars is 2.6x faster
    than of 2-element rows (relu1_1 of a 256 px picture: 2.9 ms instead of 7.5), with the
    same values."""
    n, c = position.shape
    pair = _PAIR_DTYPES.get(lines.dtype)
    if pair is None:
        picked = lines.index_select(0, flat)
    else:
        picked = lines.view(pair).view(-1).index_select(0, flat).view(lines.dtype)
    picked = picked.view(n, c, 2)
    return torch.addcmul(picked[..., 0], position, picked[..., 1])


def read_quantiles(quantiles: Tensor, ranks: Tensor) -> Tensor:
    """Quantile functions ``(C, K)`` read at ``ranks`` ``(C, M)`` in [0, 1], linearly."""
    level = ranks * (quantiles.shape[1] - 1)
    lower = level.floor().clamp_(0, quantiles.shape[1] - 2).long()
    weight = level - lower
    return quantiles.gather(1, lower) * (1 - weight) + quantiles.gather(1, lower + 1) * weight
