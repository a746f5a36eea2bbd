"""Print sizes and print files: the pixel size of a paper size at a resolution, for a
photo's aspect ratio, and 16-bit PNG and TIFF files that carry their resolution (Pillow
writes 16-bit greyscale only, so these two encoders are written here, from the PNG and
TIFF 6.0 specifications).
"""

from __future__ import annotations

import re
import struct
import zlib
from typing import BinaryIO

import numpy as np
from torch import Tensor

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


def to_uint16(image: Tensor) -> np.ndarray:
    """``(1, 3, H, W)`` or ``(3, H, W)`` in [0, 1] -> ``(H, W, 3)`` uint16 (rounded)."""
    if image.ndim == 4:
        image = image[0]
    array = (image.detach().double().cpu().clamp(0, 1) * 65535.0).round()
    return array.permute(1, 2, 0).numpy().astype(np.uint16)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_png16(stream: BinaryIO, pixels: np.ndarray, dpi: float | None, icc: bytes | None) -> None:
    """A 16-bit RGB PNG (colour type 2, bit depth 16), with the resolution (pHYs, in pixels
    per metre) and the colour profile (iCCP) when given."""
    h, w, _ = pixels.shape
    stream.write(b"\x89PNG\r\n\x1a\n")
    stream.write(_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)))
    if icc is not None:
        stream.write(_chunk(b"iCCP", b"sRGB\x00\x00" + zlib.compress(icc)))
    if dpi is not None:
        per_metre = round(dpi / MM_PER_INCH * 1000)
        stream.write(_chunk(b"pHYs", struct.pack(">IIB", per_metre, per_metre, 1)))
    rows = np.ascontiguousarray(pixels.astype(">u2").reshape(h, w * 3))  # big-endian samples, R G B per pixel
    raw = np.zeros((h, 1 + w * 6), dtype=np.uint8)  # filter type 0 (none) at the head of each row
    raw[:, 1:] = rows.view(np.uint8)
    compressor = zlib.compressobj(6)
    data = compressor.compress(raw.tobytes()) + compressor.flush()
    stream.write(_chunk(b"IDAT", data))
    stream.write(_chunk(b"IEND", b""))


def write_tiff16(stream: BinaryIO, pixels: np.ndarray, dpi: float | None, icc: bytes | None) -> None:
    """A 16-bit RGB baseline TIFF (little-endian, one uncompressed strip, chunky), with the
    resolution in pixels per inch and the colour profile when given."""
    h, w, _ = pixels.shape
    data = pixels.astype("<u2").tobytes()
    resolution = dpi if dpi is not None else 72.0
    entries: list[tuple[int, int, int, bytes]] = []  # tag, type, count, value bytes

    def add(tag: int, kind: int, values: bytes, count: int) -> None:
        entries.append((tag, kind, count, values))

    short, long, rational, undefined = 3, 4, 5, 7
    add(256, long, struct.pack("<I", w), 1)
    add(257, long, struct.pack("<I", h), 1)
    add(258, short, struct.pack("<HHH", 16, 16, 16), 3)
    add(259, short, struct.pack("<H", 1), 1)  # no compression
    add(262, short, struct.pack("<H", 2), 1)  # RGB
    add(273, long, b"", 1)  # strip offset, filled in below
    add(277, short, struct.pack("<H", 3), 1)
    add(278, long, struct.pack("<I", h), 1)
    add(279, long, struct.pack("<I", len(data)), 1)
    numerator = round(resolution * 1000)
    add(282, rational, struct.pack("<II", numerator, 1000), 1)
    add(283, rational, struct.pack("<II", numerator, 1000), 1)
    add(284, short, struct.pack("<H", 1), 1)  # chunky
    add(296, short, struct.pack("<H", 2), 1)  # inches
    if icc is not None:
        add(34675, undefined, icc, len(icc))
    entries.sort()
    ifd_at = 8
    ifd_size = 2 + 12 * len(entries) + 4
    extra_at = ifd_at + ifd_size
    extra = bytearray()
    sizes = {short: 2, long: 4, rational: 8, undefined: 1}
    values_at: dict[int, int] = {}
    for tag, kind, count, value in entries:
        if tag != 273 and sizes[kind] * count > 4:
            values_at[tag] = extra_at + len(extra)
            extra += value + (b"\x00" if len(value) % 2 else b"")  # word-aligned
    strip_at = extra_at + len(extra)
    ifd = bytearray(struct.pack("<H", len(entries)))
    for tag, kind, count, value in entries:
        if tag == 273:
            value = struct.pack("<I", strip_at)
        field = struct.pack("<I", values_at[tag]) if tag in values_at else value.ljust(4, b"\x00")
        ifd += struct.pack("<HHI", tag, kind, count) + field
    ifd += struct.pack("<I", 0)  # no next IFD
    stream.write(b"II*\x00" + struct.pack("<I", ifd_at))
    stream.write(bytes(ifd))
    stream.write(bytes(extra))
    stream.write(data)
