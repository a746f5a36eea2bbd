"""L-BFGS over one tensor, one evaluation of the objective a step, no line search: the
update torch's ``torch.optim.LBFGS(max_iter=1)`` makes (Nocedal and Wright, "Numerical
Optimization", algorithm 7.4: the two-loop recursion over the last ``history`` curvature
pairs ``(s, y)``, the first matrix ``H₀ = sᵀy / yᵀy``; the very first step ``-g`` times
``min(1, 1/|g|₁)``), with every inner product and norm added in
:func:`impasto.numerics.ordered_sum`'s order.

Why not torch's: its inner products are BLAS dot products, whose sums are split between
threads, so the same run took other steps on one thread than on two, and a batch's item
was another file on a worker of one core than on one of two. The steps are the same
arithmetic otherwise (the same rules for a pair kept, a step taken and a step skipped), so
they differ from torch's only in the last bits of those sums.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import torch
from torch import Tensor

from impasto.engine.memory import LBFGS_HISTORY
from impasto.numerics import ordered_dot, ordered_sum

#: A pair is kept only when ``yᵀs`` is above this (the objective curved upwards along the
#: step); torch's rule.
MIN_CURVATURE = 1e-10
#: No step where the gradient is this small everywhere, or where the direction is not a
#: descent direction by at least this much (torch's ``tolerance_grad`` and
#: ``tolerance_change``).
GRADIENT_TOLERANCE = 1e-7
DESCENT_TOLERANCE = 1e-9


class LBFGS(torch.optim.Optimizer):
    """L-BFGS of one tensor ``param`` with step size ``lr`` and ``history`` curvature pairs;
    :meth:`step` evaluates ``closure`` (which fills ``param.grad`` and returns the loss)
    once and moves ``param`` once. The same bits on any number of threads."""

    def __init__(self, param: Tensor, lr: float = 1.0, history: int = LBFGS_HISTORY) -> None:
        super().__init__([param], {"lr": lr})
        self.param = param
        #: Curvature pairs, oldest first: ``(s, y, 1 / yᵀs)``.
        self.pairs: deque[tuple[Tensor, Tensor, Tensor]] = deque(maxlen=history)
        self.scaling: Tensor | float = 1.0
        self.direction: Tensor | None = None
        self.length = 0.0
        self.previous_gradient: Tensor | None = None

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor]) -> Tensor:  # type: ignore[override]
        with torch.enable_grad():
            loss = closure()
        gradient = self.param.grad
        assert gradient is not None
        if gradient.abs().max() <= GRADIENT_TOLERANCE:
            return loss
        lr = self.param_groups[0]["lr"]
        if self.direction is None or self.previous_gradient is None:
            direction = -gradient
            length = min(1.0, 1.0 / float(ordered_sum(gradient.abs()))) * lr
        else:
            self._remember(self.direction * self.length, gradient - self.previous_gradient)
            direction = self._direction(gradient)
            length = lr
        if self.previous_gradient is None:
            self.previous_gradient = gradient.clone()
        else:
            self.previous_gradient.copy_(gradient)
        self.direction, self.length = direction, length
        if ordered_dot(gradient, direction) > -DESCENT_TOLERANCE:
            return loss
        self.param.add_(direction, alpha=length)
        return loss

    def _remember(self, s: Tensor, y: Tensor) -> None:
        """Keep the pair of the last step when the objective curved upwards along it."""
        ys = ordered_dot(y, s)
        if ys > MIN_CURVATURE:
            self.pairs.append((s, y, 1.0 / ys))
            self.scaling = ys / ordered_dot(y, y)

    def _direction(self, gradient: Tensor) -> Tensor:
        """``-H g`` by the two-loop recursion over the kept pairs."""
        q = gradient.neg()
        alphas = []
        for s, y, rho in reversed(self.pairs):
            alpha = float(ordered_dot(s, q) * rho)
            q.add_(y, alpha=-alpha)
            alphas.append(alpha)
        r = q.mul_(self.scaling)
        for (s, y, rho), alpha in zip(self.pairs, reversed(alphas), strict=True):
            beta = float(ordered_dot(y, r) * rho)
            r.add_(s, alpha=alpha - beta)
        return r
