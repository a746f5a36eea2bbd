"""Peak memory (RSS) of real runs next to impasto's own estimate, on the demo's inputs.

python benchmarks/memory.py --sizes 512 1024
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import run_timed

from impasto.demo import demo_content, paint_style
from impasto.engine.memory import estimate_bytes
from impasto.imageio import load_image
from impasto.model import build_encoder
from impasto.presets import PRESETS
from impasto.runtime import resolve_precision
from impasto.schedule import working_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=int, default=[512, 1024])
    parser.add_argument("--presets", nargs="+", default=["default", "gatys"])
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="impasto-memory-"))
    style = folder / "style.png"
    paint_style(512).save(style)
    content = demo_content()
    low = resolve_precision("auto", torch.device("cpu")) is not None
    print("| preset | size | steps run | peak RSS MB | estimate MB | seconds |")
    print("|---|---|---|---|---|---|")
    for name in args.presets:
        config = PRESETS[name]
        encoder = build_encoder()
        layers = (*config.content_layers, *config.style_layers)
        for size in args.sizes:
            # A few steps at the final scale only: the peak is there.
            extra = ["--scales", "1", "--steps", "3"]
            command = [sys.executable, "-m", "impasto", "stylize", str(content), str(style), "-o",
                       str(folder / "out.png"), "--preset", name, "--size", str(size), "-q", *extra]  # fmt: skip
            run = run_timed(command)
            final = working_size(*load_image(content).shape[-2:], config.replace(size=size, pixels=None))
            estimate = estimate_bytes(encoder, final, low, config.optimizer, layers) / 2**20
            row = f"| {name} | {final[1]}x{final[0]} | 3 | {run.peak_rss_mb:.0f} | {estimate:.0f} | {run.seconds:.1f} |"
            print(row, flush=True)


if __name__ == "__main__":
    main()
