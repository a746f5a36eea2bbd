"""Colour control (Gatys et al. 2017, "Controlling Perceptual Factors in Neural Style
Transfer"): luminance-only transfer and colour matching of the style image.

Images are ``(B, 3, H, W)`` RGB in [0, 1]. Each colour mode is a pair: ``prepare`` turns
the photo and the paintings into what the optimisation sees, ``restore`` turns what it
made into what a person gets (every image handed out: previews, snapshots, the result).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from impasto.numerics import eigh, ordered_mean
from impasto.objective.linalg import psd_sqrt

#: RGB -> YIQ (NTSC); its inverse is computed, so the round trip is exact.
_RGB_TO_YIQ = torch.tensor(
    [[0.299, 0.587, 0.114], [0.5959, -0.2746, -0.3213], [0.2115, -0.5227, 0.3112]], dtype=torch.float64
)


def rgb_to_yiq(image: Tensor) -> Tensor:
    """``(B, 3, H, W)`` RGB -> YIQ (Y: luminance in [0, 1]; I, Q: chroma)."""
    return torch.einsum("ij,bjhw->bihw", _RGB_TO_YIQ.to(image), image)


def yiq_to_rgb(image: Tensor) -> Tensor:
    return torch.einsum("ij,bjhw->bihw", torch.linalg.inv(_RGB_TO_YIQ).to(image), image)


def luminance(image: Tensor) -> Tensor:
    """The Y channel repeated into a grey RGB image."""
    return rgb_to_yiq(image)[:, :1].expand(-1, 3, -1, -1).clamp(0, 1).contiguous()


def match_luminance(style: Tensor, content: Tensor) -> Tensor:
    """A grey image of the style's luminance, shifted and scaled to the content's
    luminance mean and standard deviation (so the histograms roughly agree)."""
    y_style = rgb_to_yiq(style)[:, :1]
    y_content = rgb_to_yiq(content)[:, :1]
    (style_mean, style_std), (content_mean, content_std) = _mean_std(y_style), _mean_std(y_content)
    matched = (y_style - style_mean) / style_std.clamp(min=1e-6) * content_std + content_mean
    return matched.expand(-1, 3, -1, -1).clamp(0, 1).contiguous()


def _mean_std(values: Tensor) -> tuple[Tensor, Tensor]:
    """The mean and the sample standard deviation of every value (sums in
    :func:`ordered_mean`'s order: the same bits on any number of threads)."""
    mean = ordered_mean(values)
    n = max(values.numel() - 1, 1)
    return mean, (ordered_mean((values - mean).square()) * values.numel() / n).sqrt()


def with_content_chroma(result: Tensor, content: Tensor) -> Tensor:
    """The luminance of ``result`` with the chroma (I, Q) of ``content`` (same size)."""
    yiq = rgb_to_yiq(content)
    yiq = torch.cat([rgb_to_yiq(result)[:, :1], yiq[:, 1:]], dim=1)
    return yiq_to_rgb(yiq).clamp(0, 1)


def match_colors(style: Tensor, content: Tensor) -> Tensor:
    """The style image recoloured to the content's colour mean and covariance.

    ``x' = Σc^½ Σs^-½ (x - μs) + μc`` per pixel, with symmetric square roots.
    """

    def stats(image: Tensor) -> tuple[Tensor, Tensor]:
        pixels = image.reshape(3, -1).double()
        mean = pixels.mean(dim=1, keepdim=True)
        centred = pixels - mean
        return mean, centred @ centred.T / pixels.shape[1] + 1e-6 * torch.eye(3, dtype=torch.float64)

    mean_s, cov_s = stats(style)
    mean_c, cov_c = stats(content)
    values, vectors = eigh(cov_s)
    inverse_root = vectors @ torch.diag(values.clamp(min=1e-12).rsqrt()) @ vectors.T
    transform = psd_sqrt(cov_c) @ inverse_root
    pixels = style.reshape(3, -1).double()
    recoloured = transform @ (pixels - mean_s) + mean_c
    return recoloured.reshape(style.shape).to(style.dtype).clamp(0, 1)


@dataclass(frozen=True)
class ColorMode:
    """``style``: the painting's colours; nothing is changed."""

    name: str = "style"
    #: Whether :meth:`restore` needs the photo (else it returns the image as it is).
    restores: ClassVar[bool] = False

    def prepare(self, content: Tensor, styles: Sequence[Tensor]) -> tuple[Tensor, list[Tensor]]:
        """The content and style images the optimisation sees."""
        return content, list(styles)

    def restore(self, image: Tensor, content: Tensor) -> Tensor:
        """The picture a person gets from the optimised ``image``; ``content`` is the
        original photo at the image's size."""
        return image

    def view(self, image: Tensor) -> Tensor:
        """A restored picture as the objective sees it (to score what is handed out)."""
        return image


@dataclass(frozen=True)
class ContentColors(ColorMode):
    """``content``: luminance-only transfer (Gatys et al. 2017): grey content, grey styles
    whose luminance takes the content's mean and spread; the result's luminance gets the
    photo's chroma back."""

    name: str = "content"
    restores: ClassVar[bool] = True

    def prepare(self, content: Tensor, styles: Sequence[Tensor]) -> tuple[Tensor, list[Tensor]]:
        return luminance(content), [match_luminance(style, content) for style in styles]

    def restore(self, image: Tensor, content: Tensor) -> Tensor:
        return with_content_chroma(image, content)

    def view(self, image: Tensor) -> Tensor:
        return luminance(image)


@dataclass(frozen=True)
class MatchedColors(ColorMode):
    """``match``: the paintings recoloured to the photo's colour mean and covariance."""

    name: str = "match"

    def prepare(self, content: Tensor, styles: Sequence[Tensor]) -> tuple[Tensor, list[Tensor]]:
        return content, [match_colors(style, content) for style in styles]


COLOR_MODES: dict[str, ColorMode] = {m.name: m for m in (ColorMode(), ContentColors(), MatchedColors())}
