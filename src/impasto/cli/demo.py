"""``impasto demo``: stylise a built-in photo with a built-in painting."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from impasto.cli.stylize import run_stylize
from impasto.imageio import check_output_path, load_image, save_image
from impasto.inputs import Inputs
from impasto.runtime import Runtime


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("demo", help="stylise a built-in photo with a built-in painting")
    parser.add_argument("-o", "--output", default="demo.png", help="output image (default: demo.png)")
    parser.add_argument("--size", type=int, default=256, metavar="N", help="longest side in px (default: 256)")
    parser.add_argument(
        "--steps", type=int, default=None, metavar="N", help="steps at the final scale (default: the demo's)"
    )
    parser.add_argument("--save-inputs", metavar="FOLDER", help="also write the demo's content and style images there")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    from impasto.demo import DEMO_CONFIG, demo_content, paint_style

    output = check_output_path(args.output)
    changes: dict[str, object] = {"size": args.size}
    if args.steps is not None:
        changes["steps"] = args.steps
    recipe = DEMO_CONFIG.replace(**changes)
    content_path = demo_content()
    content, style = load_image(content_path), load_image(paint_style())
    if args.save_inputs:
        folder = Path(args.save_inputs)
        save_image(content, check_output_path(folder / "demo_content.png"))
        save_image(style, check_output_path(folder / "demo_style.png"))
    print(f"content: {content_path}\nstyle: painted by impasto.demo.paint_style", file=sys.stderr)
    code = run_stylize(Inputs.of(content, [style]), recipe, Runtime(), output, quiet=args.quiet)
    if code == 0:
        print(f"wrote {output.resolve()}")
    return code
