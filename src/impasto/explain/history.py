"""What a run did, step by step: every step's loss terms and a few images along the way.

A :class:`Recorder` is an ``on_progress`` listener; its :class:`History` is plain data
(``to_json``/``from_json``, images as inline PNG) that ``impasto stylize --record FILE``
writes and ``impasto explain --result IMAGE --history FILE`` reads back.
"""

from __future__ import annotations

import base64
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from torch import Tensor

from impasto.engine.events import Previews, Progress
from impasto.errors import ImageError
from impasto.imageio import pil_to_tensor, tensor_to_pil

#: Steps between the images a recorded run keeps (the events carry one that often).
CHECKPOINT_EVERY = 10
#: At most this many images are kept, evenly spaced over the run (the last always).
MAX_CHECKPOINTS = 10
#: Format version of the JSON file.
VERSION = 1


#: A history file is read whole up to this size (a recorded run's is well under 10 MB).
MAX_HISTORY_BYTES = 256 * 2**20
#: The most pixels of one checkpoint image (a run's scales are never larger than its output).
MAX_CHECKPOINT_PIXELS = 4096 * 4096


def _decode_png(text: str) -> Tensor:
    with Image.open(io.BytesIO(base64.b64decode(text, validate=True)), formats=["PNG"]) as image:
        w, h = image.size  # from the header: refused before it is decoded
        if w * h > MAX_CHECKPOINT_PIXELS:
            raise ValueError(f"a checkpoint image declares {w}x{h} pixels")
        return pil_to_tensor(image.convert("RGB"))


@dataclass
class Step:
    step: int
    scale: int
    size: tuple[int, int]
    loss: float
    terms: dict[str, float]
    elapsed: float

    @classmethod
    def from_dict(cls, d: dict) -> Step:
        """A step from a progress event's JSON (:meth:`Progress.to_json`) or a history file's."""
        h, w = (int(x) for x in d["size"])
        return cls(int(d["step"]), int(d["scale"]), (h, w), float(d["loss"]),
                   {str(k): float(v) for k, v in d["terms"].items()}, float(d["elapsed"]))  # fmt: skip


@dataclass
class History:
    steps: list[Step] = field(default_factory=list)
    checkpoints: list[tuple[int, Tensor]] = field(default_factory=list)
    """``(step, image)`` pairs, images ``(1, 3, h, w)`` at their scale's size."""
    final: Step | None = None
    """The last event: the result as the objective scores it."""

    def add(self, step: Step, done: bool, image: Tensor | None = None) -> None:
        """One event: the last (``done``) scores the final image; an image becomes a checkpoint."""
        if done:
            self.final = step
        else:
            self.steps.append(step)
        if image is not None:
            if self.checkpoints and self.checkpoints[-1][0] == step.step:  # the done event repeats the last step
                self.checkpoints.pop()
            self.checkpoints.append((step.step, image))

    def scale_starts(self) -> list[int]:
        """The first step of each scale after the first."""
        return [b.step for a, b in zip(self.steps, self.steps[1:], strict=False) if b.scale != a.scale]

    def thinned(self, count: int = MAX_CHECKPOINTS) -> list[tuple[int, Tensor]]:
        """At most ``count`` checkpoints, evenly spaced, the last one kept."""
        points = self.checkpoints
        if len(points) <= count:
            return list(points)
        picks = sorted({round(k * (len(points) - 1) / (count - 1)) for k in range(count)})
        return [points[k] for k in picks]

    def to_json(self) -> str:
        def png(image: Tensor) -> str:
            buffer = io.BytesIO()
            tensor_to_pil(image).save(buffer, format="PNG")
            return base64.b64encode(buffer.getvalue()).decode()

        return json.dumps(
            {
                "version": VERSION,
                "steps": [s.__dict__ for s in self.steps],
                "final": None if self.final is None else self.final.__dict__,
                "checkpoints": [{"step": k, "png": png(image)} for k, image in self.thinned()],
            }
        )

    @classmethod
    def from_json(cls, text: str, name: str = "history") -> History:
        """Parse a recorded history; ImageError naming ``name`` if it is not one."""
        try:
            data = json.loads(text)
            if data.get("version") != VERSION:
                raise ValueError(f"version {data.get('version')!r}, expected {VERSION}")
            steps = [Step.from_dict(d) for d in data["steps"]]
            final = None if data["final"] is None else Step.from_dict(data["final"])
            checkpoints = [(int(c["step"]), _decode_png(c["png"])) for c in data["checkpoints"]]
        except RecursionError:
            raise ImageError(f"{name}: not a history written by impasto stylize --record (nested too deep)") from None
        except (ValueError, KeyError, TypeError, AttributeError, OSError, Image.DecompressionBombError) as exc:
            raise ImageError(f"{name}: not a history written by impasto stylize --record ({exc})") from None
        numbers = [x for s in steps for x in (s.loss, s.elapsed, *s.terms.values())]
        if not all(math.isfinite(x) for x in numbers):
            raise ImageError(f"{name}: not a history written by impasto stylize --record (a loss is not finite)")
        return cls(steps, checkpoints, final)

    @classmethod
    def load(cls, path: str | Path) -> History:
        try:
            with open(path, "rb") as stream:
                raw = stream.read(MAX_HISTORY_BYTES + 1)
            if len(raw) > MAX_HISTORY_BYTES:
                raise ImageError(f"{path}: more than {MAX_HISTORY_BYTES // 2**20} MB, not a recorded history")
        except OSError as exc:
            raise ImageError(f"{path}: cannot read ({exc.strerror or exc})") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ImageError(f"{path}: not a history written by impasto stylize --record (not text)") from None
        return cls.from_json(text, str(path))


class Recorder:
    """An ``on_progress`` listener that keeps a :class:`History` (pass it :attr:`previews`
    so that the events carry the checkpoint images). Calls ``then`` with each event."""

    previews = Previews(every_steps=CHECKPOINT_EVERY)

    def __init__(self, then=None) -> None:
        self.history = History()
        self.then = then

    def __call__(self, event: Progress):
        self.history.add(Step.from_dict(event.to_json()), event.done, event.image)
        return self.then(event) if self.then is not None else None
