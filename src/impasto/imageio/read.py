"""Reading images: a file, standard input, a Pillow image or a tensor becomes a float
tensor ``(1, 3, H, W)``, sRGB in [0, 1], on the CPU (EXIF orientation applied, an embedded
ICC profile converted to sRGB, greyscale, palette, CMYK and 16-bit images made RGB, alpha
dropped), decoded reduced where it is far larger than it will be used; and the resizing
and conversions between tensors and Pillow images."""

from __future__ import annotations

import contextlib
import functools
import io
import math
import os
import struct
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError
from torch import Tensor

from impasto.config import MIN_SIDE
from impasto.errors import ConfigError, ImageError

#: Files taken from a folder: the formats impasto reads.

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif")
#: Largest image accepted, in pixels (Pillow's own default guard is 89 Mpx).
MAX_PIXELS = 100_000_000
#: Most bytes read from standard input: far more than any photo's file (a 100 Mpx PNG of
#: noise is about 300 MB), far less than the memory of a small machine.
MAX_STDIN_BYTES = 512 * 2**20
#: Up to this many pixels an input is decoded whole (48 MB as float); past it, an input
#: more than MARGIN times as large per side as it will be used at is decoded reduced to
#: MARGIN times that size (JPEG: by its DCT scaling, at least that size; other formats:
#: resized by Pillow as they are decoded, in 8 bits, before the float copy), so that
#: nothing is held much larger than it is used. Measured on a 12 Mpx photo used at 256
#: and 512 px: the picture the run starts from moves by 0.08 of a level on average, under
#: 0.33 of a level at the 99th percentile (docs/reliability.md).
LARGE_INPUT = 4_000_000
MARGIN = 3

ImageInput = str | os.PathLike | Image.Image | Tensor


#: The date written into the embedded sRGB profile (year, month, day, hour, minute,
#: second): LittleCMS stamps a new profile with the time it was made, so two identical
#: runs would otherwise write different bytes.
PROFILE_DATE = (2026, 1, 1, 0, 0, 0)


def _srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@functools.cache
def srgb_icc() -> bytes:
    """The sRGB ICC profile embedded in every output, the same bytes every time."""
    data = bytearray(_srgb_profile().tobytes())
    data[24:36] = struct.pack(">6H", *PROFILE_DATE)  # the header's creation date
    return bytes(data)


def _open(path: Path, needed: float | None = None) -> Image.Image:
    if str(path) == STDIO:
        # Read up to the limit and one byte more: an endless stream (`cat /dev/zero |`)
        # is refused by its size, not read until the memory runs out.
        data = sys.stdin.buffer.read(MAX_STDIN_BYTES + 1)
        if not data:
            raise ImageError("stdin: is empty")
        if len(data) > MAX_STDIN_BYTES:
            raise ImageError(f"stdin: more than {MAX_STDIN_BYTES // 2**20} MB; save the image to a file and name it")
        return _decode(io.BytesIO(data), "stdin", needed)
    _check_file(path)
    return _decode(path, str(path), needed)


def _check_file(path: Path) -> None:
    """An image file that exists, is not a folder and is not empty, or one ImageError."""
    try:
        if not path.exists():
            raise ImageError(f"{path}: no such file")
        if path.is_dir():
            raise ImageError(f"{path}: is a folder, not an image")
        if not path.is_file():
            raise ImageError(f"{path}: not a regular file (a device, pipe or socket)")
        if path.stat().st_size == 0:
            raise ImageError(f"{path}: file is empty")
    except PermissionError:
        raise ImageError(f"{path}: permission denied (a folder on the way cannot be searched)") from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot read ({exc.strerror or exc})") from None


@contextlib.contextmanager
def _pillow_errors(label: str) -> Iterator[None]:
    """Pillow's failures to open or decode ``label`` as one ImageError each."""
    try:
        yield
    except ImageError:
        raise
    except PermissionError:
        raise ImageError(f"{label}: permission denied") from None
    except Image.DecompressionBombError:  # Pillow's own guard, past twice its limit
        raise ImageError(f"{label}: declares too many pixels (over {MAX_PIXELS:,}), refusing to decode") from None
    except UnidentifiedImageError:
        raise ImageError(f"{label}: not an image, or a format Pillow cannot read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{label}: cannot decode image (truncated or corrupt: {exc})") from None


def _header(source: Path | io.BytesIO, label: str) -> Image.Image:
    """The image opened, its header read (nothing decoded); refused over MAX_PIXELS."""
    image: Image.Image = Image.open(source)
    w, h = image.size
    if w * h > MAX_PIXELS:
        image.close()
        raise ImageError(f"{label}: declares {w}x{h} pixels, over the limit of {MAX_PIXELS:,}")
    return image


def _reduction(pixels: int, needed: float | None) -> float:
    """The factor per side a ``pixels`` image may be decoded smaller by (1 = not at all):
    down to :data:`MARGIN` times the side it is used at."""
    if not needed or pixels <= LARGE_INPUT or pixels <= MARGIN**2 * needed:
        return 1.0
    return math.sqrt(pixels / (MARGIN**2 * needed))


def _decode(source: Path | io.BytesIO, label: str, needed: float | None = None) -> Image.Image:
    with _pillow_errors(label):
        image = _header(source, label)
        w, h = image.size
        factor = _reduction(w * h, needed)
        drafted = False
        if factor > 1 and image.format == "JPEG":
            # DCT scaling by 1/2, 1/4 or 1/8, never holding the full image; only by a
            # scale that divides both sides (a partial last block would stretch the
            # picture by part of a pixel of the output).
            scale = next((s for s in (8, 4, 2) if s <= factor and w % s == 0 and h % s == 0), 1)
            if scale > 1:
                image.draft("RGB", (w // scale, h // scale))
                drafted = image.size == (w // scale, h // scale)
        image.load()
        if factor > 1 and not drafted:
            size = (max(1, round(w / factor)), max(1, round(h / factor)))
            reduced = image.resize(size, Image.Resampling.BICUBIC)  # antialiased, exact geometry
            image.close()
            image = reduced
    return image


def _to_srgb(image: Image.Image) -> Image.Image:
    """Convert through the embedded ICC profile to sRGB, where there is one."""
    icc = image.info.get("icc_profile")
    if not icc or image.mode not in ("RGB", "RGBA", "CMYK", "L", "LA"):
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        mode = "RGB" if image.mode != "RGBA" else "RGBA"
        converted = ImageCms.profileToProfile(image, source, _srgb_profile(), outputMode=mode)
    except (ImageCms.PyCMSError, OSError, ValueError):
        return image  # a broken profile: read the values as sRGB, as browsers do
    return converted if converted is not None else image


def pil_to_tensor(image: Image.Image) -> Tensor:
    """A Pillow image of any common mode -> ``(1, 3, H, W)`` float sRGB in [0, 1]."""
    image = _to_srgb(image)
    mode = image.mode
    if mode.startswith("I;16") or mode == "I":
        # 16-bit greyscale. Pillow's convert("L") would clip at 255, not scale.
        array = np.asarray(image).astype(np.float32) / 65535.0
    elif mode == "F":
        array = np.asarray(image).astype(np.float32)
        if array.size and float(array.max()) > 1.0:
            array = array / 255.0
    elif mode in ("L", "1"):
        array = np.asarray(image.convert("L")).astype(np.float32) / 255.0
    else:
        if mode in ("P", "PA") and "transparency" in image.info:
            image = image.convert("RGBA")
        array = np.asarray(image.convert("RGB")).astype(np.float32) / 255.0
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    if tensor.ndim == 2:
        tensor = tensor.unsqueeze(-1).expand(-1, -1, 3)
    return tensor.permute(2, 0, 1).unsqueeze(0).clamp(0.0, 1.0).contiguous()


def load_image(source: ImageInput, *, name: str = "image", needed: float | None = None) -> Tensor:
    """Read an image from a path, a Pillow image or a tensor into ``(1, 3, H, W)`` in [0, 1].

    Tensors may be ``(3, H, W)`` or ``(1, 3, H, W)`` with values in [0, 1]. Raises
    :class:`ImageError` naming the file (or ``name``) and the problem. ``needed``: the
    most pixels the image will be used at; a file over :data:`LARGE_INPUT` pixels and
    more than :data:`MARGIN` times that per side is decoded reduced (JPEG: by its DCT
    scaling, never holding the full image), to no less than MARGIN times ``needed`` per
    side.
    """
    if isinstance(source, Tensor):
        tensor = source.detach()
        if tensor.ndim == 3:
            tensor = tensor.unsqueeze(0)
        if tensor.ndim != 4 or tensor.shape[:2] != (1, 3):
            raise ImageError(f"{name}: expected a (3, H, W) or (1, 3, H, W) tensor, got {tuple(source.shape)}")
        if not tensor.is_floating_point():
            raise ImageError(f"{name}: expected a float tensor in [0, 1], got {tensor.dtype}")
        tensor = tensor.float().cpu()
        if not bool(torch.isfinite(tensor).all()):
            raise ImageError(f"{name}: the tensor has NaN or infinite values")
        tensor = tensor.clamp(0.0, 1.0)
        label = name
    elif isinstance(source, Image.Image):
        try:
            tensor = pil_to_tensor(ImageOps.exif_transpose(source))
        except (OSError, ValueError, SyntaxError) as exc:
            raise ImageError(f"{name}: cannot read this Pillow image (closed, truncated or corrupt: {exc})") from None
        label = name
    else:
        if isinstance(source, str) and not source:
            raise ImageError(f"{name}: the file name is empty")
        path = Path(source)
        with _open(path, needed) as image:
            tensor = pil_to_tensor(ImageOps.exif_transpose(image))
        label = "stdin" if str(source) == STDIO else str(path)
    h, w = tensor.shape[-2:]
    if min(h, w) < MIN_SIDE:
        raise ImageError(f"{label}: image is {w}x{h} px; the network needs at least {MIN_SIDE} px on each side")
    return tensor


def header_size(path: str | os.PathLike, *, oriented: bool = False) -> tuple[int, int]:
    """``(h, w)`` of an image file as its header declares it (nothing decoded; EXIF
    orientation applied only when ``oriented``: it changes no pixel count). ImageError as
    :func:`load_image`."""
    path = Path(path)
    _check_file(path)
    with _pillow_errors(str(path)), _header(path, str(path)) as image:
        w, h = image.size
        if oriented and image.getexif().get(0x0112) in (5, 6, 7, 8):  # turned a quarter
            w, h = h, w
    return h, w


def check_folder(path: str | os.PathLike, field: str) -> Path:
    """Fail before any work if files cannot be written into the folder ``path`` (made
    later if missing): the ConfigError names the option ``field``."""
    folder = Path(path)
    existing = folder
    while not existing.exists() and existing != existing.parent:  # the nearest folder that exists
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        problem = "exists and is not a folder" if existing == folder else f"{existing} is not a folder"
        raise ConfigError(field, f"{folder}: {problem}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(field, f"{folder}: {existing} is not writable")
    return folder


def resize(image: Tensor, size: tuple[int, int], filter: str = "bicubic") -> Tensor:
    """Resize ``(B, C, H, W)`` to ``size = (h, w)`` with an antialiased filter.

    With antialiasing, ``bilinear`` is Pillow's BILINEAR (same support and weights;
    in float, without Pillow's rounding to 8 bits). ``bicubic`` has Pillow's support
    but torch's sharper kernel (a = -0.75; Pillow's is -0.5). An image already at
    ``size`` is returned as it is, not resampled.
    """
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    out = F.interpolate(image, size=size, mode=filter, align_corners=False, antialias=True)
    return out.clamp(0.0, 1.0)


def size_of(image: Tensor) -> tuple[int, int]:
    """``(h, w)`` of a ``(..., H, W)`` tensor."""
    return int(image.shape[-2]), int(image.shape[-1])


def tensor_to_pil(image: Tensor) -> Image.Image:
    """``(1, 3, H, W)`` or ``(3, H, W)`` in [0, 1] -> 8-bit RGB Pillow image (rounded)."""
    if image.ndim == 4:
        image = image[0]
    array = (image.detach().float().cpu().clamp(0, 1) * 255.0).round().to(torch.uint8)
    return Image.fromarray(array.permute(1, 2, 0).numpy(), "RGB")


#: The name ``-`` stands for standard input (to read) or standard output (to write, PNG).
STDIO = "-"
