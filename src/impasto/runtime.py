"""Where and how a run computes: the device, the network's precision and weights, the
memory budget; the network the steps run on (the memory a run needs is
:mod:`impasto.engine.memory`'s)."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import torch

from impasto.config import setting
from impasto.errors import ConfigError
from impasto.model.encoder import Encoder

DEVICES = ("auto", "cpu", "cuda", "mps")
#: No float16: on the Caffe VGG19's 0-255 scale its backward overflows (NaN on an H100);
#: bfloat16 has float32's range.
PRECISIONS = ("auto", "float32", "bfloat16")


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
    same_bits: bool | None = setting(
        None,
        "the same bytes on any number of threads: a step's sums in a fixed order, its eigendecompositions on one "
        "thread (about 5 percent of a step on a CPU; never on a GPU)",
        "bool",
        none="on in batches, off for one picture",
    )
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

    def for_batch(self) -> Runtime:
        """This runtime with ``same_bits`` on unless it was turned off: a batch's item is
        then the same file whichever worker, of however many cores, paints it."""
        return self if self.same_bits is not None else dataclasses.replace(self, same_bits=True)

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
