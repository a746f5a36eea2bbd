"""The tiled evaluator: tiles with halos, against global statistics, give the whole
picture's loss and gradient (the print work's exactness measure)."""

from __future__ import annotations

import copy
import dataclasses
import functools

import pytest
import torch

from impasto.engine.optimize import WholeImage
from impasto.engine.tiles import Tiled, margins, streams, windows
from impasto.imageio import resize
from impasto.objective.targets import build_targets
from impasto.objective.terms import Objective, TVTerm, WassersteinTerm, recipe_objective
from impasto.presets import PRESETS


def test_windows_cover_the_picture_once_aligned_to_the_pooling():
    plan = windows(300, 205, 96, 80, 16)
    covered = torch.zeros(300, 205, dtype=torch.int32)
    for window in plan:
        (r0, r1), (c0, c1) = window.inner
        covered[r0:r1, c0:c1] += 1
        (o0, o1), (p0, p1) = window.outer
        assert r0 % 16 == c0 % 16 == o0 % 16 == p0 % 16 == 0
        assert o0 == max(0, r0 - 80) and o1 == min(300, r1 + 80) and p1 == min(205, c1 + 80)
    assert (covered == 1).all()
    assert len(plan) == 3 * 2  # the 12 rows and 13 columns left over join the tiles before them


def test_the_halo_is_the_reach_of_the_deepest_layer(vgg19):
    assert margins(vgg19, ("relu5_1",)) == (80, 16)  # 70 px of reach, rounded up to 16
    assert margins(vgg19, ("relu1_1",)) == (1, 1)
    assert margins(vgg19, ("relu3_1", "relu4_2")) == (40, 8)  # relu4_2: 2+4+16+16 = 38, up to 40


def _exactness_case(vgg19, name, dtype=torch.float32):
    recipe = PRESETS[name]
    generator = torch.Generator().manual_seed(1)
    content = resize(torch.rand(1, 3, 10, 12, generator=generator), (290, 340)).to(dtype)
    style = resize(torch.rand(1, 3, 8, 8, generator=generator), (200, 200)).to(dtype)
    targets = build_targets(vgg19, content, [style], recipe.content_layers, recipe.style_layers,
                            style_loss=recipe.style_loss, histogram=recipe.histogram_weight > 0)  # fmt: skip
    objective = recipe_objective(recipe, targets)
    image = (content * 0.7 + 0.15 + 0.05 * torch.rand(content.shape, generator=generator).to(dtype)).clamp(0, 1)
    if dtype != torch.float32:  # every tensor a term holds in the same precision
        objective = Objective(tuple(_in(term, dtype) for term in objective.terms))
    return objective, image


def _in(term, dtype):
    fields = (f.name for f in dataclasses.fields(term))
    return dataclasses.replace(
        term, **{n: getattr(term, n).to(dtype) for n in fields if torch.is_tensor(getattr(term, n))}
    )


def _both(vgg19, objective, image, tiled):
    results = []
    for evaluator in (WholeImage(vgg19, objective), tiled):
        pixels = image.clone().requires_grad_(True)
        loss, terms = evaluator(pixels, backward=True)
        results.append((loss.item(), terms, pixels.grad.clone()))
    return results


@pytest.mark.parametrize("name", ["default", "gatys"])
def test_a_tiled_evaluation_is_the_whole_pictures_to_a_thousandth(vgg19, name):
    objective, image = _exactness_case(vgg19, name)
    assert any(isinstance(term, TVTerm) for term in objective.terms) or name == "gatys"
    assert streams(objective)  # summed over tiles, no whole feature map held
    ticks: list[tuple[int, int]] = []
    (loss, terms, grad), (tiled_loss, tiled_terms, tiled_grad) = _both(
        vgg19, objective, image, Tiled(vgg19, objective, tile=96, on_window=lambda *t: ticks.append(t))
    )
    assert len(windows(290, 340, 96, 80, 16)) == 3 * 4  # the picture really was cut
    # Progress within the step: every window of every pass (sums; the histograms' counts;
    # the gradient), counted up to the total it announced.
    passes = 3 if name == "default" else 2
    assert ticks == [(k, passes * 12) for k in range(1, passes * 12 + 1)]
    assert tiled_loss == pytest.approx(loss, rel=1e-4)
    for key, value in terms.items():
        assert tiled_terms[key].item() == pytest.approx(value.item(), rel=1e-3, abs=1e-6), key
    error = (tiled_grad - grad).norm() / grad.norm()
    assert error < 1e-3, error
    # without backward: the same loss and terms (the histograms' included), and no gradient asked
    pixels = image.clone()
    loss_only, terms_only = Tiled(vgg19, objective, tile=96)(pixels, backward=False)
    assert loss_only.item() == pytest.approx(loss, rel=1e-4)
    assert terms_only.keys() == terms.keys() and pixels.grad is None


@pytest.mark.parametrize("name", ["default", "gatys"])
def test_a_masked_picture_in_tiles_is_the_whole_pictures(vgg19, name):
    """Regional styles (two paintings, a soft-edged mask each) split into sums over tiles
    like any other run: the masked moments are sums of m·f and m·ffᵀ, the masked
    histograms' extremes, weighted counts and shares pass over the tiles."""
    from impasto.engine import Stylizer
    from impasto.inputs import Inputs
    from impasto.objective.terms import RegionalHistogramTerm, RegionalTerm
    from impasto.runtime import Runtime

    generator = torch.Generator().manual_seed(2)
    content = resize(torch.rand(1, 3, 10, 12, generator=generator), (290, 340))
    paintings = [resize(torch.rand(1, 3, 8, 8, generator=generator), (200, 200)) for _ in range(2)]
    left = torch.linspace(1.5, -0.5, 340).clamp(0, 1).expand(1, 3, 290, 340).contiguous()
    recipe = PRESETS[name].replace(size=340, pixels=None)
    stylizer = Stylizer(Runtime(device="cpu", precision="float32"), encoder=vgg19)
    made = stylizer.plan(Inputs.of(content, paintings, masks=[left, 1 - left]), recipe)
    final = made.schedule.final
    objective = made.objective(made.targets(final), final)
    kinds = {type(term) for term in objective.terms if term.layers}
    assert RegionalTerm in kinds and (RegionalHistogramTerm in kinds) == (name == "default")
    assert streams(objective)  # no whole feature map held
    image = (made.content * 0.7 + 0.15 + 0.05 * torch.rand(made.content.shape, generator=generator)).clamp(0, 1)
    (loss, terms, grad), (tiled_loss, tiled_terms, tiled_grad) = _both(
        vgg19, objective, image, Tiled(vgg19, objective, tile=96)
    )
    assert tiled_loss == pytest.approx(loss, rel=1e-4)
    for key, value in terms.items():
        assert tiled_terms[key].item() == pytest.approx(value.item(), rel=1e-3, abs=1e-6), key
    error = (tiled_grad - grad).norm() / grad.norm()
    assert error < 1e-3, error


def _off(grad, reference):
    return ((grad.double() - reference).norm() / reference.norm()).item()


@pytest.mark.parametrize("name", ["default", "gatys"])
def test_each_term_tiled_is_as_exact_as_the_whole_pictures(vgg19, name):
    """Each term alone: the tiled gradient against the whole picture's, and both against
    the same evaluation in float64 (the network too). The W2 terms' float32 gradient is
    itself ~1% off float64's (the square root's gradient in the covariance's near-null
    directions amplifies the rounding of its sums), and any change in the order of its
    sums moves it by as much: for them the measure is that tiles come no further from
    float64 than the whole picture does."""
    objective, image = _exactness_case(vgg19, name)
    exact_network = copy.deepcopy(vgg19).double()
    exact, exact_image = _exactness_case(exact_network, name, torch.float64)
    kinds = set()
    for term, exact_term in zip(objective.terms, exact.terms, strict=True):
        if not term.layers:
            continue
        alone = Objective((term,))
        (loss, _, grad), (tiled_loss, _, tiled_grad) = _both(vgg19, alone, image, Tiled(vgg19, alone, tile=128))
        truth = WholeImage(exact_network, Objective((exact_term,)))
        pixels = exact_image.clone().requires_grad_(True)
        truth(pixels, backward=True)
        reference = pixels.grad

        assert tiled_loss == pytest.approx(loss, rel=1e-3), term.key
        assert grad.norm() > 0, term.key
        assert _off(tiled_grad, reference) <= _off(grad, reference) + 1e-3, term.key
        if not isinstance(term, WassersteinTerm):
            assert ((tiled_grad - grad).norm() / grad.norm()).item() < 1e-3, term.key
        kinds.add(type(term).__name__)
    expected = {"ContentTerm", "WassersteinTerm", "HistogramTerm"} if name == "default" else {"ContentTerm", "GramTerm"}
    assert kinds == expected


def test_terms_that_do_not_split_into_sums_are_tiled_from_whole_maps(vgg19):
    objective, image = _exactness_case(vgg19, "gatys")
    layer = objective.terms[1].layers[0]

    class Opaque:  # a feature term without sums: the evaluator holds the whole maps for it
        key, weight, wide, layers = "opaque", 1.0, False, (layer,)

        def __call__(self, features):
            return features.raw[layer].float().square().mean() * 1e-3

    mixed = Objective((*objective.terms, Opaque()))
    assert not streams(mixed)
    ticks: list[tuple[int, int]] = []
    (loss, terms, grad), (tiled_loss, tiled_terms, tiled_grad) = _both(
        vgg19, mixed, image, Tiled(vgg19, mixed, tile=96, on_window=lambda *t: ticks.append(t))
    )
    # each window as it is run: the held maps' pass, then the gradient's
    assert ticks == [(k, 2 * 12) for k in range(1, 2 * 12 + 1)]
    assert tiled_loss == pytest.approx(loss, rel=1e-4)
    assert tiled_terms["opaque"].item() == pytest.approx(terms["opaque"].item(), rel=1e-4)
    assert (tiled_grad - grad).norm() / grad.norm() < 1e-3


def test_the_memory_check_plans_tiles_between_the_whole_pictures_need_and_the_smallest_tiles(vgg19, monkeypatch):
    import impasto.engine.memory as memory
    from impasto.engine.memory import MemoryRequest

    layers = ("relu4_2", "relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    size, cpu = (3000, 4000), torch.device("cpu")
    whole = memory.estimate_bytes(vgg19, size, True, "lbfgs", layers, 30)
    tiled = memory.tiled_bytes(vgg19, size, True, "lbfgs", layers, 30, 1024, 80)
    assert tiled < whole
    budget = (whole + tiled) // 2
    monkeypatch.setattr(memory, "available_bytes", lambda device: 64 * 2**30)
    plan = memory.check_memory(vgg19, cpu, MemoryRequest(size, True, "lbfgs", layers, halo=80), budget=budget)
    assert plan.tile in memory.TILE_SIZES and plan.have == budget and plan.history is None
    assert memory.tiled_bytes(vgg19, size, True, "lbfgs", layers, 30, plan.tile, 80) <= budget
    larger = [t for t in memory.TILE_SIZES if t > plan.tile]  # the largest tiles that fit were taken
    assert all(memory.tiled_bytes(vgg19, size, True, "lbfgs", layers, 30, t, 80) > budget for t in larger)
    assert plan.tile_at(whole, size) == plan.tile  # the final scale runs in tiles
    assert plan.tile_at(budget // 2, (750, 1000)) is None  # a coarse scale that fits runs whole
    roomy = memory.check_memory(vgg19, cpu, MemoryRequest(size, True, "lbfgs", layers), budget=whole + 1)
    assert roomy.tile is None
    forced = memory.check_memory(vgg19, cpu, MemoryRequest((90, 120), True, "lbfgs", layers), tile=64)
    assert forced.tile_at(1, (90, 120)) == 64 and forced.tile_at(1, (45, 60)) is None


def test_summed_tiles_fit_a_print_in_a_budget_that_held_maps_do_not_with_a_shorter_history(vgg19, monkeypatch):
    import impasto.engine.memory as memory
    from impasto.engine.memory import MemoryRequest

    layers = ("relu4_2", "relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    a3, budget, cpu = (3508, 4961), 6 * 2**30, torch.device("cpu")
    monkeypatch.setattr(memory, "available_bytes", lambda device: 64 * 2**30)
    options = {"halo": 80, "histogram_layers": layers[1:], "content_layers": layers[:1]}

    def check(size, **more):
        request = MemoryRequest(size, True, "lbfgs", layers, **options, **more)
        return memory.check_memory(vgg19, cpu, request, budget=budget)

    with pytest.raises(memory.TooLarge) as refused:
        check(a3)  # held maps: 4.5 GB of relu1_1 alone
    plan = check(a3, streamed=True)
    assert plan.tile is not None and plan.tile >= 512  # large tiles kept, the history shortened for them
    assert plan.history in memory.HISTORIES and plan.history < 30
    need = memory.tiled_bytes(vgg19, a3, True, "lbfgs", layers, plan.history, plan.tile, 80, layers[1:],
                              streamed=True, content_layers=layers[:1])  # fmt: skip
    longer = memory.tiled_bytes(vgg19, a3, True, "lbfgs", layers, 30, plan.tile, 80, layers[1:],
                                streamed=True, content_layers=layers[:1])  # fmt: skip
    assert need <= budget < longer
    # A painting as large as the print (a scan), read in tiles: it fits too.
    grown = check(a3, streamed=True, style_pixels=a3[0] * a3[1])
    assert grown.tile is not None and grown.history is not None
    # The refusal names a picture of the same shape that would fit, and it does.
    width, height = map(int, str(refused.value).split("; a ")[1].split(" picture would fit")[0].split("x"))
    assert abs(width / height - 4961 / 3508) < 0.01 and 1000 < width < 4961
    check((height, width))
    with pytest.raises(memory.TooLarge):
        check((height + 40, width + 56))


def test_a_run_in_forced_tiles_says_so_and_follows_the_whole_run(vgg19):
    from impasto.engine.stylizer import Stylizer
    from impasto.inputs import Inputs
    from impasto.runtime import Runtime

    generator = torch.Generator().manual_seed(3)
    photo = resize(torch.rand(1, 3, 6, 8, generator=generator), (120, 160))
    painting = torch.rand(1, 3, 64, 64, generator=generator)
    # One scale: the two runs then follow each other step by step (over several scales the
    # coarse scales' L-BFGS paths part at a line search's rise, as any rounding makes them).
    recipe = PRESETS["gatys"].replace(size=160, pixels=None, steps=10, seed=0, scales=None, start_size=None)
    finals = {}
    for label, tile in (("whole", None), ("tiled", 64)):
        events, ticks = [], []
        stylizer = Stylizer(Runtime(device="cpu", precision="float32", tile=tile), encoder=vgg19)
        tick = functools.partial(lambda seen, *t: seen.append(t), ticks)
        out = stylizer.run(Inputs.of(photo, [painting]), recipe, on_progress=events.append, on_tile=tick)
        assert out.shape[-2:] == (120, 160)
        count = len(windows(120, 160, 64, 80, 16))
        assert {e.tiles for e in events} == ({0} if tile is None else {count})
        # gatys: a step's evaluation runs the windows twice (sums, gradient), the scoring of
        # the last update (is it better than the best step?) once
        assert {total for _, total in ticks} == (set() if tile is None else {2 * count, count})
        assert sum(done == total for done, total in ticks) >= (0 if tile is None else len(events))
        # a picture in tiles is not scored again at the end: the last step's figures stand
        assert events[-1].score == ("picture" if tile is None else "last step")
        assert tile is None or events[-1].terms == events[-2].terms
        finals[label] = events[-2].loss
    assert finals["tiled"] == pytest.approx(finals["whole"], rel=0.01)


def test_a_masked_run_in_forced_tiles_follows_the_whole_run(vgg19):
    from impasto.engine.stylizer import Stylizer
    from impasto.inputs import Inputs
    from impasto.runtime import Runtime

    generator = torch.Generator().manual_seed(4)
    photo = resize(torch.rand(1, 3, 6, 8, generator=generator), (120, 160))
    paintings = [torch.rand(1, 3, 64, 64, generator=generator) for _ in range(2)]
    top = torch.zeros(1, 3, 120, 160)
    top[..., :60, :] = 1
    # gatys, one scale: the two runs follow each other step by step (default's first L-BFGS
    # pair, after a step of 1/|g|, is rounding: there any two orders of summing part ways,
    # tiled or not, masked or not)
    recipe = PRESETS["gatys"].replace(size=160, pixels=None, steps=6, seed=0, scales=None, start_size=None)
    losses = {}
    for label, tile in (("whole", None), ("tiled", 64)):
        events = []
        stylizer = Stylizer(Runtime(device="cpu", precision="float32", tile=tile), encoder=vgg19)
        stylizer.run(Inputs.of(photo, paintings, masks=[top, 1 - top]), recipe, on_progress=events.append)
        assert {e.tiles for e in events} == ({0} if tile is None else {len(windows(120, 160, 64, 80, 16))})
        losses[label] = [e.loss for e in events[:-1]]
    assert len(losses["tiled"]) == len(losses["whole"]) == 6
    for whole, tiled in zip(losses["whole"], losses["tiled"], strict=True):
        assert tiled == pytest.approx(whole, rel=0.01)


def test_a_painting_larger_than_a_tile_is_read_in_tiles_at_a_tiled_scale(vgg19, monkeypatch):
    import impasto.engine.stylizer as stylizer_module
    from impasto.engine.stylizer import Stylizer
    from impasto.inputs import Inputs
    from impasto.runtime import Runtime

    read = []
    real = stylizer_module.statistics_in_tiles

    def counting(network, image, layers, kind, pooling, tile, autocast=None):
        read.append((tuple(image.shape[-2:]), tile))
        return real(network, image, layers, kind, pooling, tile, autocast)

    monkeypatch.setattr(stylizer_module, "statistics_in_tiles", counting)
    generator = torch.Generator().manual_seed(4)
    photo = resize(torch.rand(1, 3, 6, 8, generator=generator), (120, 160))
    painting = torch.rand(1, 3, 100, 100, generator=generator)  # larger than a 64 px tile
    recipe = PRESETS["default"].replace(size=160, steps=1, start_size=None, optimizer="adam")
    stylizer = Stylizer(Runtime(device="cpu", precision="float32", tile=64), encoder=vgg19)
    out = stylizer.run(Inputs.of(photo, [painting]), recipe)
    assert out.shape[-2:] == (120, 160) and torch.isfinite(out).all()
    assert read and all(tile == 64 and max(shape) > 64 for shape, tile in read)
    assert {shape for shape, _ in read} == {(100, 100)}  # at its own pixels, under the output's area


@pytest.mark.parametrize(("base", "quantiles"), [("moments", True), ("gram", False)])
def test_a_paintings_statistics_in_tiles_are_its_whole_ones(vgg19, base, quantiles):
    from impasto.engine.tiles import statistics_in_tiles
    from impasto.objective.histogram import QUANTILE_BINS
    from impasto.objective.targets import StatisticsBase, StatisticsKind, style_statistics

    kind = StatisticsKind(StatisticsBase(base), quantiles)
    generator = torch.Generator().manual_seed(5)
    painting = resize(torch.rand(1, 3, 12, 9, generator=generator), (200, 150))
    layers = ("relu1_1", "relu3_1", "relu5_1")
    whole = style_statistics(vgg19, painting, layers, kind)
    tiled = statistics_in_tiles(vgg19, painting, layers, kind, None, 64)
    assert len(windows(200, 150, 64, 80, 16)) == 3 * 3  # it really was cut
    held = {"gram": ("gram",), "moments": ("mean", "second")}[base] + (("quantiles",) if quantiles else ())
    for name in layers:
        for field in ("gram", "mean", "second", "quantiles"):
            a, b = getattr(whole[name], field), getattr(tiled[name], field)
            assert (a is not None) == (b is not None) == (field in held), (name, field)
            if a is None:
                continue
            assert a.shape == b.shape and b.dtype == torch.float64
            if field == "quantiles":
                spread = (a[:, -1] - a[:, 0]).unsqueeze(1)  # each channel's range
                assert ((a - b).abs() <= spread / QUANTILE_BINS + 1e-6).all(), name
                assert torch.equal(a[:, 0], b[:, 0]) and torch.equal(a[:, -1], b[:, -1])  # extremes exact
            else:
                assert torch.allclose(a, b, rtol=1e-4, atol=1e-6 * a.abs().max().item()), name


def test_quantiles_from_counts_read_a_histogram_as_the_sorted_values_are_read():
    from impasto.engine.tiles import quantiles_from_counts
    from impasto.objective.histogram import bin_counts, bin_positions, channel_quantiles

    generator = torch.Generator().manual_seed(2)
    values = torch.cat([torch.zeros(300, 2), torch.rand(700, 2, generator=generator) ** 3], 0)  # a ReLU's zeros
    low, high = values.amin(0, keepdim=True), values.amax(0, keepdim=True)
    _, flat = bin_positions(values, low, high, 4096)
    counts = bin_counts(flat, 2, 4096).long()
    read = quantiles_from_counts(counts, (values == low).sum(0), low[0], high[0], 64)
    exact = channel_quantiles(values.T.reshape(1, 2, 1000, 1), 64).double()
    assert (read[:, :19] == 0).all()  # the 30% of zeros read as zeros
    assert ((read - exact).abs() <= (high - low).T.double() / 4096 + 1e-9).all()
    assert (read.diff(dim=1) >= 0).all()
