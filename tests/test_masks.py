"""Regional styles: masks read from files, resized per scale and layer, and confining
each style to its region."""

import pytest
import torch
from PIL import Image

from impasto.config import StyleConfig
from impasto.engine import stylize
from impasto.errors import ConfigError, ImageError
from impasto.objective.losses import feature_moments, gram, gram_loss, masked_moments, wasserstein_loss
from impasto.objective.masks import gaussian_blur, label_masks, layer_mask, load_masks, scale_masks
from impasto.runtime import Runtime


def _textures():
    """A grey photo-like gradient and two styles far apart in colour."""
    generator = torch.Generator().manual_seed(5)
    ys, xs = torch.meshgrid(torch.linspace(0, 1, 48), torch.linspace(0, 1, 64), indexing="ij")
    content = (0.3 + 0.4 * (xs + ys) / 2).expand(1, 3, 48, 64).clone()
    noise = torch.rand(1, 1, 64, 64, generator=generator)
    red = torch.cat([0.6 + 0.4 * noise, 0.1 * noise, 0.1 * noise], dim=1)
    blue = torch.cat([0.1 * noise, 0.2 * noise, 0.6 + 0.4 * noise], dim=1)
    return content, red, blue


def _halves(h=48, w=64):
    left = torch.zeros(1, 1, h, w)
    left[..., : w // 2] = 1.0
    return torch.cat([left, 1 - left])


def test_masked_moments_with_a_full_mask_are_the_plain_ones():
    f = torch.randn(1, 5, 6, 7)
    mean, second = masked_moments(f, torch.ones(1, 1, 6, 7))
    ref_mean, ref_second = feature_moments(f)
    assert torch.allclose(mean, ref_mean, atol=1e-6) and torch.allclose(second, ref_second, atol=1e-5)


def test_masked_moments_only_see_the_positions_under_the_mask():
    f = torch.randn(1, 4, 6, 8)
    mask = torch.zeros(1, 1, 6, 8)
    mask[..., :3, :] = 1
    mean, second = masked_moments(f, mask)
    ref_mean, ref_second = feature_moments(f[..., :3, :])
    assert torch.allclose(mean, ref_mean, atol=1e-6) and torch.allclose(second, ref_second, atol=1e-5)
    g = gram(f[..., :3, :])
    assert gram_loss(f, g, mask).item() == pytest.approx(0.0, abs=1e-10)
    changed = f.clone()
    changed[..., 3:, :] += 5.0  # outside the mask: no effect
    assert gram_loss(changed, g, mask).item() == pytest.approx(0.0, abs=1e-10)
    cov = ref_second - ref_mean.unsqueeze(-1) * ref_mean.unsqueeze(-2)
    from impasto.objective.linalg import psd_sqrt

    w2 = wasserstein_loss(changed, ref_mean, cov, psd_sqrt(cov), mask)
    assert w2.item() == pytest.approx(0.0, abs=1e-4)


def test_label_image_gives_one_mask_per_colour_darkest_first(tmp_path):
    image = torch.zeros(1, 3, 20, 30)
    image[..., :, 10:20] = torch.tensor([1.0, 1.0, 0.0]).view(1, 3, 1, 1)  # yellow, lightest
    image[..., :, 20:] = torch.tensor([0.8, 0.0, 0.0]).view(1, 3, 1, 1)  # dark red
    masks = label_masks(image, 3)
    assert masks.shape == (3, 1, 20, 30)
    assert torch.equal(masks.sum(0), torch.ones(1, 20, 30))
    assert masks[0, 0, :, :10].all() and masks[1, 0, :, 20:].all() and masks[2, 0, :, 10:20].all()
    path = tmp_path / "labels.png"
    Image.fromarray((image[0].permute(1, 2, 0) * 255).round().byte().numpy()).save(path)
    assert torch.equal(load_masks([path], 3, 30 / 20), masks)
    with pytest.raises(ImageError, match=r"labels\.png: has 3 colour regions for 4 style images"):
        load_masks([path], 4, 30 / 20)


def test_greyscale_masks_are_read_per_style(tmp_path):
    paths = []
    for k, value in enumerate((255, 64)):
        paths.append(tmp_path / f"m{k}.png")
        Image.new("L", (30, 20), value).save(paths[-1])
    masks = load_masks(paths, 2, 1.5)
    assert masks.shape == (2, 1, 20, 30)
    assert masks[0].min() == 1.0 and masks[1].max() == pytest.approx(64 / 255)


def test_mask_errors_name_the_file_or_option(tmp_path):
    square = tmp_path / "square.png"
    Image.new("L", (20, 20), 255).save(square)
    with pytest.raises(ImageError, match=r"square\.png: a 20x20 mask does not have the shape"):
        load_masks([square], 1, 1.5)
    with pytest.raises(ConfigError, match=r"^`masks`: gives 2 masks for 3 style images") as raised:
        load_masks([square, square], 3, 1.0)
    assert raised.value.field == "masks"
    content, red, _ = _textures()
    config = StyleConfig(size=32, steps=1)
    with pytest.raises(ConfigError, match=r"^`style_masks`: apply only with `masks`"):
        stylize(content, [red], config, style_masks=(square,), runtime=CPU)


def test_masks_follow_scales_and_layers():
    masks = _halves(48, 64)
    small = scale_masks(masks, (24, 32))
    assert small.shape == (2, 1, 24, 32) and torch.allclose(small.sum(0), torch.ones(1, 24, 32), atol=1e-5)
    deep = layer_mask(masks[:1], 8, (6, 8))
    assert deep.shape == (1, 1, 6, 8) and deep[..., :4].min() == 1 and deep[..., 4:].max() == 0
    soft = scale_masks(masks, (48, 64), feather=3.0, final=64)
    row = soft[0, 0, 24]
    assert 0 < row[31] < 1 and 0 < row[32] < 1 and row[0] == pytest.approx(1) and row[-1] == pytest.approx(0)
    assert torch.allclose(gaussian_blur(torch.ones(1, 1, 9, 9), 2.0), torch.ones(1, 1, 9, 9))


CPU = Runtime(device="cpu")


@pytest.mark.slow
@pytest.mark.parametrize("style_loss", ["gram", "wasserstein"])
def test_a_mask_confines_each_style_to_its_region(vgg19, style_loss):
    content, red, blue = _textures()
    halves = _halves().expand(2, 3, 48, 64)
    masks = (halves[0:1], halves[1:2])  # one greyscale mask per style: white = that style
    config = StyleConfig(
        size=64,
        steps=100,
        content_weight=0.01,
        style_loss=style_loss,
        style_layers=("relu1_1", "relu2_1", "relu3_1"),
    )
    out = stylize(content, [red, blue], config, encoder=vgg19, masks=masks, runtime=CPU)
    left, right = out[..., :, :28], out[..., :, 36:]
    red_minus_blue = lambda part: (part[:, 0] - part[:, 2]).mean().item()  # noqa: E731
    assert red_minus_blue(left) > 0.15, "the left half took the red style"
    assert red_minus_blue(right) < -0.15, "the right half took the blue style"
    # The masks, not the photo, decide: swapped masks swap the sides.
    swapped = stylize(content, [red, blue], config, encoder=vgg19, masks=masks[::-1], runtime=CPU)
    assert red_minus_blue(swapped[..., :, :28]) < -0.15 and red_minus_blue(swapped[..., :, 36:]) > 0.15


@pytest.mark.slow
def test_a_style_mask_picks_the_part_of_the_style_used(vgg19):
    content, red, blue = _textures()
    both = torch.cat([red, blue], dim=-1)  # left half red, right half blue
    right = torch.zeros(1, 3, 64, 128)
    right[..., 64:] = 1
    config = StyleConfig(
        size=64,
        steps=60,
        content_weight=0.01,
        style_loss="wasserstein",  # well conditioned: L-BFGS on these Grams oscillates
        style_weight=1.0,
        style_layers=("relu1_1", "relu2_1", "relu3_1"),
    )
    blue_minus_red = lambda image: (image[:, 2] - image[:, 0]).mean().item()  # noqa: E731

    def run(style_masks):
        masks = (torch.ones(1, 3, 48, 64),)
        return stylize(content, [both], config, encoder=vgg19, masks=masks, style_masks=style_masks, runtime=CPU)

    from_right = blue_minus_red(run((right,)))
    from_left = blue_minus_red(run((1 - right,)))
    whole = blue_minus_red(run(None))
    assert from_right > 0.5, "only the blue half of the style image was used"
    assert from_left < -0.5, "only the red half of the style image was used"
    assert from_left < whole - 0.25 and whole + 0.25 < from_right


def test_regional_styles_keep_their_own_style_loss_and_histogram_term(vgg19):
    content, red, blue = _textures()
    halves = _halves().expand(2, 3, 48, 64)
    config = StyleConfig(size=64, steps=3, style_loss="wasserstein", histogram_weight=1.0)
    events = []
    masked = stylize(content, [red, blue], config, encoder=vgg19, masks=(halves[0:1], halves[1:2]), runtime=CPU,
                     on_progress=events.append)  # fmt: skip
    assert masked.shape == (1, 3, 48, 64)
    assert {k.split(".")[0] for k in events[0].terms} == {"content", "style", "histogram"}
    assert all(events[0].terms[f"histogram.{layer}"] > 0 for layer in config.style_layers)


def _region(mask: torch.Tensor, quantiles: torch.Tensor, layer: str = "relu1_1", weight: float = 1.0):
    from impasto.objective.targets import Region

    return Region(weight, {layer: mask}, {layer: float(mask.mean())}, quantiles={layer: quantiles})


def _histogram_value_and_gradient(term, features: torch.Tensor, layer: str = "relu1_1"):
    from impasto.objective.terms import Features

    features = features.clone().requires_grad_(True)
    value = term(Features(features, {layer: features}, ()))
    value.backward()
    return value.detach(), features.grad


def test_a_region_over_the_whole_picture_is_the_plain_histogram_term():
    from impasto.objective.histogram import channel_quantiles
    from impasto.objective.terms import HistogramTerm, RegionalHistogramTerm

    generator = torch.Generator().manual_seed(3)
    features = torch.relu(torch.randn(1, 8, 12, 16, generator=generator))
    target = channel_quantiles(torch.relu(torch.randn(1, 8, 20, 20, generator=generator) * 2 + 0.5), 1024)
    plain = _histogram_value_and_gradient(HistogramTerm("relu1_1", target, 0.7), features)
    whole = RegionalHistogramTerm("relu1_1", (_region(torch.ones(1, 1, 12, 16), target),), 0.7)
    regional = _histogram_value_and_gradient(whole, features)
    assert regional[0].item() == pytest.approx(plain[0].item(), rel=1e-5)
    assert torch.allclose(regional[1], plain[1], rtol=1e-4, atol=1e-8)


def test_each_region_matches_the_distribution_of_its_own_positions_to_its_style():
    """Two hard regions: each one's share of the term is the plain histogram loss of its
    positions' values against its own style's quantiles, times its share of the picture;
    the gradient outside a region comes from the other region only."""
    from impasto.objective.histogram import channel_quantiles, histogram_loss
    from impasto.objective.terms import RegionalHistogramTerm

    generator = torch.Generator().manual_seed(4)
    features = torch.relu(torch.randn(1, 6, 10, 16, generator=generator))
    left = torch.zeros(1, 1, 10, 16)
    left[..., :6] = 1.0
    dark = channel_quantiles(torch.relu(torch.randn(1, 6, 16, 16, generator=generator) * 0.3), 1024)
    bright = channel_quantiles(torch.relu(torch.randn(1, 6, 16, 16, generator=generator) + 2.0), 1024)
    term = RegionalHistogramTerm("relu1_1", (_region(left, dark, weight=2.0), _region(1 - left, bright)), 1.0)
    value, grad = _histogram_value_and_gradient(term, features)
    share = 6 / 16
    expected = 2.0 * share * histogram_loss(features[..., :6].contiguous(), dark) + (1 - share) * histogram_loss(
        features[..., 6:].contiguous(), bright
    )
    assert value.item() == pytest.approx(expected.item(), rel=1e-4)
    only_right = RegionalHistogramTerm("relu1_1", (_region(1 - left, bright),), 1.0)
    _, right_grad = _histogram_value_and_gradient(only_right, features)
    assert torch.equal(right_grad[..., :6], torch.zeros_like(right_grad[..., :6]))
    assert torch.allclose(grad[..., 6:], right_grad[..., 6:], rtol=1e-5, atol=1e-9)


def test_masked_quantiles_are_those_of_the_positions_under_the_mask():
    from impasto.objective.histogram import channel_quantiles, masked_quantiles

    generator = torch.Generator().manual_seed(6)
    features = torch.randn(1, 5, 9, 11, generator=generator)
    mask = torch.zeros(1, 1, 9, 11)
    mask[..., 2:7, 3:] = 1.0
    inside = features[..., 2:7, 3:].contiguous()
    assert torch.allclose(masked_quantiles(features, mask, 64), channel_quantiles(inside, 64), atol=1e-6)
    whole = masked_quantiles(features, torch.ones(1, 1, 9, 11), 64)
    assert torch.allclose(whole, channel_quantiles(features, 64), atol=1e-6)
    # A position counts by its weight: values 0..99, the upper half weighted twice the
    # lower, put the median where a quarter of the lower half's weight lies below it: ~62.
    values = torch.arange(100.0).view(1, 1, 1, 100)
    weights = torch.where(values >= 50, 1.0, 0.5)
    median = masked_quantiles(values, weights, 101)[0, 50].item()
    assert 61 < median < 64
