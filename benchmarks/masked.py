"""Regional styles with and without their histogram term (docs/quality.md).

Masked runs used to leave the histogram term out, so a masked picture got a weaker
objective than an unmasked one. For each pair (photo + paintings A and B), all with
`--preset` at `--size`:

- unmasked: the photo in painting A, as any run;
- one mask over the whole picture (painting A): before (the histogram term left out, as
  masked runs were: ``histogram_weight 0``) and now; now should score as the unmasked run;
- two halves (left A, right B): before and now, each half scored against its own painting
  (the half of the photo, ``impasto.metrics``).

    python benchmarks/masked.py --pairs tubingen:starry_night:the_scream --size 256
    python benchmarks/masked.py --holdout --size 256   # astronaut with strokes | dots
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import holdout
from common import SHARED, machine

from impasto import Inputs, Stylizer
from impasto.imageio import load_image
from impasto.metrics import figures, references
from impasto.model import build_encoder
from impasto.presets import preset


def halves(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    left = torch.zeros(1, 3, h, w)
    left[..., : w // 2] = 1.0
    return left, 1 - left


def score(encoder, image: torch.Tensor, photo: torch.Tensor, painting: torch.Tensor, size: int, part=None) -> tuple:
    content, style = references(photo, painting, size)
    if part is not None:
        w = image.shape[-1]
        cols = slice(0, w // 2) if part == "left" else slice(w // 2, w)
        image, content = image[..., cols], content[..., cols]
    return figures(encoder, image, content, style)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", nargs="*", default=[], help="photo:paintingA:paintingB of ../shared/images")
    parser.add_argument("--holdout", action="store_true", help="also astronaut:strokes:dots (benchmarks/holdout.py)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--preset", default="default")
    args = parser.parse_args()
    triples = [(n, SHARED / "content" / f"{n.split(':')[0]}.jpg", [SHARED / "style" / f"{s}.jpg" for s in
               n.split(":")[1:]]) for n in args.pairs]  # fmt: skip
    if args.holdout:
        content, style = holdout.make()
        triples.append(
            ("astronaut:strokes:dots", content / "astronaut.jpg", [style / "strokes.jpg", style / "dots.jpg"])
        )
    encoder = build_encoder()
    stylizer = Stylizer(encoder=encoder)
    now = preset(args.preset).replace(size=args.size, pixels=None)
    before = now.replace(histogram_weight=0.0)
    print(f"machine: {machine()}; {args.preset} at {args.size} px; cells: style / content distance, seconds\n")
    print("| pair | unmasked (A) | whole mask, before | whole mask, now | halves before: A / B | halves now: A / B |")
    print("|---|---|---|---|---|---|")
    for name, photo_path, (a_path, b_path) in triples:
        photo, a, b = load_image(photo_path), load_image(a_path), load_image(b_path)
        h, w = photo.shape[-2:]
        left, right = halves(h, w)
        cells = []

        def run(config, styles, masks, photo=photo):
            started = time.perf_counter()
            image = stylizer.run(Inputs.of(photo, styles, masks=masks), config)
            return image, time.perf_counter() - started

        image, seconds = run(now, [a], None)
        s, c = score(encoder, image, photo, a, args.size)
        cells.append(f"{s:.3f} / {c:.3f}, {seconds:.0f} s")
        for config in (before, now):
            image, seconds = run(config, [a], [torch.ones(1, 3, h, w)])
            s, c = score(encoder, image, photo, a, args.size)
            cells.append(f"{s:.3f} / {c:.3f}, {seconds:.0f} s")
        for config in (before, now):
            image, seconds = run(config, [a, b], [left, right])
            sa, ca = score(encoder, image, photo, a, args.size, "left")
            sb, cb = score(encoder, image, photo, b, args.size, "right")
            cells.append(f"{sa:.3f} / {ca:.3f} · {sb:.3f} / {cb:.3f}, {seconds:.0f} s")
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
