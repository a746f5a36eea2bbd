"""A clip painted, from Python or the command line: which frames (the span and the rate),
at which size, into which work folder, and the video written at the end.

    from impasto.video.clip import Clip
    clip = Clip("walk.mp4", ["starry.jpg"], "walk-starry.mp4", preset("fast"), duration=2)
    for frame in clip.paint():
        print(frame.n, frame.seconds)
    clip.write()

A :class:`Clip` checks everything before the first frame is read (the files, the output,
the span, the work folder, that a frame of the size fits the memory budget); its painted
frames are PNGs in the work folder, so a new :class:`Clip` of the same inputs and
settings continues where one stopped (:mod:`impasto.video.paint`)."""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from impasto.config import StyleConfig
from impasto.engine.events import Progress
from impasto.engine.stylizer import Stylizer
from impasto.errors import ConfigError
from impasto.imageio import load_image
from impasto.inputs import LoadedInputs
from impasto.model.encoder import weights_digest
from impasto.runtime import Runtime
from impasto.schedule import plan, working_size
from impasto.video.io import check_output, even_size, open_source, read_frames, write_output
from impasto.video.paint import FramePainter, VideoSettings, WorkFolder, paint_frames, video_key

#: Highest frame rate asked for.
MAX_FPS = 240


@dataclass(frozen=True)
class FramePainted:
    """Frame ``n`` (from 1) is painted and in the work folder: it took ``seconds``; ``eta``
    is the seconds the frames left should take (None before there is a guide: the first
    frame runs the whole schedule, later ones a short one; or when the count is unknown)."""

    n: int
    total: int | None
    seconds: float
    eta: float | None


class Clip:
    """``video`` (a video file or a folder of pictures) painted in the style of ``styles``
    by ``recipe`` into ``output`` (a video, an animated GIF, or a folder of PNGs), from
    ``start`` seconds for ``duration`` seconds (to the end when None) at ``fps`` (the
    input's rate when None), with a video's ``settings``; painted frames kept in ``work``
    (default: the output's name plus ``.work``)."""

    def __init__(
        self,
        video: str,
        styles: Sequence[str | os.PathLike[str]],
        output: str | os.PathLike[str],
        recipe: StyleConfig,
        runtime: Runtime | None = None,
        *,
        fps: float | None = None,
        start: float = 0.0,
        duration: float | None = None,
        settings: VideoSettings | None = None,
        work: str | os.PathLike[str] | None = None,
        stylizer: Stylizer | None = None,
    ) -> None:
        if fps is not None and not (math.isfinite(fps) and 0 < fps <= MAX_FPS):
            raise ConfigError("fps", f"must be between 0 and {MAX_FPS}, got {fps:g}")
        if not (math.isfinite(start) and start >= 0):
            raise ConfigError("start", f"must be 0 or more seconds, got {start:g}")
        if duration is not None and not (math.isfinite(duration) and duration > 0):
            raise ConfigError("duration", f"must be more than 0 seconds, got {duration:g}")
        self.video, self.recipe, self.start, self.duration = video, recipe, start, duration
        self.settings = settings or VideoSettings()
        source = open_source(video)
        if source.path is None and fps is not None:  # frames have no rate of their own: fps is theirs
            rate = Fraction(fps).limit_denominator(1001)
            source = dataclasses.replace(source, fps=rate, duration=len(source.pictures) / float(rate))
        self.source = source
        self.styles = [Path(s) for s in styles]
        for style in self.styles:
            if str(style) == "-":
                raise ConfigError("style", "a video's paintings are files, not standard input")
        self.output = check_output(str(output), [*source.files, *self.styles])
        h0, w0 = source.size
        self.size = even_size(h0, w0, max(working_size(h0, w0, recipe)))
        area = self.size[0] * self.size[1] * recipe.style_scale**2
        # each painting decoded no larger than it is used (a large one reduced, as stylize does)
        self.paintings = [load_image(s, name=str(s), needed=area) for s in self.styles]
        self.fps = Fraction(fps).limit_denominator(1001) if fps is not None else source.fps
        if source.duration is not None and start >= source.duration:
            raise ConfigError("start", f"{start:g} s is past the end of {video} ({source.duration:.2f} s)")
        span = duration
        if source.duration is not None:
            span = min(span, source.duration - start) if span is not None else source.duration - start
        #: Frames the span holds, when the input says how long it is.
        self.total = max(1, round(span * float(self.fps))) if span is not None else None
        self.stylizer = stylizer or Stylizer(runtime)
        self.work_asked = work is not None
        work_path = Path(work) if work is not None else self.output.with_name(self.output.name + ".work")
        inside = os.path.abspath(work_path)
        if inside == os.path.abspath(self.output) or inside.startswith(os.path.join(os.path.abspath(self.output), "")):
            raise ConfigError("work", f"{work_path}: is the output {self.output} or inside it; choose another folder")
        # not the duration: a frame depends only on those before it, so a longer run continues a shorter one
        span_text = f"{self.size} {self.fps} {start} {self.settings.text()}"
        key = video_key(source.files, self.styles, recipe, span_text, weights_digest(self.stylizer.encoder))
        self.work = WorkFolder(work_path, key)
        self._check_memory()  # before the first frame is read at that size
        #: Frames painted by an earlier run with the same key (continued, not painted again).
        self.done_before = self.work.open()
        #: Frames of an earlier run with other settings, removed from the work folder.
        self.discarded = self.work.discarded
        #: Input frames read so far.
        self.read = 0

    def _check_memory(self) -> None:
        """TooLarge (naming --size) when a frame of the clip's size does not fit the memory
        budget: a stand-in frame, no memory of its own."""
        import torch

        frame = torch.zeros(1, 3, 1, 1).expand(1, 3, *self.size)
        names = [str(i) for i in range(len(self.paintings))]
        loaded = LoadedInputs(frame, self.paintings, None, None, names)
        self.stylizer.memory_plan(loaded, self.recipe, plan(self.recipe, *self.size))

    def paint(self, on_step: Callable[[int, Progress], object] | None = None) -> Iterator[FramePainted]:
        """Paint the span's frames not painted before, each into the work folder as it is
        done; ``on_step(n, event)`` after each optimiser step of frame ``n``."""
        painter = FramePainter(self.stylizer, self.recipe, self.paintings, [str(s) for s in self.styles], self.settings)

        def counted() -> Iterator:
            for frame in read_frames(self.source, self.size, self.fps, self.start, self.duration):
                self.read += 1
                yield frame

        spent: list[float] = []
        started = time.perf_counter()
        for n in paint_frames(painter, counted(), self.work, self.done_before, on_step):
            now = time.perf_counter()
            spent.append(now - started)
            started = now
            later = spent[1:]
            eta = None if self.total is None or not later else (self.total - n) * sum(later) / len(later)
            yield FramePainted(n, self.total, spent[-1], eta)

    @property
    def cut_short(self) -> bool:
        """The input ended well before the frames it said it has (a cut or damaged file)."""
        return self.total is not None and 0 < self.read < self.total - 1

    @property
    def painted(self) -> int:
        """Frames the output would have now: those of the work folder up to the frames read
        this run (a longer run before may have left more)."""
        return len(self.work.frames()[: self.read])

    def write(self) -> int:
        """Write the output from the frames painted; how many. ConfigError when the span has
        no frames; 0 (and nothing written) when none is painted yet."""
        if self.read == 0:
            raise ConfigError("start", f"{self.video} has no frames from {self.start:g} s on")
        pictures = self.work.frames()[: self.read]
        if pictures:
            write_output(pictures, self.output, self.fps, self.source, self.start, len(pictures) / float(self.fps))
        return len(pictures)

    def remove_work(self) -> None:
        """Remove the work folder (after the output is written), unless the caller chose it."""
        if not self.work_asked:
            self.work.remove()
