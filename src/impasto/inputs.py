"""The images of a run: the photo, the paintings, an optional start image and masks.

Each may be a path, a Pillow image or a ``(1, 3, H, W)`` tensor in [0, 1]; none of them
is part of the recipe. :func:`load_inputs` reads and checks them all before any work,
with errors that name the file or the input.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor

from impasto.config import StyleConfig, check_style_count
from impasto.errors import ConfigError
from impasto.imageio import ImageInput, load_image
from impasto.objective.masks import Masks, prepare_masks


@dataclass(frozen=True)
class Inputs:
    """What is painted, in what styles, from what start and where."""

    content: ImageInput
    styles: tuple[ImageInput, ...]
    init: ImageInput | None = None
    """The image to start from, for the recipe's ``init`` = ``image``."""
    masks: tuple[ImageInput, ...] | None = None
    """Regional styles: one greyscale mask per style image (white = that style; grey =
    a partial weight), or one label image whose colours, darkest first, stand for the
    style images in order. Where no mask is white, only the content term applies."""
    style_masks: tuple[ImageInput | None, ...] | None = None
    """With ``masks``: per style image, a greyscale mask of the part of that image whose
    style is used (None = all of it)."""
    labels: tuple[str, ...] | None = None
    """What the style images are called in messages (default: their paths, or ``style N``)."""

    @classmethod
    def of(
        cls,
        content: ImageInput,
        styles: ImageInput | Sequence[ImageInput],
        *,
        init: ImageInput | None = None,
        masks: Sequence[ImageInput] | None = None,
        style_masks: Sequence[ImageInput | None] | None = None,
    ) -> Inputs:
        """Inputs from one style or a sequence of them."""
        style_list = tuple(styles) if isinstance(styles, list | tuple) else (styles,)
        return cls(
            content,
            style_list,
            init,
            None if masks is None else tuple(masks),
            None if style_masks is None else tuple(style_masks),
        )


@dataclass(frozen=True)
class LoadedInputs:
    """The inputs read: float ``(1, 3, H, W)`` tensors on the CPU, masks prepared."""

    content: Tensor
    styles: list[Tensor]
    init: Tensor | None
    masks: Masks | None
    labels: list[str]
    """What each style image is called in messages: its path, or ``style N``."""

    @property
    def nbytes(self) -> int:
        """The memory the decoded inputs hold (counted by the memory check)."""
        tensors = [self.content, *self.styles, *([self.init] if self.init is not None else [])]
        if self.masks is not None:
            tensors += [self.masks.output, *(m for m in self.masks.styles if m is not None)]
        return sum(t.numel() * t.element_size() for t in tensors)


def load_inputs(inputs: Inputs, config: StyleConfig) -> LoadedInputs:
    """Read and check every input against the recipe."""
    check_style_count(config, len(inputs.styles))
    if config.init == "image" and inputs.init is None:
        raise ConfigError("init", "is 'image' but no start image was given")
    if config.init != "image" and inputs.init is not None:
        raise ConfigError("init", f"is {config.init!r} but a start image was given (set it to 'image')")
    # The most pixels each input is used at: the output's (an upper bound), the styles' x style_scale².
    area = config.pixels if config.pixels is not None else (config.size or 0) ** 2
    content = load_image(inputs.content, name="content", needed=area)
    style_area = area * config.style_scale**2
    styles = [load_image(s, name=f"style {i + 1}", needed=style_area) for i, s in enumerate(inputs.styles)]
    init = None if inputs.init is None else load_image(inputs.init, name="init", needed=area)
    masks = prepare_masks(inputs.masks, inputs.style_masks, config.mask_feather, content, styles, needed=area or None)
    given = inputs.labels or ()
    labels = [
        given[i] if i < len(given) else str(s) if isinstance(s, str | os.PathLike) else f"style {i + 1}"
        for i, s in enumerate(inputs.styles)
    ]
    return LoadedInputs(content, styles, init, masks, labels)
