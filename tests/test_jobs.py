"""The job runners: the fake one (fast, what the studio's tests use) and the local one
on the real engine at a tiny size."""

import threading
import time

import pytest
import torch
from PIL import Image

from impasto import Inputs, Runtime, Stylizer
from impasto.config import StyleConfig
from impasto.jobs import FakeRunner, Job, JobState, LocalRunner, UnknownJob

TINY = StyleConfig(size=32, steps=3, content_weight=0.05)


def _job(tmp_path, name="out.png", **changes):
    inputs = Inputs.of(torch.rand(1, 3, 24, 32), [torch.rand(1, 3, 32, 32)])
    return Job(TINY.replace(**changes), inputs, str(tmp_path / name))


@pytest.fixture
def runner():
    runner = FakeRunner(steps=4, delay=0.02, fail_seed=13)
    yield runner
    runner.close()


def test_a_job_runs_to_the_end_with_its_events(runner, tmp_path):
    job_id = runner.submit(_job(tmp_path))
    events = list(runner.events(job_id, timeout=5))
    assert [e["type"] for e in events] == ["progress"] * 4 + ["done"]
    assert [e["step"] for e in events[:-1]] == [1, 2, 3, 4]
    status = runner.status(job_id)
    assert status.state is JobState.DONE and status.position is None and status.progress["step"] == 4
    with Image.open(tmp_path / "out.png") as saved:
        assert saved.size == (32, 24)
    assert status.to_json()["recipe"] == TINY.to_dict()


def test_the_queue_runs_one_job_at_a_time_in_order_and_reports_positions(tmp_path):
    runner = FakeRunner(steps=3, delay=0.05)
    gate = threading.Event()
    real = runner.execute

    def held(record):
        gate.wait(5)
        return real(record)

    runner.execute = held
    try:
        ids = [runner.submit(_job(tmp_path, f"{k}.png")) for k in range(3)]
        runner.wait(ids[0], timeout=0.2)  # the first is held running
        assert [runner.status(i).state for i in ids] == [JobState.RUNNING, JobState.QUEUED, JobState.QUEUED]
        assert [runner.status(i).position for i in ids] == [None, 0, 1]
        gate.set()
        for job_id in ids:
            assert runner.wait(job_id, timeout=5).state is JobState.DONE
        assert runner.executed == ids
    finally:
        runner.close()


def test_cancel_a_queued_job_and_a_running_one(runner, tmp_path):
    slow = FakeRunner(steps=200, delay=0.01)
    try:
        running = slow.submit(_job(tmp_path, "a.png"))
        queued = slow.submit(_job(tmp_path, "b.png"))
        next(slow.events(running, timeout=5))  # it has started
        slow.cancel(queued)
        assert slow.status(queued).state is JobState.CANCELLED
        slow.cancel(running)
        assert slow.wait(running, timeout=5).state is JobState.CANCELLED
        assert list(slow.events(running))[-1] == {"type": "cancelled"}
        assert not (tmp_path / "a.png").exists() and not (tmp_path / "b.png").exists()
        assert slow.executed == [running]
    finally:
        slow.close()


def test_stop_keeps_the_picture_so_far(tmp_path):
    slow = FakeRunner(steps=200, delay=0.01)
    try:
        job_id = slow.submit(_job(tmp_path))
        events = slow.events(job_id, timeout=5)
        next(events), next(events)
        slow.stop(job_id)
        assert slow.wait(job_id, timeout=5).state is JobState.DONE
        assert (tmp_path / "out.png").exists() and slow.status(job_id).progress["step"] < 200
        assert slow.preview(job_id) is not None
    finally:
        slow.close()


def test_a_failed_job_says_why_and_frees_the_queue(runner, tmp_path):
    bad = runner.submit(_job(tmp_path, "bad.png", seed=13))
    good = runner.submit(_job(tmp_path, "good.png"))
    assert runner.wait(bad, timeout=5).state is JobState.FAILED
    assert runner.status(bad).error == "fake failure"
    assert runner.wait(good, timeout=5).state is JobState.DONE


def test_unknown_job(runner):
    with pytest.raises(UnknownJob):
        runner.status("nope")


def test_the_local_runner_paints_with_the_real_engine_and_reports_errors(vgg19, tmp_path):
    runner = LocalRunner(stylizer=Stylizer(Runtime(device="cpu"), encoder=vgg19), preview_seconds=0)
    try:
        job_id = runner.submit(_job(tmp_path))
        wrong = Job(TINY.replace(style_weights=(1.0, 2.0)), _job(tmp_path).inputs, str(tmp_path / "wrong.png"))
        wrong_id = runner.submit(wrong)
        events = list(runner.events(job_id, timeout=60))
        assert events[-1]["type"] == "done" and events[-2]["done"] is True
        assert [e["step"] for e in events[:3]] == [1, 2, 3]
        assert runner.preview(job_id).shape == (1, 3, 24, 32)
        assert runner.wait(wrong_id, timeout=60).state is JobState.FAILED
        assert runner.status(wrong_id).error == "`style_weights`: gives 2 weights for 1 style image"
        with Image.open(tmp_path / "out.png") as saved:
            assert saved.size == (32, 24)
    finally:
        runner.close()


def test_several_workers_run_jobs_at_once_in_the_order_submitted(tmp_path):
    """The runner contract holds for several workers (what a Ray runner
    or a many-core batch needs): with two workers two jobs run at once, the third waits
    for one of them, and every job ends once."""
    from impasto.jobs import JobRecord

    runner = FakeRunner(steps=20, delay=0.02, workers=2)
    try:
        ids = [runner.submit(_job(tmp_path, name=f"out{k}.png")) for k in range(3)]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and [runner.status(i).state for i in ids[:2]] != [JobState.RUNNING] * 2:
            time.sleep(0.005)
        states = [runner.status(i).state for i in ids]
        assert states[:2] == [JobState.RUNNING, JobState.RUNNING] and states[2] is JobState.QUEUED
        assert runner.status(ids[2]).position == 0
        finished = [runner.wait(i, timeout=30).state for i in ids]
        assert finished == [JobState.DONE] * 3 and sorted(runner.executed) == sorted(ids)
        assert runner.executed[:2] != [] and set(runner.executed[:2]) == set(ids[:2])
        assert runner.shared_stylizer() is None and JobRecord.__doc__
    finally:
        runner.close()
