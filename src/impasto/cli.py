"""The ``impasto`` command line: builds a StyleConfig, runs the engine, renders progress.

Every :class:`~impasto.errors.ImpastoError` (and argument error) becomes one line on
stderr and exit status 2; Ctrl-C saves the image so far and exits 130.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from impasto import __version__
from impasto.config import (
    COLORS,
    DEVICES,
    OPTIMIZERS,
    POOLINGS,
    PRECISIONS,
    PRESETS,
    RESAMPLE_FILTERS,
    STYLE_LOSSES,
    TUNED_SIDE,
    StyleConfig,
    check_style_count,
    preset,
)
from impasto.errors import ConfigError, ImpastoError
from impasto.imageio import check_output_path, load_image, save_image

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

#: CLI options that set a StyleConfig field of the same name (dashes for underscores).
SCALAR_OPTIONS = {
    "size": int,
    "pixels": int,
    "style_scale": float,
    "content_weight": float,
    "content_size_exponent": float,
    "style_weight": float,
    "tv_weight": float,
    "steps": int,
    "first_steps": int,
    "final_steps": int,
    "start_size": int,
    "scales": int,
    "optimizer": str,
    "lr": float,
    "init": str,
    "seed": int,
    "pooling": str,
    "weights": str,
    "device": str,
    "resample": str,
    "precision": str,
    "style_loss": str,
    "ema_decay": float,
    "colors": str,
    "mask_feather": float,
    "target_loss": float,
    "time_limit": float,
}
#: Options that take one or more files (FILE ...); "-" in --style-mask means "all of that style image".
FILE_OPTIONS = ("masks", "style_masks")
FILE_FLAGS = {"masks": "--mask", "style_masks": "--style-mask"}
LIST_OPTIONS = {"style_weights": float, "content_layers": str, "style_layers": str, "style_layer_weights": float}
CHOICES = {
    "optimizer": OPTIMIZERS,
    "pooling": POOLINGS,
    "device": DEVICES,
    "resample": RESAMPLE_FILTERS,
    "precision": PRECISIONS,
    "style_loss": STYLE_LOSSES,
    "colors": COLORS,
}
HELP = {
    "size": "longest side of the output in px",
    "pixels": "pixel count (area) of the output, instead of --size",
    "style_scale": "style images are resized to the output's area times this squared",
    "style_weights": "blend weights of the style images, comma-separated (e.g. 0.7,0.3)",
    "content_weight": f"weight of the content loss (for a {TUNED_SIDE} px output; see --content-size-exponent)",
    "content_size_exponent": f"at longest side L the content weight is multiplied by (L/{TUNED_SIDE})^X, "
    "so that a larger output does not carry more of the painting (0 = the same weight at every size)",
    "style_weight": "weight of the style loss",
    "tv_weight": "weight of the total-variation (smoothness) loss",
    "content_layers": "comma-separated VGG layers for content",
    "style_layers": "comma-separated VGG layers for style",
    "style_layer_weights": "comma-separated weights, one per style layer",
    "steps": "optimiser steps at each scale",
    "first_steps": "steps at the first scale, when there are several",
    "final_steps": "steps at the final (full-size) scale, when there are several",
    "start_size": "coarse-to-fine: longest side of the first scale (px)",
    "scales": "coarse-to-fine: number of scales, √2 apart (overrides --start-size)",
    "optimizer": "optimiser",
    "lr": "step size",
    "init": "start image: content, noise or an image file",
    "seed": "random seed (same seed, same image on the CPU)",
    "pooling": "pooling in the network",
    "weights": "network weights: original (Caffe VGG19), vgg19, vgg16 (torchvision) or a .pth file",
    "device": "where to compute: auto, cpu, cuda, cuda:N or mps",
    "resample": "filter used to resize the inputs",
    "precision": "network arithmetic; auto = bfloat16 on CPUs that have it fast, else float32",
    "style_loss": "gram (Gatys) or wasserstein (2-Wasserstein distance of Gaussian fits of the features)",
    "ema_decay": "iterate averaging: output the bias-corrected moving average of the iterates (e.g. 0.99)",
    "colors": "style: the painting's colours; content: keep the photo's (luminance-only); match: recolour the style",
    "mask_feather": "soften the masks' borders by a blur of this many output pixels",
    "masks": "regional styles: one greyscale mask per style (white = that style), or one label image "
    "with a colour per style, darkest colour = first style",
    "style_masks": "with --mask: per style image, a greyscale mask of the part of it to use ('-' = all of it)",
    "target_loss": "stop once the loss at the final scale is at or below this",
    "time_limit": "stop after this many seconds (the result keeps the final size)",
}


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors in one line (and exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _option(field: str) -> str:
    return FILE_FLAGS.get(field) or "--" + field.replace("_", "-")


#: What an unset (None) field means, for --help.
NONE_MEANS = {
    "lr": "1 for lbfgs, 0.02 for adam",
    "style_weights": "equal",
    "style_layer_weights": "all 1",
    "pixels": "unset, --size applies",
    "size": "unset, --pixels applies",
    "first_steps": "as --steps",
    "final_steps": "as --steps",
    "start_size": "one scale only",
    "scales": "from --start-size",
    "target_loss": "none",
    "ema_decay": "off",
    "time_limit": "none",
}


def _describe(value: object, field: str = "") -> str:
    if isinstance(value, tuple):
        return ",".join(_number(v) for v in value)
    return NONE_MEANS.get(field, "none") if value is None else _number(value)


def _number(value: object) -> str:
    """Floats to 4 significant digits for --help (1/3 is 0.3333, not 0.3333333333333333)."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _split_list(text: str, kind: type, option: str) -> tuple:
    items = [item.strip() for item in text.split(",") if item.strip()]
    try:
        return tuple(kind(item) for item in items)
    except ValueError:
        raise ConfigError(option, f"expected comma-separated {kind.__name__} values, got {text!r}") from None


def _add_config_options(parser: argparse.ArgumentParser, defaults: StyleConfig, preset_name: str) -> None:
    group = parser.add_argument_group("style options (default: the value of the preset, shown for --preset default)")
    group.add_argument(
        "--preset", default=preset_name, help=f"named settings: {', '.join(PRESETS)} (default: {preset_name})"
    )
    for field, kind in SCALAR_OPTIONS.items():
        extra = {"choices": CHOICES[field]} if field in CHOICES and field != "device" else {}
        metavar = None if extra else ("N" if kind is int else "X" if kind is float else "VALUE")
        group.add_argument(
            _option(field),
            type=kind,
            default=None,
            metavar=metavar,
            help=f"{HELP[field]} (default: {_describe(getattr(defaults, field), field)})",
            **extra,
        )
    for field in LIST_OPTIONS:
        group.add_argument(
            _option(field),
            default=None,
            metavar="LIST",
            help=f"{HELP[field]} (default: {_describe(getattr(defaults, field), field)})",
        )
    for field in FILE_OPTIONS:
        group.add_argument(FILE_FLAGS[field], dest=field, nargs="+", default=None, metavar="FILE", help=HELP[field])
    group.add_argument(
        "--clamp",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"keep pixels in [0, 1] while optimising (default: {_describe(defaults.clamp)})",
    )
    group.add_argument(
        "--upscale-style",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"resize a smaller style image up to the output's area (default: {_describe(defaults.upscale_style)})",
    )
    group.add_argument("--download", action="store_true", help="allow downloading torchvision weights into the cache")


def build_config(args: argparse.Namespace) -> StyleConfig:
    """The preset named by ``--preset`` with every option given on the command line applied."""
    base = preset(args.preset)
    changes: dict[str, object] = {}
    for field in SCALAR_OPTIONS:
        value = getattr(args, field)
        if value is not None:
            changes[field] = value
    for field, kind in LIST_OPTIONS.items():
        text = getattr(args, field)
        if text is not None:
            changes[field] = _split_list(text, kind, field)
    if args.masks is not None:
        changes["masks"] = tuple(args.masks)
    if args.style_masks is not None:
        changes["style_masks"] = tuple(None if item == "-" else item for item in args.style_masks)
    for flag in ("clamp", "upscale_style"):
        if getattr(args, flag) is not None:
            changes[flag] = getattr(args, flag)
    if "size" in changes and "pixels" not in changes:
        changes["pixels"] = None  # --size overrides a preset that sizes by area
    if "pixels" in changes and "size" not in changes:
        changes["size"] = None
    if "style_layers" in changes and "style_layer_weights" not in changes:
        changes["style_layer_weights"] = None
    return dataclasses.replace(base, **changes)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="impasto", description="Neural style transfer on the original VGG19.")
    parser.add_argument("--version", action="version", version=f"impasto {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    stylize = commands.add_parser(
        "stylize",
        help="paint a photo in the style of one or more paintings",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Paint CONTENT in the style of STYLE (several styles are blended).",
    )
    stylize.add_argument("content", metavar="CONTENT", help="the photo")
    stylize.add_argument("styles", metavar="STYLE", nargs="+", help="the painting(s)")
    stylize.add_argument("-o", "--output", required=True, help="output image (.png, .jpg, .webp, .tiff)")
    stylize.add_argument(
        "--save-every", type=int, default=0, metavar="N", help="also save every N steps beside the output"
    )
    stylize.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_config_options(stylize, PRESETS["default"], "default")

    demo = commands.add_parser("demo", help="stylise a built-in photo with a built-in painting")
    demo.add_argument("-o", "--output", default="demo.png", help="output image (default: demo.png)")
    demo.add_argument("--size", type=int, default=256, metavar="N", help="longest side in px (default: 256)")
    demo.add_argument(
        "--steps", type=int, default=None, metavar="N", help="steps at the final scale (default: the demo's)"
    )
    demo.add_argument("--save-inputs", metavar="FOLDER", help="also write the demo's content and style images there")
    demo.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    commands.add_parser("presets", help="list the presets and their settings")
    return parser


class ProgressBar:
    """Progress with ETA and the loss terms on stderr (redrawn in place on a terminal)."""

    def __init__(self, stream=sys.stderr) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.last_line = 0.0

    def __call__(self, event) -> None:
        now = time.monotonic()
        if not event.done and self.tty and now - self.last_line < 0.1:
            return
        if not event.done and not self.tty and event.step % max(1, event.total_steps // 10):
            return
        self.last_line = now
        fraction = event.fraction
        eta = event.elapsed / fraction * (1 - fraction) if fraction > 0 else 0.0
        groups: dict[str, float] = {}
        for key, value in event.terms.items():
            group = key.split(".")[0]
            groups[group] = groups.get(group, 0.0) + value
        terms = " ".join(f"{k} {v:.3g}" for k, v in groups.items())
        width = 20
        filled = round(width * fraction)
        scale = f" scale {event.scale + 1}/{event.scales} {event.size[1]}x{event.size[0]}" if event.scales > 1 else ""
        line = (
            f"[{'#' * filled}{'.' * (width - filled)}] {event.step}/{event.total_steps}{scale} "
            f"{_clock(event.elapsed)}<{_clock(eta)} loss {event.loss:.4g} ({terms})"
        )
        if self.tty:
            columns = shutil.get_terminal_size((120, 20)).columns
            self.stream.write("\r" + line[: columns - 1].ljust(columns - 1))
            if event.done:
                self.stream.write("\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return (
        f"{seconds // 60}:{seconds % 60:02d}"
        if seconds < 3600
        else f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    )


def _numbered(output: Path, step: int) -> Path:
    return output.with_name(f"{output.stem}.{step:05d}{output.suffix}")


def run_stylize(
    content,
    styles,
    config: StyleConfig,
    output: Path,
    *,
    save_every: int = 0,
    quiet: bool = False,
    download: bool = False,
) -> int:
    """Run the engine, saving the result (and snapshots); Ctrl-C saves what there is."""
    from impasto.engine import build_encoder, stylize

    bar = None if quiet else ProgressBar()
    last = None

    def on_progress(event) -> None:
        nonlocal last
        last = event
        if bar is not None:
            bar(event)
        if save_every and not event.done and event.step % save_every == 0:
            save_image(event.image, _numbered(output, event.step))

    try:
        encoder = build_encoder(config, download=download)
        result = stylize(content, styles, config, on_progress=on_progress, encoder=encoder)
    except KeyboardInterrupt:
        if last is None:
            print("\nimpasto: interrupted before the first step; nothing written", file=sys.stderr)
            return EXIT_INTERRUPTED
        save_image(last.image, output)
        print(f"\nimpasto: interrupted at step {last.step}/{last.total_steps}; wrote {output}", file=sys.stderr)
        return EXIT_INTERRUPTED
    save_image(result, output)
    return 0


def _cmd_stylize(args: argparse.Namespace) -> int:
    if args.save_every < 0:
        raise ConfigError("save_every", f"must be 0 (off) or a positive number of steps, got {args.save_every}")
    config = build_config(args)
    check_style_count(config, len(args.styles))
    output = check_output_path(args.output)
    content = load_image(args.content)
    styles = [load_image(path) for path in args.styles]
    if config.init not in ("content", "noise"):
        load_image(config.init)  # fail now, not after the set-up
    from impasto.engine import prepare_masks

    prepare_masks(config, content, styles)
    code = run_stylize(
        content, styles, config, output, save_every=args.save_every, quiet=args.quiet, download=args.download
    )
    if code == 0:
        print(f"wrote {output}")
    return code


def _cmd_demo(args: argparse.Namespace) -> int:
    from impasto.demo import DEMO_CONFIG, demo_content, paint_style

    output = check_output_path(args.output)
    changes: dict[str, object] = {"size": args.size}
    if args.steps is not None:
        changes["steps"] = args.steps
    config = dataclasses.replace(DEMO_CONFIG, **changes)
    content_path = demo_content()
    style = paint_style()
    if args.save_inputs:
        folder = Path(args.save_inputs)
        save_image(load_image(content_path), check_output_path(folder / "demo_content.png"))
        save_image(style, check_output_path(folder / "demo_style.png"))
    print(f"content: {content_path}\nstyle: painted by impasto.demo.paint_style", file=sys.stderr)
    code = run_stylize(load_image(content_path), [load_image(style)], config, output, quiet=args.quiet)
    if code == 0:
        print(f"wrote {output.resolve()}")
    return code


def _cmd_presets(args: argparse.Namespace) -> int:
    for name, config in PRESETS.items():
        print(name)
        for f in dataclasses.fields(config):
            print(f"  {f.name} = {_describe(getattr(config, f.name), f.name)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler = {"stylize": _cmd_stylize, "demo": _cmd_demo, "presets": _cmd_presets}[args.command]
    try:
        return handler(args)
    except ConfigError as exc:
        print(f"impasto: error: {_option(exc.field)}: {exc.reason}", file=sys.stderr)
    except ImpastoError as exc:
        print(f"impasto: error: {exc}", file=sys.stderr)
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
