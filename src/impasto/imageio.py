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
import os
import struct
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError, features
from torch import Tensor

from impasto.errors import ImageError
from impasto.model.layers import MIN_SIDE

#: Largest image accepted, in pixels (Pillow's own default guard is 89 Mpx).
MAX_PIXELS = 100_000_000
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


def _open(path: Path) -> Image.Image:
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, not an image")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: file is empty")
    try:
        image = Image.open(path)  # reads the header only
        w, h = image.size
        if w * h > MAX_PIXELS:
            image.close()
            raise ImageError(f"{path}: declares {w}x{h} pixels, over the limit of {MAX_PIXELS:,}")
        image.load()
    except ImageError:
        raise
    except PermissionError:
        raise ImageError(f"{path}: permission denied") from None
    except Image.DecompressionBombError:  # Pillow's own guard, past twice its limit
        raise ImageError(f"{path}: declares too many pixels (over {MAX_PIXELS:,}), refusing to decode") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image, or a format Pillow cannot read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{path}: cannot decode image (truncated or corrupt: {exc})") from None
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


def load_image(source: ImageInput, *, name: str = "image") -> Tensor:
    """Read an image from a path, a Pillow image or a tensor into ``(1, 3, H, W)`` in [0, 1].

    Tensors may be ``(3, H, W)`` or ``(1, 3, H, W)`` with values in [0, 1]. Raises
    :class:`ImageError` naming the file (or ``name``) and the problem.
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
        path = Path(source)
        with _open(path) as image:
            tensor = pil_to_tensor(ImageOps.exif_transpose(image))
        label = str(path)
    h, w = tensor.shape[-2:]
    if min(h, w) < MIN_SIDE:
        raise ImageError(f"{label}: image is {w}x{h} px; the network needs at least {MIN_SIDE} px on each side")
    return tensor


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


def check_output_path(path: str | os.PathLike) -> Path:
    """Fail early, before any work, if ``path`` cannot be written as an image."""
    path = Path(path)
    if path.is_dir():
        raise ImageError(f"{path}: is a folder; give a file name such as {path / 'out.png'}")
    output_format(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.exists():
        raise ImageError(f"{path}: output folder {folder} does not exist")
    if not folder.is_dir():
        raise ImageError(f"{path}: {folder} is not a folder")
    if not os.access(folder, os.W_OK):
        raise ImageError(f"{path}: output folder {folder} is not writable")
    return path


def save_image(image: Tensor | Image.Image, path: str | os.PathLike, *, quality: int = 95) -> Path:
    """Write atomically: nothing at ``path`` changes unless the whole file was written."""
    path = check_output_path(path)
    fmt = output_format(path)
    pil = image if isinstance(image, Image.Image) else tensor_to_pil(image)
    options: dict[str, object] = {"icc_profile": srgb_icc()}
    if fmt in ("JPEG", "WEBP"):
        options["quality"] = quality
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            pil.save(f, format=fmt, **options)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise ImageError(f"{path}: cannot write ({exc.strerror or exc})") from None
        raise
    return path
