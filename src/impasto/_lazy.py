"""What an optional part of the package needs, loaded late: names a package exports without
importing their modules until first use (PEP 562), and the one-line error naming the pip
command of an extra that is not installed."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from typing import Any

from impasto.errors import ImpastoError


def lazy_exports(namespace: dict[str, Any], homes: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for the package whose globals are ``namespace``: each name
    of ``homes`` is imported from its module on first use and kept in ``namespace``."""
    package = namespace["__name__"]

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
        namespace[name] = value
        return value

    return __getattr__


def install_command(extra: str) -> str:
    """The pip command that installs impasto's ``extra``."""
    return f"pip install 'impasto[{extra}]'"


def require_extra(what: str, extra: str, needs: dict[str, str]) -> None:
    """ImpastoError "``what`` needs PACKAGES: pip install 'impasto[extra]'" when a module
    of ``needs`` (module name -> the package that provides it) cannot be imported."""
    missing = [package for module, package in needs.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise ImpastoError(f"{what} needs {', '.join(missing)}: {install_command(extra)}")
