"""A frozen VGG feature extractor with named layers and its own preprocessing.

Every public entry takes RGB images in [0, 1] shaped ``(B, 3, H, W)``; the encoder
converts them to the convention its weights were trained with. Each call computes the
network only as deep as the deepest layer asked for, and no parameter requires a
gradient: only the image being optimised does.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from impasto.digest import digest
from impasto.errors import WeightsError
from impasto.model.layers import BLOCKS_BY_CONV_COUNT, check_layers, layer_names
from impasto.model.weights import CAFFE_MEAN_BGR, TORCHVISION_MEAN, TORCHVISION_STD, VGGWeights, load_weights
from impasto.model.winograd import MIN_CHANNELS, WinogradConv


def preprocess(image: Tensor, preprocessing: str) -> Tensor:
    """RGB in [0, 1], ``(B, 3, H, W)`` -> the network's input convention."""
    if preprocessing == "caffe":
        mean = image.new_tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1)
        return image.flip(1) * 255.0 - mean
    if preprocessing == "torchvision":
        mean = image.new_tensor(TORCHVISION_MEAN).view(1, 3, 1, 1)
        std = image.new_tensor(TORCHVISION_STD).view(1, 3, 1, 1)
        return (image - mean) / std
    raise WeightsError(f"unknown input convention {preprocessing!r} (expected 'caffe' or 'torchvision')")


class Encoder(nn.Module):
    """VGG features, computed up to the deepest layer a call asks for.

    ``forward(image, layers=None, pooling=None)`` takes ``(B, 3, H, W)`` RGB in [0, 1] and
    returns ``{layer: (B, C, H', W')}`` for each of ``layers`` (default: the ``layers``
    the encoder was built for, which also bound how deep it can go).
    """

    def __init__(self, weights: VGGWeights, layers: Iterable[str] | None = None, pooling: str = "max") -> None:
        super().__init__()
        blocks = BLOCKS_BY_CONV_COUNT.get(len(weights.convs))
        if blocks is None:
            raise WeightsError(f"{weights.source}: {len(weights.convs)} convolutions is not a VGG16 or VGG19")
        self.all_layers = layer_names(blocks)
        self.layers = tuple(dict.fromkeys(self.all_layers if layers is None else layers))
        check_layers("layers", self.layers, self.all_layers)
        self.preprocessing = weights.preprocessing
        self.pooling = pooling
        self.source = weights.source
        self.names = self.names_for(self.layers)
        self.convs = nn.ModuleDict()
        conv_iter = iter(weights.convs)
        in_channels = 3
        for name in self.names:
            if not name.startswith("conv"):
                continue
            weight, bias = next(conv_iter)
            if weight.ndim != 4 or weight.shape[1] != in_channels or bias.shape != weight.shape[:1]:
                raise WeightsError(
                    f"{weights.source}: {name} has weight {tuple(weight.shape)} and bias "
                    f"{tuple(bias.shape)}, expected ({'C'}, {in_channels}, k, k) and (C,)"
                )
            conv = nn.Conv2d(in_channels, weight.shape[0], weight.shape[2], padding=weight.shape[2] // 2)
            with torch.no_grad():
                conv.weight.copy_(weight)
                assert conv.bias is not None
                conv.bias.copy_(bias)
            self.convs[name] = conv
            in_channels = weight.shape[0]
        self.requires_grad_(False)
        self.eval()
        self.channels_last = False
        #: Convolutions computed by Winograd's transform instead (see :meth:`to_winograd`).
        self.winograd = nn.ModuleDict()

    def names_for(self, layers: Iterable[str]) -> tuple[str, ...]:
        """The layers computed to reach every one of ``layers``, in order."""
        deepest = max(self.all_layers.index(name) for name in layers)
        return self.all_layers[: deepest + 1]

    def to_channels_last(self) -> Encoder:
        """Run in channels-last layout from now on (weights and activations): on a CPU
        the convolutions need no reordering and max-pooling runs vectorised over channels
        (benchmarks/speed.py). Returns ``self``."""
        self.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # Module.to takes it
        self.channels_last = True
        return self

    def to_winograd(self, min_channels: int = MIN_CHANNELS) -> Encoder:
        """Compute the 3x3 convolutions with at least ``min_channels`` outputs by Winograd's
        F(4x4, 3x3) from now on (:mod:`impasto.model.winograd`): for a float32 network in
        channels-last layout on a CPU. Returns ``self``."""
        for name in self.convs:
            conv = self.conv(name)
            if conv.out_channels >= min_channels and conv.weight.dtype == torch.float32:
                self.winograd[name] = WinogradConv(conv)
        return self

    def conv(self, name: str) -> nn.Conv2d:
        """The convolution ``conv{b}_{i}``."""
        conv = self.convs[name]
        assert isinstance(conv, nn.Conv2d)
        return conv

    def channels(self, layer: str) -> int:
        """Channels of ``layer``'s output."""
        block, index = layer[4:].split("_") if not layer.startswith("pool") else (layer[4:], None)
        convs = [n for n in self.convs if n.startswith(f"conv{block}_")]
        name = f"conv{block}_{index}" if index else convs[-1]
        return self.conv(name).out_channels

    def downsampling(self, layer: str) -> int:
        """How many times smaller than the input ``layer``'s feature maps are (per side)."""
        index = self.all_layers.index(layer)
        return 2 ** sum(1 for name in self.all_layers[: index + 1] if name.startswith("pool"))

    def forward(
        self, image: Tensor, layers: Iterable[str] | None = None, pooling: str | None = None
    ) -> dict[str, Tensor]:
        wanted = set(self.layers if layers is None else layers)
        unknown = wanted - set(self.names)
        if unknown:
            raise WeightsError(f"{self.source}: this encoder was not built to compute {', '.join(sorted(unknown))}")
        pooling = pooling or self.pooling
        x = preprocess(image, self.preprocessing)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        features: dict[str, Tensor] = {}
        for name in self.names_for(wanted):
            if name.startswith("conv"):
                x = (self.winograd[name] if name in self.winograd else self.conv(name))(x)
            elif name.startswith("relu"):
                # In place unless the convolution's output is itself a requested feature:
                # the convolution's backward needs only its input, so nothing is lost.
                x = F.relu(x, inplace=f"conv{name[4:]}" not in wanted)
            elif pooling == "max":
                x = F.max_pool2d(x, 2, 2)
            else:
                x = F.avg_pool2d(x, 2, 2)
            if name in wanted:
                features[name] = x
        return features


def build_encoder(weights: str = "original", *, download: bool = False, layers: Iterable[str] | None = None) -> Encoder:
    """The frozen VGG named by ``weights`` (see :func:`impasto.model.weights.load_weights`),
    with every layer unless ``layers`` bounds it."""
    return Encoder(load_weights(weights, download=download), layers)


def weights_digest(encoder: Encoder) -> str:
    """A hash of every weight and bias of the network, with their names, in order, as
    stored (:func:`impasto.digest.digest`); the Winograd transforms of a step network's
    convolutions are derived from them and left out."""
    state = encoder.state_dict()
    return digest(
        *(part for name, tensor in state.items() if not name.startswith("winograd.") for part in (name, tensor))
    )
