"""``impasto explain``: run a stylisation (or take a finished one) and write the teaching
report on it as one self-contained HTML file (and each figure as a PNG)."""

from __future__ import annotations

import argparse
import sys

from impasto.cli.options import add_style_options, build_inputs, build_recipe, build_runtime
from impasto.cli.progress import ProgressBar
from impasto.cli.signals import SIGNALS
from impasto.cli.stylize import check_text_output, input_sources
from impasto.errors import ConfigError
from impasto.imageio import STDIO, check_folder, header_size, load_image, save_text
from impasto.inputs import load_inputs
from impasto.presets import PRESETS

HTML = (".html", ".htm")


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "explain",
        help="show how the picture was made: network, feature maps, style, layers, optimisation (HTML report)",
        description="Paint CONTENT in the style of STYLE (or take a finished --result) and write a report that "
        "shows, for these pictures, what the network sees and how the optimisation went.",
    )
    parser.add_argument("content", metavar="CONTENT", help="the photo")
    parser.add_argument("styles", metavar="STYLE", nargs="+", help="the painting(s); the report shows the first")
    parser.add_argument("-o", "--output", required=True, help="the report (.html)")
    parser.add_argument("--figures", metavar="DIR", help="also write each figure as a PNG into DIR")
    parser.add_argument("--result", metavar="IMAGE", help="explain this finished result instead of painting anew")
    parser.add_argument("--history", metavar="FILE", help="with --result: the run's history (stylize --record)")
    parser.add_argument(
        "--reconstruct-size",
        type=int,
        default=None,
        metavar="PX",
        help="longest side of the layer reconstructions (0: leave that section out; default 160)",
    )
    parser.add_argument(
        "--reconstruct-steps",
        type=int,
        default=None,
        metavar="N",
        help="optimiser steps of each reconstruction (default 60)",
    )
    parser.add_argument("--no-cache", action="store_true", help="recompute the reconstructions, keep none")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_style_options(parser, PRESETS["default"], "default")
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    from impasto.explain import require_matplotlib

    require_matplotlib()
    from impasto.engine.stylizer import Stylizer
    from impasto.explain.history import History
    from impasto.explain.report import (
        RECONSTRUCT_SIZE,
        RECONSTRUCT_STEPS,
        cache_folder,
        check_reconstructions,
        check_report_memory,
        explain,
    )
    from impasto.schedule import plan

    size = RECONSTRUCT_SIZE if args.reconstruct_size is None else args.reconstruct_size
    steps = RECONSTRUCT_STEPS if args.reconstruct_steps is None else args.reconstruct_steps
    check_reconstructions(size, steps)
    if args.history is not None and args.result is None:
        raise ConfigError("history", "goes with --result (a run made here is recorded anyway)")
    recipe = build_recipe(args)
    runtime = build_runtime(args)
    inputs = build_inputs(args)
    if STDIO in (str(args.content), *map(str, args.styles)):
        raise ConfigError("content", "explain reads its images from files, not standard input")
    # Every file it reads is protected from its outputs: masks and the start image too.
    sources = [s for s in (*input_sources(inputs), args.result, args.history) if s]
    output = check_text_output(args.output, sources, "output", HTML)
    figures_dir = None if args.figures is None else check_folder(args.figures, "figures")
    loaded = load_inputs(inputs, recipe)  # every file read and checked now, not after the set-up
    # The result's size from its header: a huge one is refused before it is decoded.
    result_size = plan(recipe, *loaded.content.shape[-2:]).final if args.result is None else header_size(args.result)
    stylizer = Stylizer(runtime)
    check_report_memory(stylizer.encoder, result_size, recipe, stylizer.device)
    result = None if args.result is None else load_image(args.result, name=args.result)
    history = None if args.history is None else History.load(args.history)
    bar = None if args.quiet or result is not None else ProgressBar()
    SIGNALS.check()
    report = explain(
        inputs, recipe, runtime, result=result, history=history, stylizer=stylizer,
        reconstruct_size=size, reconstruct_steps=steps,
        cache=None if args.no_cache else cache_folder(), on_progress=bar,
    )  # fmt: skip
    with SIGNALS.held():
        save_text(report.to_html(), output, HTML, inputs=sources)
        if figures_dir is not None:
            figures_dir.mkdir(parents=True, exist_ok=True)
            report.save_figures(figures_dir, inputs=[*sources, output])
    times = ", ".join(f"{k} {v:.1f} s" for k, v in report.timings.items())
    print(f"\nwrote {output} ({times})", file=sys.stdout)
    return 0
