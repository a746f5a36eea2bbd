"""``impasto stylize``: paint a photo in the style of one or more paintings."""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from impasto.cli.options import add_style_options, build_inputs, build_recipe, build_runtime
from impasto.cli.progress import ProgressBar
from impasto.cli.signals import SIGNALS
from impasto.config import StyleConfig
from impasto.engine.events import Previews, Progress
from impasto.engine.memory import TooLarge
from impasto.errors import ConfigError, ImageError
from impasto.imageio import STDIO, check_bit_depth, check_output_path, header_size, save_image, save_text
from impasto.inputs import Inputs, load_inputs
from impasto.presets import PRESETS
from impasto.prints import DEFAULT_DPI, DPI_RANGE, FROM_STEPS, check_dpi, continued, print_pixels, print_recipe
from impasto.runtime import Runtime
from impasto.schedule import plan as plan_schedule


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "stylize",
        help="paint a photo in the style of one or more paintings",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Paint CONTENT in the style of STYLE (several styles are blended). "
        "'-' as CONTENT or a STYLE reads that image from standard input; -o - writes a PNG to standard output.",
    )
    parser.add_argument("content", metavar="CONTENT", help="the photo")
    parser.add_argument("styles", metavar="STYLE", nargs="+", help="the painting(s)")
    parser.add_argument(
        "-o", "--output", required=True, help="output image (.png, .jpg, .webp, .tiff, or - for stdout)"
    )
    parser.add_argument(
        "--save-every", type=int, default=0, metavar="N", help="also save every N steps beside the output"
    )
    parser.add_argument(
        "--record",
        metavar="FILE",
        help="also write the run's history (losses per step, checkpoints) as JSON for impasto explain --history",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    printing = parser.add_argument_group("print options")
    printing.add_argument(
        "--print", dest="paper", metavar="PAPER",
        help="size the picture for a print: A6..A2, letter, legal, tabloid or WxH with cm, mm or in (30x20cm); "
        "the largest picture of the photo's shape on that paper, turned as the photo is, at --dpi",
    )  # fmt: skip
    printing.add_argument(
        "--dpi", type=float, metavar="N",
        help=f"dots per inch of the print, also written into the file (default with --print: {DEFAULT_DPI})",
    )  # fmt: skip
    printing.add_argument(
        "--bit-depth", type=int, choices=(8, 16), default=8, help="bits per channel; 16 for .png and .tiff (default 8)"
    )
    printing.add_argument(
        "--from", dest="preview", metavar="PREVIEW",
        help="continue a picture painted before (a preview of this photo, at a smaller size) up to this size, "
        f"instead of starting over: it starts the first scale at least its size ({FROM_STEPS} steps), then the "
        "preset's scales above it, keeping the preview's look (--look-size is set to its size) and taking as many "
        "pixel-steps as at its size (--detail-size, unless set)",
    )  # fmt: skip
    add_style_options(parser, PRESETS["default"], "default")
    parser.set_defaults(handler=main)


def snapshot_path(output: Path, step: int) -> Path:
    """``OUTPUT-STEM.NNNNN.EXT``: where ``--save-every`` writes step ``step``."""
    return output.with_name(f"{output.stem}.{step:05d}{output.suffix}")


def _say(text: str) -> None:
    print(text, file=sys.stderr)


def _rescue(image, output: Path, error: ImageError) -> None:
    """The run is done but its output cannot be written: keep the picture elsewhere."""
    stem = "stdout" if str(output) == STDIO else output.stem[:40] or "output"
    rescue = Path(tempfile.gettempdir()) / f"impasto-rescued-{os.getpid()}-{stem}.png"
    try:
        save_image(image, rescue)
    except ImageError:
        raise error from None
    raise ImageError(f"{error}; the picture was saved to {rescue} instead") from None


def save_result(image, output: Path, sources: Sequence[object], **file: Any) -> None:
    """Save the finished picture (``file``: :func:`save_image`'s ``dpi`` and ``bit_depth``);
    signals wait for the save, a failure rescues it."""
    with SIGNALS.held():
        try:
            save_image(image, output, inputs=sources, **file)
        except ImageError as error:
            _rescue(image, output, error)


def input_sources(inputs: Inputs) -> list[object]:
    """Every file a run reads (and no output may replace)."""
    return [inputs.content, *inputs.styles, inputs.init, *(inputs.masks or ()), *(inputs.style_masks or ())]


def run_stylize(
    inputs: Inputs,
    recipe: StyleConfig,
    runtime: Runtime,
    output: Path,
    *,
    save_every: int = 0,
    quiet: bool = False,
    sources: Sequence[object] = (),
    record: Path | None = None,
    file: dict[str, Any] | None = None,
) -> int:
    """Run the engine, saving the result (and snapshots); Ctrl-C or SIGTERM save what
    there is, at the output's size, and exit 130 or 143. ``sources`` are the input files,
    never to be written over (default: those in ``inputs``)."""
    from impasto.engine import Interrupted, Stylizer

    sources = list(sources) or input_sources(inputs)
    file = file or {}
    bar = None if quiet else ProgressBar()
    warned: list[str] = []

    def on_progress(event: Progress) -> None:
        SIGNALS.at_step(event.done)
        if bar is not None:
            bar(event)
        if save_every and not event.done and event.step % save_every == 0 and event.image is not None:
            snapshot = snapshot_path(output, event.step)
            try:
                with SIGNALS.held():
                    save_image(event.image, snapshot, inputs=sources, **file)
            except ImageError as error:  # a snapshot is a convenience: say so once and go on
                if not warned:
                    _say(f"\nimpasto: warning: snapshot not written, going on: {error}")
                    warned.append(str(error))

    previews = Previews(every_steps=save_every) if save_every and str(output) != STDIO else Previews()
    listener: Callable[[Progress], object] = on_progress
    recorder = None
    if record is not None:
        from impasto.explain.history import CHECKPOINT_EVERY, Recorder

        recorder = Recorder(on_progress)
        listener = recorder
        every = math.gcd(previews.every_steps or CHECKPOINT_EVERY, CHECKPOINT_EVERY)
        previews = Previews(every_steps=every)
    try:
        SIGNALS.check()
        on_tile = None if bar is None else bar.tile
        result = Stylizer(runtime).run(inputs, recipe, on_progress=listener, previews=previews, on_tile=on_tile)
    except Interrupted as stop:
        with SIGNALS.held():
            if stop.progress is None:
                _say("\nimpasto: interrupted before the first step; nothing written")
                return SIGNALS.exit_code()
            save_result(stop.image, output, sources, **file)
            step = stop.progress
            _say(f"\nimpasto: interrupted at step {step.step}/{step.total_steps}; wrote {output}")
            return SIGNALS.exit_code()
    save_result(result, output, sources, **file)
    if recorder is not None and record is not None:
        with SIGNALS.held():
            save_text(recorder.history.to_json(), record, (".json",), inputs=sources)
    if SIGNALS.received is not None:  # arrived during the last save: the picture is whole
        return SIGNALS.exit_code()
    return 0


def check_text_output(path: str, sources: Sequence[object], field: str, suffixes: tuple[str, ...]) -> Path:
    """:func:`check_output_path` for a text file ending in one of ``suffixes``, its error
    naming the option ``field``."""
    try:
        return check_output_path(path, sources, suffixes)
    except ImageError as error:
        raise ConfigError(field, str(error)) from None


def _from_preview(args: argparse.Namespace, recipe: StyleConfig) -> StyleConfig:
    """The recipe that continues ``--from``'s picture (see :func:`impasto.prints.continued`)."""
    if args.init is not None:
        raise ConfigError("from", "is where the run starts; give it without --init")
    if str(args.content) == STDIO or args.preview == STDIO:
        raise ConfigError("from", "needs the photo and the preview as files")
    photo = header_size(args.content, oriented=True)
    preview = header_size(args.preview, oriented=True)
    try:
        return continued(recipe, preview, photo)
    except ConfigError as error:
        hint = "; ask for a larger --size or --print" if "not smaller" in error.reason else ""
        raise ConfigError("from", f"{args.preview} {error.reason}{hint}") from None


def _fitting_dpi(paper: str, dpi: float, photo: tuple[int, int], fitting: tuple[int, int] | None) -> int | None:
    """The highest whole dpi whose print is no larger than ``fitting``, the largest picture
    the memory planner found fits (None when no dpi of at least the lowest accepted does)."""
    if fitting is None:
        return None
    advice = int(dpi * max(fitting) / max(print_pixels(paper, dpi, photo)))
    while advice >= DPI_RANGE[0] and max(print_pixels(paper, advice, photo)) > max(fitting):
        advice -= 1
    return advice if advice >= DPI_RANGE[0] else None


def _print_recipe(args: argparse.Namespace, recipe: StyleConfig, dpi: float | None) -> tuple[StyleConfig, float]:
    """The recipe sized for ``--print`` at ``--dpi`` (default 300), from the photo's shape."""
    if args.size is not None or args.pixels is not None:
        raise ConfigError("print", "sets the picture's size; give it without --size or --pixels")
    if str(args.content) == STDIO:
        raise ConfigError("print", "needs the photo as a file: its shape decides the print's pixels")
    if Path(str(args.output)).suffix.lower() == ".webp":
        raise ConfigError("print", f"{args.output}: a WebP file holds no print resolution; write .png, .jpg or .tiff")
    dpi = DEFAULT_DPI if dpi is None else dpi
    photo = header_size(args.content, oriented=True)
    recipe = print_recipe(recipe, args.paper, dpi, photo)
    h, w = plan_schedule(recipe, *photo).final  # the pixels the run paints, as its messages say them
    _say(f"impasto: {args.paper} at {dpi:g} dpi: {w}x{h} px ({w / dpi * 2.54:.1f} x {h / dpi * 2.54:.1f} cm)")
    return recipe, dpi


def main(args: argparse.Namespace) -> int:
    if args.save_every < 0:
        raise ConfigError("save_every", f"must be 0 (off) or a positive number of steps, got {args.save_every}")
    recipe = build_recipe(args)
    runtime = build_runtime(args)
    inputs = build_inputs(args)
    stdin = [x for x in input_sources(inputs) if isinstance(x, str) and x == STDIO]
    if len(stdin) > 1:
        raise ConfigError("content", "only one image can come from standard input ('-')")
    sources = input_sources(inputs)
    check_bit_depth(args.output, args.bit_depth)
    dpi = None if args.dpi is None else check_dpi(args.dpi)
    if args.paper is not None:
        recipe, dpi = _print_recipe(args, recipe, dpi)
    if args.preview is not None:
        recipe = _from_preview(args, recipe)
        inputs = Inputs.of(args.content, args.styles, init=args.preview, masks=args.masks,
                           style_masks=inputs.style_masks)  # fmt: skip
        sources = input_sources(inputs)
    output = check_output_path(args.output, sources)
    record = None if args.record is None else check_text_output(args.record, [*sources, output], "record", (".json",))
    loaded = load_inputs(inputs, recipe)  # every file read and checked now, not after the set-up
    inputs = Inputs(
        loaded.content,
        tuple(loaded.styles),
        loaded.init,
        inputs.masks,
        inputs.style_masks,
        labels=tuple("stdin" if str(s) == STDIO else str(s) for s in inputs.styles),
    )
    file = {"dpi": dpi, "bit_depth": args.bit_depth}
    try:
        code = run_stylize(inputs, recipe, runtime, output, save_every=args.save_every, quiet=args.quiet,
                           sources=sources, record=record, file=file)  # fmt: skip
    except TooLarge as exc:
        if args.paper is None or dpi is None:
            raise
        photo = header_size(args.content, oriented=True)
        advice = _fitting_dpi(args.paper, dpi, photo, exc.fitting)
        what = exc.reason.split("; ")[0]  # not its advice: --print refuses --size and --pixels
        if advice:
            hint = f"at most --dpi {advice} fits, or a smaller paper"
        elif exc.fitting is None:
            hint = "no print fits in it: raise --max-memory" if args.max_memory else "no print fits in it"
        else:
            hint = "choose a smaller paper"
        raise ConfigError("print", f"{args.paper} at {dpi:g} dpi: {what}; {hint}") from None
    if code == 0:
        print(f"wrote {output}", file=sys.stderr if str(output) == STDIO else sys.stdout)
    return code
