"""The same bytes on any thread count, and what keeping them costs.

1. Bytes (``same_bits`` on, as batches have it): ``default`` and ``gatys`` at 192 px on a
   pair, in float32 and in the run's automatic precision (bfloat16 where the CPU has it),
   each painted on one thread and on two; the digests side by side and whether they agree.
2. Cost: the median seconds of a step of ``default`` at the final scale of a 256 px run,
   with ``same_bits`` on (sums in a fixed order, ``eigh`` on one thread) and off (torch's
   own threaded reductions), alternating, on all of torch's threads, in both precisions.

    python benchmarks/same_bits.py
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 python benchmarks/same_bits.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import find_image as find
from common import machine, on_threads

from impasto import Inputs, Runtime, Stylizer
from impasto.digest import digest
from impasto.imageio import load_image, resize
from impasto.numerics import kept_allocations, same_bits
from impasto.presets import preset


def step_ms(stylizer: Stylizer, inputs: Inputs, size: int, enabled: bool, repeats: int) -> list[float]:
    """Seconds of ``repeats`` steps at the final scale of ``default`` at ``size`` px."""
    run = stylizer.plan(inputs, preset("default").replace(size=size, pixels=None))
    final = run.schedule.sizes[-1]
    with same_bits(enabled):
        objective = run.objective(run.targets(final), final)
        evaluator = run.evaluator(objective, final)
        image = resize(run.content, final, "bicubic")
        times = []
        for k in range(repeats + 2):
            pixels = image.detach().clone().requires_grad_(True)
            started = time.perf_counter()
            evaluator(pixels, backward=True)
            if k >= 2:
                times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pair", default="tubingen:starry_night")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    photo, painting = args.pair.split(":")
    inputs = Inputs.of(load_image(find(photo, "content")), [load_image(find(painting, "style"))])
    print(f"{args.pair}, {machine()}\n")
    print("| preset | precision | 1 thread | 2 threads | same |")
    print("|---|---|---|---|---|")
    for precision in ("float32", "auto"):
        for name in ("default", "gatys"):
            recipe = preset(name).replace(size=192, pixels=None)

            def paint(recipe=recipe, precision=precision) -> str:
                runtime = Runtime(device="cpu", precision=precision, same_bits=True)  # as batches have it
                return digest(Stylizer(runtime).run(inputs, recipe))

            digests = [on_threads(n, paint) for n in (1, 2)]
            print(f"| {name} | {precision} | {digests[0][:12]} | {digests[1][:12]} | {digests[0] == digests[1]} |",
                  flush=True)  # fmt: skip
    print("\n| precision | step, same_bits on (ms) | off (ms) | off/on |")
    print("|---|---|---|---|")
    for precision in ("float32", "auto"):
        stylizer = Stylizer(Runtime(device="cpu", precision=precision))
        on: list[float] = []
        off: list[float] = []
        for _ in range(2):  # alternating
            on += step_ms(stylizer, inputs, 256, True, args.repeats)
            off += step_ms(stylizer, inputs, 256, False, args.repeats)
        a, b = statistics.median(on) * 1000, statistics.median(off) * 1000
        print(f"| {stylizer.autocast or 'float32'} | {a:.0f} | {b:.0f} | {b / a:.3f} |", flush=True)


if __name__ == "__main__":
    with kept_allocations():
        main()
