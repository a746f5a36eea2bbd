"""Two versions of impasto side by side: the same command line run from each source tree
in turn (interleaved, so the machine's drift falls on both alike), wall times and their
medians, and whether the outputs are the same pixels.

    git worktree add /tmp/old v0.1.0
    python benchmarks/versions.py /tmp/old/src src --runs 3 --preset gatys --size 384
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import find_image, machine, presize, run_timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trees", nargs=2, type=Path, help="two src/ folders (the first is the reference)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pair", default="tubingen:starry_night")
    parser.add_argument("--preset", default="gatys")
    parser.add_argument("--size", type=int, default=384)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="impasto-versions-"))
    photo, painting = args.pair.split(":")
    content, style = presize(find_image(photo, "content"), find_image(painting, "style"), args.size, work)
    times: dict[Path, list[float]] = {tree: [] for tree in args.trees}
    pixels: dict[Path, set[str]] = {tree: set() for tree in args.trees}
    for run in range(args.runs):
        for k, tree in enumerate(args.trees):
            out = work / f"out_{k}_{run}.png"
            command = [sys.executable, "-m", "impasto", "stylize", str(content), str(style), "-o", str(out),
                       "--preset", args.preset, "--size", str(args.size), "-q"]  # fmt: skip
            timed = run_timed(command, env={**os.environ, "PYTHONPATH": str(tree.resolve())})
            times[tree].append(timed.seconds)
            with Image.open(out) as image:
                pixels[tree].add(hashlib.sha256(np.asarray(image.convert("RGB")).tobytes()).hexdigest())
    print(f"machine: {machine()}; {args.pair} at {args.size} px, preset {args.preset}, {args.runs} runs each\n")
    print("| tree | wall s (each run) | median s | vs the first | pixels |")
    print("|---|---|---|---|---|")
    reference = statistics.median(times[args.trees[0]])
    same = len(pixels[args.trees[0]] | pixels[args.trees[1]]) == 1
    for tree in args.trees:
        median = statistics.median(times[tree])
        runs = ", ".join(f"{t:.1f}" for t in times[tree])
        print(f"| {tree} | {runs} | {median:.1f} | {median / reference:.2f}x | {'identical' if same else 'differ'} |")


if __name__ == "__main__":
    main()
