"""A recipe change tried on a few held-out pairs before a whole sweep: ``default`` with the
settings given (or a recipe of the sweep by its name: a preset, or crowsonkb), each run
scored as benchmarks/sweep.py scores them and printed beside the sweep's recorded
crowsonkb and default runs of the same pair (nothing is recorded).

    python benchmarks/variants.py --size 192 --pairs astronaut:strokes chelsea:dots coffee:strokes \\
        --variant crowsonkb --variant 'no_histogram={"histogram_weight": 0}'
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sweep

from impasto.config import StyleConfig
from impasto.presets import DEFAULT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--set", default="holdout", choices=("holdout", "all"))
    parser.add_argument("--pairs", nargs="+", required=True, help="photo:painting names of the set")
    parser.add_argument(
        "--variant", action="append", required=True, help="NAME=JSON settings over default, or a recipe's name"
    )
    args = parser.parse_args()
    variants = {}
    for item in args.variant:
        name, _, settings = item.partition("=")
        if settings:
            variants[name] = StyleConfig.from_json(settings, DEFAULT.replace(size=args.size, pixels=None))
        else:  # a recipe of the sweep by its name: a preset, or crowsonkb
            variants[name] = sweep.recipe_of(name, args.size)
    folder = Path(tempfile.mkdtemp(prefix="impasto-variants-"))
    runs = sweep.Sweep(folder, sweep.ROOT / "benchmarks" / "results" / "sweep" / f"{args.set}_{args.size}", args.size)
    pairs = {name: (c, s) for name, c, s in sweep.pairs_of(args.set)}
    for pair in args.pairs:
        content, style = pairs[pair]
        for recipe in ("crowsonkb", "default"):
            _, record = runs.files(pair, recipe)
            if record.is_file():
                data = json.loads(record.read_text())
                print(f"{pair} {recipe} (recorded): style {data['style']:.3f}, content {data['content']:.3f}, "
                      f"{data['seconds']:.0f} s")  # fmt: skip
        for name, recipe in variants.items():
            path = folder / f"{pair.replace(':', '_')}_{name}.png"
            seconds, style_d, content_d = runs.paint(pair, content, style, recipe, path)
            print(f"{pair} {name}: style {style_d:.3f}, content {content_d:.3f}, {seconds:.0f} s", flush=True)


if __name__ == "__main__":
    main()
