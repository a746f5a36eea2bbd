"""A folder of photos in two styles, the same recipe, one run after the other on this
machine: ``impasto batch`` on one worker with every core, on two worker processes of
one core each (``--workers 2``), on a local Ray cluster of two single-core actors
(``--ray --workers 2``), and a shell loop of ``impasto stylize`` (one process, one
network load per picture); then the batch again (everything done: how long a rerun takes
to find that out). Photos and paintings are the shared ones (and the held-out photos
where the shared ones run out), resized so that the files are small. Prints the wall
time of each, whether the runs' pictures are the same bytes (and how far apart where
not), and what computing each painting's statistics once saves.

    python benchmarks/batch.py --photos 8 --size 256 --preset fast
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

# The five shared photos, then held-out ones (benchmarks/holdout.py) where more are asked.
PHOTOS = ["tubingen", "brad_pitt", "stata", "hoovertowernight", "chicago", "golden_gate", "chelsea", "astronaut",
          "coffee"]  # fmt: skip
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

    def batch(name: str, *flags: str) -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "impasto", "batch", str(folder / "photos"), "--style",
                        str(folder / "styles"), "-o", str(folder / name), *recipe, *flags], check=True)  # fmt: skip
        return time.perf_counter() - started

    walls = {"one worker, 2 cores": batch("one")}
    walls["two worker processes, 1 core each"] = batch("two", "--workers", "2")
    walls["Ray, two actors of 1 core each"] = batch("ray", "--ray", "--workers", "2")

    started = time.perf_counter()
    for photo in photos:
        for style in styles:
            out = folder / "loop" / f"{photo.stem}--{style.stem}.png"
            out.parent.mkdir(exist_ok=True)
            subprocess.run([sys.executable, "-m", "impasto", "stylize", str(photo), str(style), "-o", str(out),
                            *recipe], check=True)  # fmt: skip
    loop = time.perf_counter() - started
    rerun = batch("two", "--workers", "2")
    for name in ("one", "two", "ray"):
        lines = [json.loads(x) for x in (folder / name / "manifest.jsonl").read_text().splitlines()]
        assert len(lines) == count and all(x["status"] == "done" for x in lines), name

    print(f"machine: {machine()}")
    print(f"{len(photos)} photos x {len(styles)} styles at {args.size} px, preset {args.preset}")
    print("| run | wall s | s per picture | vs shell loop |")
    print("|---|---|---|---|")
    for name, wall in walls.items():
        print(f"| impasto batch, {name} | {wall:.1f} | {wall / count:.1f} | {wall / loop:.2f} |")
    print(f"| shell loop of impasto stylize | {loop:.1f} | {loop / count:.1f} | 1.00 |")
    print(f"| impasto batch again (all done) | {rerun:.1f} | | |")
    print(f"pictures: {compare(folder / 'two', folder / 'ray')} (two processes vs Ray)")
    print(f"pictures: {compare(folder / 'one', folder / 'two')} (one worker of 2 cores vs two of 1 core)")
    print(f"pictures: {compare(folder / 'one', folder / 'loop')} (one worker vs the shell loop)")
    per = statistics_seconds(styles, args.size, args.preset)
    saved = sum(per.values()) * (len(photos) - 1)
    print("painting statistics, seconds each (one core): " + ", ".join(f"{k} {v:.2f}" for k, v in per.items()))
    print(f"computed once per painting instead of once per picture: {saved:.1f} s of one core saved")


def compare(a: Path, b: Path) -> str:
    """Same bytes, or how far apart the pictures are (0-255 levels)."""
    import numpy as np
    from PIL import Image

    same, worst, mean = 0, 0, []
    names = sorted(p.name for p in a.glob("*.png"))
    for name in names:
        one, two = (a / name).read_bytes(), (b / name).read_bytes()
        if one == two:
            same += 1
            continue
        x = np.asarray(Image.open(a / name), dtype=np.int16)
        y = np.asarray(Image.open(b / name), dtype=np.int16)
        worst = max(worst, int(abs(x - y).max()))
        mean.append(float(abs(x - y).mean()))
    if same == len(names):
        return f"all {same} the same bytes"
    return (f"{same} of {len(names)} the same bytes; the others differ by {sum(mean) / len(mean):.1f} levels "
            f"on average, {worst} at most")  # fmt: skip


def statistics_seconds(styles: list[Path], size: int, preset_name: str) -> dict[str, float]:
    """How long each painting's statistics take at the batch's size, on one core."""
    import torch

    from impasto.engine.stylizer import Stylizer
    from impasto.imageio import load_image, resize, size_of
    from impasto.objective.targets import statistics_kind
    from impasto.presets import preset
    from impasto.schedule import plan, style_size_at

    torch.set_num_threads(1)
    stylizer = Stylizer()
    recipe = preset(preset_name).replace(size=size, pixels=None)
    out = {}
    for style in styles:
        image = load_image(style)
        final = plan(recipe, size, size).final
        small = resize(image, style_size_at(size_of(image), final, recipe))
        started = time.perf_counter()
        kind = statistics_kind(recipe.style_loss, False, recipe.histogram_weight > 0)
        stylizer.style_statistics(small, recipe.style_layers, kind, recipe.pooling)
        out[style.stem] = time.perf_counter() - started
    return out


if __name__ == "__main__":
    main()
