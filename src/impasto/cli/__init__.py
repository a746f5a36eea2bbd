"""The ``impasto`` command line: one module per command; each builds a recipe, inputs and
a runtime, runs the engine and renders its events.

Every :class:`~impasto.errors.ImpastoError` (and argument error) becomes one line on
stderr and exit status 2, with the library's setting names turned into flags; Ctrl-C
saves the image so far and exits 130.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from typing import NoReturn

from impasto import __version__
from impasto.cli import demo, presets, stylize
from impasto.cli.options import flag, flag_text
from impasto.errors import ConfigError, ImpastoError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors in one line (and exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def parser() -> argparse.ArgumentParser:
    top = _Parser(prog="impasto", description="Neural style transfer on the original VGG19.")
    top.add_argument("--version", action="version", version=f"impasto {__version__}")
    commands = top.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for command in (stylize, demo, presets):
        command.add_parser(commands)
    return top


def error_line(exc: ImpastoError) -> str:
    """The one line a person reads for ``exc``, in the command line's words."""
    if isinstance(exc, ConfigError):
        return f"impasto: error: {flag(exc.field)}: {flag_text(exc.reason)}"
    return f"impasto: error: {flag_text(str(exc))}"


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # impasto checks its own pixel limit per image; Pillow's warning below it is noise here.
    from PIL import Image

    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
    try:
        return args.handler(args)
    except ImpastoError as exc:
        print(error_line(exc), file=sys.stderr)
    except BrokenPipeError:  # `impasto presets | head`: the reader left; nothing to say
        sys.stderr.close()
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
