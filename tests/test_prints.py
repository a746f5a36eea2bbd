"""Print sizes: ``--print PAPER --dpi N`` picks the pixels for the photo's shape and the
file carries the resolution; ``--bit-depth 16`` writes 16-bit PNG and TIFF files whose
samples are exactly the picture's, rounded to 16 bits."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from impasto import cli
from impasto.errors import ConfigError
from impasto.imageio import save_image, srgb_icc
from impasto.imageio.sixteen import to_uint16, write_png16, write_tiff16
from impasto.presets import PRESETS
from impasto.prints import paper_mm, print_pixels


def test_a_paper_is_turned_as_the_photo_is_and_keeps_its_shape():
    assert print_pixels("A4", 300, (3000, 4000)) == (2480, 3307)  # landscape 4:3: the height fills 210 mm
    assert print_pixels("a4", 300, (4000, 3000)) == (3307, 2480)  # portrait: turned
    assert print_pixels("A4", 300, (2000, 4000)) == (1754, 3508)  # 2:1: the width fills 297 mm
    assert print_pixels("30x20cm", 100, (200, 300)) == (787, 1181)
    assert print_pixels("8x10in", 150, (1000, 1000)) == (1200, 1200)
    assert paper_mm("letter") == (215.9, 279.4) and paper_mm("297 x 420 mm") == (297, 420)
    for bad in ("A9", "30x20", "0x20cm", "big"):
        with pytest.raises(ConfigError, match="print"):
            paper_mm(bad)


def _png_samples(data: bytes) -> tuple[np.ndarray, dict[bytes, bytes]]:
    """A PNG's chunks and its 16-bit RGB samples, decoded here from the specification."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, at, idat = {}, 8, b""
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        assert struct.unpack(">I", data[at + 8 + length : at + 12 + length])[0] == zlib.crc32(kind + body)
        chunks[kind] = body
        idat += body if kind == b"IDAT" else b""
        at += 12 + length
    w, h, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, colour) == (16, 2)
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(h, 1 + w * 6)
    return _unfiltered(raw).view(">u2").reshape(h, w, 3).astype(np.uint16), chunks


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def _unfiltered(raw: np.ndarray, bpp: int = 6) -> np.ndarray:
    """The rows of a PNG's decompressed data with each row's filter undone, byte by byte as
    the specification reads them (type 0 none, 1 Sub, 2 Up, 3 Average, 4 Paeth)."""
    out = np.zeros((raw.shape[0], raw.shape[1] - 1), dtype=np.uint8)
    for y, row in enumerate(raw):
        kind, data = int(row[0]), row[1:].astype(int)
        assert kind in range(5)
        for x, value in enumerate(data):
            a = int(out[y, x - bpp]) if x >= bpp else 0
            b = int(out[y - 1, x]) if y else 0
            c = int(out[y - 1, x - bpp]) if x >= bpp and y else 0
            guess = (0, a, b, (a + b) // 2, _paeth(a, b, c))[kind]
            out[y, x] = (value + guess) % 256
    return out


def test_16_bit_png_and_tiff_hold_the_pictures_samples():
    """Over several bands of rows (filtered, or compressed as strips, apart)."""
    image = torch.rand(1, 3, 150, 41, generator=torch.Generator().manual_seed(0))
    expected = (image[0].permute(1, 2, 0).double() * 65535).round().numpy().astype(np.uint16)
    assert (to_uint16(image) == expected).all()
    stream = io.BytesIO()
    write_png16(stream, expected, 300, srgb_icc())
    samples, chunks = _png_samples(stream.getvalue())
    assert (samples == expected).all()
    kinds = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), np.uint8).reshape(150, -1)[:, 0]
    assert len(set(kinds.tolist())) > 1  # each row its own filter
    assert struct.unpack(">IIB", chunks[b"pHYs"]) == (11811, 11811, 1)  # 300 dpi in pixels per metre
    with Image.open(io.BytesIO(stream.getvalue())) as png:
        assert png.size == (41, 150) and png.info["icc_profile"] == srgb_icc()
    stream = io.BytesIO()
    write_tiff16(stream, expected, 240, srgb_icc())
    with Image.open(io.BytesIO(stream.getvalue())) as tiff:  # Pillow reads it (as 8 bits)
        assert tiff.size == (41, 150) and tiff.info["dpi"] == (240, 240)
        assert tiff.info["icc_profile"] == srgb_icc()
        eight = np.asarray(tiff.convert("RGB"), dtype=np.int16)
    assert np.abs(eight - (expected.astype(np.float64) / 257).round()).max() <= 1
    cv2 = pytest.importorskip("cv2")  # a reader of every 16-bit sample
    decoded = cv2.imdecode(np.frombuffer(stream.getvalue(), np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded.dtype == np.uint16 and (decoded[:, :, ::-1] == expected).all()


def test_save_image_refuses_16_bits_where_the_format_has_none(tmp_path):
    with pytest.raises(ConfigError, match=r"16 bits per channel need a \.png or \.tiff output, not x\.jpg"):
        save_image(torch.rand(1, 3, 20, 20), tmp_path / "x.jpg", bit_depth=16)
    assert not (tmp_path / "x.jpg").exists()
    save_image(torch.rand(1, 3, 20, 20), tmp_path / "x.jpg", dpi=150)
    with Image.open(tmp_path / "x.jpg") as jpeg:
        assert jpeg.info["dpi"] == (150, 150)


def _stylize(*args) -> tuple[int, str]:
    import contextlib

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = cli.main(["stylize", *map(str, args)])
    return code, err.getvalue()


@pytest.fixture
def pair(tmp_path):
    photo, painting = tmp_path / "photo.png", tmp_path / "painting.png"
    Image.radial_gradient("L").convert("RGB").resize((90, 60)).save(photo)
    Image.effect_noise((64, 64), 60).convert("RGB").save(painting)
    return photo, painting


def test_print_size_and_16_bits_from_the_command_line(pair, tmp_path):
    photo, painting = pair
    out = tmp_path / "print.tiff"
    code, err = _stylize(photo, painting, "-o", out, "--print", "3x2cm", "--dpi", "100", "--bit-depth", "16",
                         "--steps", "3", "-q")  # fmt: skip
    assert code == 0, err
    assert "3x2cm at 100 dpi: 118x79 px (3.0 x 2.0 cm)" in err
    with Image.open(out) as tiff:
        assert tiff.size == (118, 79) and tiff.info["dpi"] == (100, 100)
    cv2 = pytest.importorskip("cv2")
    samples = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert samples.dtype == np.uint16 and samples.shape == (79, 118, 3)
    assert len(np.unique(samples)) > 256  # more levels than 8 bits hold


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--print", "A4", "--size", "300"], "--print: sets the picture's size; give it without --size"),
        (["--print", "A9"], "--print: 'A9' is not a paper size"),
        (["--print", "9" * 400 + "x10cm"], "no print is that large"),
        (["--print", "A6", "-o", "{tmp}/out.webp"], "--print: {tmp}/out.webp: a WebP file holds no print resolution"),
        (["--dpi", "5"], "--dpi: must be from 10 to 2400"),
        (["--bit-depth", "16", "-o", "{tmp}/out.webp"], "--bit-depth: 16 bits per channel need a .png or .tiff"),
    ],
)
def test_bad_print_options_are_one_line_before_any_work(pair, tmp_path, args, message):
    photo, painting = pair
    args = [a.format(tmp=tmp_path) for a in args]
    output = [] if "-o" in args else ["-o", tmp_path / "out.png"]
    code, err = _stylize(photo, painting, *output, *args, "--steps", "3", "-q")
    assert code == 2 and message.format(tmp=tmp_path) in err and err.strip().count("\n") <= 1, err
    assert list(tmp_path.glob("out.*")) == []


def test_a_print_too_large_for_the_memory_names_the_dpi_that_fits(pair, tmp_path, monkeypatch):
    import impasto.engine.memory

    monkeypatch.setattr(impasto.engine.memory, "available_bytes", lambda device: 2 * 2**30)
    photo, painting = pair
    code, err = _stylize(photo, painting, "-o", tmp_path / "out.png", "--print", "A3", "-q")
    assert code == 2, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("impasto: error: --print: A3 at 300 dpi: a 4961x3307 run needs about"), line
    fits = int(line.split("at most --dpi ")[1].split()[0])
    assert 30 < fits < 300
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("paper", ["A4", "A3"])
def test_the_dpi_advised_under_a_memory_budget_is_one_the_planner_accepts(pair, tmp_path, paper):
    from impasto.engine.stylizer import Stylizer
    from impasto.imageio import header_size
    from impasto.inputs import Inputs
    from impasto.prints import print_pixels
    from impasto.runtime import Runtime

    photo, painting = pair
    code, err = _stylize(photo, painting, "-o", tmp_path / "out.png", "--print", paper, "--max-memory", "1G", "-q")
    line = err.strip().splitlines()[-1]
    assert code == 2 and line.startswith(f"impasto: error: --print: {paper} at 300 dpi: a "), err
    assert "--size" not in line and "--pixels" not in line, line  # --print refuses both
    printed = err.strip().splitlines()[0]  # the print line and the error say the same pixels
    assert printed.split(": ")[-1].split()[0] == line.split(": a ")[1].split()[0], err
    advice = int(line.split("at most --dpi ")[1].split()[0])
    size = max(print_pixels(paper, advice, header_size(photo)))
    stylizer = Stylizer(Runtime(max_memory="1G", device="cpu"))
    stylizer.plan(Inputs.of(photo, [painting]), PRESETS["default"].replace(size=size))  # fits: no TooLarge
    assert not (tmp_path / "out.png").exists()


def test_from_a_preview_the_run_starts_at_its_size_from_its_pixels(pair, tmp_path, monkeypatch):
    import impasto.engine.plan as module
    from impasto.imageio import load_image

    photo, painting = pair
    preview = tmp_path / "preview.png"
    assert _stylize(photo, painting, "-o", preview, "--size", "60", "--steps", "3", "-q")[0] == 0
    starts = []
    real = module.optimize_scale

    def spy(evaluator, image, steps, *args, **kwargs):
        starts.append((image.detach().clone(), steps))
        return real(evaluator, image, steps, *args, **kwargs)

    monkeypatch.setattr(module, "optimize_scale", spy)
    out = tmp_path / "large.png"
    code, err = _stylize(photo, painting, "-o", out, "--from", preview, "--size", "120", "--steps", "2", "-q")
    assert code == 0, err
    first, steps = starts[0]
    assert first.shape[-2:] == (40, 60) and steps == 10  # the preview's size, a few steps there
    assert (first - load_image(preview)).abs().max() < 1e-6  # its own pixels (colours as painted)
    assert [s[0].shape[-1] for s in starts] == [60, 85, 120] and [s[1] for s in starts] == [10, 2, 2]
    with Image.open(out) as large:
        assert large.size == (120, 80)
    for args, message in (
        (["--from", preview, "--size", "50"], "not smaller than the picture asked"),
        (["--from", painting, "--size", "120"], "not a picture of"),
        (["--from", preview, "--init", "noise", "--size", "120"], "give it without --init"),
    ):
        code, err = _stylize(photo, painting, "-o", tmp_path / "no.png", *args, "-q")
        assert code == 2 and message in err, err
    assert not (tmp_path / "no.png").exists()


def test_a_continued_recipe_starts_at_the_preview_and_keeps_its_look():
    from impasto.presets import PRESETS
    from impasto.prints import FROM_STEPS, continued
    from impasto.schedule import content_weight_at, plan

    preview, photo = (384, 512), (768, 1024)
    recipe = continued(PRESETS["print"].replace(size=2048), preview, photo)
    assert recipe.init == "image" and recipe.look_size == 512 and recipe.first_steps == FROM_STEPS
    schedule = plan(recipe, *photo)
    assert schedule.sizes[0] == preview and schedule.sizes[-1] == (1536, 2048)
    assert schedule.content_weight == content_weight_at(PRESETS["default"], preview)  # the preview's weight
    # Any recipe's larger scales take the print preset's steps, unless it sets its own.
    assert continued(PRESETS["default"].replace(size=2048), preview, photo).detail_size == 512
    assert continued(PRESETS["default"].replace(size=2048, detail_size=1024), preview, photo).detail_size == 1024
    # A print that is not a power of √2 larger starts at the first scale at least the preview's size.
    a4 = plan(continued(PRESETS["default"].replace(size=3307), preview, photo), *photo)
    # (Its steps, FROM_STEPS too, cut to as many pixel-steps as 512 px ones, at least 8.)
    assert max(a4.sizes[0]) == 585 and a4.steps == (8, 31, 16, 8, 8, 8)
    with pytest.raises(ConfigError, match="not a picture of the photo's shape"):
        continued(PRESETS["print"].replace(size=2048), (384, 384), photo)
    with pytest.raises(ConfigError, match="not smaller than the picture asked"):
        continued(PRESETS["print"].replace(size=512), preview, photo)
