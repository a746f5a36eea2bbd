"""Reading and writing images: every image inside impasto is a float tensor
``(1, 3, H, W)``, sRGB in [0, 1], on the CPU.

Reading applies EXIF orientation, converts embedded ICC profiles to sRGB, turns
greyscale, palette, CMYK and 16-bit images into RGB and drops alpha. Writing picks
the format from the extension, embeds an sRGB profile and is atomic: a temporary
file in the same folder, renamed over the target only once complete. The same image
gives the same bytes (the embedded profile carries a fixed date).

Safe to call from several threads at once: nothing here changes process-wide state
(Pillow's own decompression-bomb limit and the warning filters are left as they are;
the limit here is checked per image).
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import os
import secrets
import stat
import struct
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError, features
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
OUTPUT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF"}

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


def output_format(path: str | os.PathLike) -> str:
    """Pillow's format name for an output path, from its extension."""
    suffix = Path(path).suffix.lower()
    fmt = OUTPUT_FORMATS.get(suffix)
    if fmt is None:
        raise ImageError(
            f"{path}: unsupported output format {suffix or '(no extension)'!r}; use .png, .jpg, .webp or .tiff"
        )
    if fmt == "WEBP" and not features.check("webp"):
        raise ImageError(f"{path}: this Pillow was built without WebP support")
    return fmt


#: The name ``-`` stands for standard input (to read) or standard output (to write, PNG).
STDIO = "-"
#: Longest file name most file systems take, in bytes.
NAME_MAX = 255


def temporary_name() -> str:
    """A short hidden name for the file being written (so that a long output name, legal
    itself, does not become an illegal temporary one)."""
    return f".impasto-{secrets.token_hex(4)}.part"


def _input_paths(inputs: Iterable[object]) -> list[Path]:
    return [Path(x) for x in inputs if isinstance(x, str | os.PathLike) and str(x) != STDIO]


def check_output_path(
    path: str | os.PathLike, inputs: Iterable[object] = (), suffixes: tuple[str, ...] | None = None
) -> Path:
    """Fail early, before any work, if ``path`` cannot be written as an image (or, with
    ``suffixes``, as a file ending in one of them; standard output is then refused): its
    folder, its format, its name's length, a read-only file, a folder where no file can be
    created (no space, no inodes: a file is made there and removed), or one of ``inputs``
    (paths or anything else, which is ignored) however it is spelled (relative, ``..``,
    links)."""
    return _check_output(path, inputs, probe=True, suffixes=suffixes)


def _check_output(
    path: str | os.PathLike, inputs: Iterable[object], probe: bool, suffixes: tuple[str, ...] | None = None
) -> Path:
    if str(path) == STDIO and suffixes is None:
        return Path(STDIO)
    path = Path(path)
    try:
        if len(os.fsencode(path.name)) > NAME_MAX:
            raise ImageError(
                f"{path}: the file name is {len(os.fsencode(path.name))} bytes long; the limit is {NAME_MAX}"
            )
        if path.is_dir():
            raise ImageError(f"{path}: is a folder; give a file name such as {path / 'out.png'}")
        if suffixes is None:
            output_format(path)
        elif path.suffix.lower() not in suffixes:
            raise ImageError(f"{path}: must end in {' or '.join(suffixes)}")
        folder = path.parent if str(path.parent) else Path(".")
        if not folder.exists():
            raise ImageError(f"{path}: output folder {folder} does not exist")
        if not folder.is_dir():
            raise ImageError(f"{path}: {folder} is not a folder")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ImageError(f"{path}: output folder {folder} is not writable")
        target = Path(os.path.realpath(path))
        stream = False
        if target.exists():
            stream = _check_kind(path, target)
            for source in _input_paths(inputs):
                if source.exists() and os.path.samefile(target, source):
                    raise ImageError(f"{path}: is an input ({source}); choose another output name")
            # No write bit is read-only for everyone, root included (who os.access lets through).
            if not os.access(target, os.W_OK) or not stat.S_IMODE(target.stat().st_mode) & 0o222:
                raise ImageError(f"{path}: the file is read-only; it is left as it is")
        if probe and not stream:
            trial = target.parent / temporary_name()
            os.close(os.open(trial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            os.unlink(trial)
    except ImageError:
        raise
    except OSError as exc:
        raise ImageError(f"{path}: cannot write there ({exc.strerror or exc})") from None
    return path


def _is_stream(target: Path) -> bool:
    """Whether an existing ``target`` is written into as a stream rather than replaced: a
    FIFO, ``/dev/null``, or the terminal or pipe that is this process's standard output or
    error (``-o /dev/stdout``)."""
    try:
        info = os.stat(target)
    except OSError:
        return False
    if stat.S_ISFIFO(info.st_mode):
        return True
    if not stat.S_ISCHR(info.st_mode):
        return False
    with contextlib.suppress(OSError):
        if info.st_rdev == os.stat(os.devnull).st_rdev:  # the null device, by any name
            return True
    for fd in (1, 2):
        with contextlib.suppress(OSError):
            if os.path.samestat(info, os.fstat(fd)):
                return True
    return False


def _check_kind(path: Path, target: Path) -> bool:
    """Whether an existing output is a stream (see :func:`_is_stream`); refuse one that is
    neither that nor a regular file: renaming a file over it would replace a device (as
    root, ``ln -s /dev/sda out.png`` would make the disk's node a PNG file) or a socket."""
    mode = os.stat(target).st_mode
    if stat.S_ISREG(mode):
        return False
    if _is_stream(target):
        return True
    kind = (
        "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "not a file"
    )
    shown = f"{path} ({target})" if Path(os.path.abspath(path)) != target else str(path)
    raise ImageError(f"{shown}: is {kind}, not a regular file; it is left as it is: choose a file name")


def check_bit_depth(path: str | os.PathLike, bit_depth: int) -> None:
    """16 bits per channel go to PNG and TIFF files (and standard output, as PNG)."""
    if bit_depth not in (8, 16):
        raise ConfigError("bit_depth", f"must be 8 or 16, got {bit_depth}")
    if bit_depth == 16 and str(path) != STDIO and output_format(path) not in ("PNG", "TIFF"):
        raise ConfigError("bit_depth", f"16 bits per channel need a .png or .tiff output, not {Path(path).name}")


def save_image(
    image: Tensor | Image.Image,
    path: str | os.PathLike,
    *,
    quality: int = 95,
    inputs: Iterable[object] = (),
    dpi: float | None = None,
    bit_depth: int = 8,
) -> Path:
    """Write atomically: nothing at ``path`` changes unless the whole file was written.

    A link is written through (the link stays, its target gets the image); an existing
    file keeps its permissions, a new one gets those the umask gives; ``-`` writes a PNG
    to standard output. ``dpi``: the resolution the file declares (PNG, JPEG, TIFF; WebP
    has no field for it); ``bit_depth`` 16: 16 bits per channel (PNG, TIFF), from a tensor."""
    check_bit_depth(path, bit_depth)
    if bit_depth == 16:
        return _save_16(image, path, inputs, dpi)
    path = _check_output(path, inputs, probe=False)  # writing the file is the trial itself
    extra: dict[str, object] = {} if dpi is None else {"dpi": (dpi, dpi)}
    if str(path) == STDIO:
        pil = image if isinstance(image, Image.Image) else tensor_to_pil(image)
        buffer = io.BytesIO()
        pil.save(buffer, format="PNG", icc_profile=srgb_icc(), **extra)
        _to_stdout(buffer.getvalue())
        return path
    fmt = output_format(path)
    pil = image if isinstance(image, Image.Image) else tensor_to_pil(image)
    options: dict[str, object] = {"icc_profile": srgb_icc()}
    if fmt in ("JPEG", "WEBP"):
        options["quality"] = quality
    if fmt != "WEBP":
        options.update(extra)
    write_atomically(path, lambda f: pil.save(f, format=fmt, **options))
    return path


def _to_stdout(data: bytes) -> None:
    if sys.stdout is None:  # started with standard output closed (`>&-`)
        raise ImageError("stdout: is closed")
    try:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    except OSError as exc:  # a full disk (`>/dev/full`), a reader that left
        raise ImageError(f"stdout: cannot write ({exc.strerror or exc})") from None


def _save_16(image: Tensor | Image.Image, path: str | os.PathLike, inputs: Iterable[object], dpi: float | None) -> Path:
    from impasto.sixteen import to_uint16, write_png16, write_tiff16

    if not isinstance(image, Tensor):
        raise ImageError(f"{path}: 16 bits per channel are written from a tensor, not an 8-bit Pillow image")
    pixels = to_uint16(image)
    path = _check_output(path, inputs, probe=False)
    if str(path) == STDIO:
        buffer = io.BytesIO()
        write_png16(buffer, pixels, dpi, srgb_icc())
        _to_stdout(buffer.getvalue())
        return path
    write = write_png16 if output_format(path) == "PNG" else write_tiff16
    write_atomically(path, lambda f: write(f, pixels, dpi, srgb_icc()))
    return path


def save_text(text: str, path: str | os.PathLike, suffixes: tuple[str, ...], *, inputs: Iterable[object] = ()) -> Path:
    """Write ``text`` (UTF-8) to a file ending in one of ``suffixes``, as atomically and
    with the same care as :func:`save_image`."""
    return save_bytes(text.encode("utf-8"), path, suffixes, inputs=inputs)


def save_bytes(
    data: bytes, path: str | os.PathLike, suffixes: tuple[str, ...], *, inputs: Iterable[object] = ()
) -> Path:
    """Write ``data`` to a file ending in one of ``suffixes``, as atomically and with the
    same care as :func:`save_image` (nothing that is not a regular file is replaced)."""
    path = _check_output(path, inputs, probe=False, suffixes=suffixes)
    write_atomically(path, lambda f: f.write(data))
    return path


def write_atomically(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> None:
    """``write(stream)`` into a hidden file beside ``path``'s target (a link is followed),
    then rename it over the target, keeping the target's permissions: a reader never sees
    half a file, and a failure (ImageError, one line) leaves what was there. A pipe or a
    device as the target is written into as a stream instead."""
    target = Path(os.path.realpath(path))
    # Checked again: the output may have changed since the check before the run.
    if target.exists() and _check_kind(Path(path), target):
        try:
            with open(target, "wb") as stream:
                write(stream)
        except OSError as exc:
            raise ImageError(f"{path}: cannot write ({exc.strerror or exc})") from None
        return
    mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else None
    tmp = target.parent / temporary_name()
    try:
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)  # the umask applies
        with os.fdopen(fd, "wb") as f:
            if mode is not None:
                os.fchmod(f.fileno(), mode)
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise ImageError(f"{path}: cannot write ({exc.strerror or exc})") from None
        raise
