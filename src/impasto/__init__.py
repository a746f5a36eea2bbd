"""impasto: neural style transfer (Gatys, Ecker & Bethge, 2015) on the original VGG19."""

from impasto.config import PRESETS, StyleConfig
from impasto.engine import Progress, stylize
from impasto.errors import ConfigError, ImageError, ImpastoError, WeightsError
from impasto.imageio import load_image, save_image

__version__ = "0.1.0"

__all__ = [
    "PRESETS",
    "ConfigError",
    "ImageError",
    "ImpastoError",
    "Progress",
    "StyleConfig",
    "WeightsError",
    "__version__",
    "load_image",
    "save_image",
    "stylize",
]
