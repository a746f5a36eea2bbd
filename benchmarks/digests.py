"""The pixels of a handful of small runs, as digests: what a change that should keep the
pixels (a restructuring of the engine) is checked against, before and after, on one
machine. Each case runs through the public API of the tree found first on the path.

Cases: ``default`` and ``gatys`` at 192 px; a masked run (two paintings, left and right);
a run forced into 64 px tiles (one scale of 8 steps); a print continued from a preview (the look term above the
preview's size); a video's first two frames (the second with its temporal term).

    python benchmarks/digests.py --save before.json
    python benchmarks/digests.py --check before.json          # exit 1 where a digest differs
    PYTHONPATH=benchmarks/out/baseline-87b17a2/src python benchmarks/digests.py --save old.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import find_image as find

from impasto import Inputs, Runtime, Stylizer

try:
    from impasto.presets import preset
except ImportError:  # a tree from before the presets module
    from impasto.config import preset  # type: ignore[attr-defined,no-redef]
from impasto.digest import digest
from impasto.imageio import load_image, resize


def cases() -> dict[str, object]:
    """Each case's name and the function that paints it (a picture on the CPU)."""
    photo, painting = load_image(find("tubingen", "content")), load_image(find("starry_night", "style"))
    other = load_image(find("the_scream", "style"))
    stylizer = Stylizer(Runtime(device="cpu"))
    tiled = Stylizer(Runtime(device="cpu", tile=64), encoder=stylizer.encoder)
    one_scale = {"pixels": None, "scales": None, "start_size": None, "first_steps": None, "final_steps": None}

    def run(recipe, *styles, stylizer=stylizer, **inputs):
        return stylizer.run(Inputs.of(photo, list(styles or [painting]), **inputs), recipe)

    def masked():
        h, w = photo.shape[-2:]
        left = torch.zeros(1, 3, h, w)
        left[..., : w // 2] = 1
        return run(preset("default").replace(size=128, pixels=None), painting, other, masks=[left, 1 - left])

    def print_from_preview():
        preview = run(preset("default").replace(size=128, pixels=None))
        recipe = preset("print").replace(size=256, pixels=None, detail_size=128, look_size=128, init="image")
        return run(recipe, init=preview)

    def video():
        import numpy as np

        from impasto.video.paint import FramePainter, to_uint8

        frame = to_uint8(resize(photo, (72, 96), "bicubic"))
        moved = np.roll(frame, 3, axis=1)
        painter = FramePainter(stylizer, preset("fast").replace(size=96, pixels=None), [painting], ["painting"])
        first = painter.first(frame)
        second = painter.next(moved, frame, to_uint8(first))
        return torch.cat([first.flatten(), second.flatten()])

    return {
        "default 192": lambda: run(preset("default").replace(size=192, pixels=None)),
        "gatys 192": lambda: run(preset("gatys").replace(size=192, pixels=None)),
        "masked 128": masked,
        "tiles of 64 px, 128": lambda: run(preset("fast").replace(size=128, steps=8, **one_scale), stylizer=tiled),
        "print from a preview, 256": print_from_preview,
        "video, 2 frames of 96": video,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--save", type=Path, help="write the digests to this JSON file")
    parser.add_argument("--check", type=Path, help="compare with the digests in this JSON file")
    args = parser.parse_args()
    found = {}
    for name, paint in cases().items():
        found[name] = digest(paint())
        print(f"{name}: {found[name]}", flush=True)
    if args.save:
        args.save.write_text(json.dumps(found, indent=1) + "\n")
    if args.check:
        wanted = json.loads(args.check.read_text())
        differ = [name for name in wanted if found.get(name) != wanted[name]]
        print("the same pixels" if not differ else f"different pixels: {', '.join(differ)}")
        sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
