"""The schedule of a run: the output's size, the sizes of its coarse-to-fine scales,
the steps at each, the size of each style image and the content weight for the size.

Pure arithmetic on ``(h, w)`` tuples: nothing here touches an image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from impasto.config import TUNED_SIDE, StyleConfig
from impasto.errors import ImageError
from impasto.model.layers import MIN_SIDE


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


def scale_steps(config: StyleConfig, scales: int) -> list[int]:
    """Steps at each of ``scales`` scales: ``steps`` alone for one scale; else
    ``first_steps``, ``steps`` for the middle ones, ``final_steps``."""
    if scales == 1:
        return [config.steps]
    middle = [config.steps] * (scales - 2)
    return [config.first_steps or config.steps, *middle, config.final_steps or config.steps]


#: The fewest steps a scale above ``detail_size`` takes (see :func:`detail_steps`).
LEAST_DETAIL_STEPS = 8


def detail_steps(config: StyleConfig, sizes: Sequence[tuple[int, int]], steps: Sequence[int]) -> list[int]:
    """``steps`` with those of the scales larger than ``detail_size`` cut to as many
    pixel-steps as a scale of that size would take (at least :data:`LEAST_DETAIL_STEPS`,
    never more than asked)."""
    if config.detail_size is None:
        return list(steps)
    cut = []
    for (h, w), n in zip(sizes, steps, strict=True):
        ratio = (config.detail_size / max(h, w)) ** 2
        cut.append(n if ratio >= 1 else min(n, max(LEAST_DETAIL_STEPS, math.ceil(n * ratio))))
    return cut


def working_size(height: int, width: int, config: StyleConfig) -> tuple[int, int]:
    """``(h, w)`` of the output for a content image of ``height x width``."""
    if config.pixels is not None:
        return fit_pixels(height, width, config.pixels)
    assert config.size is not None
    return fit_longest_side(height, width, config.size)


def content_weight_at(config: StyleConfig, size: tuple[int, int]) -> float:
    """The content weight of a run whose output is ``size`` = ``(h, w)`` (the size rule
    stops at ``look_size``)."""
    side = max(size) if config.look_size is None else min(max(size), config.look_size)
    return config.content_weight * (side / TUNED_SIDE) ** config.content_size_exponent


@dataclass(frozen=True)
class Schedule:
    """Sizes ``(h, w)`` and steps of each scale, the last at the output's size, and the
    content weight every scale uses (that of the output's size: the look is the final
    size's)."""

    sizes: tuple[tuple[int, int], ...]
    steps: tuple[int, ...]
    content_weight: float

    @property
    def final(self) -> tuple[int, int]:
        return self.sizes[-1]

    @property
    def work(self) -> int:
        """Steps weighted by their pixel count: what an ETA divides."""
        return sum(n * h * w for n, (h, w) in zip(self.steps, self.sizes, strict=True))


def smallest_working(config: StyleConfig, height: int, width: int) -> str:
    """The setting that would make a ``height x width`` photo's output at least the
    network's smallest side: `size` (or `pixels`) of at least some value."""
    if config.pixels is not None:
        pixels = math.ceil(MIN_SIDE * MIN_SIDE * max(height, width) / min(height, width))
        while min(fit_pixels(height, width, pixels)) < MIN_SIDE:
            pixels += max(1, pixels // 100)
        return f"`pixels` of at least {pixels}"
    side = math.ceil(MIN_SIDE * max(height, width) / min(height, width))
    while min(fit_longest_side(height, width, side)) < MIN_SIDE:
        side += 1
    return f"`size` of at least {side}"


def plan(config: StyleConfig, height: int, width: int) -> Schedule:
    """The schedule of ``config`` for a content image of ``height x width``. Coarse
    scales whose smaller side would be under the network's smallest side are left out
    (a panorama starts at the first scale the network can see); ImageError when the
    output itself would be, naming a size that works."""
    final = working_size(height, width, config)
    if min(final) < MIN_SIDE:
        raise ImageError(
            f"content: a {width}x{height} image is {final[1]}x{final[0]} px at this output size, under the "
            f"network's {MIN_SIDE} px on its short side; use {smallest_working(config, height, width)}"
        )
    sizes = [size for size in scale_sizes(final, config.start_size, config.scales) if min(size) >= MIN_SIDE]
    steps = detail_steps(config, sizes, scale_steps(config, len(sizes)))
    return Schedule(tuple(sizes), tuple(steps), content_weight_at(config, sizes[-1]))


def style_size_at(style: tuple[int, int], size: tuple[int, int], config: StyleConfig) -> tuple[int, int]:
    """``(h, w)`` of a style image of shape ``style`` at a scale of ``size``: the scale's
    area times ``style_scale²`` (see :func:`style_size`)."""
    return style_size(style[0], style[1], size[0] * size[1] * config.style_scale**2, config.upscale_style)


def scaled_style_size(style: tuple[int, int], size: tuple[int, int], config: StyleConfig, name: str) -> tuple[int, int]:
    """:func:`style_size_at`, or ImageError naming the image when under the network's
    smallest side, with the `style_scale` that would do."""
    scaled = style_size_at(style, size, config)
    if min(scaled) < MIN_SIDE:
        # The style's short side is sqrt(area x short/long): the scale that makes it 16 px.
        need = math.ceil(MIN_SIDE / math.sqrt(size[0] * size[1] * min(style) / max(style)) * 100) / 100
        while min(style_size(style[0], style[1], size[0] * size[1] * need**2, config.upscale_style)) < MIN_SIDE:
            need = round(need + 0.01, 2)
        fix = f"`style_scale` of at least {need:g}, or a larger output"
        raise ImageError(
            f"{name}: a {style[1]}x{style[0]} painting is {scaled[1]}x{scaled[0]} px at a {size[1]}x{size[0]} scale "
            f"(`style_scale` {config.style_scale:g}), under the network's {MIN_SIDE} px; use {fix}"
        )
    return scaled
