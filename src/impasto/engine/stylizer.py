"""The :class:`Stylizer`: a long-lived object that owns the network and a cache of style
statistics, and paints one image per :meth:`Stylizer.run`.

Data flows one way: inputs -> schedule -> per scale: targets (no grad) -> terms ->
optimiser loop -> progress events -> the result. Nothing here prints, writes files or
exits.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Protocol

import torch
from torch import Tensor

from impasto.color import COLOR_MODES
from impasto.config import StyleConfig
from impasto.digest import digest
from impasto.engine.events import EVERY_STEP, NO_PREVIEWS, Previews, ProgressCallback
from impasto.engine.memory import MemoryPlan, MemoryRequest, check_memory
from impasto.engine.optimize import DEFAULT_POLICY, Policy
from impasto.engine.plan import Hook, RunPlan, TermsHook, paint
from impasto.engine.tiles import margins, statistics_in_tiles
from impasto.imageio import ImageInput, size_of
from impasto.inputs import Inputs, LoadedInputs, load_inputs
from impasto.model.encoder import Encoder, build_encoder
from impasto.model.layers import check_layers
from impasto.numerics import kept_allocations, same_bits
from impasto.objective.targets import Statistics, StatisticsKind, style_statistics
from impasto.objective.terms import Term
from impasto.presets import DEFAULT
from impasto.runtime import (
    Runtime,
    network_precision,
    resolve_device,
    resolve_precision,
    step_network,
)
from impasto.schedule import Schedule, style_size_at
from impasto.schedule import plan as plan_schedule


class StatisticsStore(Protocol):
    """Where stylizers in several processes share paintings' statistics (by cache key)."""

    def get(self, key: tuple) -> Statistics | None: ...
    def put(self, key: tuple, stats: Statistics) -> None: ...


#: Terms a caller adds to a run at each scale: ``(size (h, w), device) -> terms``.
ExtraTerms = Callable[[tuple[int, int], torch.device], Sequence[Term]]


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
        inputs: Inputs | RunPlan,
        recipe: StyleConfig = DEFAULT,
        *,
        on_progress: ProgressCallback | None = None,
        previews: Previews = NO_PREVIEWS,
        extra_terms: ExtraTerms | None = None,
        on_tile: Callable[[int, int], object] | None = None,
        hooks: Sequence[Hook] = (),
    ) -> Tensor:
        """Paint ``inputs`` by ``recipe``; returns ``(1, 3, h, w)`` float in [0, 1] on the CPU.
        ``inputs`` may be a plan made by :meth:`plan` instead (``recipe`` is then the plan's;
        the run's clock starts here).

        ``on_progress`` is called after every step with a :class:`Progress` (carrying the
        image when ``previews`` says so); returning True stops the run early, at the
        output's size. A last event (``done``) scores the result. Ctrl-C during the steps
        raises :class:`Interrupted` with the picture so far. ``extra_terms``: terms the
        caller adds to the recipe's at each scale (a video's temporal term, whose target
        is the previous frame), made by ``extra_terms(size, device)`` for that scale.
        ``on_tile(done, total)``: at a scale painted in tiles, called after each window a
        step runs through the network (every pass counted), for progress within a step.
        ``hooks``: what a feature adds at each scale (:class:`impasto.engine.plan.Hook`),
        after the recipe's own and before ``extra_terms``.
        """
        with self._lock, kept_allocations(), same_bits(bool(self.runtime.same_bits) and self.device.type == "cpu"):
            started = time.perf_counter()
            run_plan = inputs if isinstance(inputs, RunPlan) else self.plan(inputs, recipe)
            if run_plan.stylizer is not self:
                raise ValueError("a plan is painted by the stylizer that made it")
            added = [*hooks, *([] if extra_terms is None else [TermsHook(extra_terms)])]
            return paint(run_plan, started, added, on_progress, previews, on_tile)

    def _check_layers(self, recipe: StyleConfig) -> None:
        for field in ("content_layers", "style_layers"):  # VGG16 lacks conv3_4, conv4_4, conv5_4
            check_layers(field, getattr(recipe, field), self.encoder.all_layers)
            check_layers(field, getattr(recipe, field), self.encoder.names)

    def plan(self, inputs: Inputs, recipe: StyleConfig = DEFAULT) -> RunPlan:
        """What a run of ``recipe`` on ``inputs`` will paint and how (the inputs read, the
        schedule, the memory plan), before any step: :meth:`run` paints it; a benchmark
        reads a scale's targets, objective and evaluator off it. Raises what a run would
        for bad layers, inputs or memory."""
        self._check_layers(recipe)
        loaded = load_inputs(inputs, recipe)
        schedule = plan_schedule(recipe, *loaded.content.shape[-2:])
        # The weights of the size asked, at every scale: the look is that of the final size.
        recipe = recipe.replace(content_weight=schedule.content_weight, content_size_exponent=0.0)
        memory = self.memory_plan(loaded, recipe, schedule)
        colors = COLOR_MODES[recipe.colors]
        content, styles = colors.prepare(loaded.content, loaded.styles)
        return RunPlan(
            self, recipe, schedule, memory, colors, loaded.content, content, styles, loaded.masks, loaded.labels,
            loaded.init,
        )  # fmt: skip

    def memory_plan(self, loaded: LoadedInputs, recipe: StyleConfig, schedule: Schedule) -> MemoryPlan:
        """How a run of ``recipe`` on ``loaded`` fits this stylizer's memory budget: whole,
        or in tiles with an L-BFGS history that fits (TooLarge when nothing does)."""
        layers = (*recipe.content_layers, *recipe.style_layers)
        histogram_layers = recipe.style_layers if recipe.histogram_weight > 0 else ()
        request = MemoryRequest(
            schedule.final,
            self.autocast is not None,
            recipe.optimizer,
            layers,
            # each painting at the output's scale: the largest it is used at
            style_pixels=max(math.prod(style_size_at(size_of(s), schedule.final, recipe)) for s in loaded.styles),
            field="pixels" if recipe.pixels is not None else "size",
            history=self.policy.history,
            held=loaded.nbytes,
            halo=margins(self.encoder, layers)[0],
            histogram_layers=histogram_layers,
            neighbour_layers=recipe.neighbour_layers if recipe.neighbour_weight else (),
            # every term of a recipe, regional ones included, sums over tiles (a term of a
            # caller's own that does not is evaluated from whole maps, beyond this plan)
            streamed=True,
            content_layers=recipe.content_layers,
        )
        return check_memory(self.encoder, self.device, request, budget=self.runtime.budget, tile=self.runtime.tile)

    def style_statistics(
        self,
        style: Tensor,
        layers: Sequence[str],
        kind: StatisticsKind,
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
                stats = {name: parts.to(self.device) for name, parts in shared.items()}
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
            store.put(shared_key, {name: parts.to("cpu") for name, parts in stats.items()})
        return stats

    def _remember(self, key: tuple, stats: Statistics) -> None:
        self._cache[key] = stats
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)


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
