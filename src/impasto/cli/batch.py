"""``impasto batch``: many photos in one or more styles, into one folder, resumable.

Every photo in every style (or the pairs of a CSV file), one network load for the whole
batch, each painting's statistics computed once per size (the runner's long-lived
Stylizer keeps them). Items run through the job runner one after the other; each one
that ends gets a line in the folder's manifest, so a rerun paints only what is missing."""

from __future__ import annotations

import argparse
import itertools
import math
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from impasto.batch import (
    DEFAULT_NAME,
    Item,
    Manifest,
    check_not_read,
    collect,
    item_key,
    item_recipe,
    plan_items,
    read_pairs,
)
from impasto.cli.console import say
from impasto.cli.options import add_style_options, build_recipe, build_runtime
from impasto.cli.progress import clock
from impasto.cli.signals import SIGNALS
from impasto.config import PRESETS
from impasto.errors import ConfigError, ImpastoError, one_line
from impasto.imageio import check_folder

if TYPE_CHECKING:  # torch is imported once the options are checked, not to build the parser
    from impasto.config import StyleConfig
    from impasto.jobs.base import Job, JobStatus, QueueRunner
    from impasto.model.encoder import Encoder
    from impasto.runtime import Runtime

FORMATS = ("png", "jpg", "webp", "tiff")
#: Exit status when the batch ran but some items failed (each with its reason above).
EXIT_FAILED = 1
#: ``--ray`` without an address: a Ray runtime on this machine.
LOCAL_RAY = "local"


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "batch",
        help="paint many photos in one or more styles into a folder (resumable)",
        description="Paint every INPUT photo in every --style (or the pairs of --pairs FILE.csv) into OUTDIR, "
        "named PHOTO--STYLE.png. A rerun skips what is done (OUTDIR/manifest.jsonl) and paints the rest.",
    )
    parser.add_argument("inputs", metavar="INPUT", nargs="*", help="photos: files, folders or globs")
    parser.add_argument(
        "--style", dest="batch_styles", action="append", default=[], metavar="STYLE",
        help="a painting, a folder of them or a glob; repeat for several",
    )  # fmt: skip
    parser.add_argument("--pairs", metavar="FILE.csv", help="photo,style rows to paint instead of every combination")
    parser.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="the folder the pictures go to")
    parser.add_argument("-r", "--recursive", action="store_true", help="folders and ** globs: look in subfolders too")
    parser.add_argument(
        "--name", default=DEFAULT_NAME, metavar="TEMPLATE",
        help="output file names, with {photo}, {style}, {ext} and {n} (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument("--format", choices=FORMATS, default="png", help="output format (default: png)")
    parser.add_argument("-q", "--quiet", action="store_true", help="one line per picture, no step progress")
    parser.add_argument(
        "--workers", type=int, metavar="N",
        help="paint N pictures at once, in N processes sharing the cores (default: 1; with --ray: one per GPU, "
        "else one per core of the cluster)",
    )  # fmt: skip
    parser.add_argument(
        "--ray", nargs="?", const=LOCAL_RAY, metavar="ADDRESS",
        help="paint on Ray actors: a local Ray runtime, or join the cluster at ADDRESS (auto, ray://host:port); "
        "needs impasto[ray]",
    )  # fmt: skip
    add_style_options(parser, PRESETS["default"], "default")
    parser.set_defaults(handler=main)


def _items(args: argparse.Namespace, outdir: Path) -> list[Item]:
    if args.pairs is not None:
        if args.inputs or args.batch_styles:
            raise ConfigError("pairs", "lists the photos and paintings itself; give no INPUT or --style with it")
        pairs = read_pairs(args.pairs)
        for photo, style in pairs:
            for path, field in ((photo, "pairs"), (style, "pairs")):
                if not path.is_file():
                    what = "not a regular file (a device, pipe or socket)" if path.exists() else "no such file"
                    raise ConfigError(field, f"{args.pairs}: {path}: {what}")
    else:
        if not args.inputs:
            raise ConfigError("inputs", "give the photos to paint (files, folders or globs), or --pairs FILE.csv")
        if not args.batch_styles:
            raise ConfigError("style", "give at least one --style painting")
        photos = collect(args.inputs, args.recursive, "inputs")
        styles = collect(args.batch_styles, args.recursive, "style")
        if not photos:
            raise ConfigError("inputs", f"{' '.join(args.inputs)}: holds no image files")
        if not styles:
            raise ConfigError("style", f"{' '.join(args.batch_styles)}: holds no image files")
        pairs = list(itertools.product(photos, styles))
    items = plan_items(pairs, outdir, args.name, "jpg" if args.format == "jpg" else args.format)
    if args.pairs is None:
        check_not_read(args.inputs, args.recursive, "inputs", (item.output for item in items))
        check_not_read(args.batch_styles, args.recursive, "style", (item.output for item in items))
    inputs = {os.path.realpath(p) for item in items for p in (item.photo, item.style)}
    for item in items:  # no picture is written over one of the batch's inputs
        if os.path.realpath(item.output) in inputs:
            raise ConfigError("output", f"{item.output} is an input of the batch; choose another folder or --name")
    return items


def main(args: argparse.Namespace) -> int:
    if args.masks or args.style_masks:
        raise ConfigError("masks", "apply to one picture; a batch paints whole photos")
    if args.init not in (None, "content", "noise"):
        raise ConfigError("init", "a start image applies to one picture; a batch starts from content or noise")
    from impasto.jobs.pool import MAX_WORKERS

    if args.workers is not None and not 1 <= args.workers <= MAX_WORKERS:
        raise ConfigError("workers", f"must be from 1 to {MAX_WORKERS}, got {args.workers}")
    recipe = build_recipe(args)
    runtime = build_runtime(args)
    outdir = check_folder(args.output, "output")
    items = _items(args, outdir)
    if args.ray is not None:
        from impasto.jobs.ray_runner import require_ray

        require_ray()  # the pip command before anything is loaded

    from impasto.explain.probes import weights_digest
    from impasto.inputs import Inputs
    from impasto.jobs import Job
    from impasto.model.encoder import build_encoder

    encoder = build_encoder(runtime.weights, download=runtime.download)  # keys and figures; the one network
    weights = weights_digest(encoder)  # of a batch on one worker
    keys = [item_key(item, recipe, weights) for item in items]
    outdir.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(outdir)
    records = manifest.read()
    todo = [(item, key) for item, key in zip(items, keys, strict=True) if not manifest.done(item, key, records)]
    manifest.check_outputs(todo, records)
    where = one_line(str(outdir))
    say(f"impasto batch: {_count(len(items), 'picture')} into {where}: {len(items) - len(todo)} done before, "
        f"{len(todo)} to paint")  # fmt: skip
    SIGNALS.check()
    if not todo:
        say(f"impasto batch: 0 painted, {len(items)} done before, 0 failed")
        return 0
    import torch

    manifest.append(*(_record(item, key, "started", 0.0) for item, key in todo))  # claimed before written
    threads = torch.get_num_threads()  # put back at the end (a caller in-process keeps its own)
    runner, figures_on = _runner(args, runtime, encoder, len(todo), recipe)
    say(f"impasto batch: {_workers_text(runner)}")
    batch = _Batch(runner, manifest, figures_on, len(todo), quiet=args.quiet)
    try:
        for item, key in todo:
            job = Job(item_recipe(recipe, key), Inputs.of(item.photo, [item.style]), str(item.output))
            batch.submit(item, key, job)
        try:
            batch.follow()
        except KeyboardInterrupt:
            with SIGNALS.held():
                batch.interrupt()
            return SIGNALS.exit_code()
    finally:
        runner.close()
        torch.set_num_threads(threads)
    failed = batch.failed
    say(f"impasto batch: {len(todo) - len(failed)} painted, {len(items) - len(todo)} done before, "
        f"{len(failed)} failed")  # fmt: skip
    for item, error in failed:
        say(f"  failed: {one_line(str(item.photo))} in {one_line(str(item.style))}: {error}")
    return EXIT_FAILED if failed else 0


def _runner(
    args: argparse.Namespace, runtime: Runtime, encoder: Encoder, count: int, recipe: StyleConfig
) -> tuple[QueueRunner, Encoder]:
    """The runner the options ask for, and the network that scores the pictures here."""
    never = float("inf")  # a batch shows step numbers, not previews
    asked = None if args.workers is None else min(args.workers, count)  # no worker without a picture
    if asked is not None and asked > 1 and (args.ray is None or args.ray == LOCAL_RAY):
        asked = _fitting(asked, encoder, recipe)
    if args.ray is not None:
        from impasto.jobs.ray_runner import RayRunner, exposure

        address = None if args.ray == LOCAL_RAY else args.ray
        say(f"impasto batch: {exposure(address)}")
        return RayRunner(runtime, address=address, workers=asked, preview_seconds=never), encoder
    workers = asked or 1
    if workers == 1:
        from impasto.engine.stylizer import Stylizer
        from impasto.jobs import LocalRunner

        stylizer = Stylizer(runtime, encoder=encoder)
        return LocalRunner(runtime, stylizer=stylizer, preview_seconds=never), stylizer.encoder
    import torch

    from impasto.jobs.pool import ProcessRunner

    torch.set_num_threads(1)  # this process only scores pictures; the workers have the cores
    return ProcessRunner(runtime, workers=workers, preview_seconds=never), encoder


def _fitting(asked: int, encoder: Encoder, recipe: StyleConfig) -> int:
    """As many of ``asked`` workers as this machine's memory holds, each with the network
    and a picture of the recipe's size; said when fewer."""
    from impasto.jobs.pool import fit_workers
    from impasto.runtime import estimate_bytes

    side = recipe.size or round(math.sqrt(recipe.pixels or 512**2))
    job = estimate_bytes(encoder, (side, side), False, recipe.optimizer)
    workers, line = fit_workers(asked, job)
    if line:
        say(f"impasto batch: {line}")
    return workers


def _workers_text(runner: QueueRunner) -> str:
    count = len(runner._workers)
    if type(runner).__name__ == "LocalRunner":
        return "painting in this process"
    where = "on Ray" if type(runner).__name__ == "RayRunner" else "on this machine"
    cores = getattr(runner, "cores", None) or getattr(runner, "threads", None)
    each = f", {cores} core{'s' if cores != 1 else ''} each" if cores and not getattr(runner, "gpus", 0) else ""
    return f"{count} workers {where}{each}" if count > 1 else f"1 worker {where}{each}"


class _Batch:
    """The batch's jobs in the runner, followed to their ends: one manifest line each,
    one progress line over them all."""

    def __init__(self, runner: QueueRunner, manifest: Manifest, encoder: Encoder, total: int, quiet: bool) -> None:
        self.runner, self.manifest, self.encoder, self.total = runner, manifest, encoder, total
        self.jobs: dict[str, tuple[Item, str, float]] = {}
        self.pending: list[str] = []
        self.failed: list[tuple[Item, str]] = []
        self.ended = 0
        self.started = time.perf_counter()
        self.tty = not quiet and sys.stderr is not None and sys.stderr.isatty()
        self.back, self.clear = ("\r", "\033[K") if self.tty else ("", "")

    def submit(self, item: Item, key: str, job: Job) -> None:
        job_id = self.runner.submit(job)
        self.jobs[job_id] = (item, key, time.perf_counter())
        self.pending.append(job_id)

    def follow(self) -> None:
        while self.pending:
            for job_id in self.runner.settled(self.pending, timeout=0.5):
                self.pending.remove(job_id)
                with SIGNALS.held():
                    self._ended(job_id)
            if self.tty and self.pending:
                say(f"{self.back}{self._line()}{self.clear}", end="")
            SIGNALS.check()

    def _head(self, item: Item) -> str:
        return f"[{self.ended}/{self.total}] {one_line(item.output.name)}"

    def _ended(self, job_id: str) -> None:
        from impasto.jobs import JobState

        item, key, _ = self.jobs[job_id]
        status = self.runner.status(job_id)
        self.runner.remove(job_id)
        seconds = _painting_seconds(status)
        self.ended += 1
        head = self._head(item)
        if status.state is JobState.DONE:
            figures = _figures(self.encoder, item)
            written = _written(item)
            self.manifest.append(_record(item, key, "done", seconds, figures=figures, worker=status.worker, **written))
            left = len(self.pending)
            eta = (time.perf_counter() - self.started) / self.ended * left
            say(f"{self.back}{head}: done in {seconds:.1f} s, {left} to go, about {clock(eta)} left{self.clear}")
        else:
            error = one_line(status.error or "cancelled")
            self.failed.append((item, error))
            self.manifest.append(_record(item, key, "failed", seconds, error=error, worker=status.worker))
            say(f"{self.back}{head}: failed: {error}{self.clear}")

    def _line(self) -> str:
        from impasto.jobs import JobState

        running = []
        for job_id in self.pending:
            status = self.runner.status(job_id)
            if status.state is JobState.RUNNING and status.progress:
                item = self.jobs[job_id][0]
                name, progress = one_line(item.output.name), status.progress
                running.append(f"{name} {progress['step']}/{progress['total_steps']}")
        done = self.ended - len(self.failed)
        now = ", ".join(running) or "…"
        return f"[{self.ended}/{self.total}] {done} done, {len(self.failed)} failed; painting {now}"

    def interrupt(self) -> None:
        """Stop every running job keeping its picture so far (marked partial: a rerun
        paints it again), drop the queued ones."""
        from impasto.jobs import JobState

        running = [i for i in self.pending if self.runner.status(i).state is JobState.RUNNING]
        for job_id in self.pending:
            self.runner.stop(job_id)  # a queued job is cancelled
        for job_id in running:
            status = self.runner.wait(job_id)
            item, key, _ = self.jobs[job_id]
            if status.state is JobState.DONE:
                self.manifest.append(_record(item, key, "partial", _painting_seconds(status), worker=status.worker))
                name, where = one_line(item.output.name), one_line(str(item.output))
                say(f"\n{name}: interrupted; the picture so far is in {where}, a rerun paints it again")
            else:
                say(f"\n{one_line(item.output.name)}: interrupted before its first step; nothing written")
        say(f"impasto batch: stopped after {self.ended} of {self.total}; run the same command to go on")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _painting_seconds(status: JobStatus) -> float:
    if status.started is None or status.finished is None:
        return 0.0
    return status.finished - status.started


def _record(item: Item, key: str, status: str, seconds: float, **extra: Any) -> dict[str, Any]:
    return {
        "key": key,
        "status": status,
        "photo": str(item.photo),
        "style": str(item.style),
        "output": item.output.name,
        "seconds": round(seconds, 2),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **extra,
    }


def _written(item: Item) -> dict[str, Any]:
    """The picture's size and digest, by which a rerun knows it is still the one painted."""
    from impasto.digest import digest

    try:
        return {"bytes": item.output.stat().st_size, "digest": digest(item.output)}
    except OSError:
        return {}


def _figures(encoder: Encoder, item: Item) -> dict[str, float] | None:
    """The picture's quality figures (style and content distance, see impasto.metrics)."""
    from impasto.imageio import load_image, size_of
    from impasto.metrics import figures, references

    try:
        result = load_image(item.output)
        photo, painting = references(
            load_image(item.photo, needed=result[0, 0].numel()),
            load_image(item.style, needed=4 * result[0, 0].numel()),
            max(size_of(result)),
        )
        device = next(encoder.parameters()).device
        style_distance, content_distance = figures(encoder, result.to(device), photo.to(device), painting.to(device))
    except (ImpastoError, RuntimeError):
        return None
    return {"style_distance": float(f"{style_distance:.6g}"), "content_distance": float(f"{content_distance:.6g}")}
