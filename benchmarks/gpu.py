"""The CUDA path: the gatys and default presets on the demo's built-in inputs, per precision.

Prints, per size and precision: seconds per step at the final scale, total seconds,
the float32 objective of the result and peak GPU memory. Run on a machine with a GPU:

    python benchmarks/gpu.py --sizes 512 1024
"""

from __future__ import annotations

import argparse
import time

import torch

from impasto import Inputs, Runtime, Stylizer
from impasto.config import PRESETS
from impasto.demo import demo_content, paint_style
from impasto.errors import ImpastoError
from impasto.imageio import load_image
from impasto.model import build_encoder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=int, default=[512, 1024])
    parser.add_argument("--presets", nargs="+", default=["gatys", "default"])
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    if args.device.startswith("cuda"):
        print(f"device: {torch.cuda.get_device_name(args.device)}, torch {torch.__version__}")
    content, style = load_image(demo_content()), load_image(paint_style(512))
    encoder = build_encoder()
    stylizers = {
        p: Stylizer(Runtime(device=args.device, precision=p), encoder=encoder) for p in ("float32", "bfloat16")
    }
    print("| preset | size | precision | s/step (final scale) | total s | objective (fp32) | peak GPU MB |")
    print("|---|---|---|---|---|---|---|")
    for name in args.presets:
        for size in args.sizes:
            results = {}
            for precision in ("float32", "bfloat16"):
                config = PRESETS[name].replace(size=size, pixels=None)
                events = []
                torch.cuda.reset_peak_memory_stats()
                torch.cuda.synchronize()
                started = time.perf_counter()
                try:
                    stylizers[precision].run(Inputs.of(content, [style]), config, on_progress=events.append)
                except ImpastoError as error:
                    print(f"| {name} | {size} | {precision} | failed: {error} | | | |", flush=True)
                    results[precision] = float("nan")
                    continue
                total = time.perf_counter() - started
                final = [e for e in events if e.scale == events[-1].scale and not e.done]
                per_step = (final[-1].elapsed - final[0].elapsed) / max(1, len(final) - 1)
                results[precision] = events[-1].loss
                peak = torch.cuda.max_memory_allocated() / 2**20
                print(f"| {name} | {size} | {precision} | {per_step:.4f} | {total:.1f} | {events[-1].loss:.5g} "
                      f"| {peak:.0f} |", flush=True)  # fmt: skip
            change = (results["bfloat16"] / results["float32"] - 1) * 100
            print(f"  {name} {size}: bfloat16 objective {change:+.1f}% against float32")


if __name__ == "__main__":
    main()
