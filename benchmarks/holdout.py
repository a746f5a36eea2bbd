"""Held-out pairs: photos and paintings that no preset was tuned on, made or fetched here
so that the quality sweep can be checked on pictures outside ../shared/images.

- photos: four of scikit-image's sample pictures (astronaut, chelsea, coffee, rocket),
  taken from its wheel on the package registry (``pip download``; nothing is installed);
- paintings: three drawn by this script from a fixed seed, each a different kind of style
  the shared paintings do not cover: ``strokes`` (long thick brush strokes along a flow
  field, autumn palette), ``mosaic`` (flat Voronoi cells with dark lead lines, primaries),
  ``dots`` (pointillist dabs of pure colour on a pale ground).

    python benchmarks/holdout.py            # writes benchmarks/out/holdout/{content,style}
"""

from __future__ import annotations

import argparse
import math
import random
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "benchmarks" / "out" / "holdout"
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
PAINTINGS = ("strokes", "mosaic", "dots")
SKIMAGE = "scikit-image==0.26.0"
#: Longest side of the drawn paintings (the sweep works at 256-384 px).
SIDE = 640


def fetch_photos(folder: Path) -> None:
    """Extract the photos from scikit-image's wheel into ``folder`` as JPEG."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                "-d",
                tmp,
                SKIMAGE,
            ],
            check=True,
        )
        (wheel,) = Path(tmp).glob("*.whl")
        with zipfile.ZipFile(wheel) as archive:
            names = archive.namelist()
            for photo in PHOTOS:
                (member,) = [n for n in names if n.startswith(f"skimage/data/{photo}.")]
                with archive.open(member) as handle, Image.open(handle) as im:
                    im.convert("RGB").save(folder / f"{photo}.jpg", quality=95)


def strokes(rng: random.Random) -> Image.Image:
    palette = [(176, 92, 36), (214, 160, 62), (92, 46, 30), (58, 84, 52), (236, 214, 170), (150, 40, 28)]
    w, h = SIDE, SIDE * 3 // 4
    canvas = Image.new("RGB", (w, h), (120, 70, 40))
    draw = ImageDraw.Draw(canvas)
    for _ in range(2600):
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        colour = rng.choice(palette)
        shade = rng.uniform(0.85, 1.15)
        colour = tuple(min(255, int(c * shade)) for c in colour)
        width = rng.randint(5, 12)
        points = [(x, y)]
        for _ in range(rng.randint(3, 7)):  # follow the flow field a few steps
            angle = math.sin(x / 70.0) * 1.6 + math.cos(y / 55.0) * 1.2
            x, y = x + 9 * math.cos(angle), y + 9 * math.sin(angle)
            points.append((x, y))
        draw.line(points, fill=colour, width=width, joint="curve")
    return canvas.filter(ImageFilter.GaussianBlur(0.8))


def mosaic(rng: random.Random) -> Image.Image:
    palette = [(200, 30, 40), (240, 200, 40), (30, 70, 170), (235, 235, 225), (30, 130, 80), (240, 120, 30)]
    w, h = SIDE * 3 // 4, SIDE
    small = (w // 4, h // 4)
    seeds = [(rng.uniform(0, small[0]), rng.uniform(0, small[1]), rng.choice(palette)) for _ in range(140)]
    cells = Image.new("RGB", small)
    index = Image.new("L", small)
    for y in range(small[1]):
        for x in range(small[0]):
            k = min(range(len(seeds)), key=lambda i: (seeds[i][0] - x) ** 2 + (seeds[i][1] - y) ** 2)
            cells.putpixel((x, y), seeds[k][2])
            index.putpixel((x, y), k % 251)
    cells = cells.resize((w, h), Image.NEAREST)
    edges = index.resize((w, h), Image.NEAREST).filter(ImageFilter.FIND_EDGES).point(lambda v: 255 if v else 0)
    edges = edges.filter(ImageFilter.MaxFilter(5))
    cells.paste((25, 20, 20), mask=edges)
    return cells.filter(ImageFilter.GaussianBlur(0.6))


def dots(rng: random.Random) -> Image.Image:
    palette = [(40, 90, 200), (250, 210, 60), (230, 90, 120), (70, 170, 90), (120, 60, 170), (250, 140, 50)]
    w, h = SIDE, SIDE * 2 // 3
    canvas = Image.new("RGB", (w, h), (238, 232, 214))
    draw = ImageDraw.Draw(canvas)
    for _ in range(9000):
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        # Cooler colours in the top half, warmer below: a colour distribution to follow.
        warm = y / h + rng.uniform(-0.35, 0.35)
        colour = palette[rng.choice((2, 1, 5)) if warm > 0.5 else rng.choice((0, 3, 4))]
        r = rng.uniform(2.0, 4.5)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    return canvas


def make(folder: Path = FOLDER) -> tuple[Path, Path]:
    """Write the held-out photos and paintings (skipping those present); returns the two folders."""
    content, style = folder / "content", folder / "style"
    content.mkdir(parents=True, exist_ok=True)
    style.mkdir(parents=True, exist_ok=True)
    if not all((content / f"{p}.jpg").is_file() for p in PHOTOS):
        fetch_photos(content)
    for k, painting in enumerate(PAINTINGS):
        path = style / f"{painting}.jpg"
        if not path.is_file():
            globals()[painting](random.Random(1000 + k)).save(path, quality=95)
    return content, style


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=FOLDER)
    args = parser.parse_args()
    content, style = make(args.out)
    print(f"held-out photos in {content}, paintings in {style}")


if __name__ == "__main__":
    main()
