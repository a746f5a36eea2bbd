"""Does a print look like its preview? For each pair, a preview at ``--preview-size``
(``default``) and a print (``--preset``, ``--size`` px or ``--print PAPER``), each by the
CLI in a process of its own (wall time and peak RSS from ``/usr/bin/time``); then the print
seen at the preview's size (Lanczos), and both scored at that size against the photo and
the painting (``impasto.metrics``): the two figures of the print within 15% of the
preview's is the print fidelity measure. The last column is the measure's floor: the preview
itself enlarged to the print's size and made small again. ``--crop`` also writes a 100%
crop of the print beside the same region of the preview, enlarged, as a JPEG for
docs/print.md.

    python benchmarks/print_fidelity.py --pairs tubingen+starry_night --print A4 --preset print --crop
    python benchmarks/print_fidelity.py --pairs tubingen+starry_night --preview out/p.png --print-file out/a4.png
    python benchmarks/print_fidelity.py --size 1024 --from --keep --full --options "--detail-size 1024"
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import find_image, machine

OUT = Path(__file__).resolve().parent / "out"


def paint(args: list[str]) -> tuple[float, float]:
    """Run ``impasto stylize`` with ``args``; its wall seconds and peak RSS in GB."""
    command = ["/usr/bin/time", "-v", sys.executable, "-m", "impasto", "stylize", *args, "-q"]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode:
        sys.exit(f"print_fidelity: {' '.join(args)} failed: {done.stderr.strip().splitlines()[-1]}")
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    return seconds, (int(peak.group(1)) / 2**20 if peak else float("nan"))


def seen_small(big, size: tuple[int, int]):
    """A print (a Pillow image) as seen at ``size`` ``(w, h)``: Pillow's Lanczos, as image
    viewers show a large picture small. (Torch's antialiased bilinear blurs too much for
    this measure: the preview itself, enlarged 2x and made small again with it, had +113%
    style distance; with Lanczos +14%, the floor the last column shows.)"""
    from PIL import Image

    from impasto.imageio import pil_to_tensor

    return pil_to_tensor(big.convert("RGB").resize(size, Image.Resampling.LANCZOS))


def round_trip(preview: Path, size: tuple[int, int]):
    """The preview enlarged to ``size`` ``(w, h)`` and seen small again (Lanczos both ways)."""
    from PIL import Image

    from impasto.imageio import pil_to_tensor

    with Image.open(preview) as small:
        rgb = small.convert("RGB")
        return pil_to_tensor(rgb.resize(size, Image.Resampling.LANCZOS).resize(rgb.size, Image.Resampling.LANCZOS))


def crop_beside(preview_path: Path, print_path: Path, out: Path, side: int = 640) -> None:
    """A ``side`` px square of the print at 100% (around the picture's centre, a little
    up, where tubingen's houses are) beside the same region of the preview, enlarged."""
    from PIL import Image

    with Image.open(print_path) as big, Image.open(preview_path) as small:
        big, small = big.convert("RGB"), small.convert("RGB")
        cx, cy = big.width // 2, int(big.height * 0.45)
        box = (cx - side // 2, cy - side // 2, cx + side // 2, cy + side // 2)
        scale = small.width / big.width
        small_box = tuple(round(v * scale) for v in box)
        enlarged = small.crop(small_box).resize((side, side), Image.Resampling.BICUBIC)
        sheet = Image.new("RGB", (2 * side + 16, side), "white")
        sheet.paste(enlarged, (0, 0))
        sheet.paste(big.crop(box), (side + 16, 0))
        sheet.save(out, quality=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", default="tubingen+starry_night")
    parser.add_argument("--preview-size", type=int, default=512)
    parser.add_argument("--size", type=int, help="the print's longest side (else --print)")
    parser.add_argument("--print", dest="paper", default="A4")
    parser.add_argument("--preset", default="print")
    parser.add_argument("--max-memory", default="6G")
    parser.add_argument("--preview", type=Path, help="score this preview instead of painting one (one pair)")
    parser.add_argument("--print-file", type=Path, help="score this print instead of painting one (one pair)")
    parser.add_argument("--crop", action="store_true")
    parser.add_argument(
        "--full", action="store_true", help="also score the print at its own size (whole: for prints up to ~2048 px)"
    )
    parser.add_argument(
        "--from",
        dest="continued",
        action="store_true",
        help="paint the print continued from the preview (--from), as the studio's print… does",
    )
    parser.add_argument("--keep", action="store_true", help="reuse a preview or print already in benchmarks/out")
    parser.add_argument(
        "--options",
        default="",
        help="more options for the print's stylize, e.g. '--detail-size 1024' (its file name gets them too)",
    )
    args = parser.parse_args()

    from PIL import Image

    from impasto.imageio import load_image, size_of
    from impasto.metrics import LAYERS, figures, references
    from impasto.model import build_encoder

    encoder = build_encoder(layers=LAYERS)
    OUT.mkdir(exist_ok=True)
    target = f"--size {args.size}" if args.size else f"--print {args.paper}"
    print(f"machine: {machine()}")
    how = " --from the preview" if args.continued else ""
    print(f"preview: default at {args.preview_size} px; print: {args.preset} {args.options}, {target}{how}, "
          f"--max-memory {args.max_memory}")  # fmt: skip
    print(
        "| pair | print px | print s | print peak GB | preview style / content | print at preview size "
        "style / content | change style / content | preview enlarged and seen small: change |"
        + (" print at its size style / content |" if args.full else "")
    )
    print("|---|---|---|---|---|---|---|---|" + ("---|" if args.full else ""))
    for pair in args.pairs.split(","):
        photo_name, painting_name = pair.split("+")
        photo, painting = find_image(photo_name, "content"), find_image(painting_name, "style")
        stem = OUT / f"print_{photo_name}_{painting_name}"
        preview, printed = args.preview, args.print_file
        seconds = peak = float("nan")
        if preview is None:
            preview = stem.with_name(stem.name + f"_preview{args.preview_size}.png")
            if not (args.keep and preview.exists()):
                paint([str(photo), str(painting), "-o", str(preview), "--size", str(args.preview_size)])
        if printed is None:
            kind = f"{args.preset}{'_from' if args.continued else ''}"
            if args.options:
                kind += "_" + re.sub(r"[^A-Za-z0-9.]+", "-", args.options.strip("- "))
            printed = stem.with_name(stem.name + f"_{args.size or args.paper}_{kind}.png")
            size = ["--size", str(args.size)] if args.size else ["--print", args.paper]
            start = ["--from", str(preview)] if args.continued else []
            if not (args.keep and printed.exists()):
                more = ["--preset", args.preset, "--max-memory", args.max_memory, *args.options.split()]
                seconds, peak = paint([str(photo), str(painting), "-o", str(printed), *size, *start, *more])
        small = load_image(preview)
        with Image.open(printed) as big:
            print_size = big.size
        c, s = references(load_image(photo), load_image(painting), max(size_of(small)))
        before = figures(encoder, small, c, s)
        with Image.open(printed) as big, Image.open(preview) as shown:
            after = figures(encoder, seen_small(big, shown.size), c, s)
        # The measure's own floor: the preview itself enlarged to the print's size and seen small again.
        floor = figures(encoder, round_trip(preview, print_size), c, s)
        change = [a / b - 1 for a, b in zip(after, before, strict=True)]
        lost = [a / b - 1 for a, b in zip(floor, before, strict=True)]
        full = ""
        if args.full:
            big_c, big_s = references(load_image(photo), load_image(painting), max(print_size))
            at_size = figures(encoder, load_image(printed), big_c, big_s)
            full = f" {at_size[0]:.3f} / {at_size[1]:.3f} |"
        print(f"| {photo_name} + {painting_name} | {print_size[0]}x{print_size[1]} | {seconds:.0f} | {peak:.2f} | "
              f"{before[0]:.3f} / {before[1]:.3f} | {after[0]:.3f} / {after[1]:.3f} | "
              f"{change[0]:+.1%} / {change[1]:+.1%} | {lost[0]:+.1%} / {lost[1]:+.1%} |{full}", flush=True)  # fmt: skip
        if args.crop:
            crop_beside(preview, printed, stem.with_name(stem.name + "_crop.jpg"))


if __name__ == "__main__":
    main()
