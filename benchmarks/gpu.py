"""Every speed aim measured on a GPU, in one run (a GPU is lent only now and then):
per preset, size and precision, the whole run's seconds, the seconds of one step at the
final scale, the seconds of the same step's network alone (the convolutions forward and
their input gradient, no terms: the floor a step cannot go under) and their ratio, the
float32 objective of the result and peak device memory.

Targets: ``default`` at 512 px under 2 s and at 1024 px under 5 s, ``gatys``
at 1024 px under 1 s, a ``default`` step at 1024 px within 3x of its network alone.

Test it on the CPU first (small sizes, same code path):

    python benchmarks/gpu.py --device cpu --sizes 128 --presets gatys default --precisions float32
    python benchmarks/gpu.py --sizes 512 1024 > benchmarks/results/gpu_h200.md     # on the GPU
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import NetworkAlone

from impasto import Inputs, Runtime, Stylizer
from impasto.demo import demo_content, paint_style
from impasto.engine import WholeImage
from impasto.errors import ImpastoError
from impasto.imageio import load_image, resize
from impasto.model import build_encoder
from impasto.presets import PRESETS


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_steps(stylizer: Stylizer, evaluator: WholeImage, image: torch.Tensor, repeats: int) -> float:
    """Median seconds of one evaluation with its backward (after two warm-up ones)."""
    times = []
    for k in range(repeats + 2):
        pixels = image.detach().clone().requires_grad_(True)
        synchronize(stylizer.device)
        started = time.perf_counter()
        evaluator(pixels, backward=True)
        synchronize(stylizer.device)
        if k >= 2:
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def step_and_network(stylizer: Stylizer, name: str, size: int, content, style, repeats: int) -> tuple[float, float]:
    """A final-scale step of ``name`` at ``size``, and the same step's network alone."""
    run = stylizer.plan(Inputs.of(content, [style]), PRESETS[name].replace(size=size, pixels=None))
    final, recipe = run.schedule.final, run.recipe
    objective = run.objective(run.targets(final), final)
    image = resize(run.content, final, "bicubic").to(stylizer.device)
    whole = WholeImage(stylizer.network, objective, stylizer.autocast, recipe.pooling)
    step = timed_steps(stylizer, whole, image, repeats)

    alone = timed_steps(stylizer, NetworkAlone(stylizer.network, objective.layers, stylizer.autocast, recipe.pooling),
                        image, repeats)  # fmt: skip
    return step, alone


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=int, default=[512, 1024])
    parser.add_argument("--presets", nargs="+", default=["gatys", "default"])
    parser.add_argument("--precisions", nargs="+", default=["float32", "bfloat16"])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device: {name}, torch {torch.__version__}\n")
    content, style = load_image(demo_content()), load_image(paint_style(512))
    encoder = build_encoder()
    stylizers = {p: Stylizer(Runtime(device=args.device, precision=p), encoder=encoder) for p in args.precisions}
    print(
        "| preset | size | precision | total s | step s (final scale) | network alone s | step / network "
        "| objective (fp32) | peak device MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for preset in args.presets:
        for size in args.sizes:
            for precision, stylizer in stylizers.items():
                config = PRESETS[preset].replace(size=size, pixels=None)
                events: list = []
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                synchronize(device)
                started = time.perf_counter()
                try:
                    stylizer.run(Inputs.of(content, [style]), config, on_progress=events.append)
                except ImpastoError as error:
                    print(f"| {preset} | {size} | {precision} | failed: {error} | | | | | |", flush=True)
                    continue
                synchronize(device)
                total = time.perf_counter() - started
                peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else float("nan")
                step, alone = step_and_network(stylizer, preset, size, content, style, args.repeats)
                print(f"| {preset} | {size} | {precision} | {total:.2f} | {step:.4f} | {alone:.4f} | "
                      f"{step / alone:.2f} | {events[-1].loss:.5g} | {peak:.0f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
