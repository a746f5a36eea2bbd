import pytest
import torch

from impasto.errors import ConfigError
from impasto.objective.losses import gram_loss
from impasto.objective.targets import build_targets, normalized

LAYERS = ("relu1_1", "relu3_1", "relu5_1")


def test_normalized_weights():
    assert normalized(None, 4) == [0.25] * 4
    assert normalized([3, 1], 2) == [0.75, 0.25]
    with pytest.raises(ConfigError, match="style_weights"):
        normalized([1.0], 2)


def test_blend_weights_one_zero_equal_the_single_style(tiny_encoder):
    content, a, b = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 48), torch.rand(1, 3, 40, 32)
    single = build_targets(tiny_encoder, content, [a], ["relu4_2"], LAYERS)
    blended = build_targets(tiny_encoder, content, [a, b], ["relu4_2"], LAYERS, [1.0, 0.0])
    for name in LAYERS:
        assert torch.allclose(single.style_gram[name], blended.style_gram[name])
        assert blended.style_offset[name] == pytest.approx(0.0, abs=1e-12)
    assert torch.equal(single.content["relu4_2"], blended.content["relu4_2"])


def test_blended_loss_equals_weighted_mean_of_per_style_losses(tiny_encoder):
    content, a, b = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32) ** 3
    weights = [0.3, 0.7]
    blended = build_targets(tiny_encoder, content, [a, b], ["relu4_2"], LAYERS, weights)
    alone = [build_targets(tiny_encoder, content, [s], ["relu4_2"], LAYERS) for s in (a, b)]
    features = tiny_encoder(torch.rand(1, 3, 32, 32))
    for name in LAYERS:
        mixed = gram_loss(features[name], blended.style_gram[name]) + blended.style_offset[name]
        separate = sum(w * gram_loss(features[name], t.style_gram[name]) for w, t in zip(weights, alone, strict=True))
        assert mixed.item() == pytest.approx(separate.item(), rel=1e-4)
        assert blended.style_offset[name] > 0


def test_targets_carry_no_gradient(tiny_encoder):
    content = torch.rand(1, 3, 32, 32, requires_grad=True)
    targets = build_targets(tiny_encoder, content, [torch.rand(1, 3, 32, 32)], ["relu4_2"], LAYERS)
    assert not targets.content["relu4_2"].requires_grad
    assert not any(g.requires_grad for g in targets.style_gram.values())


def test_histogram_targets_blend_quantile_functions(tiny_encoder):
    content, a, b = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 48), torch.rand(1, 3, 40, 32) ** 2
    only_a = build_targets(tiny_encoder, content, [a], ["relu4_2"], LAYERS, style_loss="wasserstein", histogram=True)
    only_b = build_targets(tiny_encoder, content, [b], ["relu4_2"], LAYERS, style_loss="wasserstein", histogram=True)
    blend = build_targets(
        tiny_encoder, content, [a, b], ["relu4_2"], LAYERS, [1.0, 3.0], style_loss="wasserstein", histogram=True
    )
    first = build_targets(tiny_encoder, content, [a, b], ["relu4_2"], LAYERS, [1.0, 0.0], histogram=True)
    for name in LAYERS:
        qa, qb = only_a.style_quantiles[name], only_b.style_quantiles[name]
        # The 1-D Wasserstein barycentre: the weighted mean of the quantile functions.
        assert torch.allclose(blend.style_quantiles[name], 0.25 * qa + 0.75 * qb, atol=1e-6)
        assert torch.allclose(first.style_quantiles[name], qa)
        assert bool((qa[:, 1:] >= qa[:, :-1]).all())  # quantile functions do not decrease
    assert not build_targets(tiny_encoder, content, [a], ["relu4_2"], LAYERS).style_quantiles
