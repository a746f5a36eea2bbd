"""The studio's state: jobs submitted from the page, run by a :class:`~impasto.jobs.Runner`,
kept on disk so that the gallery outlives the server.

Each job has a folder ``<data>/jobs/<id>/`` with server-made names only: ``content``,
``style-1`` … (the uploaded bytes, as sent), ``mask`` (optional), ``job.json`` (settings,
state, timing, figures; written atomically at every change of state), ``result.png`` and
``result.jpg``. Nothing a request sends becomes a path: a file's name is kept as text to
show, and ids are checked against the ids the studio made.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import re
import secrets
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from impasto.config import StyleConfig
from impasto.engine.events import Progress
from impasto.errors import ConfigError, ImageError, ImpastoError
from impasto.explain.history import CHECKPOINT_EVERY, MAX_CHECKPOINTS, History, Step
from impasto.imageio import header_size, load_image, save_image, save_text, tensor_to_pil
from impasto.inputs import Inputs, load_inputs
from impasto.jobs.base import Job, JobState, Runner, UnknownJob, recipe_from
from impasto.prints import DEFAULT_DPI, check_dpi, print_recipe

#: Largest upload accepted per file (bytes); ``impasto serve --max-upload-mb`` changes it.
MAX_UPLOAD = 50 * 1024 * 1024
#: Most paintings one job blends.
MAX_STYLES = 8
#: JPEG quality of previews (small, fast to encode: the page fetches one every second or so).
PREVIEW_QUALITY = 85
#: A job's id: made here, checked on the way in (so it can name a folder).
ID = re.compile(r"[0-9a-f]{12}")


class UploadError(ImpastoError):
    """An upload the studio refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Upload:
    """One file as the page sent it: which form field, the name it had (to show only)."""

    field: str
    name: str
    data: bytes


def display_name(name: str | None) -> str:
    """A file name as sent, made safe to show: its last path part, printable, at most 80
    characters (it never names a file here)."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip()
    return base[:80] or "upload"


def too_large(field: str, name: str | None, size: int, limit: int) -> UploadError:
    """The refusal of a file of ``size`` bytes over ``limit`` (413)."""
    return UploadError(
        f"{field}: {display_name(name)}: is {size / 2**20:.1f} MB, over the {limit / 2**20:.0f} MB limit", 413
    )


def _inputs(folder: Path, names: dict[str, Any]) -> Inputs:
    """A kept job's pictures (``names``: its ``inputs`` record, the names as sent)."""
    styles = tuple(folder / f"style-{k + 1}" for k in range(len(names["styles"])))
    masks = (folder / "mask",) if (folder / "mask").is_file() else None
    init = folder / "init" if (folder / "init").is_file() else None
    return Inputs(folder / "content", styles, init, masks=masks, labels=tuple(names["styles"]))


def _finished(state: str) -> bool:
    return JobState(state).finished


class Studio:
    """Jobs of the page: submit, follow, stop, cancel, remove; their results on disk."""

    def __init__(self, data_dir: str | Path, runner: Runner, *, max_upload: int = MAX_UPLOAD, owner: str = "") -> None:
        self.data = Path(data_dir)
        self.jobs_dir = self.data / "jobs"
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self._lock_file = self._take_folder(owner)
        self.runner = runner
        self.max_upload = max_upload
        self._lock = threading.RLock()
        self._meta: dict[str, dict[str, Any]] = {}
        self._runner_ids: dict[str, str] = {}
        self._settled: dict[str, threading.Event] = {}
        self._load()

    # -- the gallery on disk
    def _take_folder(self, owner: str) -> int:
        """An exclusive lock on the data folder for this studio's life (released by the
        system if the process dies): a second server on the same folder would mark the
        first's running job failed and could remove its files. ``owner`` (the address) is
        written into the lock file so that the refusal can name it."""
        path = self.data / "studio.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = ""
            with contextlib.suppress(OSError):
                holder = os.pread(fd, 500, 0).decode("utf-8", "replace").strip()
            os.close(fd)
            who = f" ({holder})" if holder else ""
            raise ImpastoError(
                f"--data-dir: {self.data} is in use by another impasto studio{who}; stop it or choose another folder"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{owner} pid {os.getpid()}".strip().encode(), 0)
        return fd

    def _load(self) -> None:
        """Read every job folder; a job that was queued or running when the server
        stopped is marked failed (its process is gone). A damaged ``job.json`` is skipped
        with one warning (the rest is served); staging folders a killed server left are
        removed."""
        for staging in self.jobs_dir.glob(".*.part"):
            if staging.is_dir() and ID.fullmatch(staging.name[1:-5]):
                shutil.rmtree(staging, ignore_errors=True)
        for path in sorted(self.jobs_dir.glob("*/job.json")):
            if not ID.fullmatch(path.parent.name):
                continue
            try:
                meta = json.loads(path.read_text(encoding="utf-8"))
                JobState(meta["state"])
                if not isinstance(meta.get("submitted", 0), int | float) or isinstance(meta.get("submitted"), bool):
                    raise ValueError("`submitted` is not a time")
            except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else "damaged"
                print(f"impasto: warning: {path}: {reason}; that job is left out", file=sys.stderr)
                continue
            if not _finished(meta["state"]):
                meta.update(state="failed", error="the studio stopped before this job finished", finished=None)
                self._write(path.parent.name, meta)
            self._meta[path.parent.name] = meta
        self._meta = dict(sorted(self._meta.items(), key=lambda item: item[1].get("submitted", 0)))

    def _folder(self, job_id: str) -> Path:
        if not ID.fullmatch(job_id) or job_id not in self._meta:
            raise UnknownJob(f"no job {job_id!r}")
        return self.jobs_dir / job_id

    def _write(self, job_id: str, meta: dict[str, Any]) -> None:
        save_text(json.dumps(meta, indent=1), self.jobs_dir / job_id / "job.json", (".json",))

    # -- submitting
    def submit(
        self,
        content: Upload | None,
        styles: list[Upload],
        recipe: object,
        mask: Upload | None = None,
        again: str | None = None,
        *,
        config: StyleConfig | None = None,
        start: Path | None = None,
        dpi: float | None = None,
    ) -> str:
        """Check the uploads and the recipe, keep them, queue the job; its id.

        ``again``: the id of a job whose photo, paintings and mask are used where none is
        uploaded. ``config``: the recipe itself (``recipe`` is then only the request
        recorded); ``start``: a picture the run starts from (kept as ``init``); ``dpi``:
        the resolution the result carries. UploadError or ConfigError (with the CLI's
        one-line reason) otherwise; nothing is kept of a refused job."""
        config = recipe_from(recipe) if config is None else config
        request = dict(recipe) if isinstance(recipe, dict) else {}
        source: Path | None = None
        previous: dict | None = None
        if again is not None:
            with self._lock:
                source = self._folder(again)
                previous = self._meta[again]
        if content is None and source is None:
            raise UploadError("content: no photo was sent")
        if not styles and source is None:
            raise UploadError("style: no painting was sent")
        if len(styles) > MAX_STYLES:
            raise UploadError(f"style: {len(styles)} paintings sent; at most {MAX_STYLES} are blended")
        job_id = secrets.token_hex(6)
        staging = self.jobs_dir / f".{job_id}.part"
        staging.mkdir()
        try:
            names, labels, content_path, style_paths, mask_path, init_path = self._stage(
                staging, content, styles, mask, start, source, previous
            )
            self._check(labels, content_path, style_paths, mask_path, config, init_path)
            meta = {
                "id": job_id,
                "state": "queued",
                "request": request,
                "recipe": config.to_dict(),
                "inputs": names,
                "submitted": time.time(),
                "started": None,
                "finished": None,
                "seconds": None,
                "figures": None,
                "error": None,
            }
            save_text(json.dumps(meta, indent=1), staging / "job.json", (".json",))
            folder = self.jobs_dir / job_id
            staging.rename(folder)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        inputs = _inputs(folder, names)
        with self._lock:
            self._meta[job_id] = meta
            self._settled[job_id] = threading.Event()
            self._runner_ids[job_id] = self.runner.submit(Job(config, inputs, str(folder / "result.png"), dpi))
        threading.Thread(target=self._follow, args=(job_id,), name=f"studio-{job_id}", daemon=True).start()
        return job_id

    def _stage(
        self,
        staging: Path,
        content: Upload | None,
        styles: list[Upload],
        mask: Upload | None,
        start: Path | None,
        source: Path | None,
        previous: dict | None,
    ) -> tuple[dict[str, Any], dict[Path, str], Path, list[Path], Path | None, Path | None]:
        """The job's files written into ``staging``: each upload kept (checked for its size),
        or where none came, the file of the job ``source`` (``previous`` its record); with
        the names shown for them, the labels their errors carry, and their paths (photo,
        paintings, mask, the picture the run starts from)."""
        names: dict[str, Any] = {}
        labels: dict[Path, str] = {}
        earlier: dict[str, Any] = previous["inputs"] if previous is not None else {}

        def keep(upload: Upload, file: str) -> Path:
            if len(upload.data) > self.max_upload:
                raise too_large(upload.field, upload.name, len(upload.data), self.max_upload)
            if not upload.data:
                raise UploadError(f"{upload.field}: {display_name(upload.name)}: file is empty")
            path = staging / file
            path.write_bytes(upload.data)
            labels[path] = f"{upload.field}: {display_name(upload.name)}"
            return path

        def reuse(file: str) -> Path:
            path = staging / file
            assert source is not None
            shutil.copyfile(source / file, path)
            return path

        if content is not None:
            content_path = keep(content, "content")
            names["content"] = display_name(content.name)
        else:
            content_path, names["content"] = reuse("content"), earlier["content"]
        if styles:
            style_paths = [keep(s, f"style-{k + 1}") for k, s in enumerate(styles)]
            names["styles"] = [display_name(s.name) for s in styles]
        else:
            style_paths = [reuse(f"style-{k + 1}") for k in range(len(earlier["styles"]))]
            names["styles"] = list(earlier["styles"])
        mask_path = None
        if mask is not None:
            mask_path, names["mask"] = keep(mask, "mask"), display_name(mask.name)
        elif source is not None and content is None and (source / "mask").is_file():
            mask_path, names["mask"] = reuse("mask"), earlier.get("mask")
        else:
            names["mask"] = None
        init_path = None
        if start is not None:
            init_path = staging / "init"
            shutil.copyfile(start, init_path)
            labels[init_path] = "the picture printed"
        return names, labels, content_path, style_paths, mask_path, init_path

    def print_job(self, job_id: str, paper: str, dpi: float | None = None) -> str:
        """A print of a finished job (the CLI's ``--print PAPER --dpi DPI --from``): its
        photo, paintings and recipe, continued from its result up to ``paper`` at ``dpi``
        (default 300), keeping the result's look; the new job's id. The large scales take
        the ``print`` preset's steps unless the recipe sets its own ``detail_size``."""
        with self._lock:
            source = self._folder(job_id)
            meta = dict(self._meta[job_id])
        if meta["state"] != "done" or not (source / "result.png").is_file():
            raise UploadError(f"print: job {job_id} is {meta['state']}; only a finished picture can be printed", 409)
        dpi = DEFAULT_DPI if dpi is None else check_dpi(dpi)
        photo = header_size(source / "content", oriented=True)
        preview = header_size(source / "result.png")
        config = print_recipe(StyleConfig.from_dict(meta["recipe"]), paper, dpi, photo, preview)
        request = {**meta.get("request", {}), "print": paper, "dpi": dpi}
        return self.submit(None, [], request, again=job_id, config=config, start=source / "result.png", dpi=dpi)

    @staticmethod
    def _check(
        labels: dict[Path, str], content: Path, styles: list[Path], mask: Path | None, config, init: Path | None = None
    ) -> None:
        """Decode every file (never trusting its name or type) and check it against the
        recipe, as the run will; errors name the form field and the file as sent."""

        def named(message: str) -> str:
            for path, label in labels.items():
                message = message.replace(str(path), label)
            return message

        try:
            load_inputs(Inputs.of(content, styles, init=init, masks=None if mask is None else [mask]), config)
        except ImageError as exc:
            raise UploadError(named(str(exc)), 413 if "over the limit" in str(exc) else 400) from None
        except ConfigError as exc:
            raise ConfigError(exc.field, named(exc.reason)) from None

    # -- following a job to its end
    def _follow(self, job_id: str) -> None:
        runner_id = self._runner_ids[job_id]
        history, last_checkpoint, seen = History(), -CHECKPOINT_EVERY, 0
        for event in self.runner.events(runner_id):
            if event["type"] == "retry":  # its worker was lost: the run starts again elsewhere
                history, last_checkpoint = History(), -CHECKPOINT_EVERY
            if event["type"] != "progress":
                continue
            image = None
            if event["preview"] > seen and (event["step"] - last_checkpoint >= CHECKPOINT_EVERY or event["done"]):
                image = self.runner.preview(runner_id)
            history.add(Step.from_dict(event), event["done"], image)
            if image is not None:
                history.checkpoints = history.thinned(2 * MAX_CHECKPOINTS)  # bounded while it runs
                last_checkpoint = event["step"]
            seen = event["preview"]
        status = self.runner.status(runner_id)
        folder = self.jobs_dir / job_id
        with self._lock:
            meta = self._meta.get(job_id)
            if meta is None:  # removed meanwhile
                self._settled[job_id].set()
                self._forget(job_id, runner_id)
                return
            meta.update(state=status.state.value, error=status.error, started=status.started, finished=status.finished,
                        worker=status.worker)  # fmt: skip
            if status.progress is not None:
                p = status.progress
                meta["seconds"] = p["elapsed"]
                meta["figures"] = {"loss": p["loss"], "groups": p["groups"], "steps": p["step"], "size": p["size"]}
            try:
                if status.state is JobState.DONE:
                    save_image(load_image(folder / "result.png"), folder / "result.jpg", quality=92)
                    save_text(history.to_json(), folder / "history.json", (".json",))
                self._write(job_id, meta)
            except ImpastoError as exc:  # the disk is full, say: the job failed, the server goes on
                meta.update(state="failed", error=f"could not keep the result: {exc}")
            self._settled[job_id].set()
            self._forget(job_id, runner_id)

    def _forget(self, job_id: str, runner_id: str) -> None:
        """A settled job is served from its folder from now on, as one of an earlier
        server's: the runner drops its events and last preview (a long-lived server kept
        every job's in memory). Called with the lock held."""
        self._runner_ids.pop(job_id, None)
        self._settled.pop(job_id, None)
        with contextlib.suppress(UnknownJob):
            self.runner.remove(runner_id)

    # -- what the page reads
    def status(self, job_id: str) -> dict[str, Any]:
        with self._lock:
            self._folder(job_id)
            meta = dict(self._meta[job_id])
            runner_id = self._runner_ids.get(job_id)
            settled = self._settled.get(job_id)
        meta["position"] = None
        meta["progress"] = None
        if runner_id is not None:
            try:
                live = self.runner.status(runner_id)
            except UnknownJob:  # settled meanwhile: the meta read above is a step behind
                return self.status(job_id)
            meta["position"], meta["progress"], meta["worker"] = live.position, live.progress, live.worker
            if settled is not None and not settled.is_set():
                meta["state"] = "running" if live.state.finished else live.state.value
        meta["result"] = meta["state"] == "done"
        return meta

    def jobs(self) -> list[dict[str, Any]]:
        with self._lock:
            ids = list(self._meta)
        return [self.status(job_id) for job_id in ids]

    def events(self, job_id: str, since: int = 0, wait: float = 10.0) -> Iterator[dict[str, Any] | None]:
        """The job's events from number ``since``; None after ``wait`` seconds without one
        (a keep-alive); ends after the last (``done``, ``failed`` or ``cancelled``), which
        comes only once the job's files are written."""
        with self._lock:
            self._folder(job_id)
            runner_id = self._runner_ids.get(job_id)
            settled = self._settled.get(job_id)
        return self._events(job_id, runner_id, settled, since, wait)

    def _events(
        self, job_id: str, runner_id: str | None, settled: threading.Event | None, since: int, wait: float
    ) -> Iterator[dict[str, Any] | None]:
        if runner_id is None or settled is None:  # settled: its recorded steps, then its end
            yield from self._replay(job_id, since)
            yield self._end(job_id)
            return
        index = since
        while True:
            got = False
            try:
                for event in self.runner.events(runner_id, index, timeout=wait):
                    index += 1
                    got = True
                    if event["type"] == "progress":
                        yield event
                    else:
                        settled.wait()
                        yield self._end(job_id)
                        return
            except UnknownJob:  # settled and forgotten by the runner while this stream waited
                settled.wait()
                yield self._end(job_id)
                return
            if not got:
                if settled.is_set():
                    # Asked from at or past the end of a finished job (a client reconnecting
                    # with the last id it saw): the stream ends with the job's state instead
                    # of spinning on an event list that will not grow.
                    yield self._end(job_id)
                    return
                yield None

    def _end(self, job_id: str) -> dict[str, Any]:
        """A job's last event, its state as the page knows it (no server paths)."""
        meta = self.status(job_id)
        return {"type": meta["state"], "error": meta["error"]}

    def _replay(self, job_id: str, since: int) -> Iterator[dict[str, Any]]:
        """A settled job's steps as progress events, from its ``history.json`` (the page
        draws its loss chart from them); nothing when there is none (failed, cancelled)."""
        try:
            with self._lock:
                folder = self._folder(job_id)
            data = json.loads((folder / "history.json").read_text())
            steps = [s for s in data["steps"] if isinstance(s, dict)]
            total = max(int(s["step"]) for s in steps)
            scales = max(int(s["scale"]) for s in steps) + 1
            events = [
                {"type": "progress", **Progress(step.step, total, step.scale, scales, step.size, step.loss, step.terms,
                                                step.elapsed, fraction=step.step / total).to_json(), "preview": 0}
                for step in map(Step.from_dict, steps)
            ]  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError, UnknownJob):
            return
        yield from events[since:]

    def preview_jpeg(self, job_id: str) -> bytes | None:
        """The latest picture of a job (its result once done), as JPEG bytes."""
        with self._lock:
            folder = self._folder(job_id)
            runner_id = self._runner_ids.get(job_id)
            state = self._meta[job_id]["state"]
        if state == "done":
            return (folder / "result.jpg").read_bytes()
        try:
            image = self.runner.preview(runner_id) if runner_id is not None else None
        except UnknownJob:  # settled meanwhile: failed or cancelled, no picture kept
            image = None
        if image is None:
            return None
        buffer = io.BytesIO()
        tensor_to_pil(image).save(buffer, format="JPEG", quality=PREVIEW_QUALITY)
        return buffer.getvalue()

    def file(self, job_id: str, name: str) -> Path:
        """One of a job's files by its server-made name (``result.png``, ``content`` …)."""
        allowed = {"result.png", "result.jpg", "content", "mask", *(f"style-{k}" for k in range(1, MAX_STYLES + 1))}
        with self._lock:
            folder = self._folder(job_id)
            done = self._meta[job_id]["state"] == "done"
        if name not in allowed or (name.startswith("result") and not done) or not (folder / name).is_file():
            raise UnknownJob(f"job {job_id} has no {name}")
        return folder / name

    def explain_html(self, job_id: str, stylizer: object | None = None) -> str:
        """The ``impasto explain`` report on a finished job (made once, then kept beside
        it), without the layer reconstructions (a minute of work; the command makes them)."""
        from impasto.explain import require_matplotlib

        with self._lock:
            folder = self._folder(job_id)
            meta = dict(self._meta[job_id])
        if meta["state"] != "done":
            raise UnknownJob(f"job {job_id} has no result to explain ({meta['state']})")
        kept = folder / "explain.html"
        if kept.is_file():
            return kept.read_text(encoding="utf-8")
        require_matplotlib()
        from impasto.explain.report import explain

        recipe = StyleConfig.from_dict(meta["recipe"])
        inputs = _inputs(folder, meta["inputs"])
        history = History.load(folder / "history.json") if (folder / "history.json").is_file() else None
        report = explain(
            inputs, recipe, result=load_image(folder / "result.png"), history=history,
            stylizer=stylizer, reconstruct_size=0,  # type: ignore[arg-type]
        )  # fmt: skip
        report.title = f"How impasto painted {meta['inputs']['content']} in the style of {meta['inputs']['styles'][0]}"
        html = report.to_html()
        save_text(html, kept, (".html",))
        return html

    # -- steering
    def stop(self, job_id: str) -> None:
        """Finish now, keeping the picture so far as the result (a queued job is cancelled)."""
        with self._lock:
            self._folder(job_id)
            runner_id = self._runner_ids.get(job_id)
        if runner_id is not None:
            with contextlib.suppress(UnknownJob):  # settled meanwhile: nothing to stop
                self.runner.stop(runner_id)

    def delete(self, job_id: str) -> str:
        """Cancel a queued or running job (its record stays, cancelled), or remove a finished
        one and its files. Returns what was done: ``cancelled`` or ``removed``."""
        with self._lock:
            folder = self._folder(job_id)
            runner_id = self._runner_ids.get(job_id)
            settled = self._settled.get(job_id)
            finished = settled is None or settled.is_set()
        if not finished and runner_id is not None:
            try:
                self.runner.cancel(runner_id)
                return "cancelled"
            except UnknownJob:  # settled meanwhile: removed as a finished job
                pass
        with self._lock:
            self._meta.pop(job_id, None)
            self._runner_ids.pop(job_id, None)
            self._settled.pop(job_id, None)
            trash = self.jobs_dir / f".{job_id}.removed"
            folder.rename(trash)  # gone from the gallery at once, even if deleting takes a while
        shutil.rmtree(trash, ignore_errors=True)
        return "removed"

    def wait(self, job_id: str, timeout: float | None = None) -> dict[str, Any]:
        """Block until the job's end is written (for tests and scripts); its status."""
        with self._lock:
            self._folder(job_id)
            settled = self._settled.get(job_id)
        if settled is not None:
            settled.wait(timeout)
        return self.status(job_id)

    def close(self) -> None:
        self.runner.close()
        if self._lock_file >= 0:
            os.close(self._lock_file)  # releases the folder's lock
            self._lock_file = -1
