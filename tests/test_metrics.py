"""The quality figures (impasto.metrics) are measurements: check them."""

import pytest
import torch

from impasto.metrics import figures, pairwise_distances, references, sliced_wasserstein, structure


def test_sliced_wasserstein_zero_for_the_same_distribution_in_any_order():
    a = torch.randn(1, 8, 10, 12)
    shuffled = a.flatten(2)[..., torch.randperm(120)].reshape(a.shape)
    assert sliced_wasserstein(a, shuffled) == pytest.approx(0.0, abs=1e-9)


def test_sliced_wasserstein_of_a_shift_and_different_sizes():
    a = torch.randn(1, 4, 30, 30)
    # Shifting every channel by 1 moves each projection by the direction's sum of components.
    shifted = sliced_wasserstein(a, a + 1.0)
    assert 0.5 < shifted < 2.0
    assert sliced_wasserstein(a, torch.randn(1, 4, 20, 25)) < 0.3 < sliced_wasserstein(a, 3 * torch.randn(1, 4, 20, 25))


def test_figures_of_the_photo_itself_and_of_the_painting(vgg19):
    generator = torch.Generator().manual_seed(1)
    photo = torch.rand(1, 3, 48, 64, generator=generator) * 0.5
    painting = (torch.rand(1, 3, 64, 64, generator=generator) > 0.5).float()
    content, style = references(photo, painting, 64)
    assert content.shape[-2:] == (48, 64) and style.shape[-2:] == (55, 55)  # the photo's area, square
    style_d, content_d = figures(vgg19, content, content, style)
    assert style_d == pytest.approx(1.0) and content_d == pytest.approx(0.0, abs=1e-6)
    moved_style, moved_content = figures(vgg19, (content + 0.3 * painting[..., :48, :]).clamp(0, 1), content, style)
    assert moved_content > 0.05 and moved_style < 1.0


def test_pairwise_distances_on_a_grid():
    features = torch.zeros(1, 2, 64, 32)
    features[:, 0, :32] = 1.0  # top half one direction, bottom half the other
    features[:, 1, 32:] = 1.0
    d = pairwise_distances(features)
    assert d.shape == (16 * 32, 16 * 32)  # 32 rows, 16 columns
    assert d[0, 1].item() == pytest.approx(0.0) and d[0, -1].item() == pytest.approx(1.0)


def test_structure_is_one_for_the_photo_and_falls_as_the_layout_goes(vgg19):
    generator = torch.Generator().manual_seed(2)
    ys, xs = torch.meshgrid(torch.linspace(0, 1, 192), torch.linspace(0, 1, 256), indexing="ij")
    photo = torch.stack([xs, ys**2, (xs - ys).abs()]).unsqueeze(0)
    assert structure(vgg19, photo, photo) == pytest.approx(1.0)
    tinted = (photo * torch.tensor([0.6, 1.0, 0.8]).view(1, 3, 1, 1) + 0.1).clamp(0, 1)
    swapped = photo.roll(128, -1)  # the left and right halves exchanged
    scrambled = photo.flatten(2)[..., torch.randperm(192 * 256, generator=generator)].reshape(photo.shape)
    kept = structure(vgg19, tinted, photo)
    assert kept > 0.9
    assert structure(vgg19, swapped, photo) < kept - 0.3 and structure(vgg19, scrambled, photo) < kept - 0.3
