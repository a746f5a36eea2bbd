"""impasto studio: a local web page to set up a run, watch it form, stop it, and keep the
results (``impasto serve``). Needs FastAPI and uvicorn: ``pip install 'impasto[web]'``.

:func:`~impasto.web.app.create_app` builds the ASGI app over a
:class:`~impasto.web.studio.Studio` (jobs on a runner, results on disk).
"""

from __future__ import annotations

from impasto._lazy import lazy_exports, require_extra

NEEDS = {"fastapi": "fastapi", "uvicorn": "uvicorn", "multipart": "python-multipart"}


def require_web() -> None:
    """ImpastoError with the pip command when a package the studio needs is missing."""
    require_extra("impasto serve", "web", NEEDS)


__all__ = ["Studio", "create_app", "require_web"]
__getattr__ = lazy_exports(globals(), {"Studio": "impasto.web.studio", "create_app": "impasto.web.app"})
