"""Where and how a run computes: the device, the network's precision and weights; the
network the steps run on; the memory a run needs, checked before anything large is
allocated.

The memory estimate adds, at the final scale: the activations autograd keeps for the
backward pass (every ReLU and pooling output, and pooling's int64 indices), room for the
backward's own buffers, both copies of the network's weights, the optimiser's state
(L-BFGS keeps 2 x history vectors the size of the image) and the process itself. The
constants were fitted to peak RSS measured on a CPU (benchmarks/memory.py).
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import functools
import os
import platform
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from impasto.config import setting
from impasto.errors import ConfigError
from impasto.model.encoder import Encoder
from impasto.model.layers import MIN_SIDE
from impasto.objective.losses import QUANTILE_BINS

DEVICES = ("auto", "cpu", "cuda", "mps")
#: No float16: on the Caffe VGG19's 0-255 scale its backward overflows (NaN on an H100);
#: bfloat16 has float32's range.
PRECISIONS = ("auto", "float32", "bfloat16")

#: Python, torch and the inputs, before the run (measured: about 0.45 GB RSS).
BASELINE_BYTES = 500 * 2**20
#: Backward buffers relative to the saved activations (fitted).
BACKWARD_FACTOR = 1.6
#: L-BFGS curvature pairs kept by default (see impasto.engine.optimize.Policy).
LBFGS_HISTORY = 30


@dataclass(frozen=True)
class Runtime:
    """The machine side of a run; none of it changes what is painted, only where and how
    fast (bfloat16 changes the pixels within the optimisation's own noise: README,
    Performance)."""

    device: str = setting("auto", "where to compute: auto (CUDA, else MPS, else CPU), cpu, cuda, cuda:N or mps", "str")
    precision: str = setting(
        "auto",
        "network arithmetic: float32, bfloat16 (autocast; the losses stay float32) or auto = bfloat16 on CPUs "
        "that have it fast, else float32",
        "str",
        choices=PRECISIONS,
    )
    weights: str = setting(
        "original", "network weights: original (Caffe VGG19), vgg19, vgg16 (torchvision) or a .pth file", "str"
    )
    download: bool = setting(False, "allow downloading torchvision weights into the cache", "bool")
    max_memory: str | None = setting(
        None,
        "memory a run may use, e.g. 6G or 800M; a picture that needs more is painted in tiles (exact: global "
        "statistics, each tile's gradient against them)",
        "str",
        none="what the device has free",
    )
    tile: int | None = setting(
        None, "paint in tiles of N px (with their halo) even when the picture fits", "int", none="only when needed"
    )

    def __post_init__(self) -> None:
        kind, colon, index = str(self.device).partition(":")
        if kind not in DEVICES or (colon and (kind not in ("cuda", "mps") or not index.isdigit())):
            raise ConfigError("device", f"unknown device {self.device!r} (choose from auto, cpu, cuda, cuda:N, mps)")
        if self.precision not in PRECISIONS:
            raise ConfigError("precision", f"unknown value {self.precision!r} (choose from {', '.join(PRECISIONS)})")
        if not isinstance(self.weights, str) or not self.weights:
            raise ConfigError("weights", "must name weights or a file")
        if self.max_memory is not None:
            parse_bytes(self.max_memory)
        if self.tile is not None and (isinstance(self.tile, bool) or not isinstance(self.tile, int) or self.tile < 64):
            raise ConfigError("tile", f"must be at least 64 px, got {self.tile!r}")

    @property
    def budget(self) -> int | None:
        """``max_memory`` in bytes (None: what the device has free)."""
        return None if self.max_memory is None else parse_bytes(self.max_memory)


#: Units of ``max_memory``.
BYTE_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_bytes(text: str) -> int:
    """``6G``, ``800M``, ``1.5G``, ``2GB`` or a number of bytes -> bytes."""
    import re

    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", str(text), re.IGNORECASE)
    if not match:
        raise ConfigError("max_memory", f"{text!r} is not an amount of memory (say 6G or 800M)")
    value = float(match.group(1)) * BYTE_UNITS[match.group(2).upper()]
    if value < 2**28:
        raise ConfigError("max_memory", f"{text!r} is under 256M, too little for the network itself")
    return int(value)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA, else MPS, else CPU; an explicit device must be usable."""
    kind = name.split(":")[0]
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if kind == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if mps else "cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", f"{name!r} asked for, but this torch sees no CUDA GPU")
    if kind == "mps" and not mps:
        raise ConfigError("device", f"{name!r} asked for, but Apple MPS is not available")
    return torch.device(name)


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for the network, or None for plain float32."""
    if precision == "float32":
        return None
    if precision == "bfloat16":
        return torch.bfloat16
    # auto: bfloat16 on CPUs that have it (AVX-512 BF16 or AMX on x86): about twice as
    # fast per step, with no bias in the objective reached (README, Performance).
    if device.type == "cpu" and torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return torch.bfloat16
    # Not on CUDA: there float32 convolutions already run as TF32, and bfloat16 was barely
    # faster (benchmarks/results_gpu_h100.md); `precision` bfloat16 is there to ask for it.
    return None


def network_precision(device_type: str, autocast: torch.dtype | None) -> torch.autocast:
    """The context the network runs in: autocast to ``autocast``, or plain float32 (None)."""
    return torch.autocast(device_type, dtype=autocast or torch.bfloat16, enabled=autocast is not None)


def step_network(encoder: Encoder, autocast: torch.dtype | None) -> Encoder:
    """The network the steps run: ``encoder`` itself on a GPU in float32; otherwise a
    copy with its weights already in the autocast dtype (not cast again at every step)
    and, on a CPU, in channels-last layout, its wide convolutions in float32 computed by
    Winograd's transform (:mod:`impasto.model.winograd`)."""
    cpu = next(encoder.parameters()).device.type == "cpu"
    if autocast is None and not cpu:
        return encoder
    network = copy.deepcopy(encoder)
    if autocast is not None:
        network.to(autocast)
    if not cpu:
        return network
    network.to_channels_last()
    return network.to_winograd() if autocast is None else network


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


#: glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: Free memory at the top of the heap kept for the next allocation rather than handed back,
#: within a run; and glibc's defaults, restored after it.
_TRIM_THRESHOLD = 2**30
_DEFAULT_TRIM_THRESHOLD = _DEFAULT_MMAP_THRESHOLD = 128 * 2**10
_MMAP_THRESHOLD = 32 * 2**20
_malloc_lock = threading.Lock()
_malloc_runs = 0


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """The C library, where it is glibc (whose ``mallopt`` and ``malloc_trim`` are used);
    found once (``platform.libc_ver`` reads the interpreter's binary)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


@contextlib.contextmanager
def kept_allocations() -> Iterator[None]:
    """Within (runs in any thread): tensors up to 32 MiB come from the heap, whose freed top
    is kept for the next step's tensors; when the last run ends, glibc's defaults are back
    and what is free is handed back (``malloc_trim``).

    glibc served each feature-sized tensor with a fresh ``mmap`` and unmapped it when it
    was freed, so every step faulted its pages in again: 11,000 page faults a step at
    256 px, 137,000 at 512 px (300 and 68,000 with this). Tensors above 32 MiB (glibc's
    largest threshold) are still mapped apiece: with ``mmap`` off altogether, 512 px
    steps faulted no more, but the heap's holes raised the peak of a 1024 px run from
    2.8 to 3.6 GB, above the memory check's estimate (benchmarks/memory.py). Elsewhere
    than glibc nothing changes."""
    global _malloc_runs
    libc = _glibc()
    if libc is None:
        yield
        return
    with _malloc_lock:
        if _malloc_runs == 0:
            libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
            libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)
        _malloc_runs += 1
    try:
        yield
    finally:
        with _malloc_lock:
            _malloc_runs -= 1
            if _malloc_runs == 0:
                libc.mallopt(_M_MMAP_THRESHOLD, _DEFAULT_MMAP_THRESHOLD)
                libc.mallopt(_M_TRIM_THRESHOLD, _DEFAULT_TRIM_THRESHOLD)
                libc.malloc_trim(0)


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


def check_memory(
    encoder: Encoder,
    size: tuple[int, int],
    low: bool,
    optimizer: str,
    device: torch.device,
    layers: Sequence[str] | None = None,
    *,
    style_pixels: int = 0,
    field: str = "size",
    history: int = LBFGS_HISTORY,
    held: int = 0,
    budget: int | None = None,
    tile: int | None = None,
    halo: int = 0,
    histogram_layers: Sequence[str] = (),
    streamed: bool = False,
    content_layers: Sequence[str] = (),
) -> MemoryPlan:
    """How the run fits in ``budget`` bytes (default: what ``device`` has free): whole,
    or in the largest tiles that fit (``tile``: always in tiles of that size), with the
    longest L-BFGS history (of ``history`` and :data:`HISTORIES`) that fits; ``streamed``:
    the terms sum over tiles (see :func:`tiled_bytes`). Fails
    before allocating when it fits neither way, with what it would need. A style image of
    ``style_pixels`` runs through the network without grad: its two largest activations
    (the first block's 64 channels) and its resized copies count too; ``held``: bytes the
    decoded inputs already take."""
    copies = held + style_pixels * 3 * 4 * 3
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
            streamed=streamed, content_layers=content_layers,
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

    low_side, high_side = 0.0, 1.0
    for _ in range(30):
        middle = (low_side + high_side) / 2
        at = (max(1, round(size[0] * middle)), max(1, round(size[1] * middle)))
        low_side, high_side = (middle, high_side) if fits(at) else (low_side, middle)
    largest = (int(size[0] * low_side), int(size[1] * low_side))
    fitting = largest if min(largest) >= MIN_SIDE else None
    hint = " or `optimizer` adam (no L-BFGS history)" if optimizer == "lbfgs" else ""
    style = f" (a style image at {style_pixels:,} px included)" if style_pixels > size[0] * size[1] else ""
    where = f"the budget of {gigabytes(have)}" if budget is not None and have == budget else (
        f"{gigabytes(have)} available on {device.type}")  # fmt: skip
    raise TooLarge(
        field,
        f"a {size[1]}x{size[0]} run needs about {gigabytes(min(need, tiled))} of memory{style}, even in "
        f"{TILE_SIZES[-1]} px tiles, and there is {where}; "
        + (f"a {fitting[1]}x{fitting[0]} picture would fit: " if fitting else "no picture fits: ")
        + f"use a smaller `size` or `pixels`, or `style_scale`{hint}",
        min(need, tiled),
        have,
        fitting,
    )
