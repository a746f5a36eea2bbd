"""Built-in inputs for ``impasto demo``: a photo that a dependency ships and a painting
impasto paints itself, so the demo needs no user files and no network."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from impasto.errors import ImpastoError
from impasto.presets import DEFAULT
from impasto.resources import distribution_file

DEMO_PHOTO = "grace_hopper.jpg"
#: The default preset at 256 px: about two minutes on a 2-core CPU (its 460 steps take
#: 2:02 there).
DEMO_CONFIG = DEFAULT.replace(size=256)

#: Night-sky blues, a little green and the yellows of lamps and stars.
PALETTE = (
    (18, 36, 92),
    (32, 70, 150),
    (64, 118, 196),
    (120, 170, 220),
    (226, 200, 70),
    (244, 226, 120),
    (40, 96, 80),
    (14, 20, 48),
)


def demo_content() -> Path:
    """Path of matplotlib's sample photo (Grace Hopper), found without importing matplotlib."""
    path, version = distribution_file("matplotlib", DEMO_PHOTO)
    if version is None:
        raise ImpastoError("the demo photo comes from matplotlib: pip install 'impasto[demo]'")
    if path is None:
        raise ImpastoError(f"matplotlib {version} does not ship {DEMO_PHOTO}")
    return path


def paint_style(size: int = 512, seed: int = 0) -> Image.Image:
    """A swirling, brush-stroked night painting, drawn from a seed.

    Short thick strokes follow a flow field of a few vortices, coloured from
    :data:`PALETTE` with jitter: texture, stroke direction and a strong palette are
    what the style loss picks up.
    """
    rng = np.random.default_rng(seed)
    canvas = Image.new("RGB", (size, size), PALETTE[0])
    draw = ImageDraw.Draw(canvas)
    vortices = rng.uniform(0.15, 0.85, size=(5, 2)) * size
    spins = rng.choice([-1.0, 1.0], size=5) * rng.uniform(0.6, 1.4, size=5)

    def angle(x: float, y: float) -> float:
        vx, vy = 0.35, 0.05  # a drift to the right, like wind across a sky
        for (cx, cy), spin in zip(vortices, spins, strict=True):
            dx, dy = x - cx, y - cy
            r2 = dx * dx + dy * dy + (0.05 * size) ** 2
            strength = spin * (0.12 * size) ** 2 / r2
            vx += -dy * strength / size * 8
            vy += dx * strength / size * 8
        return math.atan2(vy, vx)

    strokes = int(6 * size * size / 400)
    for _ in range(strokes):
        x, y = rng.uniform(0, size, 2)
        base = np.array(PALETTE[rng.integers(len(PALETTE))], dtype=float)
        colour = tuple(int(c) for c in np.clip(base + rng.normal(0, 14, 3), 0, 255))
        width = int(rng.integers(max(2, size // 128), max(3, size // 48)))
        points = [(x, y)]
        for _ in range(int(rng.integers(3, 9))):
            theta = angle(x, y)
            x += math.cos(theta) * size / 96
            y += math.sin(theta) * size / 96
            points.append((x, y))
        draw.line(points, fill=colour, width=width, joint="curve")
    return canvas.filter(ImageFilter.SMOOTH)
