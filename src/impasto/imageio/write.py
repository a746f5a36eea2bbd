"""Writing images and other outputs: the format from the extension, an embedded sRGB
profile, 16 bits per channel for PNG and TIFF (:mod:`impasto.imageio.sixteen`), and every
file written atomically (a hidden file beside the target, renamed over it once complete),
after the checks that keep an input from being overwritten."""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import stat
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

from PIL import Image, features
from torch import Tensor

from impasto.errors import ConfigError, ImageError

#: Files taken from a folder: the formats impasto reads.
from impasto.imageio.read import STDIO, srgb_icc, tensor_to_pil

OUTPUT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF"}


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
    from impasto.imageio.sixteen import to_uint16, write_png16, write_tiff16

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
