"""A batch painted: its items' jobs on a runner, followed to their ends, one manifest line
each, and typed events a caller renders (the command line prints them; a Python caller
may do anything with them).

    from impasto.batch import paint_batch, plan_items
    items = plan_items([(Path("photo.jpg"), Path("starry.jpg"))], Path("out"))
    for event in paint_batch(items, preset("fast")):
        print(event)

A rerun of the same batch into the same folder paints only what is missing (see
:mod:`impasto.batch.items` for the keys and the manifest)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from impasto.batch.items import Item, Manifest, item_key, item_recipe
from impasto.errors import ImpastoError, one_line

if TYPE_CHECKING:
    from impasto.config import StyleConfig
    from impasto.jobs.base import JobStatus, QueueRunner
    from impasto.model.encoder import Encoder
    from impasto.runtime import Runtime


@dataclass(frozen=True)
class Planned:
    """What a batch into a folder has left: ``todo`` (each item with its key), the items
    done before, and the folder's manifest."""

    items: tuple[Item, ...]
    todo: tuple[tuple[Item, str], ...]
    manifest: Manifest

    @property
    def done_before(self) -> int:
        return len(self.items) - len(self.todo)

    def claim(self) -> None:
        """A ``started`` line for every item still to paint, before any is painted (a
        picture a kill leaves half-written is then known as this batch's)."""
        self.manifest.append(*(record(item, key, "started", 0.0) for item, key in self.todo))


def plan_batch(items: Sequence[Item], recipe: StyleConfig, encoder: Encoder, outdir: Path) -> Planned:
    """Read ``outdir``'s manifest (made if missing): the items still to paint with
    ``recipe`` on ``encoder``'s weights. ConfigError, before anything is painted, when an
    output would paint over a picture this batch did not write."""
    from impasto.model.encoder import weights_digest

    weights = weights_digest(encoder)
    keys = [item_key(item, recipe, weights) for item in items]
    outdir.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(outdir)
    records = manifest.read()
    todo = [(item, key) for item, key in zip(items, keys, strict=True) if not manifest.done(item, key, records)]
    manifest.check_outputs(todo, records)
    return Planned(tuple(items), tuple(todo), manifest)


# -- events ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ended:
    """An item ended: ``done`` (its picture written, with its quality figures when they
    were computed) or ``failed`` (with the reason, in one line)."""

    item: Item
    state: str
    seconds: float
    ended: int
    total: int
    left: int
    eta: float
    figures: dict[str, float] | None = None
    error: str | None = None


@dataclass(frozen=True)
class Painting:
    """Where the batch stands, between ends: the items painting now, each as ``(output
    name, step, steps)``."""

    ended: int
    total: int
    done: int
    failed: int
    running: tuple[tuple[str, int, int], ...]


@dataclass(frozen=True)
class Stopped:
    """An item stopped by :meth:`Batch.interrupt`: ``partial`` when its picture so far was
    written (a rerun paints it again), else nothing was."""

    item: Item
    partial: bool


BatchEvent = Ended | Painting | Stopped


# -- the driver -----------------------------------------------------------------------------


@dataclass
class Batch:
    """A batch's jobs on ``runner``, followed to their ends: one ``manifest`` line each
    (``started`` before any is painted, then ``done``, ``failed`` or ``partial``), the
    pictures scored on ``scorer`` (no figures when None). ``guard()`` wraps each item's
    end (its manifest line and the event's handling), so that a signal cannot split them."""

    runner: QueueRunner
    manifest: Manifest
    scorer: Encoder | None = None
    guard: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext
    poll: float = 0.5
    failed: list[tuple[Item, str]] = field(default_factory=list)
    ended: int = 0
    total: int = 0
    _jobs: dict[str, tuple[Item, str]] = field(default_factory=dict)
    _pending: list[str] = field(default_factory=list)
    _started: float = field(default_factory=time.perf_counter)

    def start(self, todo: Sequence[tuple[Item, str]], recipe: StyleConfig) -> None:
        """Submit the items (claimed before: :meth:`Planned.claim`), in order."""
        from impasto.inputs import Inputs
        from impasto.jobs import Job

        for item, key in todo:
            job = Job(item_recipe(recipe, key), Inputs.of(item.photo, [item.style]), str(item.output))
            job_id = self.runner.submit(job)
            self._jobs[job_id] = (item, key)
            self._pending.append(job_id)
        self.total += len(todo)

    def follow(self) -> Iterator[BatchEvent]:
        """The batch's events until every job has ended: an :class:`Ended` per item, a
        :class:`Painting` every ``poll`` seconds between them."""
        while self._pending:
            for job_id in self.runner.settled(self._pending, timeout=self.poll):
                self._pending.remove(job_id)
                with self.guard():
                    yield self._end(job_id)
            if self._pending:
                yield self._painting()

    def interrupt(self) -> Iterator[Stopped]:
        """Stop every running job keeping its picture so far (marked ``partial``: a rerun
        paints it again); drop the queued ones."""
        from impasto.jobs import JobState

        running = [i for i in self._pending if self.runner.status(i).state is JobState.RUNNING]
        for job_id in self._pending:
            self.runner.stop(job_id)  # a queued job is cancelled
        for job_id in running:
            status = self.runner.wait(job_id)
            item, key = self._jobs[job_id]
            partial = status.state is JobState.DONE
            if partial:
                self.manifest.append(record(item, key, "partial", painting_seconds(status), worker=status.worker))
            yield Stopped(item, partial)

    def _end(self, job_id: str) -> Ended:
        from impasto.jobs import JobState

        item, key = self._jobs[job_id]
        status = self.runner.status(job_id)
        self.runner.remove(job_id)
        seconds = painting_seconds(status)
        self.ended += 1
        left = len(self._pending)
        eta = (time.perf_counter() - self._started) / self.ended * left
        if status.state is JobState.DONE:
            figures = None if self.scorer is None else quality_figures(self.scorer, item)
            self.manifest.append(
                record(item, key, "done", seconds, figures=figures, worker=status.worker, **written(item))
            )
            return Ended(item, "done", seconds, self.ended, self.total, left, eta, figures=figures)
        error = one_line(status.error or "cancelled")
        self.failed.append((item, error))
        self.manifest.append(record(item, key, "failed", seconds, error=error, worker=status.worker))
        return Ended(item, "failed", seconds, self.ended, self.total, left, eta, error=error)

    def _painting(self) -> Painting:
        from impasto.jobs import JobState

        running = []
        for job_id in self._pending:
            status = self.runner.status(job_id)
            if status.state is JobState.RUNNING and status.progress:
                name, progress = self._jobs[job_id][0].output.name, status.progress
                running.append((name, int(progress["step"]), int(progress["total_steps"])))
        done = self.ended - len(self.failed)
        return Painting(self.ended, self.total, done, len(self.failed), tuple(running))


def batch_runner(
    runtime: Runtime, encoder: Encoder, workers: int | None = None, ray: str | None = None
) -> tuple[QueueRunner, Encoder]:
    """The runner of a batch (see :func:`impasto.jobs.runner_for`; a batch shows step
    numbers, not previews) and the network that scores its pictures here. One worker in
    this process shares ``encoder``; with worker processes, this process only scores the
    pictures and takes one thread (the workers have the cores: the caller puts torch's
    thread count back when the batch ends)."""
    import torch

    from impasto.engine.stylizer import Stylizer
    from impasto.jobs import runner_for

    never = float("inf")
    if ray is not None:
        return runner_for(runtime, workers=workers, ray=ray, preview_seconds=never), encoder
    if (workers or 1) == 1:
        stylizer = Stylizer(runtime, encoder=encoder)
        return runner_for(runtime, stylizer=stylizer, preview_seconds=never), stylizer.encoder
    torch.set_num_threads(1)
    return runner_for(runtime, workers=workers, preview_seconds=never), encoder


def paint_batch(
    items: Sequence[Item],
    recipe: StyleConfig,
    runtime: Runtime | None = None,
    *,
    workers: int | None = None,
    ray: str | None = None,
    score: bool = True,
) -> Iterator[BatchEvent]:
    """Paint ``items`` (from :func:`~impasto.batch.items.plan_items`) with ``recipe``,
    resumable, on ``workers`` processes of this machine, on Ray (``ray``, see
    :func:`impasto.jobs.runner_for`) or in this process: the batch's events, as it goes.
    Items done before (the manifest in their folder says so, and their pictures are as
    written) are not painted again; ``score``: each picture's quality figures in its
    manifest line and its event."""
    if not items:
        return
    import torch

    from impasto.model.encoder import build_encoder
    from impasto.runtime import Runtime

    runtime = (runtime or Runtime()).for_batch()  # the same bytes on any worker
    folders = {item.output.parent for item in items}
    if len(folders) != 1:
        raise ImpastoError(f"a batch writes into one folder; these items go to {len(folders)}")
    encoder = build_encoder(runtime.weights, download=runtime.download)
    planned = plan_batch(items, recipe, encoder, folders.pop())
    if not planned.todo:
        return
    planned.claim()
    threads = torch.get_num_threads()
    runner, scorer = batch_runner(runtime, encoder, min(workers, len(planned.todo)) if workers else None, ray)
    try:
        batch = Batch(runner, planned.manifest, scorer if score else None)
        batch.start(planned.todo, recipe)
        yield from batch.follow()
    finally:
        runner.close()
        torch.set_num_threads(threads)


# -- the manifest's lines -------------------------------------------------------------------


def painting_seconds(status: JobStatus) -> float:
    if status.started is None or status.finished is None:
        return 0.0
    return status.finished - status.started


def record(item: Item, key: str, status: str, seconds: float, **extra: Any) -> dict[str, Any]:
    """A manifest line."""
    return {
        "key": key,
        "status": status,
        "photo": str(item.photo),
        "style": str(item.style),
        "output": item.output.name,
        "seconds": round(seconds, 2),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **extra,
    }


def written(item: Item) -> dict[str, Any]:
    """The picture's size and digest, by which a rerun knows it is still the one painted."""
    from impasto.digest import digest

    try:
        return {"bytes": item.output.stat().st_size, "digest": digest(item.output)}
    except OSError:
        return {}


def quality_figures(encoder: Encoder, item: Item) -> dict[str, float] | None:
    """The picture's quality figures (style and content distance, see impasto.metrics);
    None when it cannot be read."""
    from impasto.imageio import load_image, size_of
    from impasto.metrics import figures, references

    try:
        result = load_image(item.output)
        photo, painting = references(
            load_image(item.photo, needed=result[0, 0].numel()),
            load_image(item.style, needed=4 * result[0, 0].numel()),
            max(size_of(result)),
        )
        device = next(encoder.parameters()).device
        style_distance, content_distance = figures(encoder, result.to(device), photo.to(device), painting.to(device))
    except (ImpastoError, RuntimeError):
        return None
    return {"style_distance": float(f"{style_distance:.6g}"), "content_distance": float(f"{content_distance:.6g}")}
