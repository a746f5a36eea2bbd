"""Reading and writing images: every image inside impasto is a float tensor
``(1, 3, H, W)``, sRGB in [0, 1], on the CPU.

Reading (:mod:`impasto.imageio.read`) applies EXIF orientation, converts embedded ICC
profiles to sRGB, turns greyscale, palette, CMYK and 16-bit images into RGB and drops
alpha. Writing (:mod:`impasto.imageio.write`) picks the format from the extension, embeds
an sRGB profile and is atomic: a temporary file in the same folder, renamed over the
target only once complete. The same image gives the same bytes (the embedded profile
carries a fixed date). 16-bit PNG and TIFF: :mod:`impasto.imageio.sixteen`.

Safe to call from several threads at once: nothing here changes process-wide state
(Pillow's own decompression-bomb limit and the warning filters are left as they are;
the limit here is checked per image).
"""

from impasto.imageio.read import (
    IMAGE_SUFFIXES,
    LARGE_INPUT,
    MARGIN,
    MAX_PIXELS,
    MAX_STDIN_BYTES,
    PROFILE_DATE,
    STDIO,
    ImageInput,
    check_folder,
    header_size,
    load_image,
    pil_to_tensor,
    resize,
    size_of,
    srgb_icc,
    tensor_to_pil,
)
from impasto.imageio.write import (
    NAME_MAX,
    OUTPUT_FORMATS,
    check_bit_depth,
    check_output_path,
    output_format,
    save_bytes,
    save_image,
    save_text,
    temporary_name,
    write_atomically,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "LARGE_INPUT",
    "MARGIN",
    "MAX_PIXELS",
    "MAX_STDIN_BYTES",
    "NAME_MAX",
    "OUTPUT_FORMATS",
    "PROFILE_DATE",
    "STDIO",
    "ImageInput",
    "check_bit_depth",
    "check_folder",
    "check_output_path",
    "header_size",
    "load_image",
    "output_format",
    "pil_to_tensor",
    "resize",
    "save_bytes",
    "save_image",
    "save_text",
    "size_of",
    "srgb_icc",
    "temporary_name",
    "tensor_to_pil",
    "write_atomically",
]
