"""A batch's items: which photo in which style, what each one is called, its key, and the
manifest that makes a batch resumable.

An item is one photo painted in one style. Its key is the digest of the photo's and the
painting's bytes, the recipe, the network's weights and impasto's version: the same key
means the same picture, wherever and whenever it is painted (the item's seed is derived
from it). The manifest (``manifest.jsonl`` in the output folder) gets a ``started`` line
for each item before any is painted and one line per item that ended (``done`` with the
picture's size and digest, ``failed`` or ``partial``), appended and flushed as it ends. A
rerun skips the items whose last line says ``done`` and whose picture is still there as it
was written, and paints the others again; it never paints over a file that no line of
the manifest claims for the same item.
"""

from __future__ import annotations

import csv
import glob
import json
import os
import string
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from impasto._version import __version__
from impasto.config import StyleConfig
from impasto.digest import digest
from impasto.errors import ConfigError
from impasto.imageio import IMAGE_SUFFIXES

#: How outputs are named unless ``--name`` says otherwise.
DEFAULT_NAME = "{photo}--{style}.{ext}"
NAME_FIELDS = {"photo", "style", "ext", "n"}
MANIFEST = "manifest.jsonl"
#: The file name suffixes of each output format.
SUFFIXES = {"png": (".png",), "jpg": (".jpg", ".jpeg"), "webp": (".webp",), "tiff": (".tif", ".tiff")}
#: Longest file name most file systems take, in bytes.
NAME_MAX = 255


@dataclass(frozen=True)
class Item:
    """One picture of a batch: ``photo`` painted in ``style``, written to ``output``."""

    photo: Path
    style: Path
    output: Path
    n: int
    """Its place in the batch, from 1."""


def collect(sources: Sequence[str], recursive: bool, field: str) -> list[Path]:
    """Image files from files, folders (their images; all below with ``recursive``) and
    globs, in a stable order, each once. ConfigError naming ``field`` for a name that
    matches nothing."""
    found: list[Path] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            below = _files_below(path) if recursive else path.iterdir()
            found += sorted(p for p in below if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.exists() or not glob.has_magic(source):
            if not path.exists():
                raise ConfigError(field, f"{source}: no such file or folder")
            if not path.is_file():
                raise ConfigError(field, f"{source}: not a regular file (a device, pipe or socket)")
            found.append(path)
        else:
            matches = sorted(p for p in _globbed(source, recursive) if p.is_file())
            if not matches:
                raise ConfigError(field, f"{source}: matches no file")
            found += matches
    seen: set[str] = set()
    unique = []
    for path in found:
        real = os.path.realpath(path)
        if real not in seen:
            seen.add(real)
            unique.append(path)
    return unique


def _files_below(folder: Path) -> Iterator[Path]:
    """The files in ``folder`` and all folders below it, links followed, each real folder
    once (a link back up would otherwise never end)."""
    seen: set[tuple[int, int]] = set()
    for root, folders, files in os.walk(folder, followlinks=True):
        try:
            info = os.stat(root)
        except OSError:
            folders[:] = []
            continue
        if (info.st_dev, info.st_ino) in seen:
            folders[:] = []
            continue
        seen.add((info.st_dev, info.st_ino))
        for name in files:
            yield Path(root) / name


def _globbed(pattern: str, recursive: bool) -> Iterator[Path]:
    """What ``pattern`` matches; with ``recursive``, ``**`` spans folders, each real folder
    looked in once (as :func:`_files_below`)."""
    if not (recursive and "**" in pattern):
        yield from (Path(m) for m in glob.glob(pattern))
        return
    parts = Path(pattern).parts
    first = next(i for i, part in enumerate(parts) if glob.has_magic(part))
    base = Path(*parts[:first]) if first else Path(".")
    whole = os.path.abspath(pattern)
    for path in _files_below(base):
        hidden = any(part.startswith(".") for part in path.relative_to(base).parts)
        if not hidden and _matches(os.path.abspath(path), whole, True):
            yield path


def check_not_read(sources: Sequence[str], recursive: bool, field: str, outputs: Iterable[Path]) -> None:
    """The batch's pictures are never among what ``sources`` collects: a rerun would take
    them for photos or paintings. ConfigError naming the source when the output folder is
    a folder it reads (or below one, with ``recursive``), or a glob of it would match an
    output."""
    outputs = list(outputs)
    if not outputs:
        return
    outdir = os.path.realpath(outputs[0].parent)
    for source in sources:
        path = Path(source)
        if path.is_dir():
            folder = os.path.realpath(path)
            if outdir == folder or (recursive and outdir.startswith(os.path.join(folder, ""))):
                raise ConfigError(
                    field, f"{source}: the output folder is {'in ' if outdir != folder else ''}this folder, so a rerun "
                    "would paint the pictures again as inputs; choose another output folder",
                )  # fmt: skip
        elif not path.exists() and glob.has_magic(source):
            pattern = os.path.abspath(source)
            for output in outputs:
                if _matches(os.path.abspath(output), pattern, recursive):
                    raise ConfigError(
                        field, f"{source}: matches the output {output}, so a rerun would paint it as an input; "
                        "choose another output folder or --name",
                    )  # fmt: skip


def _matches(path: str, pattern: str, recursive: bool) -> bool:
    import re

    parts = []
    for piece in re.split(r"(\*\*/?|\*|\?|\[[^\]]*\])", pattern):
        if piece.startswith("**") and recursive:
            parts.append(".*")
        elif piece.startswith("*"):
            parts.append("[^/]*")
        elif piece == "?":
            parts.append("[^/]")
        elif piece.startswith("[") and piece.endswith("]") and len(piece) > 2:
            parts.append("[^" + piece[2:-1] + "]" if piece[1] == "!" else piece)
        else:
            parts.append(re.escape(piece))
    return re.fullmatch("".join(parts), path) is not None


def read_pairs(path: str | os.PathLike) -> list[tuple[Path, Path]]:
    """``photo,style`` rows of a CSV file (a header row ``photo,style`` is skipped);
    relative paths are relative to the CSV file's folder."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise ConfigError("pairs", f"{path}: cannot read ({reason})") from None
    pairs = []
    try:
        rows = list(csv.reader(text.splitlines()))
    except csv.Error as exc:
        raise ConfigError("pairs", f"{path}: not a photo,style CSV file ({exc})") from None
    for number, row in enumerate(rows, start=1):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != 2:
            raise ConfigError("pairs", f"{path}, line {number}: expected two columns (photo,style), got {len(row)}")
        photo, style = (cell.strip() for cell in row)
        if number == 1 and (photo.lower(), style.lower()) == ("photo", "style"):
            continue
        pairs.append(tuple(p if p.is_absolute() else path.parent / p for p in (Path(photo), Path(style))))
    if not pairs:
        raise ConfigError("pairs", f"{path}: has no photo,style rows")
    return pairs  # type: ignore[return-value]


def check_template(template: str) -> None:
    """A ``--name`` template uses only the fields there are and makes a plain file name."""
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise ConfigError("name", f"{template!r} is not a name template ({exc})") from None
    unknown = fields - NAME_FIELDS
    if unknown:
        raise ConfigError("name", f"{template!r} uses {{{sorted(unknown)[0]}}}; the fields are {{photo}}, "
                          "{style}, {ext} and {n}")  # fmt: skip
    if "/" in template or "\\" in template:
        raise ConfigError("name", f"{template!r} must name a file in the output folder, not a path")


def plan_items(
    pairs: Iterable[tuple[Path, Path]], outdir: Path, template: str = DEFAULT_NAME, ext: str = "png"
) -> list[Item]:
    """The batch's items, each with its output's name. ConfigError when two items would
    get the same name (say which, and how to tell them apart)."""
    check_template(template)
    items: list[Item] = []
    names: dict[str, Item] = {}
    for n, (photo, style) in enumerate(pairs, start=1):
        try:
            name = template.format(photo=photo.stem, style=style.stem, ext=ext, n=n)
        except (ValueError, IndexError) as exc:
            raise ConfigError("name", f"{template!r} is not a name template ({exc})") from None
        if not name or name in (".", "..") or name.startswith(".impasto-"):
            raise ConfigError("name", f"{template!r} makes the name {name!r} for {photo} in the style of {style}")
        suffix = Path(name).suffix.lower()
        if ext in SUFFIXES and suffix not in SUFFIXES[ext]:
            raise ConfigError(
                "name", f"{template!r} makes {name!r}, not a .{ext} name, and the pictures are {ext} (--format); "
                "end the template in .{ext}",
            )  # fmt: skip
        if len(os.fsencode(name)) > NAME_MAX:
            raise ConfigError(
                "name", f"makes a name of {len(os.fsencode(name))} bytes for {photo} in the style of {style}; "
                f"file systems take {NAME_MAX}: use {{n}} or a shorter --name",
            )  # fmt: skip
        if name in names:
            other = names[name]
            raise ConfigError(
                "name",
                f"{other.photo} in {other.style.name} and {photo} in {style.name} would both be {name}; "
                "put {n} in --name, or give the files different names",
            )
        item = Item(photo, style, outdir / name, n)
        names[name] = item
        items.append(item)
    return items


def item_key(item: Item, recipe: StyleConfig, weights: str) -> str:
    """What makes the item's picture: its files' bytes, the recipe, the weights, impasto's
    version (not the file names or the output's)."""
    return digest(item.photo, item.style, recipe.to_json(), weights, __version__)


def item_recipe(recipe: StyleConfig, key: str) -> StyleConfig:
    """The recipe an item is painted with: its seed derived from its key, so that the same
    item gives the same bytes in any batch, in any order, on any worker."""
    return recipe.replace(seed=int(key[:15], 16))


class Manifest:
    """``manifest.jsonl`` in a batch's output folder: one line per item that ended."""

    def __init__(self, outdir: Path) -> None:
        self.path = outdir / MANIFEST

    def read(self) -> dict[str, dict[str, Any]]:
        """The last line of each key (lines that cannot be read, such as a half line left
        by a kill, are skipped)."""
        last: dict[str, dict[str, Any]] = {}
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return last
        except OSError as exc:
            raise ConfigError("output", f"{self.path}: cannot read ({exc.strerror or exc})") from None
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(record.get("key"), str):
                last[record["key"]] = record
        return last

    def done(self, item: Item, key: str, records: dict[str, dict[str, Any]]) -> bool:
        """The item was painted whole before, and its picture is still where it went, as
        it was written (its size and digest as the manifest recorded them)."""
        record = records.get(key)
        if not (record and record.get("status") == "done" and item.output.is_file()):
            return False
        try:
            same = item.output.stat().st_size == record.get("bytes") and digest(item.output) == record.get("digest")
        except OSError:
            return False
        return same

    def check_outputs(self, items: Iterable[tuple[Item, str]], records: dict[str, dict[str, Any]]) -> None:
        """No existing file is painted over unless this batch wrote it for the same item:
        ConfigError naming the first picture that another recipe painted, or that no
        batch into this folder wrote."""
        written = {str(record.get("output")): record for record in records.values()}
        for item, key in items:
            mine = records.get(key, {}).get("output") == item.output.name
            if mine or not os.path.lexists(item.output):
                continue
            if item.output.name in written:
                raise ConfigError(
                    "output",
                    f"{item.output} was painted with other settings or files (or another impasto); "
                    "write to another folder, or put what differs in --name",
                )
            raise ConfigError(
                "output", f"{item.output} exists and no batch into {self.path.parent} painted it; move it or "
                "choose another folder",
            )  # fmt: skip

    def append(self, *records: dict[str, Any]) -> None:
        """Add one line a record, on disk before this returns (a kill after it loses nothing)."""
        line = "".join(json.dumps(record, ensure_ascii=True) + "\n" for record in records)
        try:
            with open(self.path, "a+b") as stream:
                if stream.tell() > 0:  # a half line left by a kill ends here, not in this one
                    stream.seek(-1, os.SEEK_END)
                    if stream.read(1) != b"\n":
                        line = "\n" + line
                stream.write(line.encode("ascii"))
                stream.flush()
                os.fsync(stream.fileno())
        except OSError as exc:
            raise ConfigError("output", f"{self.path}: cannot write ({exc.strerror or exc})") from None
