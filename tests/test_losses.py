import pytest
import torch

from impasto.objective.losses import content_loss, gram, gram_loss, tv_loss


def test_gram_of_hand_built_tensor(device, dtype):
    # Two channels over a 1x2 image: F = [[1, 2], [3, 4]]
    features = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]], device=device, dtype=dtype)
    expected = torch.tensor([[1 + 4, 3 + 8], [3 + 8, 9 + 16]], device=device, dtype=dtype) / (2 * 1 * 2)
    assert torch.allclose(gram(features)[0], expected)


def test_gram_is_symmetric_and_batched(device, dtype):
    features = torch.randn(3, 5, 4, 6, device=device, dtype=dtype)
    g = gram(features)
    assert g.shape == (3, 5, 5) and g.device.type == device.type
    assert torch.allclose(g, g.transpose(1, 2))
    assert torch.allclose(g[1], gram(features[1:2])[0])


def test_content_loss_zero_at_target_and_positive_elsewhere(device, dtype):
    target = torch.randn(1, 8, 5, 5, device=device, dtype=dtype)
    assert content_loss(target.clone(), target).item() == 0.0
    assert content_loss(target + 0.1, target).item() == pytest.approx(0.01, rel=1e-5)


def test_tv_of_constant_and_checkerboard(device, dtype):
    assert tv_loss(torch.full((1, 3, 8, 8), 0.3, device=device, dtype=dtype)).item() == 0.0
    ys, xs = torch.meshgrid(torch.arange(8, device=device), torch.arange(8, device=device), indexing="ij")
    board = ((ys + xs) % 2).to(dtype).expand(1, 3, 8, 8)
    assert tv_loss(board).item() == pytest.approx(2.0)


def test_style_loss_invariant_to_spatial_permutation(device, dtype):
    features = torch.randn(1, 6, 7, 9, device=device, dtype=dtype)
    target = gram(torch.randn(1, 6, 7, 9, device=device, dtype=dtype))
    permuted = features.flatten(2)[..., torch.randperm(63, device=device)].reshape(1, 6, 7, 9)
    assert torch.allclose(gram_loss(features, target), gram_loss(permuted, target), rtol=1e-5)
    assert not torch.allclose(features, permuted)


def test_style_loss_zero_at_own_gram(device, dtype):
    features = torch.randn(1, 4, 5, 5, device=device, dtype=dtype)
    floor = 1e-6 if dtype == torch.float32 else 1e-12
    assert gram_loss(features, gram(features)).item() == pytest.approx(0.0, abs=floor)


def test_gram_loss_gradient_float64():
    target = gram(torch.randn(1, 3, 4, 4, dtype=torch.float64))
    features = torch.randn(1, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda f: gram_loss(f, target), (features,))


def test_gram_gradient_float64():
    features = torch.randn(2, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(gram, (features,))


def test_tv_gradient_float64():
    image = torch.rand(1, 3, 5, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(tv_loss, (image,))


def test_gram_of_bfloat16_features_is_float32_and_close():
    features = torch.rand(1, 16, 32, 32)
    low = gram(features.bfloat16())
    assert low.dtype == torch.float32
    assert torch.allclose(low, gram(features), rtol=2e-2)
    low_input = features.bfloat16().requires_grad_(True)
    (grad,) = torch.autograd.grad(gram(low_input).square().sum(), low_input)
    assert grad.dtype == torch.bfloat16 and grad.abs().sum() > 0


# --- 2-Wasserstein style loss -------------------------------------------------------

from impasto.numerics import eigh, ordered_mean, ordered_sum  # noqa: E402
from impasto.objective.linalg import psd_sqrt, trace_sqrt  # noqa: E402
from impasto.objective.losses import feature_moments, wasserstein_loss  # noqa: E402


def _target(features):
    mean, second = feature_moments(features)
    cov = second - mean.unsqueeze(-1) * mean.unsqueeze(-2)
    return mean, cov, psd_sqrt(cov)


def test_psd_sqrt_is_accurate():
    a = torch.randn(6, 6, dtype=torch.float64)
    spd = a @ a.T + 0.1 * torch.eye(6, dtype=torch.float64)
    root = psd_sqrt(spd)
    assert torch.allclose(root @ root, spd, atol=1e-10) and torch.allclose(root, root.T)
    singular = torch.diag(torch.tensor([4.0, 0.0, 0.0, 1.0], dtype=torch.float64))
    assert torch.allclose(psd_sqrt(singular), torch.diag(torch.tensor([2.0, 0.0, 0.0, 1.0], dtype=torch.float64)))


def test_trace_sqrt_value_and_gradient():
    a = torch.randn(5, 5, dtype=torch.float64)
    spd = (a @ a.T + torch.eye(5, dtype=torch.float64)).requires_grad_(True)
    assert trace_sqrt(spd).item() == pytest.approx(torch.linalg.eigvalsh(spd).sqrt().sum().item())
    assert torch.autograd.gradcheck(lambda m: trace_sqrt((m + m.T) / 2), (spd,))


def test_wasserstein_is_zero_for_identical_statistics_and_positive_otherwise(device):
    features = torch.rand(1, 8, 10, 10, dtype=torch.float64, device=device)
    target = _target(features)
    assert wasserstein_loss(features, *target).item() == pytest.approx(0.0, abs=1e-8)
    shuffled = features.flatten(2)[..., torch.randperm(100, device=device)].reshape(features.shape)
    assert wasserstein_loss(shuffled, *target).item() == pytest.approx(0.0, abs=1e-8)
    assert wasserstein_loss(features * 1.5, *target).item() > 1e-3
    assert wasserstein_loss(features + 0.2, *target).item() == pytest.approx(0.04, rel=1e-6)


def test_wasserstein_gradient_is_finite_with_dead_channels(device, dtype):
    features = torch.rand(1, 16, 12, 12, device=device, dtype=dtype)
    features[:, 5:12] = 0.0  # dead ReLU channels: zero and repeated eigenvalues
    target = _target(torch.rand(1, 16, 12, 12, device=device, dtype=dtype).clamp(min=0.5) - 0.5)
    image_like = features.clone().requires_grad_(True)
    loss = wasserstein_loss(image_like, *target)
    (grad,) = torch.autograd.grad(loss, image_like)
    assert torch.isfinite(loss) and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_statistics_and_gradients_do_not_depend_on_the_memory_layout():
    from impasto.objective.losses import feature_moments, masked_moments

    f = torch.randn(1, 6, 7, 9, dtype=torch.float64)
    last = f.contiguous(memory_format=torch.channels_last)
    assert not last.is_contiguous()
    mask = torch.rand(1, 1, 7, 9, dtype=torch.float64)
    for fn in (gram, lambda x: feature_moments(x)[1], lambda x: masked_moments(x, mask)[1]):
        a, b = f.clone().requires_grad_(True), last.clone().requires_grad_(True)
        assert torch.allclose(fn(a), fn(b))
        fn(a).square().sum().backward()
        fn(b).square().sum().backward()
        assert torch.allclose(a.grad, b.grad)
    b = last.clone().requires_grad_(True)
    gram(b).sum().backward()
    assert b.grad.is_contiguous(memory_format=torch.channels_last), "the gradient keeps the network's layout"


from impasto.objective.histogram import channel_quantiles, histogram_loss, resample_quantiles  # noqa: E402


def _exact_transport_target(features, target):
    """Each value replaced by the target's value of the same rank (sorting), the exact 1-D
    optimal transport the histogram loss approximates."""
    c = features.shape[1]
    values = features.reshape(c, -1)
    order = values.argsort(dim=1)
    out = torch.empty_like(values)
    out.scatter_(1, order, resample_quantiles(target.to(values.dtype), values.shape[1]))
    return out


def test_histogram_loss_is_near_zero_against_its_own_distribution_and_blind_to_positions():
    features = torch.randn(1, 3, 64, 64)
    own = channel_quantiles(features, 1024)
    assert histogram_loss(features, own).item() < 1e-3 * features.var().item()
    shuffled = features.flatten(2)[..., torch.randperm(64 * 64)].reshape(1, 3, 64, 64)
    assert histogram_loss(shuffled, own).item() == pytest.approx(histogram_loss(features, own).item(), rel=1e-5)


def test_histogram_loss_of_a_shift_and_of_a_scale_is_the_one_dimensional_w2():
    features = torch.randn(1, 3, 64, 64, dtype=torch.float64)
    target = channel_quantiles(features, 1024)
    # W2² between X and X + c is c²; between X and aX (a > 0) it is (a - 1)² E[X²].
    assert histogram_loss(features + 0.5, target).item() == pytest.approx(0.25, rel=0.02)
    expected = (2.0 - 1.0) ** 2 * features.square().mean().item()
    assert histogram_loss(2.0 * features, target).item() == pytest.approx(expected, rel=0.02)


def test_relu_zeros_are_one_atom_and_every_live_value_gets_its_exact_ranks_target():
    # Half the values exactly 0 (a ReLU layer) against a target with a fifth. The zeros
    # (no gradient passes a ReLU there) go together to one target value; every positive
    # value, however small, is ranked above all of them, as in the exact transport.
    from impasto.objective.histogram import remap

    features = torch.relu(torch.randn(1, 2, 64, 64, dtype=torch.float64))
    target = channel_quantiles(torch.relu(torch.randn(1, 2, 64, 64, dtype=torch.float64) + 0.84), 1024)
    values = features.reshape(2, -1)
    ours, exact = torch.cat(remap(values.T, target, 1024)).T, _exact_transport_target(features, target)
    live = values > 0
    for row in range(2):
        assert ours[row][~live[row]].unique().numel() == 1
    error, spread = (ours[live] - exact[live]).abs(), exact[live].std().item()
    # Within a bin the values are taken as evenly spread: off by little, most where a
    # sparse tail leaves a few values to a bin.
    assert error.mean().item() < 0.005 * spread and torch.quantile(error, 0.99).item() < 0.02 * spread


def test_histogram_loss_gradient_is_that_of_the_exact_transport():
    features = torch.randn(1, 4, 48, 48, dtype=torch.float64, requires_grad=True)
    target = channel_quantiles(torch.randn(1, 4, 40, 40, dtype=torch.float64).exp(), 1024)
    histogram_loss(features, target).backward()
    values = features.detach().reshape(4, -1)
    exact = 2 * (values - _exact_transport_target(features.detach(), target)) / values.numel()
    ours = features.grad.reshape(4, -1)
    assert torch.nn.functional.cosine_similarity(ours.reshape(-1), exact.reshape(-1), dim=0) > 0.99
    assert ours.norm().item() == pytest.approx(exact.norm().item(), rel=0.05)


def test_resampled_quantiles_are_read_linearly():
    assert torch.allclose(resample_quantiles(torch.tensor([[0.0, 1.0]]), 5), torch.linspace(0, 1, 5).view(1, 5))
    ramp = torch.linspace(0, 1, 9).view(1, 1, 3, 3)
    assert torch.allclose(channel_quantiles(ramp, 17), torch.linspace(0, 1, 17).view(1, 17))


def test_histogram_loss_of_dead_and_constant_channels_is_finite():
    features = torch.rand(1, 4, 16, 16)
    features[0, 0] = 0.0  # a dead channel
    features[0, 1] = 123.456  # a constant one, far from 0
    target = channel_quantiles(torch.rand(1, 4, 16, 16) * 100, 1024)
    value = histogram_loss(features.requires_grad_(), target)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(features.grad).all()
    nan = features.detach().clone()
    nan[0, 2, 0, 0] = float("nan")
    assert not torch.isfinite(histogram_loss(nan, target))  # NaN in, NaN out: no crash, no huge allocation


@pytest.mark.parametrize(("channels", "h", "w"), [(32, 3, 4), (16, 3, 5)])
def test_wasserstein_with_fewer_positions_than_channels_equals_the_general_path(channels, h, w):
    # N = h·w < C takes the N x N path; a mask of ones takes the general C x C one.
    torch.manual_seed(0)
    target = _target(torch.randn(1, channels, 8, 8, dtype=torch.float64).clamp(min=0))
    features = torch.randn(1, channels, h, w, dtype=torch.float64).clamp(min=0)
    features[:, :3] = 0.0  # dead channels, as in a ReLU layer
    few = features.clone().requires_grad_(True)
    general = features.clone().requires_grad_(True)
    a = wasserstein_loss(few, *target)
    b = wasserstein_loss(general, *target, mask=torch.ones(1, 1, h, w, dtype=torch.float64))
    a.backward()
    b.backward()
    # (The general path's C - N zero eigenvalues come out as rounding, ~1e-16, whose square
    # roots add ~1e-8 each: agreement to 1e-7, not to float64's precision.)
    assert a.item() == pytest.approx(b.item(), rel=1e-7) and a.item() > 0.01
    torch.testing.assert_close(few.grad, general.grad, rtol=1e-6, atol=1e-9)
    # And it is a distance: zero against the features' own statistics.
    assert wasserstein_loss(features, *_target(features)).item() == pytest.approx(0.0, abs=1e-8)


@pytest.mark.parametrize("channels_last", [False, True])
def test_moments_gradient_float64_in_both_layouts(channels_last):
    features = torch.randn(2, 5, 4, 3, dtype=torch.float64)
    if channels_last:
        features = features.contiguous(memory_format=torch.channels_last)
    features.requires_grad_(True)
    assert torch.autograd.gradcheck(feature_moments, (features,))
    mean, second = feature_moments(features)
    flat = features.detach().reshape(2, 5, 12)
    torch.testing.assert_close(mean, flat.mean(2))
    torch.testing.assert_close(second, flat @ flat.transpose(1, 2) / 12)


def test_histogram_term_reads_bfloat16_features_as_their_float32_values():
    from impasto.objective.histogram import channel_quantiles, histogram_loss

    torch.manual_seed(0)
    target = channel_quantiles(torch.randn(1, 4, 16, 16).clamp(min=0), 1024)
    half = torch.randn(1, 4, 12, 10).clamp(min=0).to(torch.bfloat16).requires_grad_(True)
    wide = half.detach().float().requires_grad_(True)
    a, b = histogram_loss(half, target), histogram_loss(wide, target)
    a.backward()
    b.backward()
    assert a.dtype == torch.float32 and a.item() == b.item()
    assert half.grad.dtype == torch.bfloat16
    torch.testing.assert_close(half.grad.float(), wide.grad.to(torch.bfloat16).float())


def test_bin_counts_and_lines_are_per_channel_whatever_the_tables_padding():
    # Half of each channel at its minimum (a ReLU layer's zeros), the rest spread: the
    # counts of the padded table are each channel's own histogram, and every value is read
    # off its own channel's line (a value at a bin's lower edge gets the line's start).
    from impasto.objective.histogram import (
        bin_counts,
        bin_lines,
        bin_positions,
        bin_stride,
        channel_extremes,
        read_lines,
    )

    torch.manual_seed(4)
    values = torch.randn(3000, 5).relu()
    values[:, 4] = 2.0  # a constant (dead) channel
    bins = 64
    assert bin_stride(bins) > bins
    low, high = channel_extremes(values)
    position, flat = bin_positions(values, low, high, bins)
    counts = bin_counts(flat, 5, bins)
    assert counts.shape == (5, bins)
    for c in range(5):
        index = position[:, c].long().clamp(0, bins - 1)
        assert torch.equal(counts[c], torch.bincount(index, minlength=bins)[:bins])
    assert int(counts.sum()) == values.numel()
    # Lines that map channel c's bin b to c * 1000 + b: each value reads its own.
    target = (torch.arange(5).unsqueeze(1) * 1000.0 + torch.linspace(0, bins, bins + 1)).float()
    even = torch.full((5, bins), values.shape[0] / bins)
    lines = bin_lines(even, torch.zeros(5), values.shape[0], target, bins)
    read = read_lines(lines, position, flat)
    assert torch.allclose(read, torch.arange(5) * 1000.0 + position, atol=1e-3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_histogram_in_row_blocks_gives_the_same_values_and_gradient_as_in_one(monkeypatch, dtype):
    # A layer too large for one block (here: blocks of a few hundred values, 7 of them and
    # a short last one) is remapped block by block: the same ranks, the same remapped
    # values and gradient to the bit as in one pass over the whole layer, and the loss
    # (a sum of the blocks' sums) within float32's rounding of it.
    from impasto.objective import histogram

    torch.manual_seed(5)
    features = torch.relu(torch.randn(1, 3, 40, 50)).to(dtype).contiguous(memory_format=torch.channels_last)
    target = channel_quantiles(torch.rand(1, 3, 30, 30) * 2, 1024)

    def run() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = features.detach().requires_grad_(True)
        loss = histogram_loss(x, target)
        loss.backward()
        return torch.cat(histogram.remap(histogram.channel_values(features), target, 1024)), loss.detach(), x.grad

    whole = run()
    assert len(histogram.row_blocks(histogram.channel_values(features))) == 1
    monkeypatch.setattr(histogram, "BLOCK_VALUES", 900)
    assert len(histogram.row_blocks(histogram.channel_values(features))) == 7
    blocked = run()
    for name, a, b in zip(("remapped", "gradient"), whole[::2], blocked[::2], strict=True):
        assert a.dtype == b.dtype and torch.equal(a, b), (name, (a - b).abs().max())
    assert blocked[1].item() == pytest.approx(whole[1].item(), rel=1e-6)
    assert blocked[2].dtype == dtype and blocked[2].abs().sum() > 0


def _on_threads(compute, counts=(1, 2)):
    """``compute()`` run with torch on each thread count of ``counts``."""
    before = torch.get_num_threads()
    try:
        results = []
        for count in counts:
            torch.set_num_threads(count)
            results.append(compute())
        return results
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(
    ("shape", "layout", "dtype"),
    [
        ((786432,), None, torch.float32),
        ((100003,), None, torch.float32),
        ((1, 3, 333, 517), None, torch.float32),
        ((1, 512, 32, 42), None, torch.float32),
        ((1, 64, 128, 96), torch.channels_last, torch.float32),
        ((1, 64, 128, 96), torch.channels_last, torch.bfloat16),
        ((2, 3, 300, 300), None, torch.float64),
        ((262144, 64), None, torch.float32),
    ],
)
def test_an_ordered_sum_is_the_same_bits_on_one_thread_and_two(shape, layout, dtype):
    g = torch.Generator().manual_seed(sum(shape))
    values = torch.randn(shape, generator=g).to(dtype)
    if layout is not None:
        values = values.to(memory_format=layout)
    one, two = _on_threads(lambda: ordered_sum(values))
    assert torch.equal(one, two) and one.dtype == dtype
    exact = values.double().sum()
    tolerance = 1e-6 * float(values.double().abs().sum()) + 2 * torch.finfo(dtype).eps * abs(float(exact))
    assert abs(float(one) - float(exact)) <= tolerance
    assert ordered_mean(values) == one / values.numel()


def test_a_plain_sum_is_not_the_same_bits_on_one_thread_and_two():
    """What the ordered sums are for: torch splits a large sum to one number between its
    threads (a control for the test above; it needs two cores)."""
    if torch.get_num_threads() < 2:
        pytest.skip("one thread: nothing is split")
    differs = 0
    for seed in range(8):
        values = torch.randn(786432, generator=torch.Generator().manual_seed(seed))
        one, two = _on_threads(lambda values=values: values.sum())
        differs += not torch.equal(one, two)
    assert differs > 0


def test_an_eigendecomposition_is_the_same_bits_on_one_thread_and_two():
    x = torch.randn(1024, 256, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    matrix = x.T @ x
    (values_1, vectors_1), (values_2, vectors_2) = _on_threads(lambda: eigh(matrix))
    assert torch.equal(values_1, values_2) and torch.equal(vectors_1, vectors_2)
    assert torch.allclose(vectors_1 @ torch.diag(values_1) @ vectors_1.T, matrix, rtol=1e-9, atol=1e-6)
    if torch.get_num_threads() >= 2 and torch.backends.mkl.is_available():
        # the control: LAPACK's own threads give other bits (every time, on this project's machines)
        plain = _on_threads(lambda: torch.linalg.eigh(matrix))
        assert not torch.equal(plain[0].eigenvectors, plain[1].eigenvectors)


def test_same_bits_off_takes_torchs_own_threaded_sums_and_eigendecompositions():
    from impasto.numerics import same_bits

    values = torch.randn(786432, generator=torch.Generator().manual_seed(2))
    x = torch.randn(512, 128, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    matrix = x.T @ x
    with same_bits(False):
        assert torch.equal(ordered_sum(values), values.sum())
        assert torch.equal(eigh(matrix)[1], torch.linalg.eigh(matrix).eigenvectors)
    ordered = ordered_sum(values)  # on again outside: the fixed order, the same value to rounding
    assert ordered.item() == pytest.approx(values.sum().item(), rel=1e-5, abs=1e-2)


def test_what_same_bits_rests_on_is_checked_and_a_gap_warned_of_once(monkeypatch):
    import warnings

    from impasto import numerics
    from impasto.errors import ImpastoWarning

    assert numerics.same_bits_warning() is None  # this project's torch, with MKL's symbol
    monkeypatch.setattr(torch, "__version__", "2.99.0+cpu")
    assert "torch 2.99.0+cpu is outside 2.1-2.13" in numerics.same_bits_warning()
    numerics._warn_once.cache_clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            with numerics.same_bits(True):
                pass
        with numerics.same_bits(False):  # off: nothing is promised, nothing said
            pass
    assert [str(w.message).split(" is outside")[0] for w in caught if w.category is ImpastoWarning] == [
        "torch 2.99.0+cpu"
    ]
    numerics._warn_once.cache_clear()


def test_a_run_with_same_bits_off_paints_close_to_one_with_it_on(tiny_encoder):
    from impasto import Inputs, Runtime, Stylizer
    from impasto.presets import preset

    content, style = torch.rand(1, 3, 40, 48), torch.rand(1, 3, 40, 40)
    recipe = preset("default").replace(size=48, start_size=None, steps=4)
    on = Stylizer(Runtime(device="cpu", same_bits=True), encoder=tiny_encoder).run(Inputs.of(content, [style]), recipe)
    off = Stylizer(Runtime(device="cpu", same_bits=False), encoder=tiny_encoder).run(
        Inputs.of(content, [style]), recipe
    )
    assert (on - off).abs().max() < 0.05
