"""``impasto video``: paint a video (or a folder of frames) without flicker.

The first frame gets the whole recipe; every later frame starts from the previous
painting warped by the input's optical flow and runs a short schedule with a temporal
term (see :mod:`impasto.video.paint`). Painted frames are kept in a work folder, so a
rerun of the same command continues where it stopped; Ctrl-C writes the frames painted
so far as a playable video and keeps the work folder."""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
import time
from fractions import Fraction
from pathlib import Path

from impasto.cli.console import say
from impasto.cli.options import add_style_options, build_recipe, build_runtime
from impasto.cli.progress import clock
from impasto.cli.signals import SIGNALS
from impasto.config import PRESETS
from impasto.errors import ConfigError, one_line


def add_parser(commands: argparse._SubParsersAction) -> None:
    from impasto.video import LONG_TERM as long_term
    from impasto.video import TEMPORAL_WEIGHT as temporal
    from impasto.video import WARM_STEPS as warm

    parser = commands.add_parser(
        "video",
        help="paint a video without flicker (optical flow and a temporal loss)",
        description="Paint VIDEO (a video file, a folder of frames or a glob of them) in the style of STYLE into "
        "OUTPUT: .mp4, .mov or .mkv (H.264, the input's audio kept), .gif, or a new folder of PNG frames. "
        "A rerun continues from the frames painted before (kept in --work).",
    )
    parser.add_argument("video", metavar="VIDEO", help="the video, a folder of frames, or a glob of them")
    parser.add_argument("styles", metavar="STYLE", nargs="+", help="the painting(s)")
    parser.add_argument("-o", "--output", required=True, help="OUT.mp4, OUT.mov, OUT.mkv, OUT.gif or a new folder")
    parser.add_argument(
        "--fps", type=float, default=None, help="output frames a second (default: the input's, 25 for frames)"
    )
    parser.add_argument("--start", type=float, default=0.0, metavar="SECONDS", help="start this far into the input")
    parser.add_argument(
        "--duration", type=float, default=None, metavar="SECONDS", help="paint this long (default: all)"
    )
    parser.add_argument(
        "--temporal-weight", type=float, default=temporal, metavar="X",
        help=f"how strongly a frame keeps the previous painting where the flow is reliable (default: {temporal:g})",
    )  # fmt: skip
    parser.add_argument(
        "--warm-steps", type=int, default=warm, metavar="N",
        help=f"steps of each frame after the first, at the final size (default: {warm})",
    )  # fmt: skip
    parser.add_argument(
        "--long-term", default=",".join(map(str, long_term)), metavar="K,K",
        help="earlier frames (this many back) that fill in what the previous frame's flow cannot, e.g. what a "
        f"moving object uncovers again; 'none' for the previous frame alone (default: {','.join(map(str, long_term))})",
    )  # fmt: skip
    parser.add_argument("--work", metavar="DIR", help="folder of the painted frames (default: OUTPUT.work)")
    parser.add_argument("--keep-frames", action="store_true", help="keep the work folder after the video is written")
    parser.add_argument("-q", "--quiet", action="store_true", help="one line per frame, no step progress")
    add_style_options(parser, PRESETS["default"], "default")
    parser.set_defaults(handler=main)


def _check(args: argparse.Namespace) -> None:
    for name in ("masks", "style_masks"):
        if getattr(args, name):
            raise ConfigError(name, "apply to one picture; a video is painted whole")
    if args.init not in (None, "content"):
        raise ConfigError("init", "a video's frames start from the frame and the previous painting")
    if args.fps is not None and not (math.isfinite(args.fps) and 0 < args.fps <= 240):
        raise ConfigError("fps", f"must be between 0 and 240, got {args.fps:g}")
    if not (math.isfinite(args.start) and args.start >= 0):
        raise ConfigError("start", f"must be 0 or more seconds, got {args.start:g}")
    if args.duration is not None and not (math.isfinite(args.duration) and args.duration > 0):
        raise ConfigError("duration", f"must be more than 0 seconds, got {args.duration:g}")
    if not (math.isfinite(args.temporal_weight) and 0 <= args.temporal_weight <= 1e9):
        raise ConfigError("temporal_weight", f"must be between 0 and 1e9, got {args.temporal_weight:g}")
    if not 1 <= args.warm_steps <= 100000:
        raise ConfigError("warm_steps", f"must be between 1 and 100000, got {args.warm_steps}")
    args.long_term = long_term_gaps(args.long_term)


def _check_memory(stylizer, recipe, size: tuple[int, int], painted) -> None:
    """TooLarge (naming --size) when a frame of ``size`` does not fit the memory budget,
    before any frame is decoded at that size: a stand-in frame, no memory of its own."""
    import torch

    from impasto.inputs import LoadedInputs
    from impasto.schedule import plan

    frame = torch.zeros(1, 3, 1, 1).expand(1, 3, *size)
    loaded = LoadedInputs(frame, painted, None, None, [str(i) for i in range(len(painted))])
    stylizer.memory_plan(loaded, recipe, plan(recipe, *size))


def _rate(fps: Fraction | float) -> str:
    """Frames a second as a person writes them: 25, 29.97, 1000 (not 1e+03)."""
    return f"{round(float(fps), 2):g}"


def long_term_gaps(text: str) -> tuple[int, ...]:
    """``--long-term``: frame gaps from 2 to 30, comma-separated, or 'none'."""
    if text.strip().lower() in ("none", ""):
        return ()
    try:
        gaps = sorted({int(part) for part in text.split(",")})
    except ValueError:
        raise ConfigError("long_term", f"must be whole numbers of frames like 2,4, or none; got {text!r}") from None
    if not all(2 <= gap <= 30 for gap in gaps):
        raise ConfigError("long_term", f"frames back must be between 2 and 30, got {text!r}")
    return tuple(gaps)


def main(args: argparse.Namespace) -> int:
    from impasto.video import require_video

    require_video()
    _check(args)
    recipe = build_recipe(args)
    runtime = build_runtime(args)

    from impasto.explain.probes import weights_digest
    from impasto.imageio import load_image
    from impasto.schedule import working_size
    from impasto.video.io import check_output, even_size, open_source, read_frames, write_output
    from impasto.video.paint import FramePainter, VideoSettings, WorkFolder, paint_frames, video_key

    source = open_source(args.video)
    if source.path is None and args.fps is not None:  # frames have no rate of their own: --fps is theirs
        rate = Fraction(args.fps).limit_denominator(1001)
        source = dataclasses.replace(source, fps=rate, duration=len(source.pictures) / float(rate))
    styles = [Path(s) for s in args.styles]
    for style in styles:
        if str(style) == "-":
            raise ConfigError("style", "a video's paintings are files, not standard input")
    output = check_output(args.output, [*source.files, *styles])
    h0, w0 = source.size
    size = even_size(h0, w0, max(working_size(h0, w0, recipe)))
    # each painting decoded no larger than it is used (a large one reduced, as stylize does)
    painted = [load_image(s, name=str(s), needed=size[0] * size[1] * recipe.style_scale**2) for s in styles]
    fps = Fraction(args.fps).limit_denominator(1001) if args.fps is not None else source.fps
    if source.duration is not None and args.start >= source.duration:
        raise ConfigError("start", f"{args.start:g} s is past the end of {args.video} ({source.duration:.2f} s)")
    span = args.duration
    if source.duration is not None:
        span = min(span, source.duration - args.start) if span is not None else source.duration - args.start
    total = max(1, round(span * float(fps))) if span is not None else None
    settings = VideoSettings(args.temporal_weight, args.warm_steps, args.long_term)

    from impasto.engine.stylizer import Stylizer

    stylizer = Stylizer(runtime)
    work_path = Path(args.work) if args.work else output.with_name(output.name + ".work")
    inside = os.path.abspath(work_path)
    if inside == os.path.abspath(output) or inside.startswith(os.path.join(os.path.abspath(output), "")):
        raise ConfigError("work", f"{work_path}: is the output {output} or inside it; choose another folder")
    work = WorkFolder(
        work_path,
        video_key(
            source.files,
            styles,
            recipe,
            # not the duration: a frame depends only on those before it, so a longer run
            # continues a shorter one
            f"{size} {fps} {args.start} {settings.text()}",
            weights_digest(stylizer.encoder),
        ),
    )
    _check_memory(stylizer, recipe, size, painted)  # before the first frame is read at that size
    done_before = work.open()
    if work.discarded:
        say(f"impasto video: {one_line(str(work.path))} held {work.discarded} frames painted with other settings; "
            "they are painted again")  # fmt: skip
    say(f"impasto video: {one_line(args.video)} ({w0}x{h0}, {_rate(source.fps)} fps) -> {one_line(str(output))}: "
        f"{size[1]}x{size[0]} at {_rate(fps)} fps, {total if total is not None else '?'} frames"
        + (f", {done_before} painted before (in {one_line(str(work.path))})" if done_before else ""))  # fmt: skip
    SIGNALS.check()
    painter = FramePainter(stylizer, recipe, painted, [str(s) for s in styles], settings)
    tty = not args.quiet and sys.stderr is not None and sys.stderr.isatty()
    spent: list[float] = []
    count = f"/{total}" if total is not None else ""

    def progress(n: int, event) -> None:
        SIGNALS.at_step(event.done)
        if tty:
            say(f"\rframe {n}{count}: step {event.step}/{event.total_steps} {clock(event.elapsed)}\033[K", end="")

    read = [0]

    def counted():
        for frame in read_frames(source, size, fps, args.start, args.duration):
            read[0] += 1
            yield frame

    frames = counted()
    started = time.perf_counter()
    interrupted = False
    try:
        for n in paint_frames(painter, frames, work, done_before, progress):
            now = time.perf_counter()
            spent.append(now - started)
            started = now
            later = spent[1:]  # the first frame runs the whole schedule: no guide to the others
            left = "" if total is None or not later else f", about {clock((total - n) * sum(later) / len(later))} left"
            say(f"{chr(13) if tty else ''}frame {n}{count} painted in {spent[-1]:.1f} s{left}"
                + ("\033[K" if tty else ""))  # fmt: skip
            SIGNALS.check()
    except KeyboardInterrupt:
        interrupted = True
    if not interrupted and read[0] == 0:
        raise ConfigError("start", f"{args.video} has no frames from {args.start:g} s on")
    if not interrupted and total is not None and read[0] < total - 1:
        say(f"impasto video: {one_line(args.video)} ended after {read[0]} of its {total} frames (the file is cut "
            "short, or says it is longer than it is); the video has the frames there were")  # fmt: skip
    pictures = work.frames()[: read[0]]  # a longer run before may have left more
    if not pictures:
        say("\nimpasto video: interrupted before the first frame was painted; nothing written")
        return SIGNALS.exit_code()
    with SIGNALS.held():
        write_output(pictures, output, fps, source, args.start, len(pictures) / float(fps))
        if interrupted:
            say(f"\nimpasto video: interrupted; {len(pictures)} frames written to {one_line(str(output))}; "
                f"run the same command to go on (the frames are kept in {one_line(str(work.path))})")  # fmt: skip
            return SIGNALS.exit_code()
        say(f"impasto video: {len(pictures)} frames written to {one_line(str(output))}")
        if not args.keep_frames and args.work is None:
            work.remove()
    return 0
