import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from impasto.errors import ImageError
from impasto.imageio import check_output_path, load_image, save_image


def _write(image: Image.Image, path, **options):
    image.save(path, **options)
    return path


def _s15(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def linear_rgb_icc() -> bytes:
    """A minimal ICC v2 matrix/TRC profile: sRGB primaries with a linear (gamma 1) curve.

    Values under this profile are linear light, so a mid-grey 128 becomes about 188 in sRGB.
    """
    xyz = lambda x, y, z: b"XYZ " + b"\0" * 4 + _s15(x) + _s15(y) + _s15(z)  # noqa: E731
    curve = b"curv" + b"\0" * 4 + struct.pack(">IH", 1, 0x0100) + b"\0\0"
    tags = [
        (b"wtpt", xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", xyz(0.4361, 0.2225, 0.0139)),
        (b"gXYZ", xyz(0.3851, 0.7169, 0.0971)),
        (b"bXYZ", xyz(0.1431, 0.0606, 0.7141)),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for signature, body in tags:
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = (
        struct.pack(">I", size)
        + b"\0" * 4
        + struct.pack(">I", 0x02100000)
        + b"mntrRGB XYZ "
        + b"\0" * 12
        + b"acsp"
        + b"\0" * 24
        + struct.pack(">I", 0)
        + _s15(0.9642)
        + _s15(1.0)
        + _s15(0.8249)
        + b"\0" * 48
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data


def pixel(tensor, y=0, x=0):
    return [round(v * 255) for v in tensor[0, :, y, x].tolist()]


def test_rgb_png_round_values(tmp_path):
    path = _write(Image.new("RGB", (20, 30), (10, 200, 255)), tmp_path / "a.png")
    image = load_image(path)
    assert image.shape == (1, 3, 30, 20) and image.dtype == torch.float32
    assert pixel(image) == [10, 200, 255]


def test_greyscale_becomes_three_equal_channels(tmp_path):
    image = load_image(_write(Image.new("L", (20, 20), 77), tmp_path / "g.png"))
    assert pixel(image) == [77, 77, 77]


def test_palette_image(tmp_path):
    palette_image = Image.new("P", (20, 20), 1)
    palette_image.putpalette([0, 0, 0, 250, 20, 90] + [0] * 762)
    assert pixel(load_image(_write(palette_image, tmp_path / "p.png"))) == [250, 20, 90]


def test_rgba_drops_alpha(tmp_path):
    image = load_image(_write(Image.new("RGBA", (20, 20), (10, 20, 30, 0)), tmp_path / "a.png"))
    assert image.shape[1] == 3 and pixel(image) == [10, 20, 30]


def test_cmyk_jpeg(tmp_path):
    image = load_image(_write(Image.new("CMYK", (24, 24), (0, 255, 255, 0)), tmp_path / "c.jpg", quality=100))
    r, g, b = pixel(image, 12, 12)
    assert r > 240 and g < 15 and b < 15


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_sixteen_bit_greyscale_is_scaled_not_clipped(tmp_path, suffix):
    values = np.array([[0, 32768, 65535] * 8] * 20, dtype=np.uint16)
    path = _write(Image.fromarray(values), tmp_path / f"g16{suffix}")
    image = load_image(path)
    assert image[0, 0, 0, :3].tolist() == pytest.approx([0.0, 32768 / 65535, 1.0], abs=1e-6)


def test_exif_orientation_is_applied(tmp_path):
    source = Image.new("RGB", (40, 20), (0, 0, 0))
    source.paste((255, 0, 0), (0, 0, 10, 20))  # red on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    image = load_image(_write(source, tmp_path / "o.jpg", exif=exif, quality=100))
    assert image.shape[-2:] == (40, 20)  # height 40, width 20 once rotated
    assert pixel(image, 2, 10)[0] > 200  # the red band is now on top
    assert pixel(image, 37, 10)[0] < 50


def test_embedded_icc_profile_is_converted_to_srgb(tmp_path):
    grey = Image.new("RGB", (20, 20), (128, 128, 128))
    plain = load_image(_write(grey, tmp_path / "plain.png"))
    tagged = load_image(_write(grey, tmp_path / "linear.png", icc_profile=linear_rgb_icc()))
    assert pixel(plain) == [128, 128, 128]
    assert all(180 <= v <= 195 for v in pixel(tagged))


def test_pil_image_and_tensor_inputs():
    assert pixel(load_image(Image.new("RGB", (20, 20), (1, 2, 3)))) == [1, 2, 3]
    tensor = torch.rand(3, 20, 24)
    assert torch.equal(load_image(tensor)[0], tensor)
    with pytest.raises(ImageError, match=r"\(4, 20, 24\)"):
        load_image(torch.rand(4, 20, 24))


# --- bad input: one clear message naming the file --------------------------------


def _png_bytes(size=(32, 32)) -> bytes:
    import io

    buffer = io.BytesIO()
    Image.new("RGB", size, (9, 9, 9)).save(buffer, "PNG")
    return buffer.getvalue()


def _bomb_png(width: int, height: int) -> bytes:
    data = bytearray(_png_bytes())
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


BAD_FILES = {
    "missing": (None, "no such file"),
    "folder": (None, "is a folder"),
    "empty.png": (b"", "empty"),
    "truncated.png": ("truncated", "truncated or corrupt"),
    "notes.png": (b"these are words, not pixels\n" * 10, "not an image"),
    "doc.pdf": (b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n", "not an image"),
    "bomb.png": ("bomb", "pixels"),
    "tiny.png": ("tiny", "at least 16 px"),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_input_file(tmp_path, name):
    content, message = BAD_FILES[name]
    path = tmp_path / name
    if name == "folder":
        path.mkdir()
    elif content == "truncated":
        path.write_bytes(_png_bytes((200, 200))[:-40])
    elif content == "bomb":
        path.write_bytes(_bomb_png(30000, 30000))
    elif content == "tiny":
        path.write_bytes(_png_bytes((8, 8)))
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageError) as error:
        load_image(path)
    assert str(path) in str(error.value) and message in str(error.value)
    assert "\n" not in str(error.value)


# --- writing ---------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff"])
def test_save_formats_round_trip(tmp_path, suffix):
    image = torch.zeros(1, 3, 24, 32)
    image[:, 0] = 1.0
    path = save_image(image, tmp_path / f"out{suffix}")
    with Image.open(path) as saved:
        assert saved.size == (32, 24)
        assert saved.info.get("icc_profile")  # sRGB embedded
    r, g, b = pixel(load_image(path), 5, 5)
    assert r > 245 and g < 10 and b < 10


def test_save_rejects_unknown_extension_and_missing_folder(tmp_path):
    with pytest.raises(ImageError, match=r"out\.bmp.*'\.bmp'"):
        save_image(torch.zeros(1, 3, 16, 16), tmp_path / "out.bmp")
    with pytest.raises(ImageError, match="does not exist"):
        check_output_path(tmp_path / "nowhere" / "out.png")
    assert list(tmp_path.iterdir()) == []


def test_failed_save_leaves_existing_file_untouched(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"precious")

    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"half an image")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(ImageError, match="No space left"):
        save_image(torch.zeros(1, 3, 16, 16), target)
    assert target.read_bytes() == b"precious"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_the_same_image_gives_the_same_bytes(tmp_path):
    import time

    image = torch.rand(1, 3, 20, 30, generator=torch.Generator().manual_seed(0))
    for ext in (".png", ".jpg", ".tiff"):
        first = save_image(image, tmp_path / f"a{ext}").read_bytes()
        time.sleep(1.1)  # the profile's date would differ by a second
        assert save_image(image, tmp_path / f"b{ext}").read_bytes() == first, ext


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow's own, at 89 Mpx
def test_loading_from_many_threads_at_once_changes_no_global_state(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    import impasto.imageio

    paths = []
    for k in range(8):
        path = tmp_path / f"i{k}.png"
        Image.new("RGB", (20 + k, 30), (10 * k, 100, 200)).save(path)
        paths.append(path)
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_bomb_png(12_000, 10_000))  # 120 Mpx: over impasto's limit, under twice Pillow's
    limit = Image.MAX_IMAGE_PIXELS

    def load(path):
        try:
            return tuple(load_image(path).shape), None
        except ImageError as exc:
            return None, str(exc)

    jobs = [*paths, bomb] * 6
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(load, jobs))
    for path, (shape, error) in zip(jobs, results, strict=True):
        if path == bomb:
            assert shape is None and "over the limit" in error
        else:
            assert shape == (1, 3, 30, 20 + int(path.stem[1:])) and error is None
    assert limit == Image.MAX_IMAGE_PIXELS
    assert "warnings" not in vars(impasto.imageio)  # no process-wide filter is touched


def test_bad_tensors_and_pillow_images_given_to_the_api_are_image_errors():
    nan = torch.full((1, 3, 20, 20), float("nan"))
    with pytest.raises(ImageError, match="content: the tensor has NaN"):
        load_image(nan, name="content")
    closed = Image.new("RGB", (20, 20))
    closed.close()
    with pytest.raises(ImageError, match="style: cannot read this Pillow image"):
        load_image(closed, name="style")


def test_the_atomic_writer_leaves_the_old_file_whole_when_a_write_fails(tmp_path):
    import os

    from impasto.imageio import write_atomically

    target = tmp_path / "frames.bin"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)

    def broken(stream):
        stream.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(ImageError, match=r"frames\.bin: cannot write \(No space left on device\)"):
        write_atomically(target, broken)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["frames.bin"]
    write_atomically(target, lambda stream: stream.write(b"new"))
    assert target.read_bytes() == b"new" and (target.stat().st_mode & 0o777) == 0o640
