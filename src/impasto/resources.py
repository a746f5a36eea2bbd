"""Files that other installed distributions carry (found through their metadata, so the
package itself is never imported)."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path


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
