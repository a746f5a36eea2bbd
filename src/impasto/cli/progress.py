"""The progress bar: step, scale, elapsed time, ETA and the loss terms, on stderr."""

from __future__ import annotations

import shutil
import sys
import time
from typing import TextIO

from impasto.engine.events import Progress


class ProgressBar:
    """Redrawn in place on a terminal; ten lines over the run otherwise (logs). On a
    terminal, a step painted in tiles also shows the windows it has run (:meth:`tile`)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.last_line = 0.0
        self.parts = ("", "")
        """The last line drawn, without a tile count: what goes before it and after it (a
        long line is cut at the terminal's width, so the count is not put at its end)."""

    def tile(self, done: int, total: int) -> None:
        """A step in tiles has run ``done`` of its ``total`` windows (every pass counted)."""
        now = time.monotonic()
        head, tail = self.parts
        if not self.tty or not head or (now - self.last_line < 0.25 and done < total):
            return
        self.last_line = now
        self._draw(f"{head}, window {done}/{total} {tail}")

    def __call__(self, event: Progress) -> None:
        now = time.monotonic()
        if not event.done and self.tty and now - self.last_line < 0.1:
            return
        if not event.done and not self.tty and event.step % max(1, event.total_steps // 10):
            return
        self.last_line = now
        terms = " ".join(f"{k} {v:.3g}" for k, v in event.grouped().items())
        width = 20
        filled = round(width * event.fraction)
        scale = f" scale {event.scale + 1}/{event.scales} {event.size[1]}x{event.size[0]}" if event.scales > 1 else ""
        if event.tiles:
            scale += f" in {event.tiles} tiles"
        head = f"[{'#' * filled}{'.' * (width - filled)}] {event.step}/{event.total_steps}{scale}"
        tail = f"{clock(event.elapsed)}<{clock(event.eta)} loss {event.loss:.4g} ({terms})"
        line = f"{head} {tail}"
        if self.tty:
            self.parts = ("", "") if event.done else (head, tail)
            self._draw(line)
            if event.done:
                self.stream.write("\n")
        else:
            self.stream.write(line + "\n")
        if event.timed_out:
            self.stream.write(
                f"time limit reached after step {event.step} of {event.total_steps}: the picture so far, at the "
                "output's size (the figures are the last step's)\n"
            )
        self.stream.flush()

    def _draw(self, line: str) -> None:
        """``line`` in place of the terminal's last line."""
        columns = shutil.get_terminal_size((120, 20)).columns
        self.stream.write("\r" + line[: columns - 1].ljust(columns - 1))
        self.stream.flush()


def clock(seconds: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour."""
    seconds = int(seconds)
    if seconds < 3600:
        return f"{seconds // 60}:{seconds % 60:02d}"
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
