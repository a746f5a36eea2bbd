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
from pathlib import Path
from typing import TYPE_CHECKING

from impasto.batch import (
    DEFAULT_NAME,
    Batch,
    BatchEvent,
    Ended,
    Item,
    Painting,
    batch_runner,
    check_not_read,
    collect,
    plan_batch,
    plan_items,
    read_pairs,
)
from impasto.cli.console import say
from impasto.cli.options import add_style_options, build_recipe, build_runtime
from impasto.cli.progress import clock
from impasto.cli.signals import SIGNALS
from impasto.errors import ConfigError, one_line
from impasto.imageio import check_folder
from impasto.presets import PRESETS

if TYPE_CHECKING:  # torch is imported once the options are checked, not to build the parser
    from impasto.config import StyleConfig
    from impasto.jobs.base import QueueRunner
    from impasto.model.encoder import Encoder
    from impasto.runtime import Runtime

FORMATS = ("png", "jpg", "webp", "tiff")
#: Exit status when the batch ran but some items failed (each with its reason above).
EXIT_FAILED = 1
#: ``--ray`` without an address: a Ray runtime on this machine (:data:`impasto.jobs.LOCAL_RAY`,
#: spelt out here so that building the parser imports no torch).
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
    runtime = build_runtime(args).for_batch()  # the same bytes on any worker
    outdir = check_folder(args.output, "output")
    items = _items(args, outdir)
    if args.ray is not None:
        from impasto.jobs.ray_runner import require_ray

        require_ray()  # the pip command before anything is loaded

    from impasto.model.encoder import build_encoder

    encoder = build_encoder(runtime.weights, download=runtime.download)  # keys and figures; the one network
    planned = plan_batch(items, recipe, encoder, outdir)
    todo = planned.todo
    where = one_line(str(outdir))
    say(f"impasto batch: {_count(len(items), 'picture')} into {where}: {planned.done_before} done before, "
        f"{len(todo)} to paint")  # fmt: skip
    SIGNALS.check()
    if not todo:
        say(f"impasto batch: 0 painted, {len(items)} done before, 0 failed")
        return 0
    import torch

    planned.claim()
    threads = torch.get_num_threads()  # put back at the end (a caller in-process keeps its own)
    runner, scorer = _runner(args, runtime, encoder, len(todo), recipe)
    say(f"impasto batch: {runner.describe()}")
    batch = Batch(runner, planned.manifest, scorer, guard=SIGNALS.held)
    view = _View(quiet=args.quiet)
    try:
        batch.start(todo, recipe)
        try:
            for event in batch.follow():
                view.show(event)
                SIGNALS.check()
        except KeyboardInterrupt:
            with SIGNALS.held():
                for stopped in batch.interrupt():
                    view.show(stopped)
                say(f"impasto batch: stopped after {batch.ended} of {batch.total}; run the same command to go on")
            return SIGNALS.exit_code()
    finally:
        runner.close()
        torch.set_num_threads(threads)
    failed = batch.failed
    say(f"impasto batch: {len(todo) - len(failed)} painted, {planned.done_before} done before, "
        f"{len(failed)} failed")  # fmt: skip
    for item, error in failed:
        say(f"  failed: {one_line(str(item.photo))} in {one_line(str(item.style))}: {error}")
    return EXIT_FAILED if failed else 0


def _runner(
    args: argparse.Namespace, runtime: Runtime, encoder: Encoder, count: int, recipe: StyleConfig
) -> tuple[QueueRunner, Encoder]:
    """The runner the options ask for (as many workers as the memory holds, said when
    fewer), and the network that scores the pictures here (see :func:`batch_runner`)."""
    asked = None if args.workers is None else min(args.workers, count)  # no worker without a picture
    if asked is not None and asked > 1 and (args.ray is None or args.ray == LOCAL_RAY):
        asked = _fitting(asked, encoder, recipe)
    if args.ray is not None:
        from impasto.jobs.ray_runner import exposure

        say(f"impasto batch: {exposure(None if args.ray == LOCAL_RAY else args.ray)}")
    return batch_runner(runtime, encoder, asked, args.ray)


def _fitting(asked: int, encoder: Encoder, recipe: StyleConfig) -> int:
    """As many of ``asked`` workers as this machine's memory holds, each with the network
    and a picture of the recipe's size; said when fewer."""
    from impasto.engine.memory import estimate_bytes
    from impasto.jobs.pool import fit_workers

    side = recipe.size or round(math.sqrt(recipe.pixels or 512**2))
    job = estimate_bytes(encoder, (side, side), False, recipe.optimizer)
    workers, line = fit_workers(asked, job)
    if line:
        say(f"impasto batch: {line}")
    return workers


class _View:
    """A batch's events as lines on standard error: one per item that ends, and on a
    terminal a line over what is painting now, rewritten in place."""

    def __init__(self, quiet: bool) -> None:
        self.tty = not quiet and sys.stderr is not None and sys.stderr.isatty()
        self.back, self.clear = ("\r", "\033[K") if self.tty else ("", "")

    def show(self, event: BatchEvent) -> None:
        if isinstance(event, Painting):
            if self.tty:
                now = ", ".join(f"{one_line(name)} {step}/{steps}" for name, step, steps in event.running) or "…"
                line = f"[{event.ended}/{event.total}] {event.done} done, {event.failed} failed; painting {now}"
                say(f"{self.back}{line}{self.clear}", end="")
        elif isinstance(event, Ended):
            head = f"[{event.ended}/{event.total}] {one_line(event.item.output.name)}"
            if event.state == "done":
                left = f"{event.left} to go, about {clock(event.eta)} left"
                say(f"{self.back}{head}: done in {event.seconds:.1f} s, {left}{self.clear}")
            else:
                say(f"{self.back}{head}: failed: {event.error}{self.clear}")
        elif event.partial:
            name, where = one_line(event.item.output.name), one_line(str(event.item.output))
            say(f"\n{name}: interrupted; the picture so far is in {where}, a rerun paints it again")
        else:
            say(f"\n{one_line(event.item.output.name)}: interrupted before its first step; nothing written")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
