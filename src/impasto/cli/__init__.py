"""The ``impasto`` command line: one module per command; each builds a recipe, inputs and
a runtime, runs the engine and renders its events.

Every :class:`~impasto.errors.ImpastoError` (and argument error) becomes one line on
stderr and exit status 2, with the library's setting names turned into flags. Ctrl-C,
SIGTERM and SIGHUP save the image so far and exit 130, 143 and 129. Nothing heavy is
imported before the signal handling is installed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from collections.abc import Sequence
from typing import NoReturn

from impasto._version import __version__
from impasto.cli import openmp
from impasto.cli.console import say
from impasto.cli.signals import SIGNALS
from impasto.errors import ConfigError, ImpastoError, ImpastoWarning, one_line

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors in one line (and exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def parser() -> argparse.ArgumentParser:
    from impasto.cli import batch, demo, explain, presets, serve, stylize, video

    top = _Parser(prog="impasto", description="Neural style transfer on the original VGG19.")
    top.add_argument("--version", action="version", version=f"impasto {__version__}")
    commands = top.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for command in (stylize, batch, video, explain, serve, demo, presets):
        command.add_parser(commands)
    return top


def error_line(exc: ImpastoError) -> str:
    """The one line a person reads for ``exc``, in the command line's words."""
    from impasto.cli.options import flag, flag_text

    if isinstance(exc, ConfigError):
        return f"impasto: error: {flag(exc.field)}: {flag_text(exc.reason)}"
    return f"impasto: error: {flag_text(str(exc))}"


def run() -> NoReturn:
    """The ``impasto`` program: :func:`main`, then exit with its status."""
    code = main(exiting=True)
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except Exception:
            # Standard output on a full disk, say (its failure already reported): what is
            # still buffered goes nowhere, so that the interpreter's own last flush does not
            # fail again with a message of its own and another exit status.
            with contextlib.suppress(Exception):
                os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
    if SIGNALS.received is not None:
        # After a signal the work is saved (or there was none) and the streams flushed:
        # leave now. An interrupt that landed inside an import (torch's, say) can otherwise
        # make the interpreter's own shutdown end the process by SIGINT instead of with
        # this status.
        os._exit(code)
    sys.exit(code)


def main(argv: Sequence[str] | None = None, *, exiting: bool = False) -> int:
    """Run one command; returns the exit status. The signal handlers are put back after,
    or, when the process is ``exiting``, signals are ignored from then on."""
    SIGNALS.install()
    if sys.stderr is None:
        # Started with standard error closed (`2>&-`): Python then has no sys.stderr, and
        # print(file=None) would write the messages to standard output (into a PNG going
        # there). Run on, quietly.
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115  (for the process's life)
    try:
        return _main(argv)
    finally:
        SIGNALS.ignore() if exiting else SIGNALS.restore()


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """impasto's own warnings as one line, as its errors are; others as Python shows them."""
    if issubclass(category, ImpastoWarning):
        say(f"impasto: warning: {one_line(str(message))}")
    else:
        say(warnings.formatwarning(message, category, filename, lineno, line).rstrip("\n"))


def _main(argv: Sequence[str] | None) -> int:
    # How torch's threads wait for work, from the machine's load: set before torch loads
    # OpenMP; a user's own setting wins (see impasto.cli.openmp).
    openmp.before_torch()
    try:
        # The commands' modules import torch: a signal during that is noted, not raised
        # inside it, and ends the run just after (see impasto.cli.signals).
        with SIGNALS.held():
            args = parser().parse_args(argv)
            # impasto checks its own pixel limit per image; Pillow's warning below it is noise here.
            from PIL import Image

            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            warnings.showwarning = _show_warning
        SIGNALS.check()  # a signal during the imports
        return int(args.handler(args))
    except ImpastoError as exc:
        print(error_line(exc), file=sys.stderr)
    except KeyboardInterrupt:
        print("\nimpasto: interrupted before the first step; nothing written", file=sys.stderr)
        return SIGNALS.exit_code()
    except BrokenPipeError:  # `impasto presets | head`: the reader left; nothing to say
        sys.stderr.close()
    return EXIT_USAGE


if __name__ == "__main__":
    run()
