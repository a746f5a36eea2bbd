"""Jobs and who runs them: the interface, a local runner (worker threads and a queue; one
job at a time per device by default) and a fake one for tests."""

from impasto.jobs.base import Job, JobRecord, JobState, JobStatus, QueueRunner, Runner, UnknownJob
from impasto.jobs.fake import FakeRunner
from impasto.jobs.local import LocalRunner

__all__ = [
    "FakeRunner",
    "Job",
    "JobRecord",
    "JobState",
    "JobStatus",
    "LocalRunner",
    "QueueRunner",
    "Runner",
    "UnknownJob",
]
