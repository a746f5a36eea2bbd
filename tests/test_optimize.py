"""The per-scale optimiser loop on its own: any evaluator, the policy as a parameter."""

import math

import pytest
import torch

from impasto.engine import DEFAULT_POLICY, Policy, optimize_scale
from impasto.engine.lbfgs import LBFGS
from impasto.errors import ConfigError

from .test_losses import _on_threads


class Quadratic:
    """``sum((x - target)²)`` and its gradient, with no network: what the loop needs of an
    evaluator and nothing more. Counts its calls."""

    def __init__(self, target: torch.Tensor) -> None:
        self.target, self.calls, self.scored = target, 0, 0

    def __call__(self, image, *, backward):
        self.calls += 1
        if not backward:
            self.scored += 1
            with torch.no_grad():
                loss = (image - self.target).square().sum()
            return loss, {"fit": loss}
        assert image.is_leaf and image.requires_grad
        loss = (image - self.target).square().sum()
        loss.backward()
        return loss, {"fit": loss.detach()}


def _never(values, image):
    return False


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_any_evaluator_drives_the_loop(optimizer):
    target = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    start = torch.full_like(target, 0.5)
    quadratic = Quadratic(target)
    losses = []

    def report(values, image):
        losses.append(values["loss"])
        assert values["fit"] == values["loss"]
        return False

    steps = 20 if optimizer == "lbfgs" else 200
    lr = 0.5 if optimizer == "lbfgs" else 0.05
    out, stopped, _ = optimize_scale(quadratic, start, steps, report, optimizer=optimizer, lr=lr)
    assert not stopped and len(losses) == steps
    # One evaluation a step, and one more to score the last update.
    assert quadratic.calls == steps + 1 and quadratic.scored == 1
    assert (out - target).abs().max() < 1e-2
    assert losses[-1] < 1e-3 * losses[0]


def test_the_gradient_reaches_the_optimiser_in_its_own_units():
    # L-BFGS optimises 0-255 units. Its first step is lr * min(1, 1/|g|₁) * -g in those
    # units: from 0 towards 0.5 everywhere (a gradient of -1 per pixel, -1/255 per unit,
    # |g|₁ = 12/255 < 1) that is 1/255 of a unit, 1/255² in pixels. A gradient passed on
    # without the scale would move 255 times further.
    target = torch.full((1, 3, 2, 2), 0.5)
    seen = []
    optimize_scale(Quadratic(target), torch.zeros_like(target), 2, lambda v, im: seen.append(im.clone()) or False)
    assert seen[0] == pytest.approx(torch.full_like(target, 1 / 255**2), rel=1e-4)


class Climbing:
    """A loss that grows with every evaluation, whatever the image: the first iterate is
    the best one the loop sees."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, image, *, backward):
        self.calls += 1
        loss = image.sum() * 0 + self.calls
        if backward:
            (image.sum() * 0.01 + loss).backward()
        return loss.detach(), {}


def test_the_policy_decides_which_iterate_is_handed_out():
    start = torch.full((1, 3, 4, 4), 0.5)
    seen = []

    def report(values, image):
        seen.append(image.clone())
        return False

    best, _, _ = optimize_scale(Climbing(), start, 6, report, optimizer="adam", lr=0.1)
    assert torch.equal(best, start)  # the first evaluated iterate, the lowest loss
    last, _, _ = optimize_scale(
        Climbing(), start, 6, report, optimizer="adam", lr=0.1, policy=Policy(hand_out_best=False)
    )
    assert torch.equal(last, seen[-1]) and not torch.equal(last, start)


def test_policy_fields_are_checked():
    assert DEFAULT_POLICY.history == 30 and DEFAULT_POLICY.restart_rise == 0.02
    with pytest.raises(ConfigError, match="history"):
        Policy(history=0)
    with pytest.raises(ConfigError, match="restart_rise"):
        Policy(restart_rise=-1.0)
    assert Policy(restart_rise=math.inf).restart_rise == math.inf


def test_a_restart_that_would_replay_the_same_climb_takes_smaller_steps():
    # Steps three times too long climb on a quadratic; back at the best iterate with a
    # fresh memory the same steps would climb again, for ever: each such restart halves them.
    target = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    start = torch.full_like(target, 0.5)
    losses = []

    def report(values, image):
        losses.append(values["loss"])
        return False

    out, _, _ = optimize_scale(Quadratic(target), start, 80, report, optimizer="lbfgs", lr=3.0)
    first = (start - target).square().sum().item()
    assert max(losses[:8]) > first  # it did climb
    assert (out - target).square().sum().item() < 1e-3 * first


def test_a_channels_last_start_image_is_optimised():
    target = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    start = torch.full_like(target, 0.5).to(memory_format=torch.channels_last)
    out, _, _ = optimize_scale(Quadratic(target), start, 20, _never, optimizer="lbfgs", lr=0.5)
    assert (out - target).abs().max() < 1e-2


def _rosenbrock_like(x: torch.Tensor) -> torch.Tensor:
    """A curved, non-quadratic objective (chained Rosenbrock terms) of any tensor."""
    flat = x.reshape(-1)
    return (100 * (flat[1:] - flat[:-1].square()).square() + (1 - flat[:-1]).square()).sum()


def _descend(optimizer, x: torch.Tensor, steps: int) -> list[torch.Tensor]:
    iterates = []
    for _ in range(steps):

        def closure():
            optimizer.zero_grad(set_to_none=True)
            loss = _rosenbrock_like(x)
            loss.backward()
            return loss.detach()

        optimizer.step(closure)
        iterates.append(x.detach().clone())
    return iterates


def test_impasto_lbfgs_takes_torchs_steps(device):
    """The same update as torch.optim.LBFGS(max_iter=1) step for step (first step, kept
    pairs, two-loop recursion, skipped pairs), in float64 so that only the order of the
    sums tells the two apart."""
    start = torch.linspace(-1.2, 1.1, 40, dtype=torch.float64, device=device)
    ours = start.clone().requires_grad_(True)
    theirs = start.clone().requires_grad_(True)
    mine = _descend(LBFGS(ours, lr=0.5, history=5), ours, 30)
    reference = _descend(torch.optim.LBFGS([theirs], lr=0.5, max_iter=1, history_size=5), theirs, 30)
    # rounding apart grows from 1e-16 to 1e-11 over 30 steps on this curved valley
    for k, (a, b) in enumerate(zip(mine, reference, strict=True)):
        assert torch.allclose(a, b, rtol=0, atol=1e-9), k
    assert _rosenbrock_like(mine[-1]) < 0.05 * _rosenbrock_like(start)


def test_impasto_lbfgs_is_the_same_bits_on_one_thread_and_two():
    """A picture-sized variable: every inner product is large enough for torch to split
    it between threads, and L-BFGS's steps still come out the same to the bit."""
    start = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(2), dtype=torch.float32)

    def descend():
        x = start.clone().requires_grad_(True)
        return _descend(LBFGS(x, lr=0.3, history=4), x, 12)[-1]

    results = _on_threads(descend)
    assert torch.equal(results[0], results[1])
    assert _rosenbrock_like(results[0]) < _rosenbrock_like(start)
