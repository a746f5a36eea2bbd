"""Where files live: this user's folders for impasto's cache and data, and files that other
installed distributions carry (found through their metadata, so the package itself is
never imported)."""

from __future__ import annotations

import importlib.metadata
import os
import sys
from pathlib import Path

#: The XDG variable of each kind of folder, and its default under the home folder.
_XDG = {"cache": ("XDG_CACHE_HOME", (".cache",)), "data": ("XDG_DATA_HOME", (".local", "share"))}


def user_folder(kind: str) -> Path:
    """This user's ``impasto`` folder of ``kind`` (``cache`` or ``data``): the XDG base
    folder (``$XDG_CACHE_HOME``, ``~/.cache``; ``$XDG_DATA_HOME``, ``~/.local/share``), and
    for data the platform's own on Windows and macOS."""
    variable, default = _XDG[kind]
    if kind == "data" and sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif kind == "data" and sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get(variable) or Path.home().joinpath(*default))
    return base / "impasto"


def distribution_file(distribution: str, file_name: str) -> tuple[Path | None, str | None]:
    """``(path, version)`` of ``file_name`` inside the installed ``distribution``:
    ``(None, version)`` when it lacks the file, ``(None, None)`` when it is not installed."""
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None, None
    for entry in dist.files or ():
        if entry.name == file_name:
            return Path(str(dist.locate_file(entry))), dist.version
    return None, dist.version
