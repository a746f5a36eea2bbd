"""The objective and its exact gradient, tile by tile: an evaluator for pictures whose
whole-image network pass does not fit in memory (issue 23, DESIGN-0.3 seam 1).

Two passes over tiles of the picture, each tile run through the network with a halo
(a margin of the pixels around it) wide enough that every feature inside the tile is the
feature the whole picture gives:

1. **Features** (no gradient): each tile's features at the layers the terms read are
   copied into whole-picture feature maps. The terms then run on those maps as they are:
   the Gram matrices, the Wasserstein term's mean and covariance, the histogram term's
   sorted channels are statistics of the whole picture, not of a tile, and the loss is
   the loss of the whole picture. Autograd gives the gradient of the loss with respect to
   every feature map (and to the pixels, for TV and the temporal term).
2. **Gradient**: each tile runs through the network again, with autograd, and its
   features inside the tile are back-propagated with the gradient pass 1 found for them.
   Each tile's input gradient (halo included) is added into the picture's.

Since the loss is a function of the features, and the features inside each tile are
exact, the sum is the whole picture's gradient (to float rounding). What is held at
once: the whole-picture feature maps at the terms' layers and their gradients, and one
tile's network pass; not the whole picture's activations at every layer.

Tiles are aligned to the deepest pooling used (16 px for relu5_1), so every window sees
the pooling grid the whole picture sees; windows are cut at the picture's edges (where
the network's zero padding then applies, as for the whole picture).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from impasto.model.encoder import Encoder
from impasto.objective.terms import Objective
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


@dataclass(frozen=True)
class Tiled:
    """The tiled evaluator: ``tile`` px tiles (see the module's description)."""

    network: Encoder
    objective: Objective
    autocast: torch.dtype | None = None
    pooling: str | None = None
    tile: int = 512

    def __call__(self, image: Tensor, *, backward: bool) -> tuple[Tensor, dict[str, Tensor]]:
        layers = self.objective.layers
        height, width = image.shape[-2:]
        strides = layer_strides(self.network, layers)
        halo, align = margins(self.network, layers) if layers else (0, 1)
        plan = windows(height, width, self.tile, halo, align) if layers else []
        pixels = image.detach()
        maps: dict[str, Tensor] = {}
        with torch.no_grad():
            for window in plan:
                (r0, r1), (c0, c1) = window.outer
                with network_precision(image.device.type, self.autocast):
                    out = self.network(pixels[..., r0:r1, c0:c1], layers, self.pooling)
                for name in layers:
                    feature = out[name]
                    if name not in maps:
                        h, w = height // strides[name], width // strides[name]
                        maps[name] = feature.new_empty((1, feature.shape[1], h, w))
                    (wr, wc), (orow, ocol) = window.feature_slices(strides[name])
                    maps[name][..., wr, wc] = feature[..., orow, ocol]
                del out
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
            (r0, r1), (c0, c1) = window.outer
            part = pixels[..., r0:r1, c0:c1].clone().requires_grad_(True)
            with network_precision(image.device.type, self.autocast):
                out = self.network(part, tuple(grads), self.pooling)
            outputs, upstream = [], []
            for name, grad in grads.items():
                (wr, wc), (orow, ocol) = window.feature_slices(strides[name])
                outputs.append(out[name][..., orow, ocol])
                upstream.append(grad[..., wr, wc].to(out[name].dtype))
            torch.autograd.backward(outputs, upstream)
            assert part.grad is not None
            image.grad[..., r0:r1, c0:c1] += part.grad
            del out, outputs, part
        return loss.detach(), {k: v.detach() for k, v in terms.items()}
