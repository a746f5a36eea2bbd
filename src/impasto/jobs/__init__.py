"""Jobs and who runs them: the interface, a local runner (one worker thread and a queue,
one job at a time per device) and a fake one for tests."""

from impasto.jobs.base import Job, JobState, JobStatus, QueueRunner, Runner, UnknownJob
from impasto.jobs.fake import FakeRunner
from impasto.jobs.local import LocalRunner

__all__ = ["FakeRunner", "Job", "JobState", "JobStatus", "LocalRunner", "QueueRunner", "Runner", "UnknownJob"]
