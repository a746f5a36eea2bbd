"""``impasto batch``: many photos in one or more styles, into one folder, resumable.

Every photo in every style (or the pairs of a CSV file), one network load for the whole
batch, each painting's statistics computed once per size (the runner's long-lived
Stylizer keeps them). Items run through the job runner one after the other; each one
that ends gets a line in the folder's manifest, so a rerun paints only what is missing."""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from pathlib import Path
from typing import Any

from impasto.batch import DEFAULT_NAME, Item, Manifest, collect, item_key, item_recipe, plan_items, read_pairs
from impasto.cli import say
from impasto.cli.options import add_style_options, build_recipe, build_runtime
from impasto.cli.progress import clock
from impasto.cli.signals import SIGNALS
from impasto.config import PRESETS
from impasto.errors import ConfigError, ImpastoError, one_line
from impasto.imageio import check_folder

FORMATS = ("png", "jpg", "webp", "tiff")
#: Exit status when the batch ran but some items failed (each with its reason above).
EXIT_FAILED = 1


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
                    raise ConfigError(field, f"{args.pairs}: {path}: no such file")
    else:
        if not args.inputs:
            raise ConfigError("content", "give the photos to paint (files, folders or globs), or --pairs FILE.csv")
        if not args.batch_styles:
            raise ConfigError("style", "give at least one --style painting")
        photos = collect(args.inputs, args.recursive, "content")
        styles = collect(args.batch_styles, args.recursive, "style")
        if not photos:
            raise ConfigError("content", f"{' '.join(args.inputs)}: holds no image files")
        if not styles:
            raise ConfigError("style", f"{' '.join(args.batch_styles)}: holds no image files")
        pairs = list(itertools.product(photos, styles))
    items = plan_items(pairs, outdir, args.name, "jpg" if args.format == "jpg" else args.format)
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
    recipe = build_recipe(args)
    runtime = build_runtime(args)
    outdir = check_folder(args.output, "output")
    items = _items(args, outdir)

    from impasto.engine.stylizer import Stylizer
    from impasto.explain.probes import weights_digest
    from impasto.inputs import Inputs
    from impasto.jobs import Job, JobState, LocalRunner

    stylizer = Stylizer(runtime)  # one network load for the whole batch
    weights = weights_digest(stylizer.encoder)
    keys = [item_key(item, recipe, weights) for item in items]
    outdir.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(outdir)
    records = manifest.read()
    todo = [(item, key) for item, key in zip(items, keys, strict=True) if not manifest.done(item, key, records)]
    say(f"impasto batch: {len(items)} pictures into {outdir}: {len(items) - len(todo)} done before, "
        f"{len(todo)} to paint")  # fmt: skip
    SIGNALS.check()
    runner = LocalRunner(runtime, stylizer=stylizer, preview_seconds=float("inf"))
    failed: list[tuple[Item, str]] = []
    spent: list[float] = []
    tty = not args.quiet and sys.stderr is not None and sys.stderr.isatty()
    back, clear = ("\r", "\033[K") if tty else ("", "")
    try:
        for index, (item, key) in enumerate(todo, start=1):
            head = f"[{index}/{len(todo)}] {item.output.name}"
            job = Job(item_recipe(recipe, key), Inputs.of(item.photo, [item.style]), str(item.output))
            started = time.perf_counter()
            job_id = runner.submit(job)
            try:
                for event in runner.events(job_id):
                    if tty and event["type"] == "progress":
                        say(f"{back}{head} step {event['step']}/{event['total_steps']} "
                            f"{clock(event['elapsed'])}<{clock(event['eta'])}{clear}", end="")  # fmt: skip
            except KeyboardInterrupt:
                with SIGNALS.held():
                    runner.stop(job_id)  # the picture so far is saved as the item's output
                    status = runner.wait(job_id)
                    seconds = time.perf_counter() - started
                    if status.state is JobState.DONE:
                        manifest.append(_record(item, key, "partial", seconds))
                        say(f"\n{head}: interrupted; the picture so far is in {item.output}, a rerun paints it again")
                    else:
                        say(f"\n{head}: interrupted before its first step; nothing written")
                    say(f"impasto batch: stopped after {index - 1} of {len(todo)}; run the same command to go on")
                return SIGNALS.exit_code()
            status = runner.status(job_id)
            seconds = time.perf_counter() - started
            with SIGNALS.held():
                if status.state is JobState.DONE:
                    spent.append(seconds)
                    figures = _figures(stylizer, item)
                    manifest.append(_record(item, key, "done", seconds, figures=figures))
                    left = (len(todo) - index) * sum(spent) / len(spent)
                    say(f"{back}{head}: done in {seconds:.1f} s, {len(todo) - index} to go, "
                        f"about {clock(left)} left{clear}")  # fmt: skip
                else:
                    error = one_line(status.error or "failed")
                    failed.append((item, error))
                    manifest.append(_record(item, key, "failed", seconds, error=error))
                    say(f"{back}{head}: failed: {error}{clear}")
            SIGNALS.check()
    finally:
        runner.close()
    done = len(todo) - len(failed)
    say(f"impasto batch: {done} painted, {len(items) - len(todo)} done before, {len(failed)} failed")
    for item, error in failed:
        say(f"  failed: {item.photo} in {item.style}: {error}")
    return EXIT_FAILED if failed else 0


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


def _figures(stylizer, item: Item) -> dict[str, float] | None:
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
        style_distance, content_distance = figures(stylizer.encoder, result.to(stylizer.device), photo.to(
            stylizer.device), painting.to(stylizer.device))  # fmt: skip
    except (ImpastoError, RuntimeError):
        return None
    return {"style_distance": float(f"{style_distance:.6g}"), "content_distance": float(f"{content_distance:.6g}")}
