"""The :class:`Stylizer`: a long-lived object that owns the network and a cache of style
statistics, and paints one image per :meth:`Stylizer.run`.

Data flows one way: inputs -> schedule -> per scale: targets (no grad) -> terms ->
optimiser loop -> progress events -> the result. Nothing here prints, writes files or
exits.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Protocol

import torch
from torch import Tensor

from impasto.color import COLOR_MODES, ColorMode
from impasto.config import DEFAULT, StyleConfig
from impasto.digest import digest
from impasto.engine.events import EVERY_STEP, NO_PREVIEWS, Clock, Previews, Progress, ProgressCallback
from impasto.engine.optimize import DEFAULT_POLICY, Evaluator, Policy, WholeImage, evaluate, optimize_scale
from impasto.engine.tiles import Tiled, features_in_tiles, margins, statistics_in_tiles, windows
from impasto.imageio import ImageInput, resize, size_of
from impasto.inputs import Inputs, LoadedInputs, load_inputs
from impasto.model.encoder import Encoder, build_encoder
from impasto.model.layers import check_layers
from impasto.objective.masks import Masks
from impasto.objective.targets import (
    Statistics,
    Targets,
    blend_targets,
    content_targets,
    normalized,
    region_targets,
    statistics_kind,
    style_statistics,
)
from impasto.objective.terms import LookTerm, Objective, Term, recipe_objective
from impasto.runtime import (
    MemoryPlan,
    Runtime,
    check_memory,
    estimate_bytes,
    kept_allocations,
    network_precision,
    resolve_device,
    resolve_precision,
    step_network,
)
from impasto.schedule import Schedule, plan, scaled_style_size, style_size_at


class StatisticsStore(Protocol):
    """Where stylizers in several processes share paintings' statistics (by cache key)."""

    def get(self, key: tuple) -> Statistics | None: ...
    def put(self, key: tuple, stats: Statistics) -> None: ...


#: Terms a caller adds to a run at each scale: ``(size (h, w), device) -> terms``.
ExtraTerms = Callable[[tuple[int, int], torch.device], Sequence[Term]]


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a run's steps: ``image`` is the picture so far at the output's size,
    colours restored, on the CPU; ``progress`` the last event (None before the first)."""

    def __init__(self, image: Tensor, progress: Progress | None) -> None:
        super().__init__()
        self.image, self.progress = image, progress

    def __reduce__(self) -> tuple[type, tuple[Tensor, Progress | None]]:
        # Rebuilt from its own arguments, so that it keeps its picture across a process
        # boundary (a worker process, a Ray actor).
        return (type(self), (self.image, self.progress))


class Stylizer:
    """Paints images with one network on one device; keeps what repeats between runs.

    Owns the frozen float32 encoder (used to score results), the network the steps run
    on (in the run's precision and layout, made once), and a least-recently-used cache of
    style statistics keyed by the exact image the network saw (so by painting, size,
    colour mode and mask), the layers, the statistics' kind, pooling and precision: a
    second run with the same painting at the same size does not run the painting
    through the network again. Runs are serialised (one at a time per stylizer).
    ``policy`` is the optimiser's (see :class:`impasto.engine.optimize.Policy`).
    """

    def __init__(
        self,
        runtime: Runtime | None = None,
        *,
        encoder: Encoder | None = None,
        cache_size: int = 32,
        policy: Policy = DEFAULT_POLICY,
    ):
        self.runtime = runtime or Runtime()
        self.policy = policy
        self.device = resolve_device(self.runtime.device)
        if encoder is None:
            encoder = build_encoder(self.runtime.weights, download=self.runtime.download)
        if next(encoder.parameters()).device != self.device:
            encoder = copy.deepcopy(encoder).to(self.device)  # the caller's module stays where it is
        self.encoder = encoder
        self.autocast = resolve_precision(self.runtime.precision, self.device)
        self.network = step_network(encoder, self.autocast)
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple, Statistics] = OrderedDict()
        self._lock = threading.Lock()
        self.statistics_store: StatisticsStore | None = None
        """Statistics shared with other stylizers (a Ray cluster's actors): looked up there
        before a painting goes through the network, put there after it has."""

    def clear_cache(self) -> None:
        self._cache.clear()

    def run(
        self,
        inputs: Inputs,
        recipe: StyleConfig = DEFAULT,
        *,
        on_progress: ProgressCallback | None = None,
        previews: Previews = NO_PREVIEWS,
        extra_terms: ExtraTerms | None = None,
        on_tile: Callable[[int, int], object] | None = None,
    ) -> Tensor:
        """Paint ``inputs`` by ``recipe``; returns ``(1, 3, h, w)`` float in [0, 1] on the CPU.

        ``on_progress`` is called after every step with a :class:`Progress` (carrying the
        image when ``previews`` says so); returning True stops the run early, at the
        output's size. A last event (``done``) scores the result. Ctrl-C during the steps
        raises :class:`Interrupted` with the picture so far. ``extra_terms``: terms the
        caller adds to the recipe's at each scale (a video's temporal term, whose target
        is the previous frame), made by ``extra_terms(size, device)`` for that scale.
        ``on_tile(done, total)``: at a scale painted in tiles, called after each window a
        step runs through the network (every pass counted), for progress within a step.
        """
        with self._lock, kept_allocations():
            return self._run(inputs, recipe, on_progress, previews, extra_terms, on_tile)

    def _check_layers(self, recipe: StyleConfig) -> None:
        for field in ("content_layers", "style_layers"):  # VGG16 lacks conv3_4, conv4_4, conv5_4
            check_layers(field, getattr(recipe, field), self.encoder.all_layers)
            check_layers(field, getattr(recipe, field), self.encoder.names)

    def _run(
        self,
        inputs: Inputs,
        recipe: StyleConfig,
        on_progress: ProgressCallback | None,
        previews: Previews,
        extra_terms: ExtraTerms | None = None,
        on_tile: Callable[[int, int], object] | None = None,
    ) -> Tensor:
        started = time.perf_counter()
        self._check_layers(recipe)
        loaded = load_inputs(inputs, recipe)
        schedule = plan(recipe, *loaded.content.shape[-2:])
        # The weights of the size asked, at every scale: the look is that of the final size.
        recipe = recipe.replace(content_weight=schedule.content_weight, content_size_exponent=0.0)
        memory = self.memory_plan(loaded, recipe, schedule)
        colors = COLOR_MODES[recipe.colors]
        content, styles = colors.prepare(loaded.content, loaded.styles)
        run = _Run(
            self, recipe, schedule, colors, loaded.content, content, styles, loaded.masks, loaded.labels, extra_terms,
            memory, on_tile,
        )  # fmt: skip
        return run.paint(loaded.init, on_progress, previews, started)

    def memory_plan(self, loaded: LoadedInputs, recipe: StyleConfig, schedule: Schedule) -> MemoryPlan:
        """How a run of ``recipe`` on ``loaded`` fits this stylizer's memory budget: whole,
        or in tiles with an L-BFGS history that fits (TooLarge when nothing does)."""
        layers = (*recipe.content_layers, *recipe.style_layers)
        histogram_layers = recipe.style_layers if recipe.histogram_weight > 0 else ()
        return check_memory(
            self.encoder,
            schedule.final,
            self.autocast is not None,
            recipe.optimizer,
            self.device,
            layers,
            # each painting at the output's scale: the largest it is used at
            style_pixels=max(math.prod(style_size_at(size_of(s), schedule.final, recipe)) for s in loaded.styles),
            field="pixels" if recipe.pixels is not None else "size",
            history=self.policy.history,
            held=loaded.nbytes,
            budget=self.runtime.budget,
            tile=self.runtime.tile,
            halo=margins(self.encoder, layers)[0],
            histogram_layers=histogram_layers,
            streamed=loaded.masks is None,
            content_layers=recipe.content_layers,
        )

    def style_statistics(
        self,
        style: Tensor,
        layers: Sequence[str],
        kind: str,
        pooling: str,
        own_mask: Tensor | None = None,
        tile: int | None = None,
    ) -> Statistics:
        """One style image's statistics at its working size (see
        :func:`impasto.objective.targets.style_statistics`; in ``tile`` px tiles when given,
        see :func:`impasto.engine.tiles.statistics_in_tiles`), from the cache when it has them."""
        key = (
            digest(style),
            None if own_mask is None else digest(own_mask),
            tuple(layers),
            kind,
            pooling,
            self.autocast,
            tile,
        )
        stats = self._cache.get(key)
        if stats is not None:
            self._cache.move_to_end(key)
            return stats
        store = self.statistics_store
        shared_key = (*key, self.device.type)
        if store is not None:
            shared = store.get(shared_key)
            if shared is not None:
                stats = {name: tuple(t.to(self.device) for t in parts) for name, parts in shared.items()}
                self._remember(key, stats)
                return stats

        def network(image: Tensor, wanted: Sequence[str]) -> dict[str, Tensor]:
            return self.network(image.to(self.device), wanted, pooling)

        own = None if own_mask is None else own_mask.to(self.device)
        # Under the run's autocast, the statistics' products included (see _Run.targets).
        with network_precision(self.device.type, self.autocast):
            if tile is None:
                stats = style_statistics(network, style, layers, kind, own, self.encoder.downsampling)
            else:
                stats = statistics_in_tiles(self.network, style.to(self.device), layers, kind, pooling, tile,
                                            self.autocast)  # fmt: skip
        self._remember(key, stats)
        if store is not None:
            store.put(shared_key, {name: tuple(t.cpu() for t in parts) for name, parts in stats.items()})
        return stats

    def _remember(self, key: tuple, stats: Statistics) -> None:
        self._cache[key] = stats
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)


class _Run:
    """One run's state: the scale loop, its events, the result."""

    def __init__(
        self,
        stylizer: Stylizer,
        recipe: StyleConfig,
        schedule: Schedule,
        colors: ColorMode,
        original: Tensor,
        content: Tensor,
        styles: list[Tensor],
        masks: Masks | None,
        labels: list[str],
        extra_terms: ExtraTerms | None = None,
        memory: MemoryPlan | None = None,
        on_tile: Callable[[int, int], object] | None = None,
    ) -> None:
        self.s, self.recipe, self.schedule, self.colors = stylizer, recipe, schedule, colors
        self.labels, self.extra_terms = labels, extra_terms
        self.original, self.content, self.styles, self.masks = original, content, styles, masks
        self.device = stylizer.device
        self.memory = memory or MemoryPlan(None, None)
        """Whether each scale runs whole or in tiles."""
        self.on_tile = on_tile
        """Called after each window of a tiled evaluation (see :meth:`Stylizer.run`)."""
        self.anchor: Tensor | None = None
        """With ``look_size``: the picture at the last scale no larger than it, which the
        larger scales' picture, seen at its size, is held to (:class:`LookTerm`)."""

    def whole_need(self, size: tuple[int, int]) -> int:
        """Bytes a whole-picture pass at ``size`` needs (as the memory check counts them)."""
        recipe = self.recipe
        layers = (*recipe.content_layers, *recipe.style_layers)
        low = self.s.autocast is not None
        return estimate_bytes(self.s.encoder, size, low, recipe.optimizer, layers, self.s.policy.history)

    @property
    def policy(self) -> Policy:
        """The optimiser's policy, its history shortened where the memory plan says so."""
        if self.memory.history is None:
            return self.s.policy
        return dataclasses.replace(self.s.policy, history=self.memory.history)

    def tile_at(self, size: tuple[int, int]) -> int | None:
        """The tile size of a scale of ``size`` (None: the whole picture at once)."""
        return self.memory.tile_at(self.whole_need(size), size)

    def style_tile(self, style: Tensor, tile: int | None) -> int | None:
        """The tile size a painting's statistics are made in at a scale run in ``tile`` px
        tiles: the same, once the painting is larger than one tile (None: in one pass)."""
        if tile is None or max(size_of(style)) <= tile:
            return None
        return tile

    def targets(self, size: tuple[int, int]) -> Targets:
        """Content features and style statistics at a scale of ``size``, on the step network
        (the photo's features tile by tile where the scale runs in tiles)."""
        recipe = self.recipe
        tile = self.tile_at(size)
        content = resize(self.content, size, recipe.resample).to(self.device)
        scaled = [
            resize(style, scaled_style_size(size_of(style), size, recipe, self.labels[k]), recipe.resample)
            for k, style in enumerate(self.styles)
        ]
        s = self.s
        # Everything from here under the run's autocast, as the steps' network runs (the
        # statistics' products too: their values are those of the network's precision).
        with network_precision(self.device.type, s.autocast):
            features = content_targets(
                lambda image, layers: (
                    s.network(image, layers, recipe.pooling)
                    if tile is None
                    else features_in_tiles(s.network, image, layers, recipe.pooling, tile, s.autocast)
                ),
                content,
                recipe.content_layers,
            )
            weights = normalized(recipe.style_weights, len(scaled))
            kind = statistics_kind(recipe.style_loss, self.masks is not None, recipe.histogram_weight > 0)
            if self.masks is None:
                # A painting larger than a tile at a tiled scale (a scan for a print) in tiles too.
                layers = recipe.style_layers
                stats = [
                    s.style_statistics(style, layers, kind, recipe.pooling, tile=self.style_tile(style, tile))
                    for style in scaled
                ]
                return blend_targets(features, stats, weights, recipe.style_layers, kind)
            masks = self.masks.at(size, self.schedule.final).to(self.device)
            own = [self.masks.style_at(k, size_of(style)) for k, style in enumerate(scaled)]
            stats = [
                s.style_statistics(style, recipe.style_layers, kind, recipe.pooling, mask)
                for style, mask in zip(scaled, own, strict=True)
            ]
            down = s.encoder.downsampling
            sizes = {n: (size[0] // down(n), size[1] // down(n)) for n in recipe.style_layers}
            return region_targets(features, stats, weights, masks, recipe.style_layers, recipe.style_loss, down, sizes)

    def objective(self, targets: Targets, size: tuple[int, int]) -> Objective:
        """The recipe's terms at a scale of ``size``, the look term above ``look_size``,
        and the caller's."""
        terms = recipe_objective(self.recipe, targets).terms
        look = self.recipe.look_size
        if look is not None and max(size) > look and self.anchor is not None:
            terms = (*terms, LookTerm(self.anchor, self.recipe.look_weight))
        if self.extra_terms is not None:
            terms = (*terms, *self.extra_terms(size, self.device))
        return Objective(terms)

    def initial_image(self, init: Tensor | None, size: tuple[int, int]) -> Tensor:
        r = self.recipe
        if r.init == "content":
            return resize(self.content, size, r.resample)
        if r.init == "noise":
            generator = torch.Generator().manual_seed(r.seed)
            return torch.rand((1, 3, *size), generator=generator)
        assert init is not None
        # As the objective sees pictures: a start image for a luminance-only run is its
        # luminance (an RGB start would pull the optimisation towards colours it cannot keep).
        return self.colors.view(resize(init, size, r.resample))

    def handed_out(self, image: Tensor) -> Tensor:
        """An iterate as a person gets it: clamped, colours restored, a CPU copy."""
        picture = image.detach().clamp(0.0, 1.0).cpu().clone()
        if not self.colors.restores:
            return picture
        return self.colors.restore(picture, resize(self.original, size_of(picture), self.recipe.resample))

    def finish(self, image: Tensor) -> Tensor:
        """The picture handed out from the optimised ``image``: at the output's size,
        clamped, colours restored (on the device)."""
        final = self.schedule.final
        result = image.clamp(0.0, 1.0)
        if size_of(result) != final:  # stopped early at a coarse scale
            result = resize(result, final, "bicubic")
        if not self.colors.restores:
            return result
        return self.colors.restore(result, resize(self.original, final, self.recipe.resample).to(self.device))

    def paint(
        self, init: Tensor | None, on_progress: ProgressCallback | None, previews: Previews, started: float
    ) -> Tensor:
        recipe, schedule = self.recipe, self.schedule
        clock = Clock(started, schedule)
        latest: list[Tensor] = [self.initial_image(init, schedule.sizes[0])]
        last_event: list[Progress | None] = [None]
        last_preview: list[float | None] = [None]
        final_index = len(schedule.sizes) - 1

        last_values: dict[str, float] = {}
        timed_out = False

        def report(values: dict[str, float], image: Tensor) -> bool:
            nonlocal timed_out
            clock.tick()
            latest[0] = image
            last_values.clear()
            last_values.update(values)
            stop = False
            if on_progress is not None:
                now = time.perf_counter()
                picture = None
                if previews.due(clock.step, now, last_preview[0]):
                    picture, last_preview[0] = self.handed_out(image), now
                event = clock.event(values, picture)
                last_event[0] = event
                stop = on_progress(event) is True
            if clock.would_pass(recipe.time_limit):  # the next step would end past the limit
                stop = timed_out = True
            if clock.scale == final_index and recipe.target_loss is not None and values["loss"] <= recipe.target_loss:
                stop = True
            return stop

        image = latest[0]
        adam_state = None
        targets = None
        look = recipe.look_size
        if look is not None and init is not None and max(size_of(init)) <= look:
            # A picture continued from a preview (--from): its look is the preview's, until
            # (and unless) a scale no larger than the look size paints it again.
            self.anchor = self.colors.view(init.to(self.device)).float().clamp(0.0, 1.0)
        try:
            for index, (size, steps) in enumerate(zip(schedule.sizes, schedule.steps, strict=True)):
                if index:
                    # A new scale's targets and first step: about twice a step of the
                    # scale before, times the ratio of their pixels.
                    previous = schedule.sizes[index - 1]
                    if clock.would_pass(recipe.time_limit, 2 * math.prod(size) / math.prod(previous)):
                        timed_out = True
                        break
                    image = resize(image, size, "bicubic")
                    latest[0] = image
                targets = self.targets(size)
                clock.at(index, size)
                objective = self.objective(targets, size)
                tile = self.tile_at(size)
                evaluator: Evaluator = (
                    WholeImage(self.s.network, objective, self.s.autocast, recipe.pooling)
                    if tile is None
                    else Tiled(self.s.network, objective, self.s.autocast, recipe.pooling, tile, self.on_tile)
                )
                halo, align = margins(self.s.encoder, objective.layers)
                clock.tiles = 0 if tile is None else len(windows(*size, tile, halo, align))
                image, stopped, adam_state = optimize_scale(
                    evaluator,
                    image.to(self.device),
                    steps,
                    report,
                    optimizer=recipe.optimizer,
                    lr=recipe.lr,
                    clamp=recipe.clamp,
                    ema_decay=recipe.ema_decay,
                    adam_state=adam_state,
                    policy=self.policy,
                )
                latest[0] = image
                if recipe.look_size is not None and max(size) <= recipe.look_size:
                    self.anchor = image.detach().float().clamp(0.0, 1.0)
                if stopped:
                    break
        except KeyboardInterrupt:
            picture = self.finish(latest[0].to(self.device))
            raise Interrupted(picture.cpu(), last_event[0]) from None
        picture = self.finish(image)
        if on_progress is None:
            return picture.cpu()
        if last_values and (timed_out or self.tile_at(schedule.final) is not None):
            # No scoring pass: past the time limit there is no time for it, and at a size
            # painted in tiles it would cost about a step of the float32 network (minutes
            # at A4 on a CPU without bfloat16). The last step's figures stand for it.
            event = clock.event(last_values, picture.detach().cpu().clone(), True, "last step", timed_out)
            on_progress(event)
            return picture.cpu()
        if targets is None or size_of(image) != schedule.final:
            targets = self.targets(schedule.final)
        # The last event scores the picture as the objective sees it, with the float32
        # network whatever the run's precision (against the final scale's targets,
        # computed in the run's precision).
        objective, seen, tile = (
            self.objective(targets, schedule.final),
            self.colors.view(picture),
            self.tile_at(schedule.final),
        )
        with torch.no_grad():
            if tile is None:
                loss, terms = evaluate(self.s.encoder, objective, seen, None, recipe.pooling)
            else:
                scorer = Tiled(self.s.encoder, objective, None, recipe.pooling, tile, self.on_tile)
                loss, terms = scorer(seen, backward=False)
        numbers = torch.stack([*terms.values(), loss]).tolist()
        values = dict(zip([*terms, "loss"], numbers, strict=True))
        on_progress(clock.event(values, picture.detach().cpu().clone(), done=True, score="picture"))
        return picture.cpu()


def stylize(
    content: ImageInput,
    styles: ImageInput | Sequence[ImageInput],
    config: StyleConfig = DEFAULT,
    *,
    on_progress: ProgressCallback | None = None,
    encoder: Encoder | None = None,
    runtime: Runtime | None = None,
    init: ImageInput | None = None,
    masks: Sequence[ImageInput] | None = None,
    style_masks: Sequence[ImageInput | None] | None = None,
    previews: Previews = EVERY_STEP,
) -> Tensor:
    """Paint ``content`` in the style of ``styles`` (one call, one :class:`Stylizer`).

    Args:
        content: path, Pillow image or ``(1, 3, H, W)`` tensor in [0, 1].
        styles: one such image or a sequence; blended by ``config.style_weights``.
        config: the recipe (see :mod:`impasto.config`).
        on_progress: called after every step with a :class:`Progress`; if it returns
            True the run stops early and the current image is returned (at the final
            size). A last event (``done``) scores the result.
        encoder: a prebuilt :class:`Encoder` (tests, or many runs in one process; a
            :class:`Stylizer` keeps one for you).
        runtime: device, precision and weights (default: :class:`Runtime`'s defaults).
        init, masks, style_masks: see :class:`impasto.inputs.Inputs`.
        previews: which events carry the image (default: every one, as in 0.1).

    Returns:
        The image, ``(1, 3, h, w)`` float in [0, 1] on the CPU.
    """
    stylizer = Stylizer(runtime, encoder=encoder)
    inputs = Inputs.of(content, styles, init=init, masks=masks, style_masks=style_masks)
    return stylizer.run(inputs, config, on_progress=on_progress, previews=previews)
