"""Regional styles: masks that assign each style image to a region of the output.

A run takes either one greyscale mask per style image (white = that style, grey = a
partial weight) or a single label image whose colours stand for the styles, darkest
colour first. Masks are stored at their own resolution as ``(K, 1, H, W)`` weights in
[0, 1] and resized with the image at every scale, then area-averaged to each layer's
resolution, so a hard edge in the mask becomes a soft one in the deep layers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from impasto.errors import ConfigError, ImageError
from impasto.imageio import ImageInput, load_image

#: A label image's colours are read to this many levels per channel (JPEG noise aside).
LABEL_LEVELS = 16
#: The least share of the pixels a label colour must cover to count as a region.
MIN_LABEL_SHARE = 0.002


def _label(source: ImageInput) -> str:
    return str(source) if not isinstance(source, Tensor) else "mask"


def load_masks(
    sources: Sequence[ImageInput], count: int, aspect: float, *, kind: str = "mask", needed: float | None = None
) -> Tensor:
    """``(count, 1, H, W)`` masks from ``count`` greyscale images, or from one label
    image with ``count`` colours (when ``count > 1``). ``aspect`` is the width/height
    of the image the masks apply to; a mask of another shape is an error naming it.
    ``needed``: the most pixels the masks are used at (a far larger file is decoded
    reduced, see :func:`~impasto.imageio.load_image`)."""
    if not sources or len(sources) not in (1, count):
        raise ConfigError(
            kind.replace(" ", "_") + "s",
            f"gives {len(sources)} {kind}s for {count} style images: give one {kind} per style image, "
            f"or one label image with a colour per style",
        )
    images = [load_image(source, name=kind, needed=needed) for source in sources]
    for source, image in zip(sources, images, strict=True):
        h, w = image.shape[-2:]
        if abs(math.log((w / h) / aspect)) > 0.02:
            raise ImageError(
                f"{_label(source)}: a {w}x{h} {kind} does not have the shape of its image "
                f"(width/height {aspect:.3f}, the {kind}'s {w / h:.3f})"
            )
    if len(images) == count:
        shapes = {tuple(image.shape[-2:]) for image in images}
        if len(shapes) > 1:  # bring them to the first one's size
            size = tuple(images[0].shape[-2:])
            images = [F.interpolate(m, size=size, mode="bilinear", antialias=True) for m in images]
        return torch.cat([image.mean(dim=1, keepdim=True) for image in images]).clamp(0.0, 1.0)
    return label_masks(images[0], count, _label(sources[0]))


def label_masks(image: Tensor, count: int, name: str = "label image") -> Tensor:
    """One mask per colour of a label image ``(1, 3, H, W)``: its ``count`` most common
    colours, darkest first; every pixel belongs to the nearest of them."""
    levels = (image[0] * (LABEL_LEVELS - 1)).round().long()
    codes = (levels[0] * LABEL_LEVELS + levels[1]) * LABEL_LEVELS + levels[2]
    values, counts = codes.flatten().unique(return_counts=True)
    order = counts.argsort(descending=True)
    share = counts[order].float() / codes.numel()
    found = int((share >= MIN_LABEL_SHARE).sum())
    if found < count:
        raise ImageError(f"{name}: has {found} colour region{'s' if found != 1 else ''} for {count} style images")
    chosen = values[order[:count]]
    palette = torch.stack(
        [chosen // LABEL_LEVELS**2, (chosen // LABEL_LEVELS) % LABEL_LEVELS, chosen % LABEL_LEVELS], dim=1
    ).float() / (LABEL_LEVELS - 1)
    luma = palette @ torch.tensor([0.299, 0.587, 0.114])
    palette = palette[luma.argsort()]
    pixels = image[0].flatten(1).T  # (N, 3)
    nearest = torch.cdist(pixels, palette).argmin(dim=1)
    masks = F.one_hot(nearest, count).T.float()
    return masks.reshape(count, 1, *image.shape[-2:])


def scale_masks(masks: Tensor, size: tuple[int, int], feather: float = 0.0, final: int | None = None) -> Tensor:
    """Masks resized to ``size`` (area-weighted), blurred by ``feather`` pixels of the
    final size (scaled to this one) for soft borders."""
    out = F.interpolate(masks, size=size, mode="bilinear", align_corners=False, antialias=True).clamp(0.0, 1.0)
    if feather > 0:
        sigma = feather * max(size) / (final or max(size))
        out = gaussian_blur(out, sigma)
    return out


def gaussian_blur(masks: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of ``(K, 1, H, W)`` with edges replicated."""
    if sigma < 0.3:
        return masks
    # Past the mask's own size a wider kernel changes nothing but its cost (edges are
    # replicated): bounded so that no setting can size an allocation beyond the mask's.
    radius = min(max(1, math.ceil(3 * sigma)), max(masks.shape[-2:]))
    x = torch.arange(-radius, radius + 1, dtype=masks.dtype, device=masks.device)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = kernel / kernel.sum()
    padded = F.pad(masks, (radius, radius, 0, 0), mode="replicate")
    out = F.conv2d(padded, kernel.view(1, 1, 1, -1))
    padded = F.pad(out, (0, 0, radius, radius), mode="replicate")
    return F.conv2d(padded, kernel.view(1, 1, -1, 1))


def layer_mask(mask: Tensor, factor: int, size: tuple[int, int]) -> Tensor:
    """A ``(K, 1, H, W)`` mask at a layer ``factor`` times smaller per side, with that
    layer's ``size``: each feature position takes the mean of the pixels it pools."""
    if factor > 1:
        mask = F.avg_pool2d(mask, factor, factor)
    return mask[..., : size[0], : size[1]]


@dataclass(frozen=True)
class Masks:
    """A run's masks at their own resolution: ``output`` ``(K, 1, H, W)`` for the K
    styles, and per style image an optional mask of the part of it to use."""

    output: Tensor
    styles: list[Tensor | None]
    feather: float

    def at(self, size: tuple[int, int], final: tuple[int, int]) -> Tensor:
        """The output masks at a scale of ``size`` = ``(h, w)``, feathered by ``feather``
        pixels of the output's size ``final``."""
        return scale_masks(self.output, size, self.feather, max(final))

    def style_at(self, k: int, size: tuple[int, int]) -> Tensor | None:
        """Style image ``k``'s own mask at ``size``, or None (all of it)."""
        mask = self.styles[k]
        return None if mask is None else scale_masks(mask, size)


def prepare_masks(
    masks: Sequence[ImageInput] | None,
    style_masks: Sequence[ImageInput | None] | None,
    feather: float,
    content: Tensor,
    styles: Sequence[Tensor],
    *,
    needed: float | None = None,
) -> Masks | None:
    """The masks read and checked against the images (errors name the file or setting);
    None without masks. ``needed``: the most pixels the output is made at (each painting's
    own mask is used at most at the painting's size)."""
    if not masks:
        if style_masks:
            raise ConfigError("style_masks", "apply only with `masks` (which part of the output takes which style)")
        return None
    aspect = content.shape[-1] / content.shape[-2]
    output = load_masks(masks, len(styles), aspect, needed=needed)
    own: list[Tensor | None] = [None] * len(styles)
    if style_masks:
        if len(style_masks) != len(styles):
            raise ConfigError("style_masks", f"gives {len(style_masks)} style masks for {len(styles)} style images")
        for k, (source, style) in enumerate(zip(style_masks, styles, strict=True)):
            if source is not None:
                own[k] = load_masks(
                    [source], 1, style.shape[-1] / style.shape[-2], kind="style mask", needed=style[0, 0].numel()
                )
    return Masks(output, own, feather)
