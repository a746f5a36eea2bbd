"""matplotlib figures of the report, one function per figure, each from the probes' data."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from torch import Tensor

from impasto.explain.probes import Layer

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from impasto.explain.history import History

ROLE_COLOURS = {
    "content": "#d95f02",
    "style": "#1b9e77",
    "both": "#7570b3",
    "computed": "#9ecae1",
    "unused": "#e0e0e0",
}
ROLE_NAMES = {
    "content": "content layer",
    "style": "style layer",
    "both": "content and style",
    "computed": "computed, not scored",
    "unused": "never computed",
}


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _rgb(image: Tensor) -> np.ndarray:
    return image[0].clamp(0, 1).permute(1, 2, 0).float().numpy()


def network(layers: list[Layer], title: str) -> Figure:
    """The network as a row of blocks: height grows with the channel count, pooling layers
    thin, colour by the part each plays; channels and resolution written under each."""
    from matplotlib.patches import Patch, Rectangle

    fig = _figure(13, 3.6)
    ax = fig.add_subplot()
    x = 0.0
    for layer in layers:
        width = 0.35 if layer.kind == "pool" else 0.8
        height = 0.6 + math.log2(layer.channels / 32)
        edge = "#999999" if layer.role == "unused" else "#333333"
        ax.add_patch(Rectangle((x, -height / 2), width, height, facecolor=ROLE_COLOURS[layer.role], edgecolor=edge))
        text_colour = "#999999" if layer.role == "unused" else "#222222"
        label = layer.name.replace("conv", "").replace("pool", "pool ") if layer.kind == "pool" else layer.name[4:]
        ax.text(x + width / 2, height / 2 + 0.15, label, ha="center", va="bottom", fontsize=7, color=text_colour,
                rotation=90 if layer.kind == "pool" else 0)  # fmt: skip
        if layer.kind == "conv":
            ax.text(x + width / 2, -height / 2 - 0.15, f"{layer.channels}\n{layer.size[1]}×{layer.size[0]}",
                    ha="center", va="top", fontsize=6.5, color=text_colour)  # fmt: skip
        x += width + 0.15
    ax.set_xlim(-0.3, x)
    ax.set_ylim(-3.6, 3.4)
    ax.axis("off")
    ax.set_title(title, fontsize=11)
    roles = [r for r in ROLE_COLOURS if any(layer.role == r for layer in layers)]
    handles = [Patch(facecolor=ROLE_COLOURS[r], edgecolor="#333333", label=ROLE_NAMES[r]) for r in roles]
    handles.append(Patch(facecolor="white", edgecolor="white", label="under each block: channels, width×height"))
    ax.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False,
              bbox_to_anchor=(0.5, -0.08))  # fmt: skip
    return fig


def feature_maps(maps: dict[str, Tensor], channels: list[int], layer: str) -> Figure:
    """Rows: photo, painting, result; columns: the same channels of ``layer``."""
    fig = _figure(1.6 * len(channels) + 1.2, 1.6 * len(maps) + 0.5)
    axes = fig.subplots(len(maps), len(channels), squeeze=False)
    for row, (who, m) in enumerate(maps.items()):
        for col, channel in enumerate(channels):
            ax = axes[row][col]
            ax.imshow(m[0, channel].numpy(), cmap="magma")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(f"channel {channel}", fontsize=8)
            if col == 0:
                ax.set_ylabel(who, fontsize=9)
    fig.suptitle(f"{layer}: {m.shape[1]} feature maps of {m.shape[3]}×{m.shape[2]}; the {len(channels)} most active",
                 fontsize=10)  # fmt: skip
    return fig


def conv_example(example: dict[str, Tensor]) -> Figure:
    """The 3x3x3 input's channels and the 4 output maps, numbers written in the cells."""
    fig = _figure(11, 2.6)
    axes = fig.subplots(1, 7)
    panels = [(f"input channel {c + 1}", example["image"][c]) for c in range(3)]
    panels += [(f"feature map {k + 1}", example["maps"][k]) for k in range(4)]
    for ax, (title, values) in zip(axes, panels, strict=True):
        array = values.numpy()
        ax.imshow(array, cmap="Blues" if title.startswith("input") else "Oranges")
        for (i, j), v in np.ndenumerate(array):
            ax.text(j, i, f"{v:.0f}" if title.startswith("input") else f"{v:.2f}", ha="center", va="center",
                    fontsize=9)  # fmt: skip
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("nn.Conv2d(in_channels=3, out_channels=4, kernel_size=2): a 3×3×3 image becomes 4 maps of 2×2",
                 fontsize=10)  # fmt: skip
    return fig


def palettes(palettes: dict[str, tuple[Tensor, Tensor]]) -> Figure:
    """Each image's main colours as a bar, each colour as wide as its share of the pixels."""
    fig = _figure(10, 0.7 * len(palettes) + 0.6)
    ax = fig.add_subplot()
    for row, (_who, (colours, shares)) in enumerate(palettes.items()):
        left = 0.0
        for colour, share in zip(colours.tolist(), shares.tolist(), strict=True):
            ax.barh(row, share, left=left, color=colour, edgecolor="white", height=0.8)
            left += share
    ax.set_yticks(range(len(palettes)), list(palettes))
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of the pixels")
    ax.set_title("Main colours (8 per picture, by k-means)", fontsize=10)
    return fig


def histograms(hists: dict[str, Tensor]) -> Figure:
    """Red, green and blue histograms per image, side by side on one scale."""
    fig = _figure(12, 2.8)
    axes = fig.subplots(1, len(hists), sharey=True)
    bins = hists[next(iter(hists))].shape[1]
    centres = (np.arange(bins) + 0.5) / bins
    for ax, (who, h) in zip(axes, hists.items(), strict=True):
        for channel, colour in enumerate(("#d62728", "#2ca02c", "#1f77b4")):
            ax.plot(centres, h[channel].numpy(), color=colour)
            ax.fill_between(centres, h[channel].numpy(), color=colour, alpha=0.15)
        ax.set_title(who, fontsize=10)
        ax.set_xlabel("brightness of the channel (0 dark, 1 bright)")
    axes[0].set_ylabel("share of the pixels")
    fig.suptitle("Colour distributions: red, green and blue", fontsize=10)
    return fig


#: Channels drawn of each matrix (the first of the sorted order): a 512 x 512 heat map
#: shows a few bright cells and a blur at the size of a page.
MATRIX_CHANNELS = 64


def matrices(views: dict[str, Tensor], layer: str, what: str, difference: tuple[str, str]) -> Figure:
    """Heat maps of one layer's matrices on one colour scale, then the difference of two."""
    fig = _figure(15, 3.6)
    axes = fig.subplots(1, len(views) + 1)
    channels = next(iter(views.values())).shape[0]
    n = min(channels, MATRIX_CHANNELS)
    arrays = {who: v[:n, :n].numpy() for who, v in views.items()}
    top = max(float(np.percentile(np.abs(a), 99)) for a in arrays.values()) or 1.0
    signed = any((a < 0).any() for a in arrays.values())
    image = None
    for ax, (who, array) in zip(axes, arrays.items(), strict=False):
        image = ax.imshow(array, cmap="RdBu_r" if signed else "magma", vmin=-top if signed else 0.0, vmax=top)
        ax.set_title(f"{who}", fontsize=10)
        ax.set_xlabel("channel (sorted)")
    axes[0].set_ylabel("channel (sorted)")
    assert image is not None
    fig.colorbar(image, ax=axes[: len(views)].tolist(), shrink=0.8, label=what)
    a, b = difference
    diff = arrays[a] - arrays[b]
    span = float(np.percentile(np.abs(diff), 99.5)) or 1.0
    shown = axes[-1].imshow(diff, cmap="PuOr_r", vmin=-span, vmax=span)
    axes[-1].set_title(f"{a} − {b}", fontsize=10)
    fig.colorbar(shown, ax=axes[-1], shrink=0.8, label="difference")
    shown_text = f"all {channels} channels" if n == channels else f"the first {n} of {channels} channels"
    fig.suptitle(f"{layer}: {what} ({shown_text}, sorted by the painting's diagonal)", fontsize=10)
    return fig


def means(stats: dict[str, dict[str, Tensor]], layer: str) -> Figure:
    """Each image's mean activation per channel (first 64 of the sorted order)."""
    fig = _figure(12, 2.4)
    ax = fig.add_subplot()
    for who, s in stats.items():
        ax.plot(s["mean"][:64].numpy(), marker=".", label=who)
    ax.set_xlabel("channel (sorted by the painting's variance)")
    ax.set_ylabel("mean activation")
    ax.set_title(f"{layer}: channel means (the first 64)", fontsize=10)
    ax.legend(fontsize=8)
    return fig


def strip(images: list[tuple[str, Tensor]], title: str, height: float = 2.2) -> Figure:
    """Images in a row, captioned."""
    fig = _figure(max(2.2 * len(images), 6), height + 0.7)
    axes = fig.subplots(1, len(images), squeeze=False)[0]
    for ax, (caption, image) in zip(axes, images, strict=True):
        ax.imshow(_rgb(image))
        ax.set_title(caption, fontsize=8)
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    return fig


def losses(history: History) -> Figure:
    """Every loss term over the steps on a log scale, the scales' starts marked."""
    fig = _figure(12, 4)
    ax = fig.add_subplot()
    steps = [s.step for s in history.steps]
    keys = list(history.steps[0].terms) if history.steps else []
    positive = [v for s in history.steps for v in s.terms.values() if v > 0]
    for key in keys:
        # A term at exactly 0 (the content term of the first step, from the photo itself)
        # has no place on a log scale: left out.
        values = [v if (v := s.terms.get(key, math.nan)) > 0 else math.nan for s in history.steps]
        style = "--" if key.startswith("content") else ":" if key == "tv" else "-"
        ax.plot(steps, values, style, label=key, linewidth=1.2)
    ax.plot(steps, [s.loss for s in history.steps], color="black", linewidth=2, label="total")
    for start in history.scale_starts():
        ax.axvline(start, color="#888888", linewidth=0.8)
    ax.set_yscale("log")
    if positive:
        ax.set_ylim(bottom=float(np.percentile(positive, 1)) / 2)
    ax.set_xlabel("step (grey lines: a new, larger scale starts)")
    ax.set_ylabel("loss (weighted, log scale)")
    ax.set_title("Loss terms per layer over the run", fontsize=10)
    ax.legend(fontsize=7, ncol=4)
    return fig
