"""Optimise one image at one scale against an objective: the optimiser loop, and nothing
that knows what the terms are, how many scales there are or who listens."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from impasto.errors import ConfigError, ImpastoError
from impasto.model.encoder import Encoder
from impasto.objective.terms import Objective
from impasto.runtime import LBFGS_HISTORY, network_precision

#: Units of the optimised variable, per optimiser: pixels = variable / scale. L-BFGS is not
#: scale-invariant in its first steps (a step of 1/|g|₁, then H₀ = I until the first
#: curvature pair): the classic implementations optimise 0-255 pixels, and with [0, 1]
#: pixels its second step overshoots 255² times. Adam's lr is kept in [0, 1] units.
PARAM_SCALE = {"lbfgs": 255.0, "adam": 1.0}
#: Steps taken back (image non-finite after the update) before a scale gives up.
MAX_RESTARTS = 3
#: L-BFGS with a fixed step and no line search can climb for good once its curvature
#: pairs go stale (the quality preset on astronaut + mosaic at 256 px: 1.87e4 at step 91 of
#: the first scale, 1.65e5 at its end). When an evaluated loss is more than this fraction
#: above the best of the scale, the image goes back to the best iterate and the memory is
#: cleared. No extra evaluations: a step still costs one. 2% beat 10% and keeping the best
#: alone on the pairs of benchmarks/sweep.py (see the README, "The optimiser's rule").
RESTART_RISE = 0.02
#: Steps a fresh memory may climb before the rule applies: its first steps from noise, or
#: just after a restart, overshoot and come back (without it a run from noise never left
#: its start).
RESTART_GRACE = 5
#: Whether a finished scale hands out its best evaluated iterate (False: the last one, as
#: impasto 0.1 did; tests/test_regression.py pins 0.1's pixels with it off and no restarts).
HAND_OUT_BEST = True

#: Called after every step with the evaluated values (``loss`` and each term, floats)
#: and the current image on the device; returning True stops the run.
Report = Callable[[dict[str, float], Tensor], bool]


def make_optimizer(name: str, param: Tensor, lr: float | None) -> torch.optim.Optimizer:
    """The optimiser ``name`` over ``param``, with its default step size unless ``lr``."""
    if name == "lbfgs":
        # One function evaluation per step, as in the classic implementations. A history
        # of 30 pairs rather than pastiche's 100: the same progress over the 15-50 steps
        # of a scale (tubingen + starry_night at 384 px), a third of the time in the
        # two-loop recursion, and 0.6 GB instead of 1.9 GB at 1024x768.
        return torch.optim.LBFGS([param], lr=lr or 1.0, max_iter=1, history_size=LBFGS_HISTORY)
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
    network: Encoder,
    objective: Objective,
    image: Tensor,
    steps: int,
    report: Report,
    *,
    optimizer: str = "lbfgs",
    lr: float | None = None,
    clamp: bool = True,
    ema_decay: float | None = None,
    autocast: torch.dtype | None = None,
    pooling: str | None = None,
    adam_state: dict[str, Tensor] | None = None,
) -> tuple[Tensor, bool, dict[str, Tensor] | None]:
    """Run ``steps`` optimiser steps from ``image``; returns the image, whether the run is
    to stop (the report said so) and Adam's state (for the next scale, which resizes it;
    L-BFGS's curvature pairs cannot be resized and start anew).

    The image returned after all the steps is never worse than the best iterate evaluated
    (the last update, or Adam's average, is scored once and loses to a better one); L-BFGS
    restarts from the best iterate when the loss climbs (RESTART_RISE). A run stopped by
    the listener returns the last iterate: what the listener was shown.

    One transfer from the device per step: the loss, every term and whether the image is
    still finite, read together."""
    scale = PARAM_SCALE[optimizer]
    param = (image.detach() * scale).requires_grad_(True)
    opt = make_optimizer(optimizer, param, lr)
    if adam_state is not None:
        opt.state[param] = resize_adam_state(adam_state, tuple(image.shape[-2:]))
    evaluated: dict[str, Tensor] = {}

    def closure() -> Tensor:
        opt.zero_grad(set_to_none=True)
        loss, terms = evaluate(network, objective, param / scale, autocast, pooling)
        loss.backward()
        evaluated.clear()
        evaluated.update({k: v.detach() for k, v in terms.items()}, loss=loss.detach())
        return loss

    average = IterateAverage(ema_decay) if ema_decay is not None else None
    restarts = 0
    stop = False
    current = image
    best = Best()
    fresh = 0  # steps since the optimiser's memory last started
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
            weights = "`content_weight`, `style_weight`, `style_layer_weights` or `tv_weight`"
            if step == 0:  # the image itself scores infinite: no step size is at fault
                raise ImpastoError(f"the loss of the start image is infinite or NaN; lower {weights}")
            raise ImpastoError(f"the loss became infinite or NaN; lower `lr`, or {weights}")
        if not finite:
            # A step that left the image non-finite (an L-BFGS curvature pair gone bad on a
            # stiff objective): take it back and restart the optimiser's memory.
            restarts += 1
            if restarts > MAX_RESTARTS:
                raise ConfigError("lr", "the optimiser keeps producing NaN; lower `lr` or the weights")
            with torch.no_grad():
                param.copy_(previous)
            opt = make_optimizer(optimizer, param, lr)
        else:
            fresh += 1
            climbed = not best.offer(values["loss"], previous) and values["loss"] > best.loss * (1 + RESTART_RISE)
            if climbed and optimizer == "lbfgs" and fresh > RESTART_GRACE:
                # The curvature memory led uphill: back to the best iterate, memory cleared.
                assert best.image is not None
                with torch.no_grad():
                    param.copy_(best.image)
                opt = make_optimizer(optimizer, param, lr)
                fresh = 0
        current = param.detach() / scale
        if average is not None:
            current = average.update(current)
        if report(values, current):
            stop = True
            break
    state = dict(opt.state[param]) if optimizer == "adam" else None
    if HAND_OUT_BEST and not stop and best.image is not None:
        # The last update was never evaluated: score it, and hand out the best iterate seen
        # when that is lower (one forward pass a scale).
        with torch.no_grad():
            last, _ = evaluate(network, objective, current, autocast, pooling)
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
    correction does not restart."""
    size = tuple(size)
    first = F.interpolate(state["exp_avg"], size=size, mode="bicubic", align_corners=False)
    second = F.interpolate(state["exp_avg_sq"], size=size, mode="bilinear", align_corners=False).clamp(min=0)
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
