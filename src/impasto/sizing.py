"""Working sizes and resampling of ``(B, C, H, W)`` images."""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor


def fit_longest_side(height: int, width: int, size: int) -> tuple[int, int]:
    """``(h, w)`` with the longer side ``size`` and the aspect ratio kept."""
    if width >= height:
        return max(1, round(size * height / width)), size
    return size, max(1, round(size * width / height))


def fit_pixels(height: int, width: int, pixels: float) -> tuple[int, int]:
    """``(h, w)`` with about ``pixels`` pixels and the aspect ratio kept.

    The rounding is the one pastiche uses (height first, then width from it), so that
    an image sized by either tool gets the same shape.
    """
    h = max(1, round(math.sqrt(pixels * height / width)))
    w = max(1, round(width / height * h))
    return h, w


def style_size(height: int, width: int, pixels: float, upscale: bool = False) -> tuple[int, int]:
    """``(h, w)`` of a style image of ``height x width`` for ``pixels`` pixels: that many,
    or its own pixel count when smaller, unless ``upscale`` (a painting upscaled past its
    own pixels has no finer strokes to give, only blur)."""
    return fit_pixels(height, width, pixels if upscale else min(pixels, height * width))


def resize(image: Tensor, size: tuple[int, int], filter: str = "bicubic") -> Tensor:
    """Resize ``(B, C, H, W)`` to ``size = (h, w)`` with an antialiased filter.

    With antialiasing, ``bilinear`` is Pillow's BILINEAR (same support and weights;
    in float, without Pillow's rounding to 8 bits). ``bicubic`` has Pillow's support
    but torch's sharper kernel (a = -0.75; Pillow's is -0.5). An image already at
    ``size`` is returned as it is, not resampled.
    """
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    out = F.interpolate(image, size=size, mode=filter, align_corners=False, antialias=True)
    return out.clamp(0.0, 1.0)


def scale_sizes(final: tuple[int, int], start: int | None, scales: int | None = None) -> list[tuple[int, int]]:
    """Sizes of a coarse-to-fine schedule, √2 apart, ending at ``final``: ``scales`` of
    them when given, else from the smallest whose longest side is at least ``start`` px;
    just ``[final]`` when neither asks for more."""
    h, w = final
    longest = max(h, w)
    if scales is not None:
        count = scales - 1
    elif start is None or start >= longest:
        return [final]
    else:
        count = math.floor(math.log(longest / start) / math.log(math.sqrt(2)) + 1e-9)
    sizes = []
    for k in range(count, 0, -1):
        factor = math.sqrt(2) ** -k
        sizes.append((max(1, round(h * factor)), max(1, round(w * factor))))
    sizes.append(final)
    return sizes
