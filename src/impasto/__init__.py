"""impasto: neural style transfer (Gatys, Ecker & Bethge, 2015) on the original VGG19."""

from impasto.config import PRESETS, StyleConfig
from impasto.engine import Interrupted, Previews, Progress, Stylizer, stylize
from impasto.errors import ConfigError, ImageError, ImpastoError, WeightsError
from impasto.imageio import load_image, save_image
from impasto.inputs import Inputs
from impasto.runtime import Runtime

__version__ = "0.2.0"

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
