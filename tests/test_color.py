import torch

from impasto.color import luminance, match_colors, match_luminance, rgb_to_yiq, with_content_chroma, yiq_to_rgb


def test_yiq_round_trip_and_grey_has_no_chroma():
    image = torch.rand(1, 3, 8, 8)
    assert torch.allclose(yiq_to_rgb(rgb_to_yiq(image)), image, atol=1e-5)
    grey = torch.full((1, 3, 4, 4), 0.4)
    yiq = rgb_to_yiq(grey)
    assert torch.allclose(yiq[:, 0], torch.tensor(0.4)) and yiq[:, 1:].abs().max() < 1e-6


def test_luminance_is_grey():
    grey = luminance(torch.rand(1, 3, 8, 8))
    assert torch.equal(grey[:, 0], grey[:, 1]) and torch.equal(grey[:, 1], grey[:, 2])


def test_content_chroma_is_kept():
    content = torch.rand(1, 3, 16, 16) * 0.5 + 0.25  # away from the clamp
    result = torch.rand(1, 3, 16, 16) * 0.2 + 0.4
    mixed = with_content_chroma(result, content)
    assert torch.allclose(rgb_to_yiq(mixed)[:, 1:], rgb_to_yiq(content)[:, 1:], atol=1e-5)
    assert torch.allclose(rgb_to_yiq(mixed)[:, 0], rgb_to_yiq(result)[:, 0], atol=1e-5)


def test_match_luminance_takes_the_content_mean_and_spread():
    style = torch.rand(1, 3, 32, 32) * 0.3
    content = torch.rand(1, 3, 32, 32) * 0.4 + 0.3
    matched = rgb_to_yiq(match_luminance(style, content))[:, 0]
    target = rgb_to_yiq(content)[:, 0]
    assert abs(matched.mean() - target.mean()) < 1e-3 and abs(matched.std() - target.std()) < 1e-3


def test_match_colors_takes_the_content_colour_statistics():
    generator = torch.Generator().manual_seed(0)
    style = torch.rand(1, 3, 40, 40, generator=generator) * torch.tensor([0.2, 0.5, 0.3]).view(1, 3, 1, 1)
    mix = torch.tensor([[0.5, 0.2, 0.0], [0.1, 0.3, 0.1], [0.0, 0.2, 0.4]])
    content = 0.2 + torch.einsum("ij,bjhw->bihw", mix, torch.rand(1, 3, 40, 40, generator=generator))
    recoloured = match_colors(style, content)

    def stats(image):
        pixels = image.reshape(3, -1).double()
        return pixels.mean(1), torch.cov(pixels, correction=0)

    (mean_r, cov_r), (mean_c, cov_c) = stats(recoloured), stats(content)
    assert torch.allclose(mean_r, mean_c, atol=2e-3) and torch.allclose(cov_r, cov_c, atol=2e-3)
