"""Several workers: ``impasto batch --workers N`` (processes sharing the cores) and
``--ray`` (Ray actors) paint the bytes one worker on every core paints; a worker killed under a job is
replaced and the job retried; a driver killed mid-batch, or stopped by Ctrl-C, is
resumed by a rerun that paints only what is missing."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from impasto.errors import ImpastoError
from impasto.inputs import Inputs
from impasto.jobs import FakeRunner, Job, JobState
from impasto.jobs.base import WorkerLost
from impasto.jobs.pool import ProcessRunner
from impasto.presets import preset

from .test_batch import _batch, _default_signals, _lines

TINY = ["--size", "32", "--steps", "3", "-q"]


@pytest.fixture
def folders(tmp_path):
    photos, styles = tmp_path / "photos", tmp_path / "styles"
    photos.mkdir()
    styles.mkdir()
    Image.new("RGB", (40, 30), (200, 120, 40)).save(photos / "orange.png")
    Image.radial_gradient("L").resize((36, 36)).convert("RGB").save(photos / "round.jpg")
    Image.effect_noise((40, 44), 50).convert("RGB").save(photos / "grain.png")
    Image.effect_noise((48, 48), 60).convert("RGB").save(styles / "noise.png")
    Image.linear_gradient("L").resize((40, 40)).convert("RGB").save(styles / "stripes.png")
    return photos, styles


def _pictures(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.png"))}


def test_one_worker_on_every_core_two_processes_and_ray_actors_paint_the_same_bytes(folders, tmp_path):
    """Three runs of one batch: one worker with all the cores, two worker processes and two
    Ray actors of one core each. At 128 px a step's sums are large enough for torch to
    split them between threads (a run on one thread and on two gave other bytes before
    impasto.numerics's ordered sums, which batches turn on)."""
    pytest.importorskip("ray")
    photos, styles = folders
    (photos / "broken.png").write_bytes(b"not a picture")
    size = ["--size", "128", "--steps", "3", "-q"]
    code, err = _batch(photos, "--style", styles, "-o", tmp_path / "one", *size)
    assert code == 1 and "broken.png: not an image" in err, err
    for flags, name in ((["--workers", "2"], "processes"), (["--ray", "--workers", "2"], "ray")):
        code, err = _batch(photos, "--style", styles, "-o", tmp_path / name, *flags, *size)
        assert code == 1, err
        # a bad input fails its own items, named as the driver knows it (Ray ships bytes)
        assert f"{photos / 'broken.png'}: not an image" in err and "6 painted, 0 done before, 2 failed" in err, err
        assert _pictures(tmp_path / name) == _pictures(tmp_path / "one") and len(_pictures(tmp_path / name)) == 6
        done = [line for line in _lines(tmp_path / name) if line["status"] == "done"]
        workers = {line["worker"] for line in done}
        assert len(workers) == 2 and all("1 core" in w for w in workers), workers
        assert all(line["figures"]["style_distance"] > 0 for line in done)


def _slow_jobs(tmp_path: Path, count: int) -> list[Job]:
    photo, style = tmp_path / "photo.png", tmp_path / "style.png"
    Image.effect_noise((48, 40), 40).convert("RGB").save(photo)
    Image.linear_gradient("L").resize((48, 48)).convert("RGB").save(style)
    recipe = preset("default").replace(size=32, pixels=None, steps=150, seed=1)
    return [Job(recipe, Inputs.of(photo, [style]), str(tmp_path / f"out{n}.png")) for n in range(count)]


def _kill_worker_mid_job(runner, jobs: list[Job]) -> None:
    ids = [runner.submit(job) for job in jobs]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = runner.status(ids[0])
        if status.state is JobState.RUNNING and status.progress and status.progress["step"] >= 5:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the first job never got going")
    pid = int(re.search(r"pid (\d+)", status.worker).group(1))
    assert pid != os.getpid()
    os.kill(pid, signal.SIGKILL)
    ends = [runner.wait(i, timeout=180) for i in ids]
    assert [e.state for e in ends] == [JobState.DONE, JobState.DONE], [e.error for e in ends]
    assert ends[0].attempts == 2 and ends[1].attempts == 1
    assert str(pid) not in ends[0].worker  # painted again by another process
    retries = [e for e in runner.events(ids[0]) if e["type"] == "retry"]
    assert len(retries) == 1 and re.search("killed by signal 9|was lost", retries[0]["error"]), retries
    for job in jobs:
        with Image.open(job.output) as picture:
            assert max(picture.size) == 32


def test_a_process_worker_killed_mid_job_is_replaced_and_the_job_painted_again(tmp_path):
    runner = ProcessRunner(workers=2, threads=1)
    try:
        _kill_worker_mid_job(runner, _slow_jobs(tmp_path, 2))
    finally:
        runner.close()


def test_a_ray_actor_killed_mid_job_is_replaced_and_the_job_painted_again(tmp_path, capfd):
    pytest.importorskip("ray")
    from impasto.jobs.ray_runner import RayRunner

    runner = RayRunner(workers=2)
    out = err = ""
    try:
        _kill_worker_mid_job(runner, _slow_jobs(tmp_path, 2))
        deadline = time.monotonic() + 20
        while "Ray worker died" not in err and time.monotonic() < deadline:  # Ray's error channel is polled
            time.sleep(0.2)
            more = capfd.readouterr()
            out, err = out + more.out, err + more.err
    finally:
        runner.close()
    assert "A worker died or was killed" not in out + err  # Ray's paragraph, on standard output before
    dying = [line for line in err.splitlines() if "Ray worker died" in line]
    assert len(dying) == 1 and len(dying[0]) < 120, err


class _Dying(FakeRunner):
    def execute(self, record):
        self.executed.append(record.id)
        raise WorkerLost("worker 1 was killed by signal 9")


def test_a_job_whose_workers_keep_dying_fails_after_its_retries():
    runner = _Dying(workers=2)
    runner.retries = 2
    try:
        job_id = runner.submit(Job(preset("default"), Inputs.of("a.png", ["b.png"]), "out.png"))
        status = runner.wait(job_id, timeout=10)
    finally:
        runner.close()
    assert status.state is JobState.FAILED and status.attempts == 3 and len(runner.executed) == 3
    assert status.error == "worker 1 was killed by signal 9 (started 3 times)"
    assert [e["type"] for e in runner.events(job_id)] == ["retry", "retry", "failed"]


def test_a_job_error_is_not_retried(tmp_path):
    runner = ProcessRunner(workers=1, threads=1)
    try:
        missing = tmp_path / "missing.png"
        recipe = preset("default").replace(size=32, pixels=None)
        job_id = runner.submit(Job(recipe, Inputs.of(missing, [missing]), "o.png"))
        status = runner.wait(job_id, timeout=120)
    finally:
        runner.close()
    assert status.state is JobState.FAILED and status.attempts == 1 and "missing.png" in status.error
    assert isinstance(ImpastoError(status.error), ImpastoError)


def _start(photos: Path, styles: Path, out: Path, *flags: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "impasto", "batch", str(photos), "--style", str(styles), "-o", str(out),
               "--size", "32", "--steps", "25", "-q", *flags]  # fmt: skip
    return subprocess.Popen(
        command, stderr=subprocess.PIPE, text=True, start_new_session=True, preexec_fn=_default_signals
    )


def _wait_for_lines(out: Path, count: int) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if (out / "manifest.jsonl").exists() and len(_lines(out)) >= count:
            return
        time.sleep(0.05)
    pytest.fail("the batch did not get going")


@pytest.mark.parametrize("how", ["kill -9", "Ctrl-C"])
def test_a_batch_on_two_workers_stopped_midway_is_finished_by_a_rerun_with_the_same_bytes(folders, tmp_path, how):
    photos, styles = folders
    whole = tmp_path / "whole"
    code, err = _batch(photos, "--style", styles, "-o", whole, "--size", "32", "--steps", "25", "-q", "--workers", "2")
    assert code == 0, err
    out = tmp_path / "out"
    process = _start(photos, styles, out, "--workers", "2")
    _wait_for_lines(out, 1)
    if how == "kill -9":
        os.killpg(process.pid, signal.SIGKILL)  # the driver and its workers, as a lost machine would
        process.communicate(timeout=60)
    else:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
        assert process.returncode == 130 and "Traceback" not in err, err
        assert "run the same command to go on" in err
    before = [line["status"] for line in _lines(out)]
    assert "done" in before and len([s for s in before if s == "done"]) < 6
    code, err = _batch(photos, "--style", styles, "-o", out, "--size", "32", "--steps", "25", "-q", "--workers", "2")
    assert code == 0, err
    done_before = len({line["key"] for line in _lines(out)[: len(before)] if line["status"] == "done"})
    assert f"{done_before} done before, {6 - done_before} to paint" in err, err
    assert _pictures(out) == _pictures(whole)
    final = {}
    for line in (json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()):
        final[line["key"]] = line["status"]
    assert list(final.values()) == ["done"] * 6


def test_workers_are_bounded_by_the_pictures_and_the_memory_and_start_when_needed(folders, tmp_path):
    import multiprocessing

    from impasto.jobs.pool import fit_workers
    from impasto.runtime import Runtime

    photos, styles = folders
    code, err = _batch(photos, "--style", styles, "-o", tmp_path / "a", "--workers", "100000", "-q")
    assert code == 2 and "--workers: must be from 1 to 256, got 100000" in err and err.count("\n") == 1, err
    # one picture: one worker, however many were asked
    code, err = _batch(photos / "orange.png", "--style", styles / "noise.png", "-o", tmp_path / "b",
                       "--size", "32", "--steps", "3", "-q", "--workers", "4")  # fmt: skip
    assert code == 0 and "painting in this process" in err, err
    # memory for two workers and their jobs, four asked
    from impasto.jobs.pool import WORKER_IDLE_BYTES

    each = WORKER_IDLE_BYTES + 2**30
    fits, line = fit_workers(4, 2**30, have=2 * each + 2**20)
    assert fits == 2 and line is not None and line.startswith("4 workers asked, 2 fit in the memory there is")
    assert fit_workers(2, 2**30, have=2 * each + 2**20) == (2, None)
    assert fit_workers(4, 2**30, have=each // 2)[0] == 1  # one worker always: the batch's own needs tell
    # workers nobody needs hold no memory: three asked, none started until a job is there
    runner = ProcessRunner(Runtime(device="cpu"), workers=3)
    try:
        time.sleep(4)
        assert len(multiprocessing.active_children()) <= 1
    finally:
        runner.close()


def test_a_ray_address_with_nothing_behind_it_is_one_line_within_seconds(folders, tmp_path):
    pytest.importorskip("ray", reason="pip install 'impasto[ray]'")
    photos, styles = folders
    for address in ("127.0.0.1:9", "ray://127.0.0.1:9"):
        started = time.monotonic()
        code, err = _batch(photos, "--style", styles, "-o", tmp_path / "out", "-q", "--ray", address)
        last = err.strip().splitlines()[-1]
        assert code == 2 and last.startswith(f"impasto: error: --ray: {address}: nothing answers there"), err
        assert "joining the Ray cluster at" in err and time.monotonic() - started < 60, err
        assert not list((tmp_path / "out").glob("*.png"))


def test_job_folders_of_actors_that_are_gone_are_removed(tmp_path):
    from impasto.jobs.ray_runner import JOB_FOLDER, remove_stale_job_folders

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    stale = tmp_path / f"{JOB_FOLDER}{gone.pid}-abc"
    live = tmp_path / f"{JOB_FOLDER}{os.getpid()}-def"
    other = tmp_path / "impasto-job-notapid-x"
    for folder in (stale, live, other):
        folder.mkdir()
        (folder / "photo.png").write_bytes(b"a copy of someone's photo")
    assert remove_stale_job_folders(str(tmp_path)) == 1
    assert not stale.exists() and live.exists() and other.exists()


def _listening_beyond_loopback() -> set[tuple[str, int]]:
    """(address, port) of every TCP socket listening on an address other than loopback."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state = fields[1], fields[3]
            if state != "0A":  # LISTEN
                continue
            address, port = local.split(":")
            loopback = (
                address.endswith("7F")  # 127.x.x.x, little-endian
                or address == "00000000000000000000000001000000"  # ::1
                or address.endswith("0100007F")  # ::ffff:127.0.0.1
            )
            if not loopback:
                found.add((address, int(port, 16)))
    return found


def test_a_local_ray_runtime_listens_on_loopback_only():
    pytest.importorskip("ray", reason="pip install 'impasto[ray]'")
    if not Path("/proc/net/tcp").exists():
        pytest.skip("the listening sockets are read from Linux's /proc")
    from impasto.jobs.ray_runner import RayRunner
    from impasto.runtime import Runtime

    before = _listening_beyond_loopback()
    runner = RayRunner(Runtime(device="cpu"), workers=1, preview_seconds=float("inf"))
    try:
        deadline = time.monotonic() + 60
        while not runner._started and time.monotonic() < deadline:  # the first actor is up
            time.sleep(0.2)
        time.sleep(2)
        opened = _listening_beyond_loopback() - before
    finally:
        runner.close()
    assert opened == set(), f"Ray listens beyond loopback: {sorted(opened)}"


def _processes_named(name: bytes) -> list[int]:
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if entry.joinpath("cmdline").read_bytes().split(b"\0")[0] == name:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_agents_a_killed_driver_left_behind_are_ended_and_live_ones_kept():
    if not Path("/proc/self/cmdline").exists():
        pytest.skip("processes are read from Linux's /proc")
    from impasto.jobs.ray_runner import end_orphaned_agents

    # an agent whose raylet is gone (its parent is not a raylet), and one under a "raylet"
    subprocess.run(["bash", "-c", "(exec -a ray::DashboardAgent sleep 60 &)"], check=True)
    live = subprocess.Popen(["bash", "-c", "exec -a raylet bash -c '(exec -a ray::RuntimeEnvAgent sleep 60) & wait'"])
    try:
        time.sleep(0.5)
        orphans = _processes_named(b"ray::DashboardAgent")
        assert orphans and set(orphans) <= set(end_orphaned_agents())
        time.sleep(0.5)
        assert not [
            pid
            for pid in orphans
            if Path(f"/proc/{pid}/cmdline").exists() and Path(f"/proc/{pid}/cmdline").read_bytes()
        ]  # fmt: skip  (gone, or a zombie)
        assert _processes_named(b"ray::RuntimeEnvAgent"), "an agent under a live raylet was ended"
    finally:
        for pid in _processes_named(b"ray::RuntimeEnvAgent"):
            os.kill(pid, signal.SIGKILL)
        live.kill()
