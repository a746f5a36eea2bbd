"""Jobs painted on a Ray cluster (extra ``impasto[ray]``): an actor per worker, each with
one long-lived Stylizer, on one GPU each where the cluster has GPUs, else on its share of
the cores.

The driver (this process) keeps the queue and the job records, as every runner does (see
:class:`impasto.jobs.pool.PoolRunner`). Workers need no shared disk: a job's input files
travel with it as bytes and the picture comes back to the driver, which writes it. A
painting's statistics are computed once for the whole cluster: the first actor that needs
them at a size puts them in a store actor, the others take them from there. An actor that
dies under a job (its process killed, its node lost) is replaced, and the job goes back
to the queue for the next free actor, up to the runner's ``retries``. Ray's dashboard
stays off: it has no authentication.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from torch import Tensor

from impasto._lazy import install_command, require_extra
from impasto.errors import ConfigError, ImpastoError
from impasto.inputs import Inputs
from impasto.jobs.base import Job, WorkerLost, workers_text
from impasto.jobs.pool import Painter, PoolRunner, Report, Worker, portable, share
from impasto.runtime import Runtime

#: How often the driver asks a busy actor for its new events (seconds).
POLL = 0.2


#: What to run when Ray is missing.
INSTALL = install_command("ray")


def require_ray() -> Any:
    """The ``ray`` module; ImpastoError with the pip command when it is not installed."""
    require_extra("running on Ray", "ray", {"ray": "ray"})
    import ray

    return ray


#: The start of an actor's job folder's name, then the actor's pid.
JOB_FOLDER = "impasto-job-"


def remove_stale_job_folders(folder: str | None = None) -> int:
    """Remove this user's job folders whose actor process is gone (killed with its
    driver, its node restarted); how many were removed."""
    import shutil

    removed = 0
    base = Path(folder or tempfile.gettempdir())
    for path in base.glob(f"{JOB_FOLDER}*-*"):
        pid = path.name[len(JOB_FOLDER) :].split("-")[0]
        try:
            if not pid.isdigit() or path.stat().st_uid != os.getuid() or _alive(int(pid)):
                continue
        except OSError:
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed += 1
    return removed


#: The names Ray gives a node's agent processes, which outlive a raylet killed with its driver.
AGENTS = ("ray::DashboardAgent", "ray::RuntimeEnvAgent")


def end_orphaned_agents(proc: str = "/proc") -> list[int]:
    """Stop this user's Ray agent processes whose raylet is gone (their parent is no
    raylet: a local runtime whose driver was killed left them); their pids."""
    ended = []
    for entry in Path(proc).glob("[0-9]*"):
        try:
            if entry.stat().st_uid != os.getuid():
                continue
            name = (entry / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
            if name not in AGENTS:
                continue
            parent = (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
            raylet = Path(proc, parent, "cmdline").read_bytes() if parent != "0" else b""
            if b"raylet" in raylet:
                continue
            os.kill(int(entry.name), signal.SIGKILL)  # they ignore SIGTERM once their raylet is gone
            ended.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return ended


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: Ray's switch for single-machine runtimes (on by default on macOS and Windows): the node's
#: address is then 127.0.0.1, and its servers listen there only.
SINGLE_MACHINE = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


@contextlib.contextmanager
def _loopback_only(local: bool) -> Iterator[None]:
    """A local runtime started inside listens on loopback only: its GCS, raylet and
    workers (which inherit the setting), and no agent on the machine's LAN address. Ray
    otherwise binds every interface, and its GCS has no authentication."""
    if not local:
        yield
        return
    import ray._private.ray_constants as constants

    before, flag = os.environ.get(SINGLE_MACHINE), getattr(constants, "ENABLE_RAY_CLUSTER", None)
    os.environ[SINGLE_MACHINE] = "0"
    constants.ENABLE_RAY_CLUSTER = False  # read when the node's address is chosen
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(SINGLE_MACHINE, None)
        else:
            os.environ[SINGLE_MACHINE] = before
        if flag is not None:
            constants.ENABLE_RAY_CLUSTER = flag


def _shorten_worker_deaths() -> None:
    """Ray's driver prints each worker's death as a long coloured paragraph on standard
    output (in the middle of a batch's pictures, or of a piped PNG). The runner already
    replaces the worker and paints its job again: say that in one line on standard error
    instead, and pass every other message on as Ray would."""
    import re
    import sys

    import ray._private.worker as ray_worker

    original = getattr(ray_worker, "print_to_stdstream", None)
    if original is None or getattr(original, "impasto", False):
        return

    def shorter(data: dict[str, Any], ignore_prefix: bool) -> None:
        lines = data.get("lines") or []
        if data.get("pid") == "raylet" and any("A worker died or was killed" in str(line) for line in lines):
            found = re.search(r"Worker PID: (\d+)", " ".join(map(str, lines)))
            pid = f" (pid {found.group(1)})" if found else ""
            with contextlib.suppress(OSError, ValueError, AttributeError):
                sys.stderr.write(f"impasto: a Ray worker died{pid}; its picture is painted again by another\n")
            return
        original(data, ignore_prefix=ignore_prefix)

    shorter.impasto = True  # type: ignore[attr-defined]
    ray_worker.print_to_stdstream = shorter


def exposure(address: str | None) -> str:
    """What running on Ray opens to the network, in one line for the person who asked."""
    if address is None:
        return "a local Ray runtime, listening on this machine's loopback only"
    return (
        f"joining the Ray cluster at {address}: its machines get copies of the photos and paintings, and anyone "
        "who can reach its head can run code on them"
    )


#: How long joining a cluster waits for its address to answer (seconds).
REACH_SECONDS = 5.0


def reach(address: str) -> None:
    """ConfigError naming ``--ray`` in one line, within seconds, when nothing answers at a
    cluster's ``host:port`` (``ray://host:port`` too): Ray itself retries for minutes."""
    import socket

    target = address.removeprefix("ray://")
    host, colon, port = target.rpartition(":")
    if not colon or not port.isdigit() or not host:
        raise ConfigError("ray", f"{address}: not a cluster address (host:port, ray://host:port or auto)")
    if address.startswith("ray://"):
        try:
            import grpc  # type: ignore[import-untyped]  # noqa: F401  (Ray's client needs it)
        except ImportError:
            raise ConfigError("ray", f"{address}: Ray's client needs grpcio: {INSTALL}") from None
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=REACH_SECONDS):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc) or "no answer"
        raise ConfigError("ray", f"{address}: nothing answers there ({reason}); is the cluster running?") from None


class RayRunner(PoolRunner):
    """Jobs painted by Ray actors. ``address``: a running cluster to join (``auto`` or
    ``ray://host:port``); None starts a local Ray runtime on this machine's cores, ended
    by :meth:`close`. ``workers``: how many actors (default: one per GPU, else one per
    ``cores`` cores of the cluster); ``cores``: CPUs per actor without a GPU (default:
    the cluster's cores split between the workers)."""

    def __init__(
        self,
        runtime: Runtime | None = None,
        *,
        address: str | None = None,
        workers: int | None = None,
        cores: int | None = None,
        preview_seconds: float = 1.0,
        retries: int = 2,
    ) -> None:
        ray = require_ray()
        if workers is not None and workers < 1:
            raise ConfigError("workers", f"must be at least 1, got {workers}")
        if cores is not None and cores < 1:
            raise ConfigError("cores", f"must be at least 1, got {cores}")
        self.runtime = runtime or Runtime()
        self._owns = not ray.is_initialized()
        if self._owns and address not in (None, "auto"):
            reach(address)
        if self._owns and address is None:
            end_orphaned_agents()  # of a local runtime whose driver was killed
        if self._owns:
            handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
            try:
                with _loopback_only(address is None):
                    ray.init(
                        address=address,
                        include_dashboard=False,
                        log_to_driver=False,
                        logging_level="ERROR",
                        configure_logging=True,
                    )
            except (ConnectionError, ValueError, RuntimeError) as exc:
                where = address or "a local Ray runtime"
                raise ConfigError("ray", f"cannot start or join {where}: {str(exc).splitlines()[0]}") from None
            finally:  # Ray sets its own (SIGTERM: exit at once); the caller's decide, and close() ends Ray
                for signum, handler in handlers.items():
                    if handler is not None and threading.current_thread() is threading.main_thread():
                        signal.signal(signum, handler)
            _shorten_worker_deaths()
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0)) if self.runtime.device in ("auto", "cuda") else 0
        cpus = int(resources.get("CPU", 1))
        self.gpus: float
        if gpus:
            count = workers or gpus
            self.gpus, self.cores = (1.0 if count <= gpus else gpus / count), cores or 1
        else:
            self.gpus = 0.0
            count = workers or (cpus // cores if cores else cpus)
            self.cores = cores or share(count, cpus)
        # What each actor reserves: its cores, or its share where more actors than cores
        # were asked (a whole core each would leave some waiting for a core forever).
        self.reserve = float(self.cores) if gpus or cores or count <= cpus else cpus / count
        self._ray = ray
        self._painter = _actor_class(ray)
        self._store = _store_class(ray).remote()
        super().__init__(max(1, count), preview_seconds=preview_seconds, retries=retries)

    def start_worker(self, number: int) -> Worker:
        return _RayWorker(self, number)

    def describe(self) -> str:
        return workers_text(len(self._workers), "on Ray", None if self.gpus else self.cores)

    def close(self) -> None:
        super().close()
        if self._owns and self._ray.is_initialized():
            self._ray.shutdown()


class _RayWorker:
    def __init__(self, runner: RayRunner, number: int) -> None:
        ray = runner._ray
        self._ray = ray
        options: dict[str, Any] = {"num_cpus": runner.reserve, "max_concurrency": 2}
        if runner.gpus:
            options["num_gpus"] = runner.gpus
        # max_concurrency 2: a second thread answers poll() and stop() while paint() runs.
        self._actor = runner._painter.options(**options).remote(runner.runtime, runner.cores, runner._store)
        try:
            self.name = f"Ray actor {number} on {ray.get(self._actor.where.remote())}"
        except ray.exceptions.RayError as exc:
            raise WorkerLost(f"Ray actor {number} did not start: {_first_line(exc)}") from None

    def paint(self, job: Job, preview_seconds: float, report: Report) -> Tensor:
        ray = self._ray
        try:
            reference = self._actor.paint.remote(ship(job), preview_seconds)
            seen, stopping = 0, False
            while True:
                ready, _ = ray.wait([reference], timeout=POLL)
                events = ray.get(self._actor.poll.remote(seen))
                seen += len(events)
                for event in events:
                    if report(event) and not stopping:
                        stopping = True
                        self._actor.stop.remote()
                if ready:
                    return ray.get(reference)  # type: ignore[no-any-return]
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, ImpastoError | RuntimeError):
                raise cause from None
            raise RuntimeError(_first_line(exc)) from None
        except ray.exceptions.RayError as exc:  # the actor died, its node was lost
            raise WorkerLost(f"{self.name} was lost: {_first_line(exc)}") from None

    def close(self) -> None:
        with contextlib.suppress(Exception):  # already gone, or Ray shut down
            self._ray.kill(self._actor)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class _File:
    """An input file's bytes, sent with the job (workers need not see the driver's disk)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.name = str(path)
        self.data = Path(path).read_bytes() if Path(path).is_file() else None


def _with_files(job: Job, convert: Any, **extra: Any) -> Job:
    """``job`` with ``convert`` applied to each of its inputs that may be a file (content,
    styles, start image, masks, style masks; inside tuples too)."""

    def each(value: Any) -> Any:
        return tuple(each(v) for v in value) if isinstance(value, tuple) else convert(value)

    inputs: Inputs = job.inputs
    fields = ("content", "styles", "init", "masks", "style_masks")
    return replace(job, inputs=replace(inputs, **{f: each(getattr(inputs, f)) for f in fields}, **extra))


def ship(job: Job) -> Job:
    """``job`` with each input file replaced by its bytes. A file that cannot be read is
    sent as its name: the worker then reports it as any run would."""

    def pack(value: Any) -> Any:
        if isinstance(value, str | os.PathLike):
            try:
                return _File(value)
            except OSError:
                return value
        return value

    styles = job.inputs.styles
    labels = job.inputs.labels or tuple(str(s) if isinstance(s, str | os.PathLike) else f"style {i + 1}"
                                        for i, s in enumerate(styles))  # fmt: skip
    return _with_files(job, pack, labels=labels)


def land(job: Job, folder: str) -> tuple[Job, dict[str, str]]:
    """The shipped ``job`` with its files written under ``folder`` (each under its own
    name), and the map from those paths back to the driver's names (for messages)."""
    names: dict[str, str] = {}
    counter = itertools.count()

    def unpack(value: Any) -> Any:
        if not isinstance(value, _File):
            return value
        if value.data is None:
            return value.name
        place = Path(folder) / str(next(counter))
        place.mkdir()
        path = place / (Path(value.name).name or "input")
        path.write_bytes(value.data)
        names[str(path)] = value.name
        return str(path)

    return _with_files(job, unpack), names


def renamed(exc: BaseException, names: dict[str, str]) -> BaseException:
    """``exc`` with the worker's copies of the input files called by the driver's names."""
    if not isinstance(exc, ImpastoError):
        return exc
    text = str(exc)
    for copy, name in names.items():
        text = text.replace(copy, name)
    if text == str(exc):
        return exc
    if isinstance(exc, ConfigError):
        field = exc.field
        reason = exc.reason
        for copy, name in names.items():
            reason = reason.replace(copy, name)
        return ConfigError(field, reason)
    try:
        return type(exc)(text)
    except Exception:  # an error type made otherwise
        return ImpastoError(text)


def _actor_class(ray: Any) -> Any:
    class PainterActor:
        """One worker: a Painter, the events of its current job, a stop flag."""

        def __init__(self, runtime: Runtime, cores: int, store: Any) -> None:
            import socket

            remove_stale_job_folders()  # left by actors killed mid-job: copies of users' photos
            self._painter = Painter(runtime, cores)
            self._painter.stylizer.statistics_store = _StoreClient(ray, store)
            self._where = f"{socket.gethostname()} (pid {os.getpid()}, {self._describe()})"
            self._events: list[Any] = []
            self._lock = threading.Lock()
            self._stop = False

        def _describe(self) -> str:
            device = self._painter.stylizer.device
            if device.type == "cuda":
                import torch

                return torch.cuda.get_device_name(device)
            threads = self._painter.threads
            return f"{threads} core{'s' if threads > 1 else ''}"

        def where(self) -> str:
            return self._where

        def paint(self, job: Job, preview_seconds: float) -> Tensor:
            with self._lock:
                self._events, self._stop = [], False

            def report(event: Any) -> bool:
                with self._lock:
                    self._events.append(event)
                    return self._stop

            with tempfile.TemporaryDirectory(prefix=f"{JOB_FOLDER}{os.getpid()}-") as folder:
                landed, names = land(job, folder)
                try:
                    return self._painter.paint(landed, preview_seconds, report)
                except Exception as exc:  # crosses to the driver as one line
                    raise portable(renamed(exc, names)) from None

        def poll(self, since: int) -> list[Any]:
            with self._lock:
                return self._events[since:]

        def stop(self) -> None:
            with self._lock:
                self._stop = True

    return ray.remote(PainterActor)


def _store_class(ray: Any) -> Any:
    class StatisticsStore:
        """Paintings' statistics by the Stylizer's cache key, for every actor."""

        def __init__(self) -> None:
            self._stats: dict[Any, Any] = {}

        def get(self, key: Any) -> Any:
            return self._stats.get(key)

        def put(self, key: Any, stats: Any) -> None:
            self._stats.setdefault(key, stats)

    return ray.remote(num_cpus=0)(StatisticsStore)


class _StoreClient:
    """The store as a Stylizer sees it (``get``/``put`` by cache key, statistics on the CPU)."""

    def __init__(self, ray: Any, store: Any) -> None:
        self._ray, self._store = ray, store

    def get(self, key: Any) -> Any:
        return self._ray.get(self._store.get.remote(key))

    def put(self, key: Any, stats: Any) -> None:
        self._store.put.remote(key, stats)
