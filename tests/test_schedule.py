import itertools
import math

import pytest
import torch
from PIL import Image

from impasto.imageio import load_image, resize, tensor_to_pil
from impasto.schedule import fit_longest_side, fit_pixels, scale_sizes


def test_fit_longest_side():
    assert fit_longest_side(300, 400, 256) == (192, 256)
    assert fit_longest_side(400, 300, 256) == (256, 192)
    assert fit_longest_side(100, 100, 64) == (64, 64)


def test_fit_pixels_keeps_area_and_aspect():
    h, w = fit_pixels(600, 800, 500 * 500)
    assert abs(h * w - 250_000) < 1000 and abs(w / h - 4 / 3) < 0.01


def test_resize_leaves_an_image_at_its_size_alone():
    image = torch.rand(1, 3, 20, 30)
    assert resize(image, (20, 30)) is image


def _pillow_pair():
    generator = torch.Generator().manual_seed(1)
    image = torch.nn.functional.interpolate(torch.rand(1, 3, 12, 16, generator=generator), size=(60, 80))
    return load_image(tensor_to_pil(image))  # 8-bit values, as Pillow sees them


def test_bilinear_resize_follows_pillow():
    image = _pillow_pair()
    ours = resize(image, (27, 36), "bilinear")
    theirs = load_image(tensor_to_pil(image).resize((36, 27), Image.BILINEAR))
    assert (ours - theirs).abs().max().item() < 1.01 / 255  # Pillow rounds to 8 bits


def test_bicubic_resize_is_close_to_pillow():
    # torch's cubic kernel is a = -0.75, Pillow's a = -0.5: slightly sharper, same support.
    image = _pillow_pair()
    ours = resize(image, (27, 36), "bicubic")
    theirs = load_image(tensor_to_pil(image).resize((36, 27), Image.BICUBIC))
    assert (ours - theirs).abs().mean().item() < 2 / 255


def test_scale_schedule():
    sizes = scale_sizes((384, 512), 128)
    assert sizes[-1] == (384, 512)
    assert max(sizes[0]) >= 128 and max(sizes[0]) < 128 * math.sqrt(2)
    for small, large in itertools.pairwise(sizes):
        assert large[1] / small[1] == pytest.approx(math.sqrt(2), rel=0.02)
    assert [max(s) for s in sizes] == [128, 181, 256, 362, 512]
    assert scale_sizes((100, 120), 128) == [(100, 120)]
    assert scale_sizes((384, 512), None) == [(384, 512)]
    assert scale_sizes((288, 384), None, 3) == [(144, 192), (204, 272), (288, 384)]
    assert scale_sizes((288, 384), 128, 1) == [(288, 384)]


def test_scales_above_the_detail_size_take_as_many_pixel_steps_as_one_of_that_size():
    from impasto.presets import PRESETS
    from impasto.schedule import LEAST_DETAIL_STEPS, plan

    recipe = PRESETS["print"].replace(size=3508)
    schedule = plan(recipe, 2480, 3508)
    preview = plan(recipe.replace(detail_size=None), 2480, 3508)
    assert schedule.sizes == preview.sizes  # the same scales, fewer steps at the large ones
    for (h, w), steps, full in zip(schedule.sizes, schedule.steps, preview.steps, strict=True):
        if max(h, w) <= 512:
            assert steps == full
        else:
            assert LEAST_DETAIL_STEPS <= steps < full
            assert steps == LEAST_DETAIL_STEPS or steps * h * w == pytest.approx(full * 512 * 512 * h / w, rel=0.1)
    assert schedule.steps[-3:] == (LEAST_DETAIL_STEPS,) * 3
    assert plan(PRESETS["print"].replace(size=512), 768, 1024).steps == plan(PRESETS["default"], 768, 1024).steps


def test_above_the_look_size_the_content_weight_stops_growing():
    from impasto.presets import PRESETS
    from impasto.schedule import content_weight_at, style_size_at

    default, printed = PRESETS["default"], PRESETS["print"]
    assert printed.look_size == 512
    for size in [(96, 128), (384, 512), (288, 384)]:  # at and under the look size: nothing changes
        assert content_weight_at(printed, size) == content_weight_at(default, size)
    preview = content_weight_at(default, (384, 512))
    assert content_weight_at(default, (2480, 3508)) > 1.8 * preview  # the size rule keeps growing
    for size in [(768, 1024), (1536, 2048), (2480, 3508)]:
        assert content_weight_at(printed, size) == preview
        assert style_size_at((640, 1024), size, printed) == (640, 1024)  # the painting at its own pixels
