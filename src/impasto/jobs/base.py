"""Jobs and the runner interface: submit a job (recipe + inputs + output path), follow
its events, stop or cancel it, see its place in the queue.

:class:`QueueRunner` holds everything that is the same for every implementation (the
queue, worker threads, the job records, the event log its followers wait on); an
implementation only says how one job is executed. Events are plain dicts JSON can carry:
``{"type": "progress", ...}`` (see :meth:`impasto.engine.events.Progress.to_json`),
``{"type": "retry", "error": …, "attempt": n}`` when the worker painting it was lost and
the job went back to the queue, then one of ``{"type": "done"}``, ``{"type": "failed",
"error": …}``, ``{"type": "cancelled"}``.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from torch import Tensor

from impasto.config import StyleConfig
from impasto.engine.events import Progress
from impasto.errors import ConfigError, ImpastoError
from impasto.inputs import Inputs
from impasto.presets import preset


def recipe_from(data: object) -> StyleConfig:
    """A recipe from plain request data: ``{"preset": name, **settings}`` (preset
    ``default`` when not named). A size given without a pixel count (or the other way
    round) replaces the preset's, and style layers without weights take equal ones, as
    the command line's options do. ConfigError for anything else that is not a recipe."""
    if not isinstance(data, dict):
        raise ConfigError("recipe", f"expected an object of settings, got {type(data).__name__}")
    changes = dict(data)
    name = changes.pop("preset", "default")
    if not isinstance(name, str):
        raise ConfigError("preset", f"expected a preset name, got {name!r}")
    if "size" in changes and "pixels" not in changes:
        changes["pixels"] = None
    if "pixels" in changes and "size" not in changes:
        changes["size"] = None
    if "style_layers" in changes and "style_layer_weights" not in changes:
        changes["style_layer_weights"] = None
    return StyleConfig.from_dict(changes, preset(name))


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


@dataclass(frozen=True)
class Job:
    """What to paint (``recipe`` + ``inputs``) and where the result goes (``output``, a
    path the runner writes atomically)."""

    recipe: StyleConfig
    inputs: Inputs
    output: str
    dpi: float | None = None
    """The print resolution the output file carries (None: none)."""


@dataclass(frozen=True)
class JobStatus:
    """A job as it stands: ``position`` is its 0-based place in the queue (None unless
    queued); ``progress`` the last progress event's numbers."""

    id: str
    state: JobState
    position: int | None
    recipe: StyleConfig
    output: str
    progress: dict[str, Any] | None
    error: str | None
    submitted: float
    started: float | None
    finished: float | None
    worker: str | None = None
    """Who paints (painted) it, in words: "this process", "process 2 (pid 4711)", a Ray
    actor's node and pid; None while queued."""
    attempts: int = 0
    """How many times it was started: more than one after a worker was lost under it."""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state.value,
            "position": self.position,
            "recipe": self.recipe.to_dict(),
            "progress": self.progress,
            "error": self.error,
            "submitted": self.submitted,
            "started": self.started,
            "finished": self.finished,
            "worker": self.worker,
            "attempts": self.attempts,
        }


class Runner(Protocol):
    """What the studio (and batches) need from whoever runs jobs."""

    def submit(self, job: Job) -> str: ...
    def status(self, job_id: str) -> JobStatus: ...
    def jobs(self) -> list[JobStatus]: ...
    def events(self, job_id: str, since: int = 0, timeout: float | None = None) -> Iterator[dict[str, Any]]: ...
    def preview(self, job_id: str) -> Tensor | None: ...
    def stop(self, job_id: str) -> None: ...
    def cancel(self, job_id: str) -> None: ...
    def remove(self, job_id: str) -> None: ...
    def wait(self, job_id: str, timeout: float | None = None) -> JobStatus: ...
    def settled(self, job_ids: list[str], timeout: float | None = None) -> list[str]: ...
    def close(self) -> None: ...
    def shared_stylizer(self) -> Any: ...
    def describe(self) -> str: ...


class UnknownJob(ImpastoError, KeyError):
    """No job has that id."""


class WorkerLost(ImpastoError):
    """The process painting a job ended under it (killed, out of memory, a lost node):
    the job is not at fault, so the runner starts it again, on whichever worker is free,
    up to its ``retries``."""


@dataclass
class JobRecord:
    """A job as its runner keeps it (what :meth:`QueueRunner.execute` is handed): the
    job, its state and events; implementations read ``job`` and call
    :meth:`QueueRunner.progress` with the record."""

    id: str
    job: Job
    state: JobState = JobState.QUEUED
    events: list[dict[str, Any]] = field(default_factory=list)
    progress: dict[str, Any] | None = None
    preview: Tensor | None = None
    previews: int = 0
    """How many previews the job has had: progress events carry the number of the latest
    (``"preview"``), so a page fetches the image only when it changed."""
    error: str | None = None
    submitted: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    stop: bool = False
    cancel: bool = False
    worker: str | None = None
    attempts: int = 0


def workers_text(count: int, where: str, cores: int | None = None) -> str:
    """ "N workers WHERE, K cores each" (the cores left out when unknown)."""
    each = f", {cores} core{'s' if cores != 1 else ''} each" if cores else ""
    return f"{count} worker{'s' if count != 1 else ''} {where}{each}"


class QueueRunner:
    """Worker threads and a queue: ``workers`` jobs at a time, started in the order
    submitted (one worker: one job at a time).

    Subclasses implement :meth:`execute`, which paints ``record.job`` and calls
    :meth:`progress` with each event; it returns the result, which is then saved. With
    several workers, :meth:`execute` and :meth:`prepare` run on several threads at once.
    """

    def __init__(self, workers: int = 1, *, retries: int = 2) -> None:
        if workers < 1:
            raise ConfigError("workers", f"must be at least 1, got {workers}")
        self.retries = retries
        self._records: dict[str, JobRecord] = {}
        self._queue: deque[str] = deque()
        self._changed = threading.Condition()
        self._ids = itertools.count(1)
        self._closed = False
        self._workers = [
            threading.Thread(target=self._work, name=f"{type(self).__name__}-worker-{n}", daemon=True)
            for n in range(workers)
        ]
        for worker in self._workers:
            worker.start()

    # -- what implementations provide
    def execute(self, record: JobRecord) -> Tensor:
        raise NotImplementedError

    def describe(self) -> str:
        """Where the jobs run, for a person: "2 workers on this machine, 1 core each"."""
        return workers_text(len(self._workers), "in this process")

    def prepare(self) -> None:
        """Called once on each worker before its first job (loading what jobs share)."""

    def shared_stylizer(self) -> Any:
        """A :class:`~impasto.engine.stylizer.Stylizer` already loaded in this process that
        others may use (the studio's explain reports), or None (none loaded, or the work
        runs elsewhere)."""
        return None

    # -- the interface
    def submit(self, job: Job) -> str:
        with self._changed:
            if self._closed:
                raise RuntimeError("the runner is closed")
            job_id = f"{next(self._ids):04d}-{int(time.time() * 1000) % 10**8:08d}"
            self._records[job_id] = JobRecord(job_id, job)
            self._queue.append(job_id)
            self._changed.notify_all()
        return job_id

    def _record(self, job_id: str) -> JobRecord:
        try:
            return self._records[job_id]
        except KeyError:
            raise UnknownJob(f"no job {job_id!r}") from None

    def status(self, job_id: str) -> JobStatus:
        with self._changed:
            r = self._record(job_id)
            position = self._queue.index(job_id) if r.state is JobState.QUEUED else None
            return JobStatus(
                r.id,
                r.state,
                position,
                r.job.recipe,
                r.job.output,
                r.progress,
                r.error,
                r.submitted,
                r.started,
                r.finished,
                r.worker,
                r.attempts,
            )

    def jobs(self) -> list[JobStatus]:
        with self._changed:
            ids = list(self._records)
        return [self.status(job_id) for job_id in ids]

    def events(self, job_id: str, since: int = 0, timeout: float | None = None) -> Iterator[dict[str, Any]]:
        """The job's events from number ``since`` on, waiting for new ones until it has
        finished (or ``timeout`` seconds pass without one)."""
        index = since
        while True:
            with self._changed:
                r = self._record(job_id)
                if index >= len(r.events) and not r.state.finished:

                    def ready(r: JobRecord = r, index: int = index) -> bool:
                        return index < len(r.events) or r.state.finished

                    self._changed.wait_for(ready, timeout)
                new = r.events[index:]
                finished = r.state.finished
            yield from new
            index += len(new)
            if finished and index >= len(r.events):
                return
            if not new:
                return  # timed out

    def preview(self, job_id: str) -> Tensor | None:
        with self._changed:
            return self._record(job_id).preview

    def stop(self, job_id: str) -> None:
        """Finish a running job now, keeping its picture so far as the result; a queued
        job is cancelled."""
        with self._changed:
            r = self._record(job_id)
            if r.state is JobState.QUEUED:
                self._cancel_queued(r)
            r.stop = True

    def cancel(self, job_id: str) -> None:
        """Drop a job: queued, it leaves the queue; running, it stops at the next step and
        nothing is saved."""
        with self._changed:
            r = self._record(job_id)
            if r.state is JobState.QUEUED:
                self._cancel_queued(r)
            elif r.state is JobState.RUNNING:
                r.cancel = True

    def remove(self, job_id: str) -> None:
        """Forget a finished job (cancelling it first if it is not)."""
        self.cancel(job_id)
        with self._changed:
            r = self._record(job_id)
            if r.state.finished:
                del self._records[job_id]

    def wait(self, job_id: str, timeout: float | None = None) -> JobStatus:
        with self._changed:
            r = self._record(job_id)
            self._changed.wait_for(lambda: r.state.finished, timeout)
        return self.status(job_id)

    def settled(self, job_ids: list[str], timeout: float | None = None) -> list[str]:
        """The jobs of ``job_ids`` that have finished, waiting (up to ``timeout`` seconds)
        until at least one has."""

        def finished() -> list[str]:
            return [i for i in job_ids if self._record(i).state.finished]

        with self._changed:
            self._changed.wait_for(finished, timeout)
            return finished()

    def close(self) -> None:
        """Cancel what is queued and running, and end the workers."""
        with self._changed:
            self._closed = True
            for r in self._records.values():
                if r.state is JobState.QUEUED:
                    self._cancel_queued(r)
                elif r.state is JobState.RUNNING:
                    r.cancel = True
            self._changed.notify_all()
        for worker in self._workers:
            worker.join(timeout=30)

    # -- for implementations
    def working(self, record: JobRecord, worker: str) -> None:
        """Say who paints the job (shown in its status)."""
        with self._changed:
            record.worker = worker
            self._changed.notify_all()

    def progress(self, record: JobRecord, event: Progress) -> bool:
        """Record an event; True when the job is to stop (stopped or cancelled)."""
        with self._changed:
            if event.image is not None:
                record.preview, record.previews = event.image, record.previews + 1
            record.progress = {**event.to_json(), "preview": record.previews}
            record.events.append({"type": "progress", **record.progress})
            self._changed.notify_all()
            return record.stop or record.cancel

    # -- the worker
    def _cancel_queued(self, r: JobRecord) -> None:
        self._queue.remove(r.id)
        self._finish(r, JobState.CANCELLED, {"type": "cancelled"})

    def _finish(self, r: JobRecord, state: JobState, event: dict[str, Any]) -> None:
        r.state, r.finished = state, time.time()
        r.events.append(event)
        self._changed.notify_all()

    def _requeue(self, r: JobRecord, lost: WorkerLost) -> bool:
        """Put a job whose worker was lost back at the head of the queue (any free worker
        takes it); False when it has had its retries, or was stopped or cancelled meanwhile."""
        with self._changed:
            if r.attempts > self.retries or r.stop or r.cancel or self._closed:
                return False
            r.state, r.worker = JobState.QUEUED, None
            r.events.append({"type": "retry", "error": str(lost), "attempt": r.attempts})
            self._queue.appendleft(r.id)
            self._changed.notify_all()
            return True

    def _work(self) -> None:
        from impasto.imageio import save_image

        with contextlib.suppress(Exception):  # the first job meets the same error, and reports it
            self.prepare()
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._queue or self._closed)
                if not self._queue:
                    return
                r = self._records[self._queue.popleft()]
                r.state, r.started, r.attempts = JobState.RUNNING, time.time(), r.attempts + 1
                self._changed.notify_all()
            try:
                result = self.execute(r)
                if r.cancel:
                    outcome: tuple[JobState, dict[str, Any]] = (JobState.CANCELLED, {"type": "cancelled"})
                else:
                    save_image(result, r.job.output, dpi=r.job.dpi)
                    outcome = (JobState.DONE, {"type": "done", "output": r.job.output})
            except WorkerLost as exc:
                if self._requeue(r, exc):
                    continue
                outcome = (JobState.FAILED, {"type": "failed", "error": f"{exc} (started {r.attempts} times)"})
            except ImpastoError as exc:
                outcome = (JobState.FAILED, {"type": "failed", "error": str(exc)})
            except Exception as exc:  # a bug must not take the worker (and every later job) down
                outcome = (JobState.FAILED, {"type": "failed", "error": f"internal error: {type(exc).__name__}: {exc}"})
            with self._changed:
                if outcome[0] is JobState.FAILED:
                    r.error = outcome[1]["error"]
                self._finish(r, *outcome)
