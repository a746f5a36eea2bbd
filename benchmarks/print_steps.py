"""Where a print's steps matter, and what fewer L-BFGS pairs cost: a preview (``default``
at ``--preview-size``) continued to ``--size`` (``impasto stylize --from``) under each
variant, side by side in one process:

- ``print``: the ``print`` preset's steps (each scale above the preview's size as many
  pixel-steps as one of the preview's size, at least 8), 30 L-BFGS pairs;
- ``steps x2`` and ``steps x4``: ``--detail-size`` √2 and 2 times the preview's, so the
  scales above it take 2 and 4 times the steps (up to the preset's 80);
- ``N pairs``: the ``print`` steps with N L-BFGS pairs, as the memory plan chooses at
  A4 (10) and A3 (5).

Each result is scored seen at the preview's size (Lanczos, as ``print_fidelity.py``) against
the preview's figures, and at its own size against the ``print`` variant's.

    python benchmarks/print_steps.py --size 1024 --pairs tubingen+starry_night,astronaut+strokes
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import holdout
from common import find_image, machine
from print_fidelity import OUT, seen_small

from impasto import Inputs, Stylizer
from impasto.engine import DEFAULT_POLICY, Policy
from impasto.imageio import load_image, save_image, size_of, tensor_to_pil
from impasto.metrics import LAYERS, figures, references
from impasto.model import build_encoder
from impasto.presets import PRESETS
from impasto.prints import continued
from impasto.schedule import plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", default="tubingen+starry_night,astronaut+strokes")
    parser.add_argument("--preview-size", type=int, default=512)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--pairs-kept", default="10,5", help="L-BFGS pairs of the fewer-pairs variants")
    args = parser.parse_args()
    holdout.make()
    encoder = build_encoder(layers=LAYERS)
    side = args.preview_size
    variants: list[tuple[str, int, int]] = [
        ("print", side, DEFAULT_POLICY.history),
        ("steps x2", round(side * 2**0.5), DEFAULT_POLICY.history),
        ("steps x4", 2 * side, DEFAULT_POLICY.history),
        *((f"{k} pairs", side, int(k)) for k in args.pairs_kept.split(",")),
    ]
    print(f"machine: {machine()}")
    print(f"preview: default at {side} px; print: continued to {args.size} px, seed 0, one process, one at a time")
    print("| pair | variant | steps per scale | s | seen at preview size: style / content | change vs preview "
          "| at its size: style / content | change vs print |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for pair in args.pairs.split(","):
        photo_name, painting_name = pair.split("+")
        photo, painting = find_image(photo_name, "content"), find_image(painting_name, "style")
        photo_image, painting_image = load_image(photo), load_image(painting)
        preview_path = OUT / f"steps_{photo_name}_{painting_name}_preview{side}.png"
        stylizer = Stylizer(encoder=encoder)
        if not preview_path.exists():
            preview = stylizer.run(Inputs.of(photo, [painting]), PRESETS["default"].replace(size=side, pixels=None))
            save_image(preview, preview_path)
        preview = load_image(preview_path)
        small_c, small_s = references(photo_image, painting_image, side)
        before = figures(encoder, preview, small_c, small_s)
        big_c, big_s = references(photo_image, painting_image, args.size)
        print(f"| {pair} | the preview | | | {before[0]:.3f} / {before[1]:.3f} | | | |", flush=True)
        base_full = None
        for name, detail, history in variants:
            recipe = continued(
                PRESETS["print"].replace(size=args.size, pixels=None), size_of(preview), size_of(photo_image)
            ).replace(detail_size=detail)
            steps = plan(recipe, *size_of(photo_image)).steps
            stylizer = Stylizer(encoder=encoder, policy=Policy(history=history))
            started = time.perf_counter()
            out = stylizer.run(Inputs.of(photo, [painting], init=preview_path), recipe)
            seconds = time.perf_counter() - started
            h, w = size_of(preview)
            small = figures(encoder, seen_small(tensor_to_pil(out), (w, h)), small_c, small_s)
            full = figures(encoder, out, big_c, big_s)
            base_full = base_full or full
            change = [a / b - 1 for a, b in zip(small, before, strict=True)]
            full_change = [a / b - 1 for a, b in zip(full, base_full, strict=True)]
            row = [pair, name, ", ".join(map(str, steps)), f"{seconds:.0f}", f"{small[0]:.3f} / {small[1]:.3f}",
                   f"{change[0]:+.1%} / {change[1]:+.1%}", f"{full[0]:.3f} / {full[1]:.3f}",
                   f"{full_change[0]:+.1%} / {full_change[1]:+.1%}"]  # fmt: skip
            print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
