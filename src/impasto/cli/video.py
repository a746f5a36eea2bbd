"""``impasto video``: paint a video (or a folder of frames) without flicker.

The first frame gets the whole recipe; every later frame starts from the previous
painting warped by the input's optical flow and runs a short schedule with a temporal
term (see :mod:`impasto.video.paint`). Painted frames are kept in a work folder, so a
rerun of the same command continues where it stopped; Ctrl-C writes the frames painted
so far as a playable video and keeps the work folder."""

from __future__ import annotations

import argparse
import sys
from fractions import Fraction
from typing import TYPE_CHECKING

from impasto.cli.console import say
from impasto.cli.options import add_style_options, build_recipe, build_runtime
from impasto.cli.progress import clock
from impasto.cli.signals import SIGNALS
from impasto.errors import ConfigError, one_line
from impasto.presets import PRESETS

if TYPE_CHECKING:
    from impasto.engine.events import Progress


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
    """What only the command line can get wrong; the clip checks the rest."""
    for name in ("masks", "style_masks"):
        if getattr(args, name):
            raise ConfigError(name, "apply to one picture; a video is painted whole")
    if args.init not in (None, "content"):
        raise ConfigError("init", "a video's frames start from the frame and the previous painting")
    args.long_term = long_term_gaps(args.long_term)


def _rate(fps: Fraction | float) -> str:
    """Frames a second as a person writes them: 25, 29.97, 1000 (not 1e+03)."""
    return f"{round(float(fps), 2):g}"


def long_term_gaps(text: str) -> tuple[int, ...]:
    """``--long-term``: frame gaps, comma-separated, or 'none' (their range is
    :class:`~impasto.video.paint.VideoSettings`'s to check)."""
    if text.strip().lower() in ("none", ""):
        return ()
    try:
        gaps = sorted({int(part) for part in text.split(",")})
    except ValueError:
        raise ConfigError("long_term", f"must be whole numbers of frames like 2,4, or none; got {text!r}") from None
    return tuple(gaps)


def main(args: argparse.Namespace) -> int:
    from impasto.video import require_video

    require_video()
    _check(args)
    recipe = build_recipe(args)
    runtime = build_runtime(args)

    from impasto.video.clip import Clip
    from impasto.video.paint import VideoSettings

    settings = VideoSettings(args.temporal_weight, args.warm_steps, args.long_term)
    clip = Clip(
        args.video, args.styles, args.output, recipe, runtime, fps=args.fps, start=args.start,
        duration=args.duration, settings=settings, work=args.work,
    )  # fmt: skip
    work, output = one_line(str(clip.work.path)), one_line(str(clip.output))
    if clip.discarded:
        say(f"impasto video: {work} held {clip.discarded} frames painted with other settings; they are painted again")
    (h0, w0), (h, w), total = clip.source.size, clip.size, clip.total
    say(f"impasto video: {one_line(args.video)} ({w0}x{h0}, {_rate(clip.source.fps)} fps) -> {output}: "
        f"{w}x{h} at {_rate(clip.fps)} fps, {total if total is not None else '?'} frames"
        + (f", {clip.done_before} painted before (in {work})" if clip.done_before else ""))  # fmt: skip
    SIGNALS.check()
    tty = not args.quiet and sys.stderr is not None and sys.stderr.isatty()
    count = f"/{total}" if total is not None else ""

    def progress(n: int, event: Progress) -> None:
        SIGNALS.at_step(event.done)
        if tty:
            say(f"\rframe {n}{count}: step {event.step}/{event.total_steps} {clock(event.elapsed)}\033[K", end="")

    interrupted = False
    try:
        for frame in clip.paint(progress):
            left = "" if frame.eta is None else f", about {clock(frame.eta)} left"
            say(f"{chr(13) if tty else ''}frame {frame.n}{count} painted in {frame.seconds:.1f} s{left}"
                + ("\033[K" if tty else ""))  # fmt: skip
            SIGNALS.check()
    except KeyboardInterrupt:
        interrupted = True
    if interrupted and clip.painted == 0:
        say("\nimpasto video: interrupted before the first frame was painted; nothing written")
        return SIGNALS.exit_code()
    if not interrupted and clip.cut_short:
        say(f"impasto video: {one_line(args.video)} ended after {clip.read} of its {total} frames (the file is cut "
            "short, or says it is longer than it is); the video has the frames there were")  # fmt: skip
    with SIGNALS.held():
        written = clip.write()
        if interrupted:
            say(f"\nimpasto video: interrupted; {written} frames written to {output}; "
                f"run the same command to go on (the frames are kept in {work})")  # fmt: skip
            return SIGNALS.exit_code()
        say(f"impasto video: {written} frames written to {output}")
        if not args.keep_frames:
            clip.remove_work()
    return 0
