"""Runners whose jobs are painted in other processes: a pool of workers, each holding one
long-lived :class:`~impasto.engine.stylizer.Stylizer` on its share of the cores (or its
GPU), driven by one of the runner's worker threads.

:class:`PoolRunner` is what they share: each worker thread starts its worker when it
takes its first job, forwards the job's events as they come and hands back the picture,
which the runner saves here (workers need no shared disk for their outputs). A worker
that ends under a job raises :class:`~impasto.jobs.base.WorkerLost`; the thread drops
it (a new one starts with its next job) and the runner puts the job back in the queue
for whichever worker is free. :class:`ProcessRunner` runs its workers as processes on
this machine; :class:`impasto.jobs.ray_runner.RayRunner` as Ray actors.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import os
import pickle
import signal
import threading
from collections.abc import Callable
from typing import Any, Protocol

import torch
from torch import Tensor

from impasto.engine.events import Previews, Progress
from impasto.errors import ConfigError, ImpastoError
from impasto.jobs.base import Job, JobRecord, QueueRunner, WorkerLost, workers_text
from impasto.runtime import Runtime

Report = Callable[[Progress], bool]


class Painter:
    """What one worker holds: a Stylizer using ``threads`` of the machine's cores (all of
    them when None). Made inside the worker's process."""

    def __init__(self, runtime: Runtime, threads: int | None) -> None:
        from impasto.engine.stylizer import Stylizer

        if threads is not None:
            torch.set_num_threads(threads)
        self.threads = torch.get_num_threads()
        self.stylizer = Stylizer(runtime)

    def paint(self, job: Job, preview_seconds: float, report: Report) -> Tensor:
        previews = Previews(every_seconds=preview_seconds)
        return self.stylizer.run(job.inputs, job.recipe, on_progress=report, previews=previews)


def portable(exc: BaseException) -> ImpastoError | RuntimeError:
    """An error as it can cross to another process: an ImpastoError as it is (they
    survive pickling), anything else as a one-line internal error."""
    if isinstance(exc, ImpastoError):
        try:
            pickle.loads(pickle.dumps(exc))
            return exc
        except Exception:  # an error type that does not pickle: keep its words
            return ImpastoError(str(exc))
    return RuntimeError(f"{type(exc).__name__}: {exc}")


class Worker(Protocol):
    """One worker as its driving thread sees it."""

    name: str
    """Where it runs, in words (shown as the job's ``worker``)."""

    def paint(self, job: Job, preview_seconds: float, report: Report) -> Tensor:
        """Paint ``job``, calling ``report`` with each event (True: stop now, keeping the
        picture so far); WorkerLost when the worker ends under it."""
        ...

    def close(self) -> None: ...


class PoolRunner(QueueRunner):
    """A runner whose ``workers`` each drive one :class:`Worker` started by
    :meth:`start_worker`; ``retries``: how many times a job whose worker was lost is
    started again."""

    def __init__(self, workers: int, *, preview_seconds: float = 1.0, retries: int = 2) -> None:
        self.preview_seconds = preview_seconds
        self._local = threading.local()
        self._started: list[Worker] = []
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        self._warmed = False
        super().__init__(workers, retries=retries)

    def start_worker(self, number: int) -> Worker:
        raise NotImplementedError

    def prepare(self) -> None:
        """The first worker starts (loads the network) before the first job arrives; the
        others when a job is there for them, so that workers nobody needs hold no memory."""
        with self._lock:
            first, self._warmed = not self._warmed, True
        if first:
            self._worker()

    def _worker(self) -> Worker:
        worker: Worker | None = getattr(self._local, "worker", None)
        if worker is None:
            with self._lock:
                number = next(self._numbers)
            worker = self.start_worker(number)
            self._local.worker = worker
            with self._lock:
                self._started.append(worker)
        return worker

    def execute(self, record: JobRecord) -> Tensor:
        worker = self._worker()
        self.working(record, worker.name)
        try:
            return worker.paint(record.job, self.preview_seconds, lambda event: self.progress(record, event))
        except WorkerLost:
            self._local.worker = None  # this thread starts a new one with its next job
            worker.close()
            raise

    def close(self) -> None:
        super().close()
        with self._lock:
            started, self._started = self._started, []
        for worker in started:
            worker.close()


#: What a worker process holds with the network loaded and no job (``serve --workers 3``
#: held 1.68 GB idle).
WORKER_IDLE_BYTES = 560 * 2**20
#: The most workers accepted at all.
MAX_WORKERS = 256


def fit_workers(asked: int, job_bytes: int, have: int | None = None) -> tuple[int, str | None]:
    """How many of ``asked`` workers fit in ``have`` bytes (default: what this machine has
    free), each holding the network and a job of ``job_bytes``; with a line saying so
    when that is fewer than asked."""
    if have is None:
        import torch

        from impasto.engine.memory import available_bytes, gigabytes

        have = available_bytes(torch.device("cpu"))
    else:
        from impasto.engine.memory import gigabytes
    each = WORKER_IDLE_BYTES + job_bytes
    if have is None or asked * each <= have:
        return asked, None
    fits = max(1, have // each)
    return fits, (
        f"{asked} workers asked, {fits} fit in the memory there is ({gigabytes(have)}, about {gigabytes(each)} each)"
    )


def cores() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def share(workers: int, available: int) -> int:
    """Cores per worker: an equal share, at least one."""
    return max(1, available // workers)


class ProcessRunner(PoolRunner):
    """Jobs painted by ``workers`` processes on this machine, the cores split between
    them (``threads`` each; default an equal share): several pictures at once, each on
    fewer cores, which keeps every core busy through the parts of a step that do not
    spread over many."""

    def __init__(
        self,
        runtime: Runtime | None = None,
        *,
        workers: int = 2,
        threads: int | None = None,
        preview_seconds: float = 1.0,
        retries: int = 2,
    ) -> None:
        if threads is not None and threads < 1:
            raise ConfigError("threads", f"must be at least 1, got {threads}")
        self.runtime = runtime or Runtime()
        self.threads = threads or share(max(workers, 1), cores())
        super().__init__(workers, preview_seconds=preview_seconds, retries=retries)

    def start_worker(self, number: int) -> Worker:
        return _ProcessWorker(self.runtime, self.threads, number)

    def describe(self) -> str:
        return workers_text(len(self._workers), "on this machine", self.threads)


def _serve(conn: Any, runtime: Runtime, threads: int, stop: Any) -> None:
    """A worker process: paints the jobs its pipe brings, one at a time, until the pipe
    closes. A Ctrl-C in the terminal reaches this process too; the runner decides what it
    stops (through ``stop``), so the process ignores it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        painter = Painter(runtime, threads)
    except BaseException as exc:  # reported to the parent, which raises it
        conn.send(("error", portable(exc)))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        if message[0] != "paint":
            return
        _, job, preview_seconds = message

        def report(event: Progress) -> bool:
            conn.send(("progress", event))
            return bool(stop.is_set())

        try:
            result = painter.paint(job, preview_seconds, report)
        except (BrokenPipeError, EOFError):
            return
        except Exception as exc:  # the job fails with it; the worker goes on
            conn.send(("error", portable(exc)))
        else:
            conn.send(("result", result))


class _ProcessWorker:
    def __init__(self, runtime: Runtime, threads: int, number: int) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a process with threads and torch
        self._stop = context.Event()
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child, runtime, threads, self._stop), name=f"impasto-worker-{number}", daemon=True
        )
        self._process.start()
        child.close()
        self.name = f"process {number} (pid {self._process.pid}, {threads} core{'s' if threads > 1 else ''})"
        kind, payload = self._receive()
        if kind == "error":
            self.close()
            raise payload

    def _receive(self) -> tuple[str, Any]:
        try:
            return self._conn.recv()  # type: ignore[no-any-return]
        except (EOFError, OSError):
            self._process.join(timeout=5)
            code = self._process.exitcode
            how = f"was killed by signal {-code}" if code is not None and code < 0 else f"ended (status {code})"
            raise WorkerLost(f"worker {self.name} {how}") from None

    def paint(self, job: Job, preview_seconds: float, report: Report) -> Tensor:
        self._stop.clear()
        try:
            self._conn.send(("paint", job, preview_seconds))
        except OSError:
            self._receive()  # raises WorkerLost with how it ended
        while True:
            kind, payload = self._receive()
            if kind == "progress":
                if report(payload):
                    self._stop.set()
            elif kind == "result":
                return payload  # type: ignore[no-any-return]
            else:
                raise payload

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._conn.send(("close",))
        self._conn.close()
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(timeout=5)
