"""A preset's time to a picture, pair by pair, and a contact sheet of the pictures: what a
person waits for and gets (the aim: ``fast`` at 256 px in at most 30 s on two cores of a
CPU without fast bfloat16). Each pair is painted by one warm :class:`Stylizer` (the network
loaded before the clock starts; the process's start-up, about 3 s, is said apart), one at
a time. The sheet has a row per pair: photo, painting, picture, each at the picture's height.

    python benchmarks/fast_sheet.py --size 256 --preset fast
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 python benchmarks/fast_sheet.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, machine, side_by_side
from common import find_image as find
from PIL import Image

from impasto import Inputs, Stylizer
from impasto.imageio import load_image, save_image
from impasto.presets import preset

PAIRS = ("tubingen:starry_night", "hoovertowernight:the_scream", "astronaut:strokes", "chelsea:dots")


def sheet(rows: list[tuple[Path, Path, Path]], out: Path, height: int) -> None:
    """Photo, painting and picture side by side, a row per pair, each ``height`` px high."""
    images = [[Image.open(path).convert("RGB") for path in row] for row in rows]
    scaled = [[im.resize((max(1, round(im.width * height / im.height)), height), Image.LANCZOS) for im in row]
              for row in images]  # fmt: skip
    side_by_side([side_by_side(row, gap=8) for row in scaled], gap=8, vertical=True).save(out, quality=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--pairs", nargs="+", default=list(PAIRS))
    parser.add_argument("--sheet", type=Path, help="where the contact sheet goes (default: under benchmarks/out)")
    args = parser.parse_args()
    started = time.perf_counter()
    stylizer = Stylizer()
    loaded = time.perf_counter() - started
    folder = ROOT / "benchmarks" / "out" / "fast_sheet"
    folder.mkdir(parents=True, exist_ok=True)
    recipe = preset(args.preset).replace(size=args.size, pixels=None)
    print(f"`{args.preset}` at {args.size} px, {machine()}, {stylizer.autocast or 'float32'} network, "
          f"{stylizer.runtime.device}; network loaded in {loaded:.1f} s\n")  # fmt: skip
    print("| pair | seconds |\n|---|---|")
    rows, seconds = [], []
    for pair in args.pairs:
        photo, painting = pair.split(":")
        content, style = find(photo, "content"), find(painting, "style")
        clock = time.perf_counter()
        image = stylizer.run(Inputs.of(load_image(content), [load_image(style)]), recipe)
        seconds.append(time.perf_counter() - clock)
        out = folder / f"{args.preset}_{args.size}_{photo}_{painting}.png"
        save_image(image, out)
        rows.append((content, style, out))
        print(f"| {pair} | {seconds[-1]:.1f} |", flush=True)
    print(f"\nmedian {statistics.median(seconds):.1f} s, longest {max(seconds):.1f} s")
    target = args.sheet or folder / f"sheet_{args.preset}_{args.size}.jpg"
    sheet(rows, target, height=min(args.size, 256))
    print(f"contact sheet: {target}")


if __name__ == "__main__":
    main()
