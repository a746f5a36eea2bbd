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
    rows = np.ascontiguousarray(pixels.astype(">u2").reshape(h, w * 3)).view(np.uint8)  # big-endian R G B
    compressor = zlib.compressobj(6)
    data = bytearray()
    for start in range(0, h, BAND_ROWS):
        above = rows[start - 1] if start else np.zeros(w * 6, np.uint8)
        data += compressor.compress(filtered_rows(rows[start : start + BAND_ROWS], above).tobytes())
    data += compressor.flush()
    stream.write(_chunk(b"IDAT", bytes(data)))
    stream.write(_chunk(b"IEND", b""))


#: Rows filtered (PNG) or compressed (a TIFF strip) at once: bounds the temporary arrays
#: of a print (an A3 row is 30 KB of samples).
BAND_ROWS = 64
#: Bytes a pixel of a 16-bit RGB row: the distance PNG's filters look left.
PIXEL_BYTES = 6


def filtered_rows(rows: np.ndarray, above: np.ndarray) -> np.ndarray:
    """PNG's adaptive filtering of ``rows`` ``(n, width bytes)`` (uint8; ``above`` the row
    before them, zeros for the first): each row takes the filter (none, Sub, Up, Average,
    Paeth) whose bytes, read as signed, have the smallest sum of magnitudes (the rule of
    the PNG specification's encoder guidance), and starts with that filter's type byte."""
    x = rows.astype(np.int16)
    b = np.vstack([above[None].astype(np.int16), x[:-1]])  # the byte above
    a = np.zeros_like(x)  # the byte one pixel to the left
    a[:, PIXEL_BYTES:] = x[:, :-PIXEL_BYTES]
    c = np.zeros_like(x)  # above and to the left
    c[:, PIXEL_BYTES:] = b[:, :-PIXEL_BYTES]
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    candidates = np.stack([x, x - a, x - b, x - (a + b) // 2, x - paeth]).astype(np.uint8)  # modulo 256
    cost = np.abs(candidates.view(np.int8).astype(np.int32)).sum(axis=2)  # (5, n)
    kind = cost.argmin(axis=0)
    out = np.empty((rows.shape[0], rows.shape[1] + 1), np.uint8)
    out[:, 0] = kind
    out[:, 1:] = candidates[kind, np.arange(rows.shape[0])]
    return out


#: TIFF field types: 16-bit and 32-bit unsigned, a fraction of two 32-bit ones, bytes.
_SHORT, _LONG, _RATIONAL, _UNDEFINED = 3, 4, 5, 7


def write_tiff16(stream: BinaryIO, pixels: np.ndarray, dpi: float | None, icc: bytes | None) -> None:
    """A 16-bit RGB baseline TIFF (little-endian, chunky), in strips of :data:`BAND_ROWS`
    rows compressed by Deflate after horizontal differencing (predictor 2: each sample
    less the same channel's sample one pixel to the left, modulo 2¹⁶), with the resolution
    in pixels per inch and the colour profile when given."""
    h, w, _ = pixels.shape
    samples = np.ascontiguousarray(pixels.astype("<u2").reshape(h, w * 3))
    strips = []
    for start in range(0, h, BAND_ROWS):
        band = samples[start : start + BAND_ROWS].copy()
        band[:, 3:] -= samples[start : start + BAND_ROWS, :-3]  # uint16: modulo 2¹⁶
        strips.append(zlib.compress(band.tobytes(), 6))
    resolution = dpi if dpi is not None else 72.0
    entries: list[tuple[int, int, int, bytes]] = []  # tag, type, count, value bytes

    def add(tag: int, kind: int, values: bytes, count: int) -> None:
        entries.append((tag, kind, count, values))

    add(256, _LONG, struct.pack("<I", w), 1)
    add(257, _LONG, struct.pack("<I", h), 1)
    add(258, _SHORT, struct.pack("<HHH", 16, 16, 16), 3)
    add(259, _SHORT, struct.pack("<H", 8), 1)  # Deflate
    add(262, _SHORT, struct.pack("<H", 2), 1)  # RGB
    add(273, _LONG, bytes(4 * len(strips)), len(strips))  # strip offsets, filled in below
    add(277, _SHORT, struct.pack("<H", 3), 1)
    add(278, _LONG, struct.pack("<I", BAND_ROWS), 1)
    add(279, _LONG, struct.pack(f"<{len(strips)}I", *map(len, strips)), len(strips))
    numerator = round(resolution * 1000)
    add(282, _RATIONAL, struct.pack("<II", numerator, 1000), 1)
    add(283, _RATIONAL, struct.pack("<II", numerator, 1000), 1)
    add(284, _SHORT, struct.pack("<H", 1), 1)  # chunky
    add(296, _SHORT, struct.pack("<H", 2), 1)  # inches
    add(317, _SHORT, struct.pack("<H", 2), 1)  # horizontal differencing
    if icc is not None:
        add(34675, _UNDEFINED, icc, len(icc))
    _write_tiff(stream, entries, strips)


def _write_tiff(stream: BinaryIO, entries: list[tuple[int, int, int, bytes]], strips: list[bytes]) -> None:
    """A little-endian TIFF of one image: the header, its directory of ``entries`` (tag,
    type, count, value bytes; tag 273's value, the strips' offsets, is filled in here),
    the values longer than 4 bytes after it, word-aligned, then the ``strips``."""
    entries = sorted(entries)
    ifd_at = 8
    ifd_size = 2 + 12 * len(entries) + 4
    sizes = {_SHORT: 2, _LONG: 4, _RATIONAL: 8, _UNDEFINED: 1}
    values_at: dict[int, int] = {}
    at = ifd_at + ifd_size
    for tag, kind, count, value in entries:
        if sizes[kind] * count > 4:
            values_at[tag] = at
            at += len(value) + len(value) % 2
    offsets = [at + sum(map(len, strips[:k])) for k in range(len(strips))]
    ifd = bytearray(struct.pack("<H", len(entries)))
    extra = bytearray()
    for tag, kind, count, value in entries:
        if tag == 273:
            value = struct.pack(f"<{len(offsets)}I", *offsets)
        if tag in values_at:
            extra += value + (b"\x00" if len(value) % 2 else b"")
            field = struct.pack("<I", values_at[tag])
        else:
            field = value.ljust(4, b"\x00")
        ifd += struct.pack("<HHI", tag, kind, count) + field
    ifd += struct.pack("<I", 0)  # no next IFD
    stream.write(b"II*\x00" + struct.pack("<I", ifd_at))
    stream.write(bytes(ifd))
    stream.write(bytes(extra))
    for strip in strips:
        stream.write(strip)
