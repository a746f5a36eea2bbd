"""Jobs and who runs them: the interface, a local runner (worker threads and a queue; one
job at a time per device by default), worker processes, Ray actors, a fake one for tests,
and :func:`runner_for`, which picks among them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from impasto.jobs.base import Job, JobRecord, JobState, JobStatus, QueueRunner, Runner, UnknownJob
from impasto.jobs.fake import FakeRunner
from impasto.jobs.local import LocalRunner

if TYPE_CHECKING:
    from impasto.engine.stylizer import Stylizer
    from impasto.runtime import Runtime

#: ``ray=`` of :func:`runner_for` for a Ray runtime started on this machine.
LOCAL_RAY = "local"

__all__ = [
    "LOCAL_RAY",
    "FakeRunner",
    "Job",
    "JobRecord",
    "JobState",
    "JobStatus",
    "LocalRunner",
    "QueueRunner",
    "Runner",
    "UnknownJob",
    "runner_for",
]


def runner_for(
    runtime: Runtime,
    *,
    workers: int | None = None,
    ray: str | None = None,
    preview_seconds: float = 1.0,
    warm: bool = False,
    stylizer: Stylizer | None = None,
) -> QueueRunner:
    """The runner that paints jobs where asked: on Ray actors (``ray``: :data:`LOCAL_RAY`
    for a runtime started on this machine, or a cluster's address; ``workers`` actors, by
    default one per core or GPU), in ``workers`` processes on this machine (more than
    one), or else in this process (with ``stylizer`` if given; ``warm``: its network loaded
    at once). Events carry a preview every ``preview_seconds``."""
    if ray is not None:
        from impasto.jobs.ray_runner import RayRunner

        address = None if ray == LOCAL_RAY else ray
        return RayRunner(runtime, address=address, workers=workers, preview_seconds=preview_seconds)
    if workers is not None and workers > 1:
        from impasto.jobs.pool import ProcessRunner

        return ProcessRunner(runtime, workers=workers, preview_seconds=preview_seconds)
    return LocalRunner(runtime, stylizer=stylizer, preview_seconds=preview_seconds, warm=warm)
