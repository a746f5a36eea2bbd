"""``impasto explain``: the teaching figures of style transfer (the network as loaded,
feature maps, what style is, which layer carries what, how the optimisation went), made
from a person's own pictures. Needs matplotlib: ``pip install 'impasto[explain]'``.

The Python API returns the figures as data: :func:`explain` gives a :class:`Report` whose
sections hold matplotlib figures and the tensors they were drawn from.
"""

from __future__ import annotations

from impasto._lazy import lazy_exports, require_extra


def require_matplotlib() -> None:
    """ImpastoError with the pip command when matplotlib is missing."""
    require_extra("impasto explain", "explain", {"matplotlib": "matplotlib"})


__all__ = ["History", "Recorder", "Report", "Section", "explain", "require_matplotlib"]
__getattr__ = lazy_exports(
    globals(),
    {
        "History": "impasto.explain.history",
        "Recorder": "impasto.explain.history",
        "Report": "impasto.explain.report",
        "Section": "impasto.explain.report",
        "explain": "impasto.explain.report",
    },
)
