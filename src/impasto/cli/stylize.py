"""``impasto stylize``: paint a photo in the style of one or more paintings."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from impasto.cli.options import add_style_options, build_inputs, build_recipe, build_runtime
from impasto.cli.progress import ProgressBar
from impasto.config import PRESETS, StyleConfig
from impasto.engine.events import Previews, Progress
from impasto.errors import ConfigError
from impasto.imageio import check_output_path, save_image
from impasto.inputs import Inputs, load_inputs
from impasto.runtime import Runtime

EXIT_INTERRUPTED = 130


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "stylize",
        help="paint a photo in the style of one or more paintings",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Paint CONTENT in the style of STYLE (several styles are blended).",
    )
    parser.add_argument("content", metavar="CONTENT", help="the photo")
    parser.add_argument("styles", metavar="STYLE", nargs="+", help="the painting(s)")
    parser.add_argument("-o", "--output", required=True, help="output image (.png, .jpg, .webp, .tiff)")
    parser.add_argument(
        "--save-every", type=int, default=0, metavar="N", help="also save every N steps beside the output"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_style_options(parser, PRESETS["default"], "default")
    parser.set_defaults(handler=main)


def snapshot_path(output: Path, step: int) -> Path:
    """``OUTPUT-STEM.NNNNN.EXT``: where ``--save-every`` writes step ``step``."""
    return output.with_name(f"{output.stem}.{step:05d}{output.suffix}")


def run_stylize(
    inputs: Inputs,
    recipe: StyleConfig,
    runtime: Runtime,
    output: Path,
    *,
    save_every: int = 0,
    quiet: bool = False,
) -> int:
    """Run the engine, saving the result (and snapshots); Ctrl-C saves what there is, at
    the output's size."""
    from impasto.engine.stylizer import Interrupted, Stylizer

    bar = None if quiet else ProgressBar()

    def on_progress(event: Progress) -> None:
        if bar is not None:
            bar(event)
        if save_every and not event.done and event.step % save_every == 0 and event.image is not None:
            save_image(event.image, snapshot_path(output, event.step))

    previews = Previews(every_steps=save_every) if save_every else Previews()
    try:
        result = Stylizer(runtime).run(inputs, recipe, on_progress=on_progress, previews=previews)
    except Interrupted as stop:
        if stop.progress is None:
            print("\nimpasto: interrupted before the first step; nothing written", file=sys.stderr)
            return EXIT_INTERRUPTED
        save_image(stop.image, output)
        step = stop.progress
        print(f"\nimpasto: interrupted at step {step.step}/{step.total_steps}; wrote {output}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print("\nimpasto: interrupted before the first step; nothing written", file=sys.stderr)
        return EXIT_INTERRUPTED
    save_image(result, output)
    return 0


def main(args: argparse.Namespace) -> int:
    if args.save_every < 0:
        raise ConfigError("save_every", f"must be 0 (off) or a positive number of steps, got {args.save_every}")
    recipe = build_recipe(args)
    runtime = build_runtime(args)
    output = check_output_path(args.output)
    inputs = build_inputs(args)
    loaded = load_inputs(inputs, recipe)  # every file read and checked now, not after the set-up
    inputs = Inputs.of(
        loaded.content,
        loaded.styles,
        init=loaded.init,
        masks=inputs.masks,
        style_masks=inputs.style_masks,
    )
    code = run_stylize(inputs, recipe, runtime, output, save_every=args.save_every, quiet=args.quiet)
    if code == 0:
        print(f"wrote {output}")
    return code
