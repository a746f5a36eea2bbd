"""The neighbour term: matches found in blocks are the full matrix's, its gradient is the
finite differences' (matches held), the painting's samples are the same whole and in
tiles, and the term runs through the recipe, the tiles and regions as the others do."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from impasto.config import StyleConfig, validate
from impasto.engine.optimize import WholeImage
from impasto.engine.tiles import Tiled, statistics_in_tiles
from impasto.errors import ConfigError
from impasto.imageio import resize
from impasto.objective.neighbours import (
    directions,
    nearest,
    neighbour_sum,
    painting_samples,
    positions_of,
    sample_directions,
    sample_positions,
)
from impasto.objective.targets import (
    StatisticsBase,
    StatisticsKind,
    build_region_targets,
    build_targets,
    style_statistics,
)
from impasto.objective.terms import NeighbourTerm, Objective, RegionalNeighbourTerm, recipe_objective

LAYERS = ("relu3_1", "relu4_1")


@pytest.mark.parametrize("block", [1, 7, 64, 10_000])
def test_matches_found_in_blocks_are_the_full_matrixs(block):
    generator = torch.Generator().manual_seed(0)
    queries, keys = torch.randn(300, 16, generator=generator), torch.randn(50, 16, generator=generator)
    full = (queries @ keys.T).argmax(dim=1)
    assert torch.equal(nearest(queries, keys, block_entries=block * 50), full)


def test_the_nearest_sample_is_the_most_similar_direction():
    keys = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    queries = torch.tensor([[0.9, 0.1], [0.2, 3.0], [-5.0, 1.0]])
    assert nearest(directions(queries, torch.zeros(2)), directions(keys, torch.zeros(2))).tolist() == [0, 1, 2]


def test_samples_are_a_fixed_choice_whose_prefixes_are_samples_too():
    a, b = sample_positions(100, 1000), sample_positions(100, 1000)
    assert torch.equal(a, b) and len(set(a.tolist())) == 100
    assert torch.equal(sample_positions(30, 1000), a[:30])
    assert a.max() > 900 and a[:10].max() > 100  # spread over the map, not its first rows
    assert sorted(sample_positions(100, 40).tolist()) == list(range(40))


def test_the_gradient_is_the_finite_differences_with_the_matches_held():
    generator = torch.Generator().manual_seed(1)
    samples = torch.randn(40, 6, generator=generator, dtype=torch.float64)
    keys, centre = sample_directions(samples)
    features = torch.randn(1, 6, 3, 4, generator=generator, dtype=torch.float64, requires_grad=True)
    weights = torch.rand(12, generator=generator, dtype=torch.float64)
    neighbour_sum(features, keys, centre, weights).backward()
    assert features.grad is not None
    base = features.detach()
    with torch.no_grad():
        match = nearest(directions(positions_of(base), centre), directions(samples, centre))
    step = 1e-6
    for index in [(0, 0, 0, 0), (0, 3, 1, 2), (0, 5, 2, 3), (0, 2, 0, 1)]:
        plus, minus = base.clone(), base.clone()
        plus[index] += step
        minus[index] -= step
        for moved in (plus, minus):  # the matches stay those of the base point
            assert torch.equal(nearest(directions(positions_of(moved), centre), directions(samples, centre)), match)
        numeric = (neighbour_sum(plus, keys, centre, weights) - neighbour_sum(minus, keys, centre, weights)) / (
            2 * step
        )
        assert features.grad[index].item() == pytest.approx(numeric.item(), rel=1e-6, abs=1e-9)


def test_a_feature_equal_to_a_sample_is_at_distance_zero():
    samples = torch.randn(20, 8, generator=torch.Generator().manual_seed(2))
    features = samples[[3, 7, 11, 19]].T.reshape(1, 8, 2, 2)
    assert neighbour_sum(features, *sample_directions(samples)).item() == pytest.approx(0, abs=1e-5)


def _images(seed=3):
    generator = torch.Generator().manual_seed(seed)
    content = resize(torch.rand(1, 3, 10, 12, generator=generator), (150, 180))
    style = resize(torch.rand(1, 3, 8, 8, generator=generator), (170, 170))
    return content, style


def test_a_paintings_samples_in_tiles_are_its_whole_ones(vgg19):
    _, style = _images()
    kind = StatisticsKind(StatisticsBase.MOMENTS, samples=LAYERS)
    whole = style_statistics(lambda image, layers: vgg19(image, layers), style, vgg19.layers, kind)
    tiled = statistics_in_tiles(vgg19, style, vgg19.layers, kind, "max", tile=64)
    for name in vgg19.layers:
        if name in LAYERS:
            assert whole[name].samples.shape == tiled[name].samples.shape
            assert torch.allclose(whole[name].samples, tiled[name].samples, rtol=1e-4, atol=1e-3), name
        else:
            assert whole[name].samples is None and tiled[name].samples is None


def test_samples_under_a_mask_come_from_its_part_only():
    features = torch.zeros(1, 2, 4, 4)
    features[..., :, 2:] = 1.0
    under = torch.zeros(1, 1, 4, 4)
    under[..., :, 2:] = 1.0
    samples = painting_samples(features, count=5, under=under)
    assert samples.shape == (5, 2) and (samples == 1).all()


RECIPE = StyleConfig(
    style_loss="wasserstein", style_layers=("relu1_1", "relu3_1", "relu4_1"), neighbour_weight=3.0,
    neighbour_layers=LAYERS, histogram_weight=0.0,
)  # fmt: skip


def _case(vgg19):
    content, style = _images()
    targets = build_targets(vgg19, content, [style], RECIPE.content_layers, RECIPE.style_layers,
                            style_loss="wasserstein", neighbour_layers=LAYERS)  # fmt: skip
    image = content * 0.7 + 0.15 + 0.05 * torch.rand(content.shape, generator=torch.Generator().manual_seed(4))
    return recipe_objective(RECIPE, targets), image.clamp(0, 1), content, style


def test_the_recipe_adds_a_neighbour_term_per_layer_tiled_exactly(vgg19):
    objective, image, _, _ = _case(vgg19)
    keys = [term.key for term in objective.terms]
    assert keys.count("neighbours.relu3_1") == 1 and keys.count("neighbours.relu4_1") == 1
    for term in objective.terms:
        if isinstance(term, NeighbourTerm):
            alone = Objective((term,))
            results = []
            for evaluator in (WholeImage(vgg19, alone), Tiled(vgg19, alone, tile=64)):
                pixels = image.clone().requires_grad_(True)
                loss, _ = evaluator(pixels, backward=True)
                results.append((loss.item(), pixels.grad.clone()))
            (loss, grad), (tiled, tiled_grad) = results
            assert 0 < loss < 3 * 2 and tiled == pytest.approx(loss, rel=1e-4), term.key
            assert grad.norm() > 0 and ((tiled_grad - grad).norm() / grad.norm()).item() < 1e-3, term.key


def test_one_region_over_the_whole_picture_is_the_plain_term(vgg19):
    objective, image, content, style = _case(vgg19)
    regional = build_region_targets(vgg19, content, [style], torch.ones(1, 1, *content.shape[-2:]), [None],
                                    RECIPE.content_layers, RECIPE.style_layers, style_loss="wasserstein",
                                    neighbour_layers=LAYERS)  # fmt: skip
    terms = recipe_objective(RECIPE, regional).terms
    plain = {t.key: t for t in objective.terms if isinstance(t, NeighbourTerm)}
    for term in terms:
        if isinstance(term, RegionalNeighbourTerm):
            values = []
            for alone in (Objective((term,)), Objective((plain[term.key],))):
                pixels = image.clone().requires_grad_(True)
                loss, _ = WholeImage(vgg19, alone)(pixels, backward=True)
                values.append((loss.item(), pixels.grad.clone()))
            assert values[0][0] == pytest.approx(values[1][0], rel=1e-5)
            assert torch.allclose(values[0][1], values[1][1], rtol=1e-4, atol=1e-7)


def test_neighbour_layers_must_be_style_layers():
    with pytest.raises(ConfigError, match=r"neighbour_layers.*relu2_1 is not"):
        validate(dataclasses.replace(RECIPE, neighbour_layers=("relu2_1",)))
    with pytest.raises(ConfigError, match="neighbour_layers"):
        validate(dataclasses.replace(RECIPE, neighbour_layers=("relu9_9",)))
    with pytest.raises(ConfigError, match="neighbour_weight"):
        validate(dataclasses.replace(RECIPE, neighbour_weight=-1.0))
    validate(dataclasses.replace(RECIPE, neighbour_weight=0.0, neighbour_layers=("relu2_1",)))  # unused: not checked


def test_the_memory_plan_counts_the_neighbour_terms_buffers(vgg19):
    from impasto.engine.memory import neighbour_bytes
    from impasto.objective.neighbours import BLOCK_ENTRIES, SAMPLES

    at_256 = neighbour_bytes(vgg19, (256, 256), ("relu3_1",))
    assert at_256 == 64 * 64 * 256 * 4 * 4 + SAMPLES * 256 * 4 * 2 + BLOCK_ENTRIES * 4 * 2
    assert neighbour_bytes(vgg19, (512, 512), ("relu3_1",)) - at_256 == 3 * 64 * 64 * 256 * 4 * 4
    assert neighbour_bytes(vgg19, (256, 256), ("relu1_1", "relu3_1")) > 2 * at_256 - BLOCK_ENTRIES * 8


def test_a_run_with_the_neighbour_term_reports_it_and_moves_toward_the_painting():
    from impasto import Inputs, Stylizer
    from impasto.engine import Progress

    content, style = _images(5)
    recipe = RECIPE.replace(size=64, start_size=None, steps=6, content_weight=0.0, neighbour_weight=1000.0)
    events: list[Progress] = []
    Stylizer().run(Inputs.of(content, [style]), recipe, on_progress=events.append)
    steps = [e for e in events if "neighbours.relu3_1" in e.terms]
    assert len(steps) >= 6
    first, last = steps[0].terms["neighbours.relu3_1"], steps[-1].terms["neighbours.relu3_1"]
    assert last < first


def test_the_memory_request_adds_the_neighbour_buffers_only_with_the_term(vgg19):
    from impasto.engine.memory import MemoryRequest, TooLarge, check_memory, neighbour_bytes

    plain = MemoryRequest((512, 512), False, "lbfgs", LAYERS)
    with_term = MemoryRequest((512, 512), False, "lbfgs", LAYERS, neighbour_layers=LAYERS)
    assert neighbour_bytes(vgg19, (512, 512), ()) == 0
    needs = []
    for request in (plain, with_term):
        with pytest.raises(TooLarge) as refused:
            check_memory(vgg19, torch.device("cpu"), request, budget=10 * 2**20)
        needs.append(refused.value.need)
    assert needs[1] - needs[0] == neighbour_bytes(vgg19, (512, 512), LAYERS)
