"""The quality figures (impasto.metrics) are measurements: check them."""

import pytest
import torch

from impasto.metrics import figures, references, sliced_wasserstein


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
