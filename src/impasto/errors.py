"""The exceptions impasto raises for bad input, and nothing else::

    ImpastoError                 every error meant for a person: one line, no traceback
     ├── ConfigError             an invalid setting; ``field`` names it (also a ValueError)
     ├── ImageError              an image that cannot be read, written or used by the network
     └── WeightsError            network weights missing, corrupt or of the wrong shape

The library names settings as they are called in the recipe, quoted with backticks
(`` `size` ``); a user interface replaces those names by its own words for them (the
command line by its flags, see :func:`impasto.cli.options.flag_text`).
"""

from __future__ import annotations


class ImpastoError(Exception):
    """Base of every error impasto reports to a user."""


class ConfigError(ImpastoError, ValueError):
    """An invalid setting. ``field`` names the recipe, runtime or input field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"`{field}`: {message}")
        self.field = field
        self.reason = message


class ImageError(ImpastoError):
    """An image file that cannot be read or written, or an image unusable by the network."""


class WeightsError(ImpastoError):
    """Network weights that are missing, corrupt or of the wrong shape."""
