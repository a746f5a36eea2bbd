"""``impasto batch``: every photo in every style, resumable, exact; bad inputs fail their
items only; Ctrl-C/SIGTERM keeps the picture so far as a partial that a rerun redoes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from impasto import cli
from impasto.batch import Item, Manifest, collect, plan_items
from impasto.errors import ConfigError

TINY = ["--size", "32", "--steps", "3", "-q"]


@pytest.fixture
def folders(tmp_path):
    photos, styles = tmp_path / "photos", tmp_path / "styles"
    photos.mkdir()
    styles.mkdir()
    Image.new("RGB", (40, 30), (200, 120, 40)).save(photos / "orange.png")
    Image.radial_gradient("L").resize((36, 36)).convert("RGB").save(photos / "round.jpg")
    Image.effect_noise((48, 48), 60).convert("RGB").save(styles / "noise.png")
    stripes = Image.linear_gradient("L").resize((40, 40)).convert("RGB")
    stripes.save(styles / "stripes.png")
    return photos, styles


def _batch(*args) -> tuple[int, str]:
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = cli.main(["batch", *map(str, args)])
    return code, err.getvalue()


def _lines(outdir: Path, started: bool = False) -> list[dict]:
    """The manifest's lines of items that ended (with ``started``, all of them)."""
    lines = [json.loads(line) for line in (outdir / "manifest.jsonl").read_text().splitlines()]
    return [line for line in lines if started or line["status"] != "started"]


def test_every_photo_in_every_style_then_a_rerun_paints_nothing(folders, tmp_path):
    photos, styles = folders
    out = tmp_path / "out"
    code, err = _batch(photos, "--style", styles, "-o", out, *TINY)
    assert code == 0, err
    names = sorted(p.name for p in out.glob("*.png"))
    assert names == ["orange--noise.png", "orange--stripes.png", "round--noise.png", "round--stripes.png"]
    lines = _lines(out)
    assert [x["status"] for x in lines] == ["done"] * 4 and len({x["key"] for x in lines}) == 4
    assert all(x["figures"]["content_distance"] >= 0 and x["figures"]["style_distance"] > 0 for x in lines)
    assert [x["status"] for x in _lines(out, started=True)[:4]] == ["started"] * 4  # claimed before painted
    assert all(x["bytes"] == (out / x["output"]).stat().st_size and len(x["digest"]) == 32 for x in lines)
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    code, err = _batch(photos, "--style", styles, "-o", out, *TINY)
    assert code == 0 and "4 done before, 0 to paint" in err, err
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")} == stamps and len(_lines(out)) == 4


def test_a_bad_input_fails_its_items_only_and_a_rerun_retries_them(folders, tmp_path):
    photos, styles = folders
    (photos / "broken.png").write_bytes(b"not a picture")
    out = tmp_path / "out"
    code, err = _batch(photos, "--style", styles / "noise.png", "-o", out, *TINY)
    assert code == 1, err
    assert "broken.png: not an image" in err and "2 painted, 0 done before, 1 failed" in err
    assert sorted(p.name for p in out.glob("*.png")) == ["orange--noise.png", "round--noise.png"]
    Image.new("RGB", (40, 40), (10, 200, 10)).save(photos / "broken.png")  # mended
    code, err = _batch(photos, "--style", styles / "noise.png", "-o", out, *TINY)
    assert code == 0 and "2 done before, 1 to paint" in err, err
    assert [x["status"] for x in _lines(out)] == ["failed", "done", "done", "done"]  # broken.png sorts first


def test_an_item_gives_the_same_bytes_in_any_batch_and_order(folders, tmp_path):
    photos, styles = folders
    code, _ = _batch(photos, "--style", styles, "-o", tmp_path / "all", *TINY)
    assert code == 0
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("photo,style\nphotos/round.jpg,styles/stripes.png\nphotos/orange.png,styles/noise.png\n")
    code, err = _batch("--pairs", pairs, "-o", tmp_path / "two", *TINY)
    assert code == 0, err
    for name in ("round--stripes.png", "orange--noise.png"):
        assert (tmp_path / "two" / name).read_bytes() == (tmp_path / "all" / name).read_bytes()
    other = tmp_path / "copy.png"  # the key is the bytes, not the name: same picture
    shutil.copy(photos / "orange.png", other)
    code, err = _batch(other, "--style", styles / "noise.png", "-o", tmp_path / "one", *TINY)
    assert code == 0, err
    assert (tmp_path / "one" / "copy--noise.png").read_bytes() == (tmp_path / "all" / "orange--noise.png").read_bytes()


def test_a_rerun_repaints_what_is_not_as_written_and_never_paints_over_other_pictures(folders, tmp_path):
    photos, styles = folders
    out = tmp_path / "out"
    assert _batch(photos, "--style", styles / "noise.png", "-o", out, *TINY)[0] == 0
    first = {p.name: p.read_bytes() for p in out.glob("*.png")}
    (out / "orange--noise.png").write_bytes(b"")  # a disk that filled up, an editor that saved over it
    Image.new("RGB", (32, 24), (0, 0, 255)).save(out / "round--noise.png")
    code, err = _batch(photos, "--style", styles / "noise.png", "-o", out, *TINY)
    assert code == 0 and "0 done before, 2 to paint" in err, err
    assert {p.name: p.read_bytes() for p in out.glob("*.png")} == first
    # another recipe into the same folder: refused before any work, the first recipe's pictures kept
    code, err = _batch(photos, "--style", styles / "noise.png", "-o", out, *TINY, "--style-weight", "2e6")
    assert code == 2 and err.count("\n") == 1 and "painted with other settings" in err and "--name" in err, err
    # a picture of the user's at an output's name
    mine = Image.new("RGB", (8, 8), (1, 2, 3))
    mine.save(out / "orange--stripes.png")
    kept = (out / "orange--stripes.png").read_bytes()
    code, err = _batch(photos, "--style", styles, "-o", out, *TINY)
    assert code == 2 and "orange--stripes.png exists and no batch" in err, err
    assert (out / "orange--stripes.png").read_bytes() == kept
    assert {p.name: p.read_bytes() for p in out.glob("*--noise.png")} == first


def _default_signals():
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_mid_batch_keeps_a_partial_that_the_rerun_paints_again(folders, tmp_path, signum, code):
    photos, styles = folders
    slow = ["--size", "32", "--steps", "60", "-q"]  # about 5 s an item
    whole = tmp_path / "whole"
    assert _batch(photos, "--style", styles / "noise.png", "-o", whole, *slow)[0] == 0
    out = tmp_path / "out"
    command = [sys.executable, "-m", "impasto", "batch", str(photos), "--style", str(styles / "noise.png"),
               "-o", str(out), *slow]  # fmt: skip
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, preexec_fn=_default_signals)
    deadline = time.monotonic() + 120
    while not ((out / "manifest.jsonl").exists() and _lines(out)) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # into the second item's steps
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    assert process.returncode == code, err
    assert "Traceback" not in err and "interrupted; the picture so far is in" in err, err
    assert [x["status"] for x in _lines(out)] == ["done", "partial"]
    code, err = _batch(photos, "--style", styles / "noise.png", "-o", out, *slow)
    assert code == 0 and "1 done before, 1 to paint" in err, err
    for picture in whole.glob("*.png"):
        assert (out / picture.name).read_bytes() == picture.read_bytes()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{photos}", "-o", "out"], "--style: give at least one --style painting"),
        (["--style", "{styles}", "-o", "out"], "give the photos to paint"),
        (["{photos}/*.gif", "--style", "{styles}", "-o", "out"], "matches no file"),
        (["{photos}", "--style", "{styles}", "-o", "out", "--name", "{{photo}}-{{size}}.png"], "uses {size}"),
        (["{photos}", "--style", "{styles}", "-o", "out", "--name", "same.png"], "would both be same.png"),
        (["{photos}", "--style", "{styles}", "-o", "{photos}/orange.png"], "exists and is not a folder"),
        (["{photos}", "--style", "{styles}/noise.png", "-o", "{photos}", "--name", "{{photo}}.png"], "INPUT: "),
        (["{photos}/*", "--style", "{styles}/noise.png", "-o", "{photos}"], "matches the output"),
        (["{photos}", "--style", "{styles}", "-o", "{photos}/painted", "-r"], "the output folder is in this folder"),
        (["{photos}", "--style", "{styles}", "-o", "{styles}"], "--style: "),
        (["{photos}", "--style", "{styles}", "-o", "out", "--mask", "{photos}/orange.png"], "--mask: apply to one"),
        (["--pairs", "{photos}/orange.png", "-o", "out"], "--pairs:"),
    ],
)
def test_bad_input_is_one_line_before_any_work(folders, tmp_path, monkeypatch, args, message):
    photos, styles = folders
    monkeypatch.chdir(tmp_path)
    args = [a.format(photos=photos, styles=styles) for a in args]
    code, err = _batch(*args, *TINY)
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "out").exists()


def test_inputs_that_never_end_are_refused_in_one_line(folders, tmp_path, monkeypatch):
    photos, styles = folders
    monkeypatch.chdir(tmp_path)
    fifo = tmp_path / "photo.png"
    os.mkfifo(fifo)  # reading it would wait for a writer forever
    code, err = _batch(fifo, "--style", styles / "noise.png", "-o", "out", *TINY)
    assert code == 2 and "photo.png: not a regular file" in err and err.count("\n") == 1, err
    (tmp_path / "pairs.csv").write_text(f"{photos / 'orange.png'},{fifo}\n")
    code, err = _batch("--pairs", "pairs.csv", "-o", "out", *TINY)
    assert code == 2 and "photo.png: not a regular file" in err, err
    (tmp_path / "long.csv").write_text("photo,style\n" + "x" * 200_000 + ",y.png\n")
    code, err = _batch("--pairs", "long.csv", "-o", "out", *TINY)
    assert code == 2 and err.startswith("impasto: error: --pairs: long.csv") and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


def test_a_recursive_walk_takes_each_real_folder_once(folders, tmp_path):
    photos, _ = folders
    (photos / "deeper").mkdir()
    Image.new("RGB", (40, 30), (20, 120, 40)).save(photos / "deeper" / "green.png")
    (photos / "deeper" / "up").symlink_to("..")  # a link back to the top: endless without a guard
    (photos / "again").symlink_to("deeper")
    found = collect([str(photos)], True, "inputs")
    assert sorted(p.name for p in found) == ["green.png", "orange.png", "round.jpg"]
    found = collect([str(photos / "**" / "*.png")], True, "inputs")
    assert sorted(p.name for p in found) == ["green.png", "orange.png"]


@pytest.mark.parametrize(
    ("name", "fmt", "message"),
    [
        ("{photo}.png", "webp", "not a .webp name"),
        ("{photo}.xyz", "png", "not a .png name"),
        ("{photo}", "png", "not a .png name"),
        ("{photo}" + "x" * 300 + ".{ext}", "png", "bytes"),
    ],
)
def test_output_names_are_checked_before_any_work(folders, tmp_path, name, fmt, message):
    photos, styles = folders
    out = tmp_path / "out"
    code, err = _batch(photos, "--style", styles / "noise.png", "-o", out, "--name", name, "--format", fmt, *TINY)
    assert code == 2 and message in err and err.startswith("impasto: error: --name") and err.count("\n") == 1, err
    assert not out.exists()


def test_a_manifest_that_cannot_be_written_is_one_line_before_any_work(folders, tmp_path, monkeypatch):
    photos, styles = folders
    out = tmp_path / "out"

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)  # a disk that filled up
    code, err = _batch(photos, "--style", styles / "noise.png", "-o", out, *TINY)
    assert code == 2 and "manifest.jsonl: cannot write (No space left on device)" in err, err
    assert err.count("\n") == 2 and "Traceback" not in err, err  # the plan's line, then the error
    assert list(out.glob("*.png")) == []


def test_progress_lines_escape_file_names(folders, tmp_path):
    photos, styles = folders
    odd = tmp_path / "odd"
    odd.mkdir()
    shutil.copy(photos / "orange.png", odd / "title\x1b]0;pwned\x07\nname.png")  # sets a terminal's title
    code, err = _batch(odd, "--style", styles / "noise.png", "-o", tmp_path / "out", *TINY)
    assert code == 0, err
    assert "\x1b" not in err and "\x07" not in err and "1 picture into" in err, err
    assert all(line.startswith(("impasto batch:", "[")) for line in err.splitlines()), err


def test_the_manifest_survives_a_half_line(tmp_path):
    manifest = Manifest(tmp_path)
    manifest.append({"key": "a", "status": "done"})
    with open(manifest.path, "a") as stream:
        stream.write('{"key": "b", "sta')  # a kill in the middle of a line
    manifest.append({"key": "c", "status": "failed"})
    assert set(manifest.read()) == {"a", "c"}


def test_names_are_checked_when_the_batch_is_planned(tmp_path):
    pairs = [(Path("a/x.png"), Path("s.png")), (Path("b/x.png"), Path("s.png"))]
    with pytest.raises(ConfigError, match=r"would both be x--s\.png"):
        plan_items(pairs, tmp_path)
    items = plan_items(pairs, tmp_path, "{n}-{photo}--{style}.{ext}", "jpg")
    assert [i.output.name for i in items] == ["1-x--s.jpg", "2-x--s.jpg"] and isinstance(items[0], Item)


def test_a_batch_from_python_without_the_command_line_yields_events_and_resumes(folders, tmp_path):
    from impasto.batch import Ended, Painting, paint_batch
    from impasto.jobs.base import recipe_from

    photos, styles = folders
    out = tmp_path / "lib"
    pairs = [(photos / "orange.png", styles / "noise.png"), (photos / "round.jpg", styles / "stripes.png")]
    items = plan_items(pairs, out)
    recipe = recipe_from({"preset": "fast", "size": 32, "steps": 3})  # what the command line below builds
    events = list(paint_batch(items, recipe))
    ended = [e for e in events if isinstance(e, Ended)]
    assert [(e.item.output.name, e.state, e.ended, e.total) for e in ended] == [
        ("orange--noise.png", "done", 1, 2),
        ("round--stripes.png", "done", 2, 2),
    ]
    assert all(e.figures and e.figures["style_distance"] > 0 for e in ended) and ended[-1].left == 0
    assert all(isinstance(e, Painting) and e.total == 2 for e in events if not isinstance(e, Ended))
    assert sorted(p.name for p in out.glob("*.png")) == ["orange--noise.png", "round--stripes.png"]
    assert [x["status"] for x in _lines(out)] == ["done", "done"]
    # The command line paints the same pictures, and finds the library's batch done.
    code, err = _batch("--pairs", _csv(tmp_path, pairs), "-o", out, "--preset", "fast", *TINY)
    assert code == 0 and "2 done before, 0 to paint" in err, err
    (out / "round--stripes.png").unlink()
    assert [e.item.output.name for e in paint_batch(items, recipe, score=False) if isinstance(e, Ended)] == [
        "round--stripes.png"
    ]
    assert "figures" not in _lines(out)[-1] or _lines(out)[-1]["figures"] is None


def _csv(folder: Path, pairs) -> Path:
    path = folder / "pairs.csv"
    path.write_text("photo,style\n" + "".join(f"{photo},{style}\n" for photo, style in pairs))
    return path
