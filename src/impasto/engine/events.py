"""Progress events: what a run reports after every step, as plain numbers JSON can carry.

The image is not in the numbers: a listener asks for it (:class:`Previews`, every N steps
or every S seconds), and only then is it copied to the CPU. The terms' values are read
from the device together, once a step, with the checks the loop needs (L-BFGS
makes a few host synchronisations of its own).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

from impasto.schedule import Schedule


@dataclass(frozen=True)
class Progress:
    """One optimiser step, as reported to ``on_progress``.

    ``loss`` and ``terms`` are those of the image before this step's update (what the
    optimiser evaluated); the last event (``done``) scores the final image, as the
    objective sees it.
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
    """Seconds since the run started (set-up included)."""
    image: Tensor | None = field(default=None, repr=False)
    """The current image, ``(1, 3, h, w)`` in [0, 1] on the CPU (a copy, colours as they
    will be handed out), when a listener asked for it at this step; always on the last."""
    done: bool = False
    fraction: float = 0.0
    """Share of the run's work done, steps weighted by their pixel count (for an ETA)."""
    tiles: int = 0
    """How many tiles each evaluation of this scale runs (0: the whole picture at once)."""
    score: str = "step"
    """What ``loss`` and ``terms`` are of: ``step``, the image the step evaluated; on the
    last event, ``picture``, the final picture scored as the objective sees it, or ``last
    step``, the last step's figures again (when the time limit stopped the run, or the
    picture is painted in tiles: scoring a print-size picture costs about a step)."""
    timed_out: bool = False
    """On the last event: the time limit stopped the run before its last step."""

    @property
    def eta(self) -> float:
        """Seconds left, from the work done so far."""
        return self.elapsed / self.fraction * (1 - self.fraction) if self.fraction > 0 else 0.0

    def grouped(self) -> dict[str, float]:
        """The terms summed by kind: ``{"content": …, "style": …, "tv": …}``."""
        return group_terms(self.terms)

    def to_json(self) -> dict[str, Any]:
        """Numbers only (the image is not in it)."""
        return {
            "step": self.step,
            "total_steps": self.total_steps,
            "scale": self.scale,
            "scales": self.scales,
            "size": list(self.size),
            "loss": self.loss,
            "terms": dict(self.terms),
            "groups": self.grouped(),
            "elapsed": self.elapsed,
            "eta": self.eta,
            "done": self.done,
            "fraction": self.fraction,
            "tiles": self.tiles,
            "score": self.score,
            "timed_out": self.timed_out,
        }


ProgressCallback = Callable[[Progress], object]


def group_terms(terms: dict[str, float]) -> dict[str, float]:
    """Terms summed by the part of their key before the dot, in order of first appearance:
    the one grouping the progress bar, the web page and the explain curves show."""
    groups: dict[str, float] = {}
    for key, value in terms.items():
        group = key.split(".")[0]
        groups[group] = groups.get(group, 0.0) + value
    return groups


@dataclass(frozen=True)
class Previews:
    """When events carry the image: every ``every_steps`` steps and/or when ``every_seconds``
    have passed since the last one; neither = never (the last event always has it)."""

    every_steps: int | None = None
    every_seconds: float | None = None

    def due(self, step: int, now: float, last: float | None) -> bool:
        if self.every_steps is not None and step % self.every_steps == 0:
            return True
        if self.every_seconds is not None:
            return last is None or now - last >= self.every_seconds
        return False


#: No event but the last carries the image.
NO_PREVIEWS = Previews()
#: Every step carries the image (impasto 0.1's behaviour, kept by :func:`impasto.stylize`).
EVERY_STEP = Previews(every_steps=1)


class Clock:
    """Counts steps over all scales and turns evaluated terms into Progress events."""

    def __init__(self, started: float, schedule: Schedule) -> None:
        self.started, self.total, self.scales = started, sum(schedule.steps), len(schedule.sizes)
        self.work = schedule.work
        self.step, self.scale, self.size, self.work_done = 0, 0, schedule.sizes[0], 0
        self.tiles = 0
        self.last_step = 0.0
        """Seconds the last step took (from the one before it, or the scale's start)."""
        self._ticked: float | None = None

    def at(self, scale: int, size: tuple[int, int]) -> None:
        self.scale, self.size = scale, size
        self._ticked = time.perf_counter()

    def tick(self) -> None:
        now = time.perf_counter()
        if self._ticked is not None:
            self.last_step = now - self._ticked
        self._ticked = now
        self.step += 1
        self.work_done += self.size[0] * self.size[1]

    def would_pass(self, limit: float | None, cost: float = 1.0) -> bool:
        """Whether work of ``cost`` times the last step's seconds, started now, would end
        at or past ``limit`` seconds from the run's start (never, without a limit)."""
        return limit is not None and self.elapsed() + cost * self.last_step >= limit

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def event(
        self,
        values: dict[str, float],
        image: Tensor | None,
        done: bool = False,
        score: str = "step",
        timed_out: bool = False,
    ) -> Progress:
        return Progress(
            step=self.step,
            total_steps=self.total,
            scale=self.scale,
            scales=self.scales,
            size=self.size,
            loss=values["loss"],
            terms={k: v for k, v in values.items() if k != "loss"},
            elapsed=self.elapsed(),
            image=image,
            done=done,
            fraction=self.work_done / self.work,
            tiles=self.tiles,
            score=score,
            timed_out=timed_out,
        )
