"""Print sizes and print files: the pixel size of a paper size at a resolution, for a
photo's aspect ratio, and 16-bit PNG and TIFF files that carry their resolution (Pillow
writes 16-bit greyscale only, so these two encoders are written here, from the PNG and
TIFF 6.0 specifications).
"""

from __future__ import annotations

import re

from impasto.config import StyleConfig
from impasto.errors import ConfigError

MM_PER_INCH = 25.4
#: Paper sizes (short side, long side) in millimetres: ISO 216 and the US sizes.
PAPERS: dict[str, tuple[float, float]] = {
    "A6": (105, 148),
    "A5": (148, 210),
    "A4": (210, 297),
    "A3": (297, 420),
    "A2": (420, 594),
    "letter": (215.9, 279.4),
    "legal": (215.9, 355.6),
    "tabloid": (279.4, 431.8),
}
UNITS = {"mm": 1.0, "cm": 10.0, "in": MM_PER_INCH}
DEFAULT_DPI = 300
#: The longest paper side accepted (mm): a 10 m banner.
MAX_SIDE_MM = 10_000.0
#: Print resolutions accepted (dots per inch).
DPI_RANGE = (10, 2400)


def paper_mm(name: str) -> tuple[float, float]:
    """(short, long) side in mm of a paper name (``A4``, ``letter``) or a size
    ``WxH`` with a unit (``30x20cm``, ``8x10in``, ``300x200mm``). ConfigError otherwise."""
    for paper, sides in PAPERS.items():
        if name.lower() == paper.lower():
            return sides
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*[x×]\s*(\d+(?:\.\d+)?)\s*(mm|cm|in)\s*", name.lower())
    if not match:
        known = ", ".join(PAPERS)
        raise ConfigError("print", f"{name!r} is not a paper size ({known}) or a size such as 30x20cm or 8x10in")
    a, b = (float(match.group(i)) * UNITS[match.group(3)] for i in (1, 2))
    if min(a, b) <= 0:
        raise ConfigError("print", f"{name!r}: both sides must be more than 0")
    if max(a, b) > MAX_SIDE_MM:
        raise ConfigError("print", f"{name[:40]!r}: a side over {MAX_SIDE_MM / 1000:g} m; no print is that large")
    return min(a, b), max(a, b)


def check_dpi(dpi: float) -> float:
    low, high = DPI_RANGE
    if not low <= dpi <= high:
        raise ConfigError("dpi", f"must be from {low} to {high} dots per inch, got {dpi:g}")
    return dpi


def print_pixels(name: str, dpi: float, photo: tuple[int, int]) -> tuple[int, int]:
    """``(h, w)`` in pixels of the largest picture with the photo's (``(h, w)``) aspect
    ratio that fits the paper at ``dpi``, the paper turned as the photo is (landscape
    for a wide photo)."""
    short, long = paper_mm(name)
    check_dpi(dpi)
    h, w = photo
    paper_h, paper_w = (long, short) if h > w else (short, long)
    scale = min(paper_w / w, paper_h / h) * dpi / MM_PER_INCH
    return max(1, round(h * scale)), max(1, round(w * scale))


#: Steps at a preview's own size when a run continues it (it is already painted there).
FROM_STEPS = 10


def continued(
    recipe: StyleConfig, preview: tuple[int, int], photo: tuple[int, int], field: str = "from"
) -> StyleConfig:
    """The recipe that continues a picture painted before, ``preview`` ``(h, w)`` px, of
    a photo of ``photo`` ``(h, w)``, up to ``recipe``'s size instead of starting over. The
    run starts from it at the smallest of the schedule's sizes (√2 apart, ending at the
    picture asked) at least as large as it, with :data:`FROM_STEPS` steps, and every scale
    keeps its look (``look_size``: its content weight, and the picture seen at its size
    held to it). The scales above the preview's size take the ``print`` preset's steps
    (``detail_size`` the preview's size) unless the recipe sets its own. ConfigError
    naming ``field`` when the preview is not of the photo's shape or not smaller than the
    picture asked."""
    from impasto.schedule import plan

    (ph, pw), (vh, vw) = photo, preview
    if abs(pw / ph - vw / vh) > 0.02 * pw / ph:
        raise ConfigError(field, f"is {vw}x{vh}, not a picture of the photo's shape ({pw}x{ph})")
    final = plan(recipe, ph, pw).final
    if max(vh, vw) >= max(final):
        raise ConfigError(field, f"is {vw}x{vh}, not smaller than the picture asked ({final[1]}x{final[0]})")
    side = max(vh, vw)
    return recipe.replace(
        init="image",
        start_size=side,
        scales=None,
        first_steps=FROM_STEPS,
        look_size=side,
        detail_size=recipe.detail_size or side,
    )


def print_recipe(
    recipe: StyleConfig,
    paper: str,
    dpi: float,
    photo: tuple[int, int],
    preview: tuple[int, int] | None = None,
    field: str = "print",
) -> StyleConfig:
    """The recipe of a print of a photo of ``photo`` ``(h, w)`` px on ``paper`` at ``dpi``:
    its longest side the paper's, in pixels; continuing a picture painted before when
    ``preview`` ``(h, w)`` is given (:func:`continued`). ConfigError naming ``field`` when
    the print is larger than a picture may be, or the preview no smaller than the print."""
    h, w = print_pixels(paper, dpi, photo)
    try:
        target = recipe.replace(size=max(h, w), pixels=None)
    except ConfigError as error:
        raise ConfigError(
            field, f"{paper} at {dpi:g} dpi is {w}x{h} px; the longest side {error.reason}: choose a smaller "
            "paper or dpi",
        ) from None  # fmt: skip
    if preview is None:
        return target
    try:
        return continued(target, preview, photo, field)
    except ConfigError as error:
        raise ConfigError(field, f"the picture {error.reason}: choose a larger paper or dpi") from None
