"""The engine: the long-lived :class:`Stylizer`, the per-scale optimiser loop and the
progress events."""

from impasto.engine.events import EVERY_STEP, Previews, Progress, ProgressCallback, group_terms
from impasto.engine.optimize import (
    DEFAULT_POLICY,
    Evaluator,
    IterateAverage,
    Policy,
    WholeImage,
    evaluate,
    optimize_scale,
    resize_adam_state,
)
from impasto.engine.stylizer import Interrupted, Stylizer, stylize

__all__ = [
    "DEFAULT_POLICY",
    "EVERY_STEP",
    "Evaluator",
    "Interrupted",
    "IterateAverage",
    "Policy",
    "Previews",
    "Progress",
    "ProgressCallback",
    "Stylizer",
    "WholeImage",
    "evaluate",
    "group_terms",
    "optimize_scale",
    "resize_adam_state",
    "stylize",
]
