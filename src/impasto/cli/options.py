"""Command-line options made from the recipe's and the runtime's field descriptions, so
``--help``, ``impasto presets``, docs/options.md's option table and the web form share one
source; and the translation of the library's setting names into flags."""

from __future__ import annotations

import argparse
import dataclasses
import re
from typing import Any

from impasto.config import StyleConfig, fields_help
from impasto.errors import ConfigError
from impasto.inputs import Inputs
from impasto.jobs.base import recipe_from
from impasto.presets import PRESETS
from impasto.runtime import Runtime

#: Settings whose flag is not their name with dashes.
FLAGS = {
    "masks": "--mask",
    "style_masks": "--style-mask",
    "styles": "STYLE",
    "content": "CONTENT",
    "inputs": "INPUT",
    "video": "VIDEO",
}
#: Options of `stylize` that are inputs (files), not recipe fields.
INPUT_HELP = {
    "masks": "regional styles: one greyscale mask per style (white = that style), or one label image "
    "with a colour per style, darkest colour = first style",
    "style_masks": "with --mask: per style image, a greyscale mask of the part of it to use ('-' = all of it)",
}
#: The recipe's ``init`` on the command line also takes an image file.
INIT_HELP = "start image: content, noise or an image file"
PARSERS = {"int": int, "float": float, "str": str}


def flag(name: str) -> str:
    """The command line's word for a setting."""
    return FLAGS.get(name) or "--" + name.replace("_", "-")


def flag_text(text: str) -> str:
    """``text`` with the library's quoted setting names (`` `size` ``) as flags."""
    return re.sub(r"`([a-z_0-9]+)`", lambda m: flag(m.group(1)), text)


def number(value: object) -> str:
    """Floats to 4 significant digits (1/3 is 0.3333, not 0.3333333333333333)."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def describe(value: object, none: str | None = None) -> str:
    """A field's value for people: lists comma-separated, None as what it means."""
    if isinstance(value, tuple):
        return ",".join(number(v) for v in value)
    if value is None:
        return flag_text(none or "none")
    if isinstance(value, bool):
        return "on" if value else "off"
    return number(value)


def _meta(cls: type) -> dict[str, dict[str, Any]]:
    return {f.name: dict(f.metadata) for f in dataclasses.fields(cls)}


def add_style_options(parser: argparse.ArgumentParser, defaults: StyleConfig, preset_name: str) -> None:
    """One option per recipe field, runtime field and input of ``stylize``; each defaults
    to None = the preset's value (shown for ``preset_name``)."""
    group = parser.add_argument_group(
        f"style options (default: the value of the preset, shown for --preset {preset_name})"
    )
    group.add_argument(
        "--preset", default=preset_name, help=f"named settings: {', '.join(PRESETS)} (default: {preset_name})"
    )
    for name, meta in fields_help().items():
        _add(group, name, meta, getattr(defaults, name))
    runtime = Runtime()
    for name, meta in _meta(Runtime).items():
        _add(group, name, meta, getattr(runtime, name))
    for name, text in INPUT_HELP.items():
        group.add_argument(flag(name), dest=name, nargs="+", default=None, metavar="FILE", help=text)


def _add(group: argparse._ArgumentGroup, name: str, meta: dict[str, Any], default: object) -> None:
    text = INIT_HELP if name == "init" else flag_text(meta["help"])
    shown = f"{text} (default: {describe(default, meta['none'])})"
    kind = meta["kind"]
    if kind == "bool":
        if name == "download":
            group.add_argument(flag(name), action="store_true", default=None, help=text)
        else:
            group.add_argument(flag(name), action=argparse.BooleanOptionalAction, default=None, help=shown)
        return
    if kind in ("floats", "layers"):
        group.add_argument(flag(name), default=None, metavar="LIST", help=shown)
        return
    choices = meta["choices"] if name != "init" else ()
    extra: dict[str, Any] = {"choices": choices} if choices else {}
    metavar = None if choices else {"int": "N", "float": "X"}.get(kind, "VALUE")
    group.add_argument(flag(name), type=PARSERS[kind], default=None, metavar=metavar, help=shown, **extra)


def _split_list(text: str, kind: str, name: str) -> tuple:
    items = [item.strip() for item in text.split(",") if item.strip()]
    parse = float if kind == "floats" else str
    try:
        return tuple(parse(item) for item in items)
    except ValueError:
        raise ConfigError(name, f"expected comma-separated numbers, got {text!r}") from None


def build_recipe(args: argparse.Namespace) -> StyleConfig:
    """The preset named by ``--preset`` with every recipe option given applied."""
    changes: dict[str, object] = {}
    for name, meta in fields_help().items():
        value = getattr(args, name)
        if value is None:
            continue
        changes[name] = _split_list(value, meta["kind"], name) if meta["kind"] in ("floats", "layers") else value
    if changes.get("init") not in (None, "content", "noise", "image"):
        changes["init"] = "image"  # the option named a file: it is an input
    return recipe_from({"preset": args.preset, **changes})  # --size overrides a preset that sizes by area


def build_runtime(args: argparse.Namespace) -> Runtime:
    changes = {name: getattr(args, name) for name in _meta(Runtime) if getattr(args, name) is not None}
    return Runtime(**changes)


def build_inputs(args: argparse.Namespace) -> Inputs:
    init = args.init if args.init not in (None, "content", "noise", "image") else None
    style_masks = None
    if args.style_masks is not None:
        style_masks = [None if item == "-" else item for item in args.style_masks]
    return Inputs.of(args.content, args.styles, init=init, masks=args.masks, style_masks=style_masks)


def options_table() -> str:
    """docs/options.md's table of ``stylize``'s style options, from the same descriptions: the
    ``default`` preset's value and, where it differs, the ``gatys`` preset's."""
    default, gatys = PRESETS["default"], PRESETS["gatys"]
    rows = ["| option | default | `gatys` | meaning |", "|---|---|---|---|"]
    for name, meta in fields_help().items():
        text = INIT_HELP if name == "init" else flag_text(meta["help"])
        ours, theirs = (describe(getattr(p, name), meta["none"]) for p in (default, gatys))
        rows.append(f"| `{flag(name)}` | {ours} | {theirs if theirs != ours else ''} | {text} |")
    runtime = Runtime()
    for name, meta in _meta(Runtime).items():
        value = describe(getattr(runtime, name), meta["none"])
        rows.append(f"| `{flag(name)}` | {value} | | {flag_text(meta['help'])} |")
    for name, text in INPUT_HELP.items():
        rows.append(f"| `{flag(name)} FILE [FILE ...]` | none | | {text} |")
    return "\n".join(rows)
