"""Quality figures of a result that no recipe optimises directly (benchmarks/quality.py
reports them; the studio and ``explain`` show them):

- style distance: per layer relu1_1 ... relu4_1, the sliced Wasserstein distance between
  the VGG19 features of the output and of the style image divided by the same distance for
  the untouched photo; the mean of the four (lower = more of the style). Each layer counts
  alike: a ratio of sums would be relu4_1's alone, its distances being the largest;
- content distance: ``||F(output) - F(content)|| / ||F(content)||`` at relu4_2 (lower =
  more of the photo kept);
- structure (:func:`structure`): how well the output keeps the photo's self-similarity,
  the correlation of the photo's and the output's pairwise feature distances at 32x32
  positions (higher = the photo's layout kept: what is alike in the photo is alike in the
  painting of it, whatever the colours and marks).
"""

from __future__ import annotations

import torch
from torch import Tensor

from impasto.imageio import resize, size_of
from impasto.model.encoder import Encoder
from impasto.objective.histogram import resample_quantiles
from impasto.schedule import fit_longest_side, style_size

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
CONTENT_LAYER = "relu4_2"
#: What an encoder must compute for :func:`figures`.
LAYERS = (*STYLE_LAYERS, CONTENT_LAYER)


def sliced_wasserstein(a: Tensor, b: Tensor, projections: int = 64, seed: int = 0) -> float:
    """Sliced 2-Wasserstein distance between two feature sets ``(1, C, H, W)``: the root mean
    square difference of the sorted projections on random unit directions (the smaller
    set's quantiles interpolated to the larger's count)."""
    c = a.shape[1]
    generator = torch.Generator().manual_seed(seed)
    directions = torch.randn(c, projections, generator=generator, dtype=torch.float64)
    directions /= directions.norm(dim=0, keepdim=True)
    pa = (a.reshape(c, -1).T.double().cpu() @ directions).sort(dim=0).values
    pb = (b.reshape(c, -1).T.double().cpu() @ directions).sort(dim=0).values
    n = max(pa.shape[0], pb.shape[0])
    return float((resample_quantiles(pa.T, n) - resample_quantiles(pb.T, n)).square().mean().sqrt())


def references(content: Tensor, style: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """The photo at longest side ``size`` and the painting at its pixel count, or at its
    own size when smaller (as the presets use it: an upscaled painting is only blur): what
    every output of that size is scored against."""
    h, w = fit_longest_side(content.shape[-2], content.shape[-1], size)
    sh, sw = size_of(style)
    return resize(content, (h, w), "bicubic"), resize(style, style_size(sh, sw, h * w), "bicubic")


def layer_distance(output: Tensor, content: Tensor, style: Tensor) -> float:
    """One layer's share of the style distance: the output's features' sliced Wasserstein
    distance to the painting's over the photo's (features of one layer each)."""
    return sliced_wasserstein(output, style) / sliced_wasserstein(content, style)


@torch.no_grad()
def figures(encoder: Encoder, output: Tensor, content: Tensor, style: Tensor) -> tuple[float, float]:
    """``(style distance, content distance)`` of ``output`` against ``content`` (same size)
    and ``style``; see the module's docstring."""
    f_out, f_content, f_style = (encoder(image, LAYERS) for image in (output, content, style))
    ratios = [layer_distance(f_out[n], f_content[n], f_style[n]) for n in STYLE_LAYERS]
    content_distance = (f_out[CONTENT_LAYER] - f_content[CONTENT_LAYER]).norm() / f_content[CONTENT_LAYER].norm()
    return sum(ratios) / len(ratios), float(content_distance)


#: The layer and the grid of :func:`structure`.
STRUCTURE_LAYER = "relu3_1"
STRUCTURE_GRID = 32


def pairwise_distances(features: Tensor, grid: int = STRUCTURE_GRID) -> Tensor:
    """Cosine distances between every two positions of ``(1, C, H, W)`` features averaged
    to a ``grid`` x ``grid`` map (area-averaged, the shorter side proportionally fewer),
    ``(P, P)`` float64."""
    h, w = features.shape[-2:]
    scale = grid / max(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    pooled = torch.nn.functional.adaptive_avg_pool2d(features.double(), size)
    rows = torch.nn.functional.normalize(pooled.reshape(features.shape[1], -1).T, dim=1)
    return 1 - rows @ rows.T


@torch.no_grad()
def structure(encoder: Encoder, output: Tensor, content: Tensor) -> float:
    """The Pearson correlation of the photo's and the output's :func:`pairwise_distances`
    at relu3_1 (off the diagonal): 1 when the output's features are alike exactly where
    the photo's are."""
    a, b = (pairwise_distances(encoder(image, (STRUCTURE_LAYER,))[STRUCTURE_LAYER]) for image in (output, content))
    keep = ~torch.eye(a.shape[0], dtype=torch.bool)
    x, y = a[keep] - a[keep].mean(), b[keep] - b[keep].mean()
    return float((x * y).sum() / (x.norm() * y.norm()).clamp(min=1e-30))
