"""The exceptions impasto raises for bad input, and nothing else::

    ImpastoError                 every error meant for a person: one line, no traceback
     ├── ConfigError             an invalid setting; ``field`` names it (also a ValueError)
     ├── ImageError              an image that cannot be read, written or used by the network
     └── WeightsError            network weights missing, corrupt or of the wrong shape

    ImpastoWarning               something optional skipped, the work goes on (a UserWarning)

The library names settings as they are called in the recipe, quoted with backticks
(`` `size` ``); a user interface replaces those names by its own words for them (the
command line by its flags, see :func:`impasto.cli.options.flag_text`).
"""

from __future__ import annotations

import unicodedata


def one_line(text: str) -> str:
    """``text`` with every control, format or surrogate character escaped (``\\n``,
    ``\\x1b``, ``\\u202e``): a file name or a recipe key a person sent stays one line and
    sends no terminal escapes or direction overrides to the terminal that shows it."""
    if text.isprintable():
        return text
    out = []
    for char in text:
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            out.append(
                repr(char)[1:-1]
                if char in "\t\n\r"
                else f"\\u{ord(char):04x}"
                if ord(char) > 0xFF
                else f"\\x{ord(char):02x}"
            )
        else:
            out.append(char)
    return "".join(out)


class ImpastoError(Exception):
    """Base of every error impasto reports to a user. Its message is made one line (see
    :func:`one_line`) whatever it quotes."""

    def __init__(self, *args: object) -> None:
        if args and isinstance(args[0], str):
            args = (one_line(args[0]), *args[1:])
        super().__init__(*args)


class ConfigError(ImpastoError, ValueError):
    """An invalid setting. ``field`` names the recipe, runtime or input field."""

    def __init__(self, field: str, message: str) -> None:
        # Both parts escaped too: interfaces build their own line from them.
        field, message = one_line(field), one_line(message)
        super().__init__(f"`{field}`: {message}")
        self.field = field
        self.reason = message

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        # Rebuilt from its own arguments, so that it survives pickling (a worker process).
        return (type(self), (self.field, self.reason))


class ImageError(ImpastoError):
    """An image file that cannot be read or written, or an image unusable by the network."""


class WeightsError(ImpastoError):
    """Network weights that are missing, corrupt or of the wrong shape."""


class ImpastoWarning(UserWarning):
    """Something optional could not be done and the work went on without it (a cache
    that cannot be written); the command line shows it as one ``impasto: warning:`` line."""
