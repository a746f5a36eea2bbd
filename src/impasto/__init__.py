"""impasto: neural style transfer (Gatys, Ecker & Bethge, 2015) on the original VGG19.

The names below are imported on first use, so that ``import impasto.cli`` (the command
line) can install its signal handling before torch is loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from impasto._lazy import lazy_exports
from impasto._version import __version__

#: Public name -> the module that defines it.
_HOMES = {
    "PRESETS": "impasto.presets",
    "StyleConfig": "impasto.config",
    "Interrupted": "impasto.engine",
    "Previews": "impasto.engine",
    "Progress": "impasto.engine",
    "Stylizer": "impasto.engine",
    "stylize": "impasto.engine",
    "ConfigError": "impasto.errors",
    "ImageError": "impasto.errors",
    "ImpastoError": "impasto.errors",
    "WeightsError": "impasto.errors",
    "load_image": "impasto.imageio",
    "save_image": "impasto.imageio",
    "Inputs": "impasto.inputs",
    "Runtime": "impasto.runtime",
}

__all__ = [
    "PRESETS",
    "ConfigError",
    "ImageError",
    "ImpastoError",
    "Inputs",
    "Interrupted",
    "Previews",
    "Progress",
    "Runtime",
    "StyleConfig",
    "Stylizer",
    "WeightsError",
    "__version__",
    "load_image",
    "save_image",
    "stylize",
]

if TYPE_CHECKING:
    from impasto.config import StyleConfig
    from impasto.engine import Interrupted, Previews, Progress, Stylizer, stylize
    from impasto.errors import ConfigError, ImageError, ImpastoError, WeightsError
    from impasto.imageio import load_image, save_image
    from impasto.inputs import Inputs
    from impasto.presets import PRESETS
    from impasto.runtime import Runtime


__getattr__ = lazy_exports(globals(), _HOMES)


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
