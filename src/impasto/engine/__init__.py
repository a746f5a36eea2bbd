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
from impasto.engine.plan import Hook, Interrupted, LookHook, RunPlan, TermsHook, evaluator_for, paint
from impasto.engine.stylizer import Stylizer, stylize

__all__ = [
    "DEFAULT_POLICY",
    "EVERY_STEP",
    "Evaluator",
    "Hook",
    "Interrupted",
    "IterateAverage",
    "LookHook",
    "Policy",
    "Previews",
    "Progress",
    "ProgressCallback",
    "RunPlan",
    "Stylizer",
    "TermsHook",
    "WholeImage",
    "evaluate",
    "evaluator_for",
    "group_terms",
    "optimize_scale",
    "paint",
    "resize_adam_state",
    "stylize",
]
