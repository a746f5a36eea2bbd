"""Quality report: presets (and reference recipes: crowsonkb's, impasto.presets.CROWSONKB,
and pastiche) on four pairs, scored by figures that do not depend on any tool's own loss
(impasto.metrics: style distance, lower = more of the painting; content distance, lower =
more of the photo kept).

Writes a contact sheet per pair (content | style | each output, labelled with recipe
and time) and a markdown table under --out.

    python benchmarks/quality.py --size 384
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, machine, presize, run_timed, shared_pair, side_by_side
from speed import pastiche_command

from impasto import Inputs, Stylizer
from impasto.imageio import load_image, resize, save_image, tensor_to_pil
from impasto.metrics import figures, references
from impasto.model import build_encoder
from impasto.presets import CROWSONKB, preset

PAIRS = ("tubingen:starry_night", "hoovertowernight:the_scream", "brad_pitt:picasso_selfport1907", "tubingen:shipwreck")
RECIPES = ("default", "fast", "quality", "gatys", "crowsonkb", "pastiche")

#: pastiche 1.6.0 at its defaults (1000 L-BFGS steps), run on inputs pre-sized so that it
#: does not resample them.
PASTICHE_STEPS = 1000


def label(image: torch.Tensor, text: str, height: int) -> Image.Image:
    pil = tensor_to_pil(resize(image, (height, round(image.shape[-1] * height / image.shape[-2])), "bicubic"))
    canvas = Image.new("RGB", (pil.width, pil.height + 18), "white")
    canvas.paste(pil, (0, 18))
    ImageDraw.Draw(canvas).text((4, 3), text, fill="black")
    return canvas


def run_recipe(
    name: str, content_path: Path, style_path: Path, size: int, out: Path, work: Path, stylizer: Stylizer
) -> Path:
    """Run one recipe on a pair; writes ``out`` and its ``.json`` (seconds, machine)."""
    if name == "pastiche":
        content, style = presize(content_path, style_path, size, work)
        timed = run_timed(pastiche_command(content, style, out, size, PASTICHE_STEPS))
        seconds = timed.seconds
    else:
        config = (CROWSONKB if name == "crowsonkb" else preset(name)).replace(size=size, pixels=None)
        started = time.perf_counter()
        save_image(stylizer.run(Inputs.of(content_path, [style_path]), config), out)
        seconds = time.perf_counter() - started
    out.with_suffix(".json").write_text(json.dumps({"seconds": seconds, "machine": machine()}))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--pairs", nargs="+", default=list(PAIRS))
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES))
    parser.add_argument("--reuse", nargs="*", default=[], metavar="RECIPE",
                        help="score these recipes' existing outputs in --out instead of running them again "
                        "(their times are those recorded when they ran)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "quality")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="impasto-quality-"))
    encoder = build_encoder()
    stylizer = Stylizer(encoder=encoder)
    rows = [f"machine: {machine()}", "", "| pair | recipe | seconds | style distance | content distance |",
            "|---|---|---|---|---|"]  # fmt: skip
    print("\n".join(rows), flush=True)
    for pair in args.pairs:
        content_name, style_name = pair.split(":")
        content_path, style_path = shared_pair(content_name, style_name)
        content, style = load_image(content_path), load_image(style_path)
        content_small, style_small = references(content, style, args.size)
        h = content_small.shape[-2]
        tiles = [label(content_small, "content", h), label(style_small, "style", h)]
        for name in args.recipes:
            out = args.out / f"{content_name}_{style_name}_{args.size}_{name}.png"
            if not (name in args.reuse and out.is_file() and out.with_suffix(".json").is_file()):
                run_recipe(name, content_path, style_path, args.size, out, work, stylizer)
            seconds = json.loads(out.with_suffix(".json").read_text())["seconds"]
            output = load_image(out)
            style_d, content_d = figures(encoder, output, content_small, style_small)
            row = f"| {content_name} + {style_name} | {name} | {seconds:.0f} | {style_d:.3f} | {content_d:.3f} |"
            print(row, flush=True)
            rows.append(row)
            tiles.append(label(output, f"{name} {seconds:.0f}s", h))
        side_by_side(tiles).save(args.out / f"{content_name}_{style_name}_{args.size}_sheet.jpg", quality=90)
    (args.out / f"quality_{args.size}.md").write_text("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
