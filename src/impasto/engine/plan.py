"""A run as a plan, and the loop that paints it.

:meth:`impasto.engine.Stylizer.plan` turns inputs and a recipe into a :class:`RunPlan`:
the schedule, the memory plan (whole or in tiles, the L-BFGS history), and per scale the
targets, the objective and the evaluator. :func:`paint` then runs the scales. What a
feature adds to a run comes in through :class:`Hook` objects (terms per scale, each scale's
result): a print's look (:class:`LookHook`) and a video frame's temporal term are hooks,
not branches of the loop. A benchmark or a test reads a scale's objective and evaluator off
the plan, as the run does.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from impasto.color import ColorMode
from impasto.config import StyleConfig
from impasto.engine.events import NO_PREVIEWS, Clock, Previews, Progress, ProgressCallback
from impasto.engine.memory import MemoryPlan, estimate_bytes
from impasto.engine.optimize import Evaluator, Policy, WholeImage, optimize_scale
from impasto.engine.tiles import Tiled, features_in_tiles, margins, windows
from impasto.imageio import resize, size_of
from impasto.model.encoder import Encoder
from impasto.objective.masks import Masks
from impasto.objective.targets import (
    Targets,
    blend_targets,
    content_targets,
    normalized,
    region_targets,
    statistics_kind,
)
from impasto.objective.terms import LookTerm, Objective, Term, recipe_objective
from impasto.runtime import network_precision
from impasto.schedule import Schedule, scaled_style_size

if TYPE_CHECKING:
    from impasto.engine.stylizer import Stylizer

#: Called after each window of a step painted in tiles: ``(done, total)``.
OnWindow = Callable[[int, int], object]


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


def evaluator_for(
    network: Encoder,
    objective: Objective,
    autocast: torch.dtype | None,
    pooling: str,
    tile: int | None,
    on_window: OnWindow | None = None,
) -> Evaluator:
    """The one way a run evaluates ``objective``: the whole picture at once, or in ``tile``
    px tiles against the whole picture's statistics (``on_window`` after each window)."""
    if tile is None:
        return WholeImage(network, objective, autocast, pooling)
    return Tiled(network, objective, autocast, pooling, tile, on_window)


class Hook:
    """What a feature adds to a run, scale by scale; every method does nothing here.

    - :meth:`start`: before the first scale, with the plan.
    - :meth:`terms`: terms to add to a scale's objective (its size, the device); also asked
      for the final size's objective when the last event scores the picture.
    - :meth:`scale_done`: a scale's result (its size, the image on the device), after its
      steps.
    """

    def start(self, plan: RunPlan) -> None:
        return None

    def terms(self, size: tuple[int, int], device: torch.device) -> Sequence[Term]:
        return ()

    def scale_done(self, size: tuple[int, int], image: Tensor) -> None:
        return None


class TermsHook(Hook):
    """Terms a caller adds at each scale, made by ``make(size, device)`` (a video frame's
    temporal term, whose target is the previous frame at that size)."""

    def __init__(self, make: Callable[[tuple[int, int], torch.device], Sequence[Term]]) -> None:
        self.make = make

    def terms(self, size: tuple[int, int], device: torch.device) -> Sequence[Term]:
        return self.make(size, device)


class LookHook(Hook):
    """A print's look (``look_size``): above that size the picture, seen at the size of the
    last scale no larger than it, is held to that scale's result (:class:`LookTerm`). A
    picture continued from a preview (``--from``) starts held to the preview, until (and
    unless) a scale no larger than the look size paints it again."""

    def __init__(self, look_size: int, weight: float) -> None:
        self.look_size, self.weight = look_size, weight
        self.anchor: Tensor | None = None

    def start(self, plan: RunPlan) -> None:
        init = plan.init
        if init is not None and max(size_of(init)) <= self.look_size:
            self.anchor = plan.colors.view(init.to(plan.device)).float().clamp(0.0, 1.0)

    def terms(self, size: tuple[int, int], device: torch.device) -> Sequence[Term]:
        if max(size) > self.look_size and self.anchor is not None:
            return (LookTerm(self.anchor, self.weight),)
        return ()

    def scale_done(self, size: tuple[int, int], image: Tensor) -> None:
        if max(size) <= self.look_size:
            self.anchor = image.detach().float().clamp(0.0, 1.0)


@dataclass
class RunPlan:
    """What one run will paint and how, before it paints (see :meth:`Stylizer.plan`).

    ``recipe`` carries the output size's content weight at every scale; ``original`` is the
    photo as loaded, ``content`` and ``styles`` as the objective sees them (the colour
    mode's view); ``init`` the start picture when the recipe starts from one."""

    stylizer: Stylizer
    recipe: StyleConfig
    schedule: Schedule
    memory: MemoryPlan
    colors: ColorMode
    original: Tensor
    content: Tensor
    styles: list[Tensor]
    masks: Masks | None
    labels: list[str]
    init: Tensor | None = None

    @property
    def device(self) -> torch.device:
        return self.stylizer.device

    @property
    def policy(self) -> Policy:
        """The optimiser's policy, its history shortened where the memory plan says so."""
        if self.memory.history is None:
            return self.stylizer.policy
        return dataclasses.replace(self.stylizer.policy, history=self.memory.history)

    def whole_need(self, size: tuple[int, int]) -> int:
        """Bytes a whole-picture pass at ``size`` needs (as the memory check counts them)."""
        recipe, s = self.recipe, self.stylizer
        layers = (*recipe.content_layers, *recipe.style_layers)
        return estimate_bytes(s.encoder, size, s.autocast is not None, recipe.optimizer, layers, s.policy.history)

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
        recipe, s = self.recipe, self.stylizer
        tile = self.tile_at(size)
        content = resize(self.content, size, recipe.resample).to(self.device)
        scaled = [
            resize(style, scaled_style_size(size_of(style), size, recipe, self.labels[k]), recipe.resample)
            for k, style in enumerate(self.styles)
        ]
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
            kind = statistics_kind(
                recipe.style_loss, self.masks is not None, recipe.histogram_weight > 0,
                recipe.neighbour_layers if recipe.neighbour_weight else (),
            )  # fmt: skip
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

    def objective(self, targets: Targets, size: tuple[int, int], hooks: Sequence[Hook] = ()) -> Objective:
        """The recipe's terms at a scale of ``size`` and the ``hooks``' terms after them."""
        terms = recipe_objective(self.recipe, targets).terms
        for hook in hooks:
            terms = (*terms, *hook.terms(size, self.device))
        return Objective(terms)

    def evaluator(
        self, objective: Objective, size: tuple[int, int], *, scoring: bool = False, on_window: OnWindow | None = None
    ) -> Evaluator:
        """How a scale of ``size`` evaluates ``objective``: on the step network, or with
        ``scoring`` on the float32 encoder (the last event's figures, whatever the run's
        precision); whole or in tiles as the memory plan says."""
        s = self.stylizer
        network, autocast = (s.encoder, None) if scoring else (s.network, s.autocast)
        return evaluator_for(network, objective, autocast, self.recipe.pooling, self.tile_at(size), on_window)

    def initial_image(self) -> Tensor:
        """The first scale's start picture."""
        r, size = self.recipe, self.schedule.sizes[0]
        if r.init == "content":
            return resize(self.content, size, r.resample)
        if r.init == "noise":
            generator = torch.Generator().manual_seed(r.seed)
            return torch.rand((1, 3, *size), generator=generator)
        assert self.init is not None
        # As the objective sees pictures: a start image for a luminance-only run is its
        # luminance (an RGB start would pull the optimisation towards colours it cannot keep).
        return self.colors.view(resize(self.init, size, r.resample))

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

    def hooks(self) -> list[Hook]:
        """The hooks the recipe itself asks for (a print's look)."""
        if self.recipe.look_size is None:
            return []
        return [LookHook(self.recipe.look_size, self.recipe.look_weight)]


def paint(
    plan: RunPlan,
    started: float,
    hooks: Sequence[Hook] = (),
    on_progress: ProgressCallback | None = None,
    previews: Previews = NO_PREVIEWS,
    on_window: OnWindow | None = None,
) -> Tensor:
    """Paint ``plan`` scale by scale (``hooks`` after the recipe's own, in order); returns
    the picture, ``(1, 3, h, w)`` on the CPU. ``started``: when the run began (its clock
    and time limit count from there). See :meth:`impasto.engine.Stylizer.run`."""
    recipe, schedule = plan.recipe, plan.schedule
    hooks = [*plan.hooks(), *hooks]
    clock = Clock(started, schedule)
    latest: list[Tensor] = [plan.initial_image()]
    last_event: list[Progress | None] = [None]
    last_preview: list[float | None] = [None]
    final_index = len(schedule.sizes) - 1
    timed_out = False

    def report(values: dict[str, float], image: Tensor) -> bool:
        nonlocal timed_out
        clock.tick()
        latest[0] = image
        stop = False
        if on_progress is not None:
            now = time.perf_counter()
            picture = None
            if previews.due(clock.step, now, last_preview[0]):
                picture, last_preview[0] = plan.handed_out(image), now
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
    for hook in hooks:
        hook.start(plan)
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
            targets = plan.targets(size)
            clock.at(index, size)
            objective = plan.objective(targets, size, hooks)
            tile = plan.tile_at(size)
            halo, align = margins(plan.stylizer.encoder, objective.layers)
            clock.tiles = 0 if tile is None else len(windows(*size, tile, halo, align))
            image, stopped, adam_state = optimize_scale(
                plan.evaluator(objective, size, on_window=on_window),
                image.to(plan.device),
                steps,
                report,
                optimizer=recipe.optimizer,
                lr=recipe.lr,
                clamp=recipe.clamp,
                ema_decay=recipe.ema_decay,
                adam_state=adam_state,
                policy=plan.policy,
            )
            latest[0] = image
            for hook in hooks:
                hook.scale_done(size, image)
            if stopped:
                break
    except KeyboardInterrupt:
        picture = plan.finish(latest[0].to(plan.device))
        raise Interrupted(picture.cpu(), last_event[0]) from None
    picture = plan.finish(image)
    if on_progress is not None:
        copy = picture.detach().cpu().clone()
        last = last_event[0]
        if last is not None and (timed_out or plan.tile_at(schedule.final) is not None):
            # No scoring pass: past the time limit there is no time for it, and at a size
            # painted in tiles it would cost about a step of the float32 network (minutes
            # at A4 on a CPU without bfloat16). The last step's figures stand for it.
            on_progress(clock.event({**last.terms, "loss": last.loss}, copy, True, "last step", timed_out))
        else:
            values = scored(plan, picture, None if size_of(image) != schedule.final else targets, hooks, on_window)
            on_progress(clock.event(values, copy, done=True, score="picture"))
    return picture.cpu()


def scored(
    plan: RunPlan, picture: Tensor, targets: Targets | None, hooks: Sequence[Hook], on_window: OnWindow | None
) -> dict[str, float]:
    """The last event's figures: ``picture`` (at the output's size) scored as the objective
    sees it, with the float32 network whatever the run's precision, against the final
    scale's ``targets`` (made when None; computed in the run's precision)."""
    final = plan.schedule.final
    if targets is None:
        targets = plan.targets(final)
    scorer = plan.evaluator(plan.objective(targets, final, hooks), final, scoring=True, on_window=on_window)
    with torch.no_grad():
        loss, terms = scorer(plan.colors.view(picture), backward=False)
    numbers = torch.stack([*terms.values(), loss]).tolist()
    return dict(zip([*terms, "loss"], numbers, strict=True))
