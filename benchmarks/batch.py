"""A folder of photos in two styles: ``impasto batch`` against a shell loop of ``impasto
stylize`` (one process, one network load per picture), the same recipe, one after the
other on this machine; then the batch run again (everything done: how long a rerun
takes to find that out). Photos and paintings are the shared ones, resized so that the
files are small; the wall time of each, per picture, and their ratio.

    python benchmarks/batch.py --photos 4 --size 128
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import find_image, machine

PHOTOS = ["tubingen", "brad_pitt", "stata", "hoovertowernight", "golden_gate", "chelsea", "astronaut", "coffee"]
STYLES = ["starry_night", "the_scream"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=4)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--preset", default="default")
    args = parser.parse_args()
    from PIL import Image

    folder = Path(tempfile.mkdtemp(prefix="impasto-batch-"))
    (folder / "photos").mkdir()
    (folder / "styles").mkdir()
    photos = []
    for name in PHOTOS:
        try:
            path = find_image(name, "content")
        except (FileNotFoundError, SystemExit):
            continue
        with Image.open(path) as image:
            image.convert("RGB").resize((image.width // 2, image.height // 2)).save(folder / "photos" / f"{name}.png")
        photos.append(folder / "photos" / f"{name}.png")
        if len(photos) == args.photos:
            break
    styles = []
    for name in STYLES:
        with Image.open(find_image(name, "style")) as image:
            image.convert("RGB").save(folder / "styles" / f"{name}.png")
        styles.append(folder / "styles" / f"{name}.png")
    recipe = ["--preset", args.preset, "--size", str(args.size), "-q"]
    count = len(photos) * len(styles)

    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "impasto", "batch", str(folder / "photos"), "--style",
                    str(folder / "styles"), "-o", str(folder / "batch"), *recipe], check=True)  # fmt: skip
    batch = time.perf_counter() - started

    started = time.perf_counter()
    for photo in photos:
        for style in styles:
            out = folder / "loop" / f"{photo.stem}--{style.stem}.png"
            out.parent.mkdir(exist_ok=True)
            subprocess.run([sys.executable, "-m", "impasto", "stylize", str(photo), str(style), "-o", str(out),
                            *recipe], check=True)  # fmt: skip
    loop = time.perf_counter() - started

    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "impasto", "batch", str(folder / "photos"), "--style",
                    str(folder / "styles"), "-o", str(folder / "batch"), *recipe], check=True)  # fmt: skip
    rerun = time.perf_counter() - started
    lines = [json.loads(x) for x in (folder / "batch" / "manifest.jsonl").read_text().splitlines()]
    assert len(lines) == count and all(x["status"] == "done" for x in lines)

    print(f"machine: {machine()}")
    print(f"{len(photos)} photos x {len(styles)} styles at {args.size} px, preset {args.preset}")
    print("| run | wall s | s per picture |")
    print("|---|---|---|")
    print(f"| impasto batch | {batch:.1f} | {batch / count:.1f} |")
    print(f"| shell loop of impasto stylize | {loop:.1f} | {loop / count:.1f} |")
    print(f"| impasto batch again (all done) | {rerun:.1f} | |")
    print(f"batch / loop: {batch / loop:.2f}")


if __name__ == "__main__":
    main()
