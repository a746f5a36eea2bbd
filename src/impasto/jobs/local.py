"""The local runner: jobs run one at a time on this machine's device, through one
long-lived :class:`~impasto.engine.stylizer.Stylizer` (so a painting used again at the same
size is not run through the network again)."""

from __future__ import annotations

from torch import Tensor

from impasto.engine.events import Previews
from impasto.engine.stylizer import Stylizer
from impasto.jobs.base import JobRecord, QueueRunner
from impasto.runtime import Runtime


class LocalRunner(QueueRunner):
    """Runs jobs on ``runtime``'s device; events carry a preview every ``preview_seconds``.
    ``warm``: load the network as soon as the runner starts (a server's first job then
    starts painting at once), not at the first job."""

    def __init__(
        self,
        runtime: Runtime | None = None,
        *,
        stylizer: Stylizer | None = None,
        preview_seconds: float = 1.0,
        warm: bool = False,
    ) -> None:
        self._stylizer = stylizer
        self._runtime = runtime or Runtime()
        self._previews = Previews(every_seconds=preview_seconds)
        self._warm = warm
        super().__init__()

    def prepare(self) -> None:
        if self._warm:
            self.stylizer  # noqa: B018  (made on the worker, which alone uses it)

    def describe(self) -> str:
        return "painting in this process"

    def shared_stylizer(self) -> Stylizer | None:
        return self._stylizer

    @property
    def stylizer(self) -> Stylizer:
        if self._stylizer is None:  # made by the worker, on first use: start-up stays fast
            self._stylizer = Stylizer(self._runtime)
        return self._stylizer

    def execute(self, record: JobRecord) -> Tensor:
        job = record.job
        return self.stylizer.run(
            job.inputs, job.recipe, on_progress=lambda event: self.progress(record, event), previews=self._previews
        )
