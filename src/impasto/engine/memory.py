"""The memory a run needs, checked before anything large is allocated: one estimate of a
run's peak bytes, whole or in tiles, and the plan that makes it fit (whole, in the largest
tiles that fit, with the longest L-BFGS history that fits) or says, in one line, what
would.

The estimate adds, at the final scale: the activations autograd keeps for the backward
pass (every ReLU and pooling output, and pooling's int64 indices), room for the
backward's own buffers, both copies of the network's weights, the optimiser's state
(L-BFGS keeps 2 x history vectors the size of the image) and the process itself. The
constants were fitted to peak RSS measured on a CPU (benchmarks/memory.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from impasto.errors import ConfigError
from impasto.model.encoder import Encoder
from impasto.model.layers import MIN_SIDE
from impasto.objective.histogram import QUANTILE_BINS
from impasto.objective.neighbours import BLOCK_ENTRIES, SAMPLES

#: Python, torch and the inputs, before the run (measured: about 0.45 GB RSS).
BASELINE_BYTES = 500 * 2**20
#: Backward buffers relative to the saved activations (fitted).
BACKWARD_FACTOR = 1.6
#: L-BFGS curvature pairs kept by default (see impasto.engine.optimize.Policy).
LBFGS_HISTORY = 30


def _layer_outputs(encoder: Encoder, layers: Sequence[str]) -> Iterator[tuple[str, int, float]]:
    """``(name, channels, input pixels per position)`` of every layer a forward that
    reaches ``layers`` runs, in order."""
    area = 1.0
    channels = 3
    for name in encoder.names_for(layers):
        if name.startswith("conv"):
            channels = encoder.conv(name).out_channels
        elif not name.startswith("relu"):  # pooling halves each side
            area *= 4
        yield name, channels, area


def neighbour_bytes(encoder: Encoder, size: tuple[int, int], layers: Sequence[str]) -> int:
    """Peak bytes the neighbour term adds at ``size`` with ``layers``: per layer, four
    float32 copies of its features (the rows, their directions, the matched samples, the
    distances' gradient) and the painting's samples twice (their directions); once, a
    block of similarities (:data:`impasto.objective.neighbours.BLOCK_ENTRIES`) and its argmax.
    Nothing without layers."""
    if not layers:
        return 0
    pixels = size[0] * size[1]
    total = BLOCK_ENTRIES * 4 * 2
    for name, channels, area in _layer_outputs(encoder, layers):
        if name in layers:
            total += int(pixels / area * channels * 4 * 4 + SAMPLES * channels * 4 * 2)
    return total


def activation_elements_per_pixel(encoder: Encoder, layers: Sequence[str] | None = None) -> tuple[float, float]:
    """Saved ``(values, pooling indices)`` per input pixel, for a forward with grad that
    reaches every one of ``layers`` (default: the encoder's own)."""
    values = indices = 0.0
    for name, channels, area in _layer_outputs(encoder, encoder.layers if layers is None else layers):
        if name.startswith("relu"):
            values += channels / area
        elif not name.startswith("conv"):  # pooling: its output is saved by the next conv, its indices by itself
            values += channels / area
            indices += channels / area
    return values, indices


def feature_elements_per_pixel(encoder: Encoder, layers: Sequence[str]) -> float:
    """Values per input pixel of the features at ``layers`` alone (what a forward without
    grad hands back)."""
    wanted = set(layers)
    return sum(channels / area for name, channels, area in _layer_outputs(encoder, layers) if name in wanted)


def estimate_bytes(
    encoder: Encoder,
    size: tuple[int, int],
    low_precision: bool,
    optimizer: str,
    layers: Sequence[str] | None = None,
    history: int = LBFGS_HISTORY,
) -> int:
    """Peak bytes of a run whose final scale is ``size = (h, w)``, L-BFGS keeping
    ``history`` curvature pairs."""
    pixels = size[0] * size[1]
    values, indices = activation_elements_per_pixel(encoder, layers)
    element = 2 if low_precision else 4
    activations = pixels * (values * element + indices * 8)
    used = [
        encoder.convs[n] for n in encoder.names_for(encoder.layers if layers is None else layers) if n in encoder.convs
    ]
    weights = sum(p.numel() for conv in used for p in conv.parameters()) * (4 + (2 if low_precision else 0))
    state = pixels * 3 * 4 * (2 * history + 4 if optimizer == "lbfgs" else 6)
    return int(BASELINE_BYTES + activations * (1 + BACKWARD_FACTOR) + weights + state)


def available_bytes(device: torch.device) -> int | None:
    """Memory free for this run on ``device``; None where it cannot be told."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type == "cpu":
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 + _own_rss()
        except OSError:
            return None
    return None


def _own_rss() -> int:
    """Resident bytes of this process (already counted in BASELINE_BYTES)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


def gigabytes(count: int) -> str:
    return f"{count / 2**30:.1f} GB"


def tiled_bytes(
    encoder: Encoder,
    size: tuple[int, int],
    low_precision: bool,
    optimizer: str,
    layers: Sequence[str],
    history: int,
    tile: int,
    halo: int,
    histogram_layers: Sequence[str] = (),
    *,
    streamed: bool = False,
    content_layers: Sequence[str] = (),
) -> int:
    """Peak bytes of a run at ``size`` evaluated in ``tile`` px tiles with ``halo``
    (:class:`impasto.engine.tiles.Tiled`): one window's forward and backward, the
    optimiser's state of the whole picture, and

    - ``streamed`` (every term sums over tiles): the content target at
      ``content_layers``, and one window's histogram buffers (a float32 difference per
      value kept; positions, bins and the remapped values of one layer at a time);
    - otherwise the whole picture's features at ``layers`` and their gradients, and the
      histogram buffers of the whole picture."""
    pixels = size[0] * size[1]
    side = tile + 2 * halo
    window = min(side, size[0]) * min(side, size[1])
    element = 2 if low_precision else 4
    held = largest = 0.0
    for name, channels, area in _layer_outputs(encoder, layers):
        if name not in layers:
            continue
        values = channels / area * (window if streamed else pixels)
        if streamed:
            held += channels / area * pixels * element if name in content_layers else 0.0
            held += values * 4  # a tile's features copied out of the window for its sums
        else:
            held += values * 2 * element  # the map and its gradient
        if name in histogram_layers:
            held += values * 4  # the float32 difference kept for the backward
            largest = max(largest, values * 12)  # positions, bins, remapped values of one layer
    held += largest
    values, indices = activation_elements_per_pixel(encoder, layers)
    activations = window * (values * element + indices * 8) * (1 + BACKWARD_FACTOR)
    used = [encoder.convs[n] for n in encoder.names_for(layers) if n in encoder.convs]
    weights = sum(p.numel() for conv in used for p in conv.parameters()) * (4 + (2 if low_precision else 0))
    state = pixels * 3 * 4 * (2 * history + 6 if optimizer == "lbfgs" else 8)
    return int(BASELINE_BYTES + held + activations + weights + state)


#: Tile sizes tried, largest first, when a picture does not fit whole.
TILE_SIZES = (2048, 1536, 1024, 768, 512, 384, 256)

#: L-BFGS histories tried, longest first, when a picture's optimiser state does not fit
#: with its full history (each pair is two copies of the picture: 0.4 GB at A3).
HISTORIES = (30, 20, 10, 5)


class TooLarge(ConfigError):
    """A run that does not fit the memory there is: ``need`` and ``have`` in bytes."""

    def __init__(self, field: str, message: str, need: int, have: int, fitting: tuple[int, int] | None = None) -> None:
        super().__init__(field, message)
        self.need, self.have = need, have
        self.fitting = fitting
        """``(h, w)`` of the largest picture of this shape the planner finds fits (None: not asked)."""

    def __reduce__(self) -> tuple[type, tuple[str, str, int, int, tuple[int, int] | None]]:  # type: ignore[override]
        return (type(self), (self.field, self.reason, self.need, self.have, self.fitting))


@dataclass(frozen=True)
class MemoryPlan:
    """How a run fits: the whole picture at every scale (``tile`` None), or tiles of
    ``tile`` px at the scales whose whole-picture pass needs more than ``have`` bytes
    (every scale larger than a tile when ``forced``)."""

    tile: int | None
    have: int | None
    forced: bool = False
    history: int | None = None
    """L-BFGS curvature pairs the run keeps, where shorter than asked to fit (else None)."""

    def tile_at(self, need: int, size: tuple[int, int]) -> int | None:
        """The tile size for a scale whose whole-picture pass needs ``need`` bytes."""
        if self.tile is None or max(size) <= self.tile:
            return None
        if self.forced or (self.have is not None and need > self.have):
            return self.tile
        return None


@dataclass(frozen=True)
class MemoryRequest:
    """What a run asks of memory: a picture of ``size`` ``(h, w)`` (the final scale), the
    network in low precision or not, the ``optimizer`` with ``history`` L-BFGS pairs,
    through ``layers`` (the encoder's own when None). ``style_pixels``: the largest style
    image, run through the network without grad (its two largest activations, the first
    block's 64 channels, and its resized copies count); ``held``: bytes the decoded
    inputs already take; ``halo``: a tile's margin; ``histogram_layers``: layers with a
    histogram term; ``neighbour_layers``: layers with a neighbour term (its buffers at
    the whole picture's size, :func:`neighbour_bytes`); ``streamed``: every term sums over
    tiles (see :func:`tiled_bytes`), the content target at ``content_layers`` held whole.
    ``field``: the option a refusal names."""

    size: tuple[int, int]
    low_precision: bool
    optimizer: str
    layers: Sequence[str] | None = None
    style_pixels: int = 0
    field: str = "size"
    history: int = LBFGS_HISTORY
    held: int = 0
    halo: int = 0
    histogram_layers: Sequence[str] = ()
    neighbour_layers: Sequence[str] = ()
    streamed: bool = False
    content_layers: Sequence[str] = ()


def check_memory(
    encoder: Encoder,
    device: torch.device,
    request: MemoryRequest,
    *,
    budget: int | None = None,
    tile: int | None = None,
) -> MemoryPlan:
    """How ``request`` fits in ``budget`` bytes (default: what ``device`` has free): whole,
    or in the largest tiles that fit (``tile``: always in tiles of that size), with the
    longest L-BFGS history (of the request's and :data:`HISTORIES`) that fits. TooLarge,
    before anything is allocated, when it fits neither way, with what it would need and
    the largest picture of its shape that would fit."""
    r = request
    size, low, optimizer, layers, history = r.size, r.low_precision, r.optimizer, r.layers, r.history
    style_pixels, held, halo, histogram_layers = r.style_pixels, r.held, r.halo, r.histogram_layers
    copies = held + style_pixels * 3 * 4 * 3 + neighbour_bytes(encoder, size, r.neighbour_layers)
    extra = copies + style_pixels * 2 * 64 * (2 if low else 4)
    need = estimate_bytes(encoder, size, low, optimizer, layers, history) + extra
    # In tiles, a painting larger than a tile is read in tiles too (within a window's
    # pass), with each histogram layer's counts: int32 per tile, int64 summed, twice.
    outputs = _layer_outputs(encoder, histogram_layers) if histogram_layers else iter(())
    tables = sum(channels * QUANTILE_BINS * (4 + 8 + 8) for name, channels, _ in outputs if name in histogram_layers)
    have = available_bytes(device)
    if budget is not None:
        have = budget if have is None else min(budget, have)
    if tile is not None:
        return MemoryPlan(tile, have, forced=True)
    if have is None or need <= have:
        return MemoryPlan(None, have)
    used = tuple(encoder.layers if layers is None else layers)
    histories = [h for h in HISTORIES if h < history] if optimizer == "lbfgs" else []

    def tiled_need(at: tuple[int, int], pairs: int, candidate: int) -> int:
        return copies + tables + tiled_bytes(
            encoder, at, low, optimizer, used, pairs, candidate, halo, histogram_layers,
            streamed=r.streamed, content_layers=r.content_layers,
        )  # fmt: skip

    # Tiles of 512 px or more first (a 512 px tile's halo already adds 72% to its
    # pixels, a 256 px one's 164%), shortening the history for them; smaller tiles last.
    large = [t for t in TILE_SIZES if t >= 512]
    for tiles in (large, [t for t in TILE_SIZES if t < 512]):
        for pairs in (history, *histories):
            for candidate in tiles:
                if candidate < max(size) and tiled_need(size, pairs, candidate) <= have:
                    return MemoryPlan(candidate, have, history=None if pairs == history else pairs)
    least = (histories or [history])[-1]
    tiled = tiled_need(size, least, TILE_SIZES[-1])

    # The largest picture of this shape that would fit, as the message's suggestion: as
    # this planner would take it, whole (with the full history) or in the smallest tiles.
    def fits(at: tuple[int, int]) -> bool:
        if estimate_bytes(encoder, at, low, optimizer, layers, history) + extra <= have:
            return True
        return max(at) > TILE_SIZES[-1] and tiled_need(at, least, TILE_SIZES[-1]) <= have

    fitting = largest_fitting(size, fits)
    hint = " or `optimizer` adam (no L-BFGS history)" if optimizer == "lbfgs" else ""
    style = f" (a style image at {style_pixels:,} px included)" if style_pixels > size[0] * size[1] else ""
    where = f"the budget of {gigabytes(have)}" if budget is not None and have == budget else (
        f"{gigabytes(have)} available on {device.type}")  # fmt: skip
    raise TooLarge(
        r.field,
        f"a {size[1]}x{size[0]} run needs about {gigabytes(min(need, tiled))} of memory{style}, even in "
        f"{TILE_SIZES[-1]} px tiles, and there is {where}; "
        + (f"a {fitting[1]}x{fitting[0]} picture would fit: " if fitting else "no picture fits: ")
        + f"use a smaller `size` or `pixels`, or `style_scale`{hint}",
        min(need, tiled),
        have,
        fitting,
    )


def largest_fitting(size: tuple[int, int], fits: Callable[[tuple[int, int]], bool]) -> tuple[int, int] | None:
    """The largest picture of ``size``'s shape for which ``fits`` holds (by bisection on
    the scale, 30 halvings), or None when it is smaller than the network takes."""
    low_side, high_side = 0.0, 1.0
    for _ in range(30):
        middle = (low_side + high_side) / 2
        at = (max(1, round(size[0] * middle)), max(1, round(size[1] * middle)))
        low_side, high_side = (middle, high_side) if fits(at) else (low_side, middle)
    largest = (int(size[0] * low_side), int(size[1] * low_side))
    return largest if min(largest) >= MIN_SIDE else None
