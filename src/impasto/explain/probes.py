"""The numbers behind the report's figures, computed with the code the optimisation runs
(the encoder, :func:`impasto.objective.losses.gram`, :func:`feature_moments`): plain
tensors and dicts, no plotting."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from impasto.model.encoder import Encoder
from impasto.objective.linalg import covariance
from impasto.objective.losses import feature_moments, gram


@dataclass(frozen=True)
class Layer:
    """One layer of the network as the report draws it."""

    name: str
    kind: str
    """``conv`` (convolution + ReLU) or ``pool``."""
    channels: int
    size: tuple[int, int]
    """``(h, w)`` of its output for the result's size."""
    role: str
    """``content``, ``style``, ``both``, ``computed`` or ``unused`` (never computed)."""


def network_layers(
    encoder: Encoder, content_layers: tuple[str, ...], style_layers: tuple[str, ...], size: tuple[int, int]
) -> list[Layer]:
    """Each convolution + ReLU and pooling layer of the loaded network, with its channels,
    the resolution it works at for an image of ``size`` and its part in the objective."""
    used = set(content_layers) | set(style_layers)
    deepest = max(encoder.all_layers.index(n) for n in used)
    layers: list[Layer] = []
    h, w = size
    for index, name in enumerate(encoder.all_layers):
        if name.startswith("relu"):
            continue  # drawn with its convolution
        if name.startswith("pool"):
            h, w = h // 2, w // 2
            kind, channels, relu = "pool", layers[-1].channels, name
        else:
            kind, channels, relu = "conv", encoder.conv(name).out_channels, f"relu{name[4:]}"
        content, style = relu in content_layers or name in content_layers, relu in style_layers or name in style_layers
        if content and style:
            role = "both"
        elif content or style:
            role = "content" if content else "style"
        else:
            role = "computed" if index <= deepest else "unused"
        layers.append(Layer(name, kind, channels, (h, w), role))
    return layers


@torch.no_grad()
def features(encoder: Encoder, image: Tensor, layers: tuple[str, ...], pooling: str | None = None) -> dict:
    """The float32 features of ``image`` at ``layers`` (on the CPU)."""
    return {k: v.float().cpu() for k, v in encoder(image, layers, pooling).items()}


def top_channels(maps: list[Tensor], count: int) -> list[int]:
    """The ``count`` channels most active (mean activation summed over the given feature
    maps ``(1, C, h, w)``): the same channels for every image, so that they compare."""
    activity = sum(m.mean(dim=(0, 2, 3)) for m in maps)
    assert isinstance(activity, Tensor)
    return activity.argsort(descending=True)[:count].tolist()


def gram_matrices(feats: dict[str, dict[str, Tensor]], layer: str, order_by: str = "painting") -> dict:
    """The Gram matrices of each image's features at ``layer``, as :func:`gram` computes
    them for the loss, with rows and columns in one order (by the ``order_by`` image's
    diagonal, largest first), and ``order`` itself."""
    grams = {who: gram(f[layer])[0] for who, f in feats.items()}
    order = torch.diagonal(grams[order_by]).argsort(descending=True)
    return {"order": order, **{who: g[order][:, order] for who, g in grams.items()}}


def moments(feats: dict[str, dict[str, Tensor]], layer: str, order_by: str = "painting") -> dict:
    """Means and covariances of each image's features at ``layer`` (what the Wasserstein
    loss compares), channels ordered by the ``order_by`` image's variance."""
    stats = {}
    for who, f in feats.items():
        mean, second = feature_moments(f[layer])
        stats[who] = (mean[0], covariance(mean, second)[0])
    order = torch.diagonal(stats[order_by][1]).argsort(descending=True)
    out: dict = {"order": order}
    for who, (mean, cov) in stats.items():
        out[who] = {"mean": mean[order], "cov": cov[order][:, order]}
    return out


def palette(image: Tensor, colours: int = 8, iterations: int = 12, seed: int = 0) -> tuple[Tensor, Tensor]:
    """The ``colours`` main colours of ``image`` by k-means in RGB (on at most 20 000
    pixels), largest share first: ``(colours, 3)`` in [0, 1] and their shares summing to 1."""
    pixels = image[0].reshape(3, -1).T.float()
    generator = torch.Generator().manual_seed(seed)
    if pixels.shape[0] > 20_000:
        pixels = pixels[torch.randperm(pixels.shape[0], generator=generator)[:20_000]]
    centres = pixels[torch.randperm(pixels.shape[0], generator=generator)[:colours]].clone()
    for _ in range(iterations):
        nearest = torch.cdist(pixels, centres).argmin(dim=1)
        for k in range(centres.shape[0]):
            members = pixels[nearest == k]
            if len(members):
                centres[k] = members.mean(dim=0)
    nearest = torch.cdist(pixels, centres).argmin(dim=1)
    shares = torch.bincount(nearest, minlength=centres.shape[0]).float() / len(pixels)
    order = shares.argsort(descending=True)
    return centres[order], shares[order]


def histograms(image: Tensor, bins: int = 32) -> Tensor:
    """Per-channel histograms of ``image`` in [0, 1]: ``(3, bins)``, each summing to 1."""
    return torch.stack([torch.histc(image[0, c].float(), bins, 0.0, 1.0) for c in range(3)]) / image[0, 0].numel()


def conv_example(seed: int = 0) -> dict[str, Tensor]:
    """The deck's example: a ``(3, 3, 3)`` image through ``nn.Conv2d(3, 4, kernel_size=2)``
    gives 4 feature maps of ``2 x 2``. Small integers in, the layer's own numbers out."""
    generator = torch.Generator().manual_seed(seed)
    image = torch.randint(0, 10, (1, 3, 3, 3), generator=generator).float()
    torch.manual_seed(seed)
    conv = torch.nn.Conv2d(in_channels=3, out_channels=4, kernel_size=2)
    with torch.no_grad():
        maps = conv(image)
    assert conv.bias is not None
    return {"image": image[0], "weight": conv.weight.detach(), "bias": conv.bias.detach(), "maps": maps[0]}
