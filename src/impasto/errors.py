"""The exceptions impasto raises.

The library raises these and nothing else for bad input; the command line catches
:class:`ImpastoError` at its boundary and turns it into a one-line message and exit
status 2.
"""

from __future__ import annotations


class ImpastoError(Exception):
    """Base of every error impasto reports to a user."""


class ConfigError(ImpastoError, ValueError):
    """An invalid setting. ``field`` names the :class:`StyleConfig` field (or option)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


class ImageError(ImpastoError):
    """An image file that cannot be read or written, or an image unusable by the network."""


class WeightsError(ImpastoError):
    """Network weights that are missing, corrupt or of the wrong shape."""
