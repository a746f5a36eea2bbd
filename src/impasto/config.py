"""The recipe: one frozen :class:`StyleConfig` of plain data and its validation (the named
presets are :mod:`impasto.presets`).

A recipe says *what* to paint: weights, layers, schedule, optimiser, colours. It holds
no paths, tensors or devices (those are :class:`impasto.inputs.Inputs` and
:class:`impasto.runtime.Runtime`), so it is hashable, comparable and round-trips through
JSON exactly: the web form, batch manifests and remote tasks carry it as it is.

Every default lives here, and so does every field's description (its ``metadata``): the
command line's options, ``impasto presets``, docs/options.md's option table and the web form
are made from them. Invalid values raise :class:`~impasto.errors.ConfigError` naming the
field.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
from dataclasses import dataclass
from typing import Any

from impasto.errors import ConfigError
from impasto.model.layers import LAYER_NAMES, MIN_SIDE, POOLINGS, check_layers

OPTIMIZERS = ("lbfgs", "adam")
RESAMPLE_FILTERS = ("bilinear", "bicubic")
INITS = ("content", "noise", "image")
STYLE_LOSSES = ("gram", "wasserstein")
COLORS = ("style", "content", "match")
#: The most coarse-to-fine scales: √2 apart, 40 of them span a factor of 2^19.5, from the
#: network's 16 px to past any picture that fits in memory (scales under 16 px are left out
#: anyway). More would only be a list of sizes too large to hold.
MAX_SCALES = 40
#: The largest ``style_scale``: a painting used at 100 times the output's side is already
#: far past any memory (and past where its numbers stay finite).
MAX_STYLE_SCALE = 100
#: The largest step size: pixels live in [0, 1] (Adam's default is 0.02, L-BFGS's 1); far
#: larger steps overflow float32 inside the optimiser (1e300 was a traceback).
MAX_LR = 100.0
#: The longest side asked for, in px (JPEG's and WebP's limit; A0 at 300 dpi is 14043): a
#: larger one is refused in its own words before any size is derived from it.
MAX_SIDE = 65_535
#: The output size (longest side, px) the presets' weights were chosen at: the size of
#: benchmarks/quality.py's report.
TUNED_SIDE = 384

#: ``look_weight``'s default, for the presets' objective (whose loss is ~8000 at the end of
#: a run): a picture seen at its look size 0.03 (RMS, in [0, 1]) off the one painted there
#: costs 9000. At 1024 px from a 512 px preview (tubingen + starry_night) 1e7 kept both
#: figures within 5% of the preview's; 1e6 let the content distance drift 20% (docs/print.md).
LOOK_WEIGHT = 1e7

#: Fields of 0.1's StyleConfig that are not part of the recipe any more, and where they went.
MOVED = {
    "device": "impasto.Runtime(device=...)",
    "precision": "impasto.Runtime(precision=...)",
    "weights": "impasto.Runtime(weights=...)",
    "masks": "stylize(..., masks=...) (impasto.Inputs)",
    "style_masks": "stylize(..., style_masks=...) (impasto.Inputs)",
}


def setting(default: Any, help: str, kind: str, *, none: str | None = None, choices: tuple[str, ...] = ()) -> Any:
    """A recipe field with its description: ``kind`` is ``int``, ``float``, ``str``,
    ``bool``, ``floats`` or ``layers`` (comma-separated lists); ``none`` says what an unset
    value means."""
    return dataclasses.field(default=default, metadata={"help": help, "kind": kind, "none": none, "choices": choices})


@dataclass(frozen=True)
class StyleConfig:
    """Everything one stylisation needs besides its images, device and network.

    The objective is ``content_weight * sum(MSE(F_l, F_l^content))``
    ``+ style_weight * sum(w_l * style_loss_l)`` ``+ histogram_weight * sum(w_l * H_l)``
    ``+ tv_weight * TV``, where the style loss of layer ``l`` is the MSE of its Gram matrix
    divided by ``C*H*W`` (see :func:`impasto.objective.losses.gram`) or the 2-Wasserstein
    distance of Gaussian fits, ``H_l`` the histogram loss
    (:func:`impasto.objective.histogram.histogram_loss`), and ``w_l`` are
    ``style_layer_weights``. ``fields_help()`` describes each field.
    """

    size: int | None = setting(512, "longest side of the output in px", "int", none="unset, `pixels` applies")
    pixels: int | None = setting(
        None, "pixel count (area) of the output, instead of `size`", "int", none="unset, `size` applies"
    )
    style_scale: float = setting(1.0, "style images are resized to the output's area times this squared", "float")
    upscale_style: bool = setting(
        False,
        "resize a style image smaller than the output's area up to it (else it is used at its own size: "
        "an upscaled painting brings blur, not strokes)",
        "bool",
    )
    style_weights: tuple[float, ...] | None = setting(
        None, "blend weights of the style images, comma-separated (e.g. 0.7,0.3)", "floats", none="equal"
    )
    content_weight: float = setting(
        0.01, f"weight of the content loss, for a {TUNED_SIDE} px output (see `content_size_exponent`)", "float"
    )
    content_size_exponent: float = setting(
        0.0,
        f"at longest side L the content weight is multiplied by (L/{TUNED_SIDE})^X, so that a larger output "
        "does not carry more of the painting (measured from 256 to 512 px; 0 = the same weight at every size)",
        "float",
    )
    style_weight: float = setting(10.0, "weight of the style loss", "float")
    tv_weight: float = setting(0.0, "weight of the total-variation (smoothness) loss", "float")
    histogram_weight: float = setting(
        0.0,
        "weight of the histogram loss (Risser et al. 2017): each style layer's per-channel distribution matched "
        "whole, not only its mean and covariance; layers weighted as the style loss's (not with --mask: regions "
        "keep their own style loss)",
        "float",
    )
    neighbour_weight: float = setting(
        0.0,
        "weight of the neighbour loss (Li & Wand 2016, Kolkin et al. 2022): each position's feature pulled toward "
        "its nearest feature of the painting (centred cosine), so the painting's own marks are copied, not "
        "averaged; at `neighbour_layers`",
        "float",
    )
    neighbour_layers: tuple[str, ...] = setting(
        ("relu3_1", "relu4_1"), "comma-separated style layers for the neighbour loss", "layers"
    )
    content_layers: tuple[str, ...] = setting(("relu4_2",), "comma-separated VGG layers for content", "layers")
    style_layers: tuple[str, ...] = setting(
        ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"), "comma-separated VGG layers for style", "layers"
    )
    style_layer_weights: tuple[float, ...] | None = setting(
        None, "comma-separated weights, one per style layer", "floats", none="all 1"
    )
    steps: int = setting(500, "optimiser steps at each scale (the only one, or those between first and final)", "int")
    start_size: int | None = setting(
        None, "coarse-to-fine: longest side of the first scale (px)", "int", none="one scale only"
    )
    scales: int | None = setting(
        None, "coarse-to-fine: number of scales, √2 apart (overrides `start_size`)", "int", none="from `start_size`"
    )
    first_steps: int | None = setting(
        None, "steps at the first scale, when there are several", "int", none="as `steps`"
    )
    final_steps: int | None = setting(
        None, "steps at the final (full-size) scale, when there are several", "int", none="as `steps`"
    )
    detail_size: int | None = setting(
        None,
        "coarse-to-fine: scales whose longest side is larger take fewer steps, as many pixel-steps as a scale of "
        "this size (at least 8)",
        "int",
        none="every scale its steps",
    )
    look_size: int | None = setting(
        None,
        "outputs whose longest side is larger keep the look they have at this size: its content weight (the size "
        "rule stops there), and the larger scales' picture, seen at this size, is held to the one painted at it "
        "(`look_weight`), so a print looks like its preview and only gains detail",
        "int",
        none="the size rule at every size",
    )
    look_weight: float = setting(
        LOOK_WEIGHT,
        "with `look_size`: weight of the mean squared difference between the picture seen at that size and the "
        "one painted there (pixels in [0, 1])",
        "float",
    )
    optimizer: str = setting("lbfgs", "optimiser", "str", choices=OPTIMIZERS)
    lr: float | None = setting(None, "step size", "float", none="1 for lbfgs, 0.02 for adam")
    init: str = setting(
        "content", "start image: content, noise, or image (an image given with the inputs)", "str", choices=INITS
    )
    seed: int = setting(0, "random seed (same seed, same image on the CPU)", "int")
    pooling: str = setting("max", "pooling in the network", "str", choices=POOLINGS)
    resample: str = setting(
        "bicubic", "filter used to resize the inputs (antialiased)", "str", choices=RESAMPLE_FILTERS
    )
    clamp: bool = setting(True, "keep pixels in [0, 1] while optimising (what is saved is clamped anyway)", "bool")
    style_loss: str = setting(
        "gram",
        "gram (Gatys) or wasserstein (2-Wasserstein distance of Gaussian fits of the features)",
        "str",
        choices=STYLE_LOSSES,
    )
    ema_decay: float | None = setting(
        None, "iterate averaging: output the bias-corrected moving average of the iterates (e.g. 0.99)", "float",
        none="off",
    )  # fmt: skip
    colors: str = setting(
        "style",
        "style: the painting's colours; content: keep the photo's (luminance-only); match: recolour the style",
        "str",
        choices=COLORS,
    )
    mask_feather: float = setting(0.0, "soften the masks' borders by a blur of this many output pixels", "float")
    target_loss: float | None = setting(
        None, "stop once the loss at the final scale is at or below this", "float", none="none"
    )
    time_limit: float | None = setting(
        None,
        "stop within this many seconds: no step or scale starts that would end past it, and the final "
        "scoring is skipped (the result keeps the final size)",
        "float",
        none="none",
    )

    def __post_init__(self) -> None:
        validate(self)

    def replace(self, **changes: object) -> StyleConfig:
        """A copy with ``changes``; ConfigError for a field that is not in the recipe."""
        _check_names(changes)
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """Plain data: numbers, strings, booleans, None and lists."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any], base: StyleConfig | None = None) -> StyleConfig:
        """A recipe from plain data: ``base`` (default: the class defaults) with ``data``
        applied; lists become tuples; unknown names are a ConfigError."""
        if not isinstance(data, dict):
            raise ConfigError("recipe", f"expected an object of settings, got {type(data).__name__}")
        _check_names(data)
        kinds = {f.name: f.metadata["kind"] for f in dataclasses.fields(cls)}
        changes = {name: _typed(value, kinds[name]) for name, value in data.items()}
        return (base if base is not None else cls()).replace(**changes)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, base: StyleConfig | None = None) -> StyleConfig:
        return cls.from_dict(parse_json(text), base)


def parse_json(text: str, field: str = "recipe") -> Any:
    """JSON text as Python data; ConfigError naming ``field`` for anything Python cannot
    read as asked: invalid JSON, an integer past Python's digit limit, nesting past its
    recursion limit."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(field, f"not valid JSON ({exc.msg} at character {exc.pos})") from None
    except ValueError as exc:  # e.g. "Exceeds the limit (4300 digits) for integer string conversion"
        raise ConfigError(field, f"not readable JSON ({str(exc).split(';')[0]})") from None
    except RecursionError:
        raise ConfigError(field, "not readable JSON (nested too deeply)") from None


def fields_help() -> dict[str, dict[str, Any]]:
    """Per recipe field: its ``help``, ``kind``, ``none`` and ``choices``."""
    return {f.name: dict(f.metadata) for f in dataclasses.fields(StyleConfig)}


def _check_names(names: Any) -> None:
    known = [f.name for f in dataclasses.fields(StyleConfig)]
    for name in names:
        if name in MOVED:
            raise ConfigError(name, f"is not part of the recipe since impasto 0.2; use {MOVED[name]}")
        if name not in known:
            close = difflib.get_close_matches(str(name), known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(str(name), f"is not a recipe setting{hint}")


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _typed(value: Any, kind: str) -> Any:
    """A JSON value as the field holds it: lists as tuples, whole floats for int fields refused."""
    if isinstance(value, list):
        return tuple(value)
    if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _short(number: int) -> str:
    """A whole number for a message: a 400-digit one as its size, not its digits."""
    text = str(number)
    return text if len(text) <= 20 else f"a {len(text)}-digit number"


def _positive_int(field: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(field, f"must be a positive whole number, got {value!r}")


def _non_negative(field: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(field, f"must be a finite number, got {value!r}")
    if value < 0:
        raise ConfigError(field, f"must not be negative, got {value!r}")


def _choice(field: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(field, f"unknown value {value!r} (choose from {', '.join(choices)})")


def _tuple_of(field: str, value: object, kind: type | tuple[type, ...]) -> None:
    if not isinstance(value, tuple) or not all(isinstance(v, kind) and not isinstance(v, bool) for v in value):
        raise ConfigError(field, f"must be a list, got {value!r}")


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
    for check in (_check_size, _check_weights, _check_layers, _check_schedule, _check_run):
        check(config)


def _check_size(config: StyleConfig) -> None:
    """The output size: a side or a pixel count, within bounds."""
    if config.pixels is None and config.size is None:
        raise ConfigError("size", "give a size or a pixel count")
    if config.pixels is not None:
        _positive_int("pixels", config.pixels)
        if config.pixels < MIN_SIDE * MIN_SIDE:
            raise ConfigError("pixels", f"must be at least {MIN_SIDE * MIN_SIDE}, got {config.pixels}")
        if config.pixels > MAX_SIDE**2:
            raise ConfigError("pixels", f"must be at most {MAX_SIDE}² = {MAX_SIDE**2}, got {_short(config.pixels)}")
    elif config.size is not None:
        _positive_int("size", config.size)
        if config.size < MIN_SIDE:
            raise ConfigError("size", f"must be at least {MIN_SIDE} px, got {config.size}")
        if config.size > MAX_SIDE:
            raise ConfigError("size", f"must be at most {MAX_SIDE} px, got {_short(config.size)}")


def _check_weights(config: StyleConfig) -> None:
    """The painting's scale and the terms' weights."""
    _non_negative("style_scale", config.style_scale)
    if config.style_scale == 0:
        raise ConfigError("style_scale", "must be positive, got 0")
    if config.style_scale > MAX_STYLE_SCALE:
        raise ConfigError(
            "style_scale",
            f"must be at most {MAX_STYLE_SCALE} (the painting's side per output side), got {config.style_scale:g}",
        )
    for field in ("content_weight", "style_weight", "tv_weight", "histogram_weight", "neighbour_weight",
                  "content_size_exponent",
                  "look_weight"):  # fmt: skip
        _non_negative(field, getattr(config, field))
    if config.style_weights is not None:
        _tuple_of("style_weights", config.style_weights, (int, float))
        for w in config.style_weights:
            _non_negative("style_weights", w)
        if not config.style_weights or sum(config.style_weights) <= 0:
            raise ConfigError("style_weights", "need at least one positive weight")
        if not math.isfinite(sum(config.style_weights)):
            raise ConfigError(
                "style_weights", "add up to more than a number can hold; give smaller ones (only the ratio counts)"
            )


def _check_layers(config: StyleConfig) -> None:
    """The network's layers the terms read, and the style layers' weights."""
    for field in ("content_layers", "style_layers"):
        _tuple_of(field, getattr(config, field), str)
        check_layers(field, getattr(config, field), LAYER_NAMES)
    if config.style_layer_weights is not None:
        _tuple_of("style_layer_weights", config.style_layer_weights, (int, float))
        if len(config.style_layer_weights) != len(config.style_layers):
            raise ConfigError(
                "style_layer_weights",
                f"gives {len(config.style_layer_weights)} weights for {len(config.style_layers)} style layers",
            )
        for w in config.style_layer_weights:
            _non_negative("style_layer_weights", w)
    if config.neighbour_weight:
        _tuple_of("neighbour_layers", config.neighbour_layers, str)
        check_layers("neighbour_layers", config.neighbour_layers, LAYER_NAMES)
        outside = [name for name in config.neighbour_layers if name not in config.style_layers]
        if outside:
            raise ConfigError("neighbour_layers", f"must be among the style layers; {', '.join(outside)} is not")


def _check_schedule(config: StyleConfig) -> None:
    """The steps and the sizes of the scales."""
    _positive_int("steps", config.steps)
    for field in ("first_steps", "final_steps"):
        if getattr(config, field) is not None:
            _positive_int(field, getattr(config, field))
    for field in ("detail_size", "look_size"):
        side = getattr(config, field)
        if side is not None:
            _positive_int(field, side)
            if not MIN_SIDE <= side <= MAX_SIDE:
                raise ConfigError(field, f"must be from {MIN_SIDE} to {MAX_SIDE} px, got {_short(side)}")
    if config.scales is not None:
        _positive_int("scales", config.scales)
        if config.scales > MAX_SCALES:
            raise ConfigError("scales", f"must be at most {MAX_SCALES} (they are √2 apart), got {config.scales}")
    if config.start_size is not None:
        _positive_int("start_size", config.start_size)
        if config.start_size < MIN_SIDE:
            raise ConfigError("start_size", f"must be at least {MIN_SIDE} px, got {config.start_size}")
        if config.start_size > MAX_SIDE:
            raise ConfigError("start_size", f"must be at most {MAX_SIDE} px, got {_short(config.start_size)}")


def _check_run(config: StyleConfig) -> None:
    """The optimiser, the start, the choices, the colours and when to stop."""
    _choice("optimizer", config.optimizer, OPTIMIZERS)
    if config.lr is not None:
        _non_negative("lr", config.lr)
        if config.lr == 0:
            raise ConfigError("lr", "must be positive, got 0")
        if config.lr > MAX_LR:
            raise ConfigError("lr", f"must be at most {MAX_LR:g} (pixels are in [0, 1]), got {config.lr:g}")
    _choice("init", config.init, INITS)
    if isinstance(config.seed, bool) or not isinstance(config.seed, int) or not 0 <= config.seed < 2**64:
        raise ConfigError("seed", f"must be a whole number from 0 to 2^64 - 1, got {config.seed!r}")
    _choice("pooling", config.pooling, POOLINGS)
    _choice("resample", config.resample, RESAMPLE_FILTERS)
    _choice("style_loss", config.style_loss, STYLE_LOSSES)
    _choice("colors", config.colors, COLORS)
    for field in ("upscale_style", "clamp"):
        if not isinstance(getattr(config, field), bool):
            raise ConfigError(field, f"must be true or false, got {getattr(config, field)!r}")
    if config.ema_decay is not None:
        _non_negative("ema_decay", config.ema_decay)
        if not 0 < config.ema_decay < 1:
            raise ConfigError("ema_decay", f"must be between 0 and 1 (exclusive), got {config.ema_decay}")
    _non_negative("mask_feather", config.mask_feather)
    for field in ("target_loss", "time_limit"):
        value = getattr(config, field)
        if value is not None:
            _non_negative(field, value)
            if value == 0:
                raise ConfigError(field, "must be positive, got 0")
