"""The engine: the long-lived :class:`Stylizer`, the per-scale optimiser loop and the
progress events."""

from impasto.engine.events import EVERY_STEP, Previews, Progress, ProgressCallback, group_terms
from impasto.engine.optimize import IterateAverage, evaluate, optimize_scale, resize_adam_state
from impasto.engine.stylizer import Interrupted, Stylizer, stylize

__all__ = [
    "EVERY_STEP",
    "Interrupted",
    "IterateAverage",
    "Previews",
    "Progress",
    "ProgressCallback",
    "Stylizer",
    "evaluate",
    "group_terms",
    "optimize_scale",
    "resize_adam_state",
    "stylize",
]
