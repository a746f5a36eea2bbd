"""Where a step's time goes: per scale of a preset's schedule, the seconds of one step
(network forward and backward with every term) and what each group of terms adds to it,
measured by leaving the group out (content alone is the floor: the network up to the
content layer), plus the seconds of the scale's steps as the schedule has them.

The ``network`` column is the network alone in the same process: the layers the step
reads, forward and backward to the picture, without a term (each layer's features summed
once, so that the backward runs); ``step/network`` is what the terms and their
gradients add on top. Last, the thread scaling of the final scale: a step and the network
alone on one thread against all of torch's threads.

Terms are grouped as the events report them: ``style`` (the W2 or Gram term of every style
layer), ``histogram``, ``tv``. Each figure is the median of --repeats steps after two
warm-up steps, on the step network the engine runs (the run's precision and layout), with
the allocator as a run has it (``kept_allocations``, where the tree has it); the page
faults of the whole step are those of the process (a fresh mapping of a large tensor
faults each of its pages in).

    python benchmarks/step_profile.py --size 512
    python benchmarks/step_profile.py --size 256 --pair tubingen:starry_night --preset fast

The scales' objectives are read off the run's plan (``Stylizer.plan``); a tree from before
the plan is profiled with its own copy of this script (``git show REV:benchmarks/step_profile.py``).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import NetworkAlone, machine, on_threads
from common import find_image as find

from impasto import Inputs, Stylizer

try:
    from impasto.presets import preset
except ImportError:  # a tree from before the presets module
    from impasto.config import preset  # type: ignore[attr-defined,no-redef]
from impasto.engine import Evaluator, evaluator_for
from impasto.imageio import load_image, resize
from impasto.objective.terms import Objective


def step_seconds(evaluator: Evaluator, image, repeats: int) -> tuple[float, int]:
    """The median seconds of a step and the median of its page faults."""
    times, faulted = [], []
    for k in range(repeats + 2):
        pixels = image.detach().clone().requires_grad_(True)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        started = time.perf_counter()
        evaluator(pixels, backward=True)
        if k >= 2:
            times.append(time.perf_counter() - started)
            faulted.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return statistics.median(times), int(statistics.median(faulted))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--pair", default="tubingen:starry_night")
    parser.add_argument("--preset", default="default")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    photo, painting = args.pair.split(":")
    content, style = load_image(find(photo, "content")), load_image(find(painting, "style"))
    stylizer = Stylizer()
    run = stylizer.plan(Inputs.of(content, [style]), preset(args.preset).replace(size=args.size, pixels=None))
    recipe, schedule = run.recipe, run.schedule
    groups = ("style", "histogram", "tv")
    print(f"`{args.preset}` at {args.size} px, {args.pair}, {machine()}, {stylizer.autocast or 'float32'} network\n")
    print("| scale | steps | ms/step | network | step/network | content alone | + style | + histogram | + tv "
          "| scale's steps, s | faults/step |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    total = 0.0
    for size, steps in zip(schedule.sizes, schedule.steps, strict=True):
        objective = run.objective(run.targets(size), size)
        image = resize(run.content, size, "bicubic")

        def timed(keep, objective=objective, image=image) -> tuple[float, int]:
            terms = tuple(t for t in objective.terms if keep(t.key.split(".")[0]))
            network = evaluator_for(stylizer.network, Objective(terms), stylizer.autocast, recipe.pooling, None)
            return step_seconds(network, image, args.repeats)

        def bare(objective=objective, image=image) -> float:
            network = NetworkAlone(stylizer.network, objective.layers, stylizer.autocast, recipe.pooling)
            return step_seconds(network, image, args.repeats)[0]

        whole, faults = timed(lambda group: True)
        net = bare()
        alone, _ = timed(lambda group: group == "content")
        costs = [whole - timed(lambda group, g=g: group != g)[0] for g in groups]
        total += whole * steps
        print(f"| {size[1]}x{size[0]} | {steps} | {whole * 1000:.0f} | {net * 1000:.0f} | {whole / net:.2f} | "
              f"{alone * 1000:.0f} | " + " | ".join(f"{c * 1000:.0f}" for c in costs)
              + f" | {whole * steps:.1f} | {faults} |", flush=True)  # fmt: skip
    print(f"\nsteps alone: {total:.1f} s (set-up, targets and events not counted)")
    threads = torch.get_num_threads()
    if threads > 1:
        one = on_threads(1, lambda: (timed(lambda group: True)[0], bare()))
        print(f"threads at {size[1]}x{size[0]}: a step {one[0] / whole:.2f}x as fast on {threads} threads as on one "
              f"({one[0] * 1000:.0f} -> {whole * 1000:.0f} ms), the network alone {one[1] / net:.2f}x "
              f"({one[1] * 1000:.0f} -> {net * 1000:.0f} ms)")  # fmt: skip


if __name__ == "__main__":
    import contextlib
    import os

    try:
        from impasto.numerics import kept_allocations, same_bits

        # as a single picture's run has it (sums torch's own); a batch's with IMPASTO_SAME_BITS=1
        sums = same_bits(os.environ.get("IMPASTO_SAME_BITS") == "1")
    except ImportError:  # a tree from before the numerics module: its sums were always ordered
        from impasto.runtime import kept_allocations

        sums = contextlib.nullcontext()
    with kept_allocations(), sums:
        main()
