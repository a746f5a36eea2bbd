"""Large pictures in tiles: peak memory and time per step at print sizes, with a memory
budget (``--max-memory``), each size in a process of its own (its peak resident memory
is its own), one after the other; and, with ``--seams``, a whole run tiled against the
same run untiled (quality figures, and a seam figure: the mean gradient magnitude of the
picture across tile borders over the same elsewhere).

    python benchmarks/tiles.py --sizes 1024,2048,4096,A3 --max-memory 6G --steps 3
    python benchmarks/tiles.py --sizes 1024,2048 --max-memory '' --force-tile 512
    python benchmarks/tiles.py --seams --size 512 --tile 128 --preset fast
    python benchmarks/tiles.py --exactness
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import find_image, machine


def one(size: str, budget: str | None, steps: int, preset_name: str, tile: int | None) -> dict:
    """One scale at ``size`` (a longest side, or a paper at 300 dpi), ``steps`` steps."""
    import torch

    from impasto.config import preset
    from impasto.engine.stylizer import Stylizer
    from impasto.imageio import header_size
    from impasto.inputs import Inputs
    from impasto.prints import print_pixels
    from impasto.runtime import Runtime

    photo, painting = find_image("tubingen", "content"), find_image("starry_night", "style")
    side = max(print_pixels(size, 300, header_size(photo))) if not size.isdigit() else int(size)
    recipe = preset(preset_name).replace(size=side, pixels=None, start_size=None, scales=None, steps=steps)
    stamps: list[float] = []
    tiles: list[int] = []

    def listen(event) -> None:
        stamps.append(time.perf_counter())
        tiles.append(event.tiles)

    started = time.perf_counter()
    out = Stylizer(Runtime(max_memory=budget, tile=tile)).run(Inputs.of(photo, [painting]), recipe, on_progress=listen)
    per_step = [b - a for a, b in itertools.pairwise(stamps[:-1])]  # the last event scores the result
    return {
        "size": size,
        "pixels": [int(out.shape[-1]), int(out.shape[-2])],
        "tiles": tiles[0] if tiles else 0,
        "seconds_per_step": sorted(per_step)[len(per_step) // 2] if per_step else None,
        "first_step": stamps[0] - started if stamps else None,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "threads": torch.get_num_threads(),
    }


def seams(size: int, tile: int, preset_name: str) -> None:
    import torch

    from impasto.config import preset
    from impasto.engine.stylizer import Stylizer
    from impasto.engine.tiles import margins, windows
    from impasto.imageio import load_image, save_image, size_of
    from impasto.inputs import Inputs
    from impasto.metrics import figures, references
    from impasto.runtime import Runtime

    pairs = [("tubingen", "starry_night"), ("stata", "the_scream")]
    print(f"machine: {machine()}")
    print(f"{preset_name} at {size} px, tiles of {tile} px against the whole picture")
    print("| pair | run | seconds | style distance | content distance | seam figure |")
    print("|---|---|---|---|---|---|")
    for content_name, style_name in pairs:
        photo, painting = find_image(content_name, "content"), find_image(style_name, "style")
        recipe = preset(preset_name).replace(size=size, pixels=None, seed=0)
        for label, runtime in (("whole", Runtime()), (f"{tile} px tiles", Runtime(tile=tile))):
            started = time.perf_counter()
            stylizer = Stylizer(runtime)
            out = stylizer.run(Inputs.of(photo, [painting]), recipe)
            seconds = time.perf_counter() - started
            name = f"benchmarks/out/tiles_{content_name}_{style_name}_{label.split()[0]}.png"
            Path(name).parent.mkdir(exist_ok=True)
            save_image(out, name)
            c, s = references(load_image(photo), load_image(painting), max(size_of(out)))
            style_distance, content_distance = figures(stylizer.encoder, out, c, s)
            halo, align = margins(stylizer.encoder, ("relu5_1",))
            plan = windows(*size_of(out), tile, halo, align)
            border = torch.zeros(size_of(out), dtype=torch.bool)
            for window in plan:
                (r0, _), (c0, _) = window.inner
                if r0:
                    border[r0 - 1 : r0 + 1] = True
                if c0:
                    border[:, c0 - 1 : c0 + 1] = True
            grey = out[0].mean(0)
            dy = torch.zeros_like(grey)
            dx = torch.zeros_like(grey)
            dy[1:] = (grey[1:] - grey[:-1]).abs()
            dx[:, 1:] = (grey[:, 1:] - grey[:, :-1]).abs()
            magnitude = dx + dy
            seam = float(magnitude[border].mean() / magnitude[~border].mean())
            print(f"| {content_name} + {style_name} | {label} | {seconds:.0f} | {style_distance:.4f} | "
                  f"{content_distance:.4f} | {seam:.3f} |", flush=True)  # fmt: skip


def exactness() -> None:
    """One evaluation of default and gatys on a 340x290 picture in 96 px tiles (12) against
    the whole picture, real VGG19 in float32: how far apart the loss, the terms and the
    gradient are."""
    import torch

    from impasto.config import PRESETS
    from impasto.engine.optimize import WholeImage
    from impasto.engine.tiles import Tiled
    from impasto.imageio import resize
    from impasto.model.encoder import Encoder
    from impasto.model.weights import load_original
    from impasto.objective.targets import build_targets
    from impasto.objective.terms import recipe_objective

    vgg = Encoder(load_original(), ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1"), "max")
    print("| preset | loss, relative | worst term, relative | gradient, relative (norm) |")
    print("|---|---|---|---|")
    for name in ("default", "gatys"):
        recipe = PRESETS[name]
        generator = torch.Generator().manual_seed(1)
        content = resize(torch.rand(1, 3, 10, 12, generator=generator), (290, 340))
        style = resize(torch.rand(1, 3, 8, 8, generator=generator), (200, 200))
        targets = build_targets(vgg, content, [style], recipe.content_layers, recipe.style_layers,
                                style_loss=recipe.style_loss, histogram=recipe.histogram_weight > 0)  # fmt: skip
        objective = recipe_objective(recipe, targets)
        image = (content * 0.7 + 0.15 + 0.05 * torch.rand(content.shape, generator=generator)).clamp(0, 1)
        results = []
        for evaluator in (WholeImage(vgg, objective), Tiled(vgg, objective, tile=96)):
            pixels = image.clone().requires_grad_(True)
            loss, terms = evaluator(pixels, backward=True)
            results.append((loss.item(), {k: v.item() for k, v in terms.items()}, pixels.grad))
        (loss, terms, grad), (tiled, tiled_terms, tiled_grad) = results
        worst = max(abs(tiled_terms[k] - v) / max(abs(v), 1e-30) for k, v in terms.items())
        error = float((tiled_grad - grad).norm() / grad.norm())
        print(f"| {name} | {abs(tiled - loss) / loss:.1e} | {worst:.1e} | {error:.1e} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1024,2048,4096,A3")
    parser.add_argument("--max-memory", default="6G")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--force-tile", type=int, default=0, help="tiles of this size at every scale (0: as planned)")
    parser.add_argument("--seams", action="store_true")
    parser.add_argument("--exactness", action="store_true")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--tile", type=int, default=128)
    args = parser.parse_args()
    if args.one:
        tile = None if args.force_tile == 0 else args.force_tile
        print(json.dumps(one(args.one, args.max_memory or None, args.steps, args.preset, tile)))
        return
    if args.seams:
        seams(args.size, args.tile, args.preset)
        return
    if args.exactness:
        exactness()
        return
    print(f"machine: {machine()}")
    budget = args.max_memory or "what is free"
    forced = f", --tile {args.force_tile}" if args.force_tile else ""
    print(f"one scale, {args.steps} steps of {args.preset}, --max-memory {budget}{forced}, tubingen + starry_night")
    print("| size | pixels | Mpx | tiles | s per step | s per step per Mpx | peak RSS GB |")
    print("|---|---|---|---|---|---|---|")
    for size in args.sizes.split(","):
        done = subprocess.run([sys.executable, __file__, "--one", size, "--max-memory", args.max_memory, "--steps",
                               str(args.steps), "--preset", args.preset, "--force-tile", str(args.force_tile)],
                              capture_output=True, text=True)  # fmt: skip
        if done.returncode:
            print(f"| {size} | failed: {done.stderr.strip().splitlines()[-1]} |", flush=True)
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        mpx = r["pixels"][0] * r["pixels"][1] / 1e6
        step = r["seconds_per_step"]
        print(f"| {size} | {r['pixels'][0]}x{r['pixels'][1]} | {mpx:.1f} | {r['tiles']} | {step:.1f} | "
              f"{step / mpx:.2f} | {r['peak_rss_gb']:.2f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
