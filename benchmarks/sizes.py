"""Does a preset give the same look at every size? Runs presets on a pair at several
output sizes and prints quality.py's two figures for each (style distance, content
distance; each measured at the output's own size), with the ratio of each figure to
the one at the first size.

    python benchmarks/sizes.py --pairs hoovertowernight:the_scream --sizes 256 512 --presets default fast
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, machine, shared_pair
from quality import PAIRS

from impasto import Inputs, Stylizer
from impasto.imageio import load_image, save_image
from impasto.metrics import figures, references
from impasto.model import build_encoder
from impasto.presets import preset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", nargs="+", default=list(PAIRS))
    parser.add_argument("--sizes", nargs="+", type=int, default=[256, 512])
    parser.add_argument("--presets", nargs="+", default=["default"])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "sizes")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    encoder = build_encoder()
    stylizer = Stylizer(encoder=encoder)
    rows = [f"machine: {machine()}", "", "| pair | preset | size | seconds | style distance | content distance "
            "| style vs first size | content vs first size |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    print("\n".join(rows), flush=True)
    for pair in args.pairs:
        content_name, style_name = pair.split(":")
        content_path, style_path = shared_pair(content_name, style_name)
        content, style = load_image(content_path), load_image(style_path)
        for name in args.presets:
            first = None
            for size in args.sizes:
                config = preset(name).replace(size=size, pixels=None)
                started = time.perf_counter()
                output = stylizer.run(Inputs.of(content, [style]), config)
                seconds = time.perf_counter() - started
                save_image(output, args.out / f"{content_name}_{style_name}_{name}_{size}.png")
                style_d, content_d = figures(encoder, output, *references(content, style, size))
                first = first or (style_d, content_d)
                change = [(now / then - 1) * 100 for now, then in zip((style_d, content_d), first, strict=True)]
                row = (
                    f"| {content_name} + {style_name} | {name} | {size} | {seconds:.0f} | {style_d:.3f} "
                    f"| {content_d:.3f} | {change[0]:+.0f}% | {change[1]:+.0f}% |"
                )
                print(row, flush=True)
                rows.append(row)
    (args.out / "sizes.md").write_text("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
