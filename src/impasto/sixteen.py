"""16 bits per channel: PNG and TIFF files written here (Pillow writes neither from RGB
at 16 bits), with their resolution and ICC profile."""

from __future__ import annotations

import struct
import zlib
from typing import BinaryIO

import numpy as np
from torch import Tensor

#: Millimetres in an inch (resolution fields count dots per metre or per inch).
MM_PER_INCH = 25.4


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
