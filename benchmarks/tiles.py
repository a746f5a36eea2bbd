"""Large pictures in tiles: peak memory and time per step at print sizes, with a memory
budget (``--max-memory``), each size in a process of its own (its peak resident memory
is its own), one after the other; and, with ``--seams``, a whole run tiled against the
same run untiled (quality figures, and a seam figure: the mean gradient magnitude of the
picture across tile borders over the same elsewhere).

    python benchmarks/tiles.py --sizes 1024,2048,4096,A3 --max-memory 6G --steps 3
    python benchmarks/tiles.py --sizes 1024,2048 --max-memory '' --force-tile 512
    python benchmarks/tiles.py --seams --size 1024 --tile 256 --preset fast --pairs tubingen+starry_night
    python benchmarks/tiles.py --exactness
    python benchmarks/tiles.py --plans --sizes 2048,A4,4096,A3 --max-memory 6G
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


def pair_and_side(size: str) -> tuple[Path, Path, int]:
    """tubingen, starry_night and the longest side of ``size``: pixels, or a paper at 300 dpi
    for tubingen's shape."""
    from impasto.imageio import header_size
    from impasto.prints import print_pixels

    photo, painting = find_image("tubingen", "content"), find_image("starry_night", "style")
    side = max(print_pixels(size, 300, header_size(photo))) if not size.isdigit() else int(size)
    return photo, painting, side


def one(size: str, budget: str | None, steps: int, preset_name: str, tile: int | None) -> dict:
    """One scale at ``size`` (a longest side, or a paper at 300 dpi), ``steps`` steps."""
    import torch

    from impasto.engine.stylizer import Stylizer
    from impasto.inputs import Inputs
    from impasto.presets import preset
    from impasto.runtime import Runtime

    photo, painting, side = pair_and_side(size)
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


def plans(sizes: list[str], budget: str, preset_name: str) -> None:
    """The memory plan of each size (a longest side, or a paper at 300 dpi) within
    ``budget``: the tile size and the L-BFGS pairs a run of tubingen + starry_night takes."""
    from impasto.engine.memory import TooLarge
    from impasto.engine.stylizer import Stylizer
    from impasto.inputs import Inputs, load_inputs
    from impasto.presets import preset
    from impasto.runtime import Runtime
    from impasto.schedule import plan

    stylizer = Stylizer(Runtime(max_memory=budget))
    print(f"the memory plan of {preset_name} within {budget}, tubingen + starry_night")
    print("| picture | plan |")
    print("|---|---|")
    for size in sizes:
        photo, painting, side = pair_and_side(size)
        recipe = preset(preset_name).replace(size=side, pixels=None)
        loaded = load_inputs(Inputs.of(photo, [painting]), recipe)
        schedule = plan(recipe, *loaded.content.shape[-2:])
        try:
            memory = stylizer.memory_plan(loaded, recipe, schedule)
        except TooLarge as error:
            print(f"| {size} | refused: {error} |")
            continue
        h, w = schedule.final
        pairs = memory.history or stylizer.policy.history
        how = "whole" if memory.tile is None else f"{memory.tile} px tiles"
        print(f"| {size} ({w}x{h}) | {how}, {pairs} pairs |", flush=True)


def seam_figure(picture, tile: int, borders_of) -> float:
    """Mean gradient magnitude (grey, |dx| + |dy|) at the tile borders over the same
    elsewhere: 1 where borders are like any other place in the picture."""
    import torch

    border = torch.zeros(picture.shape[-2:], dtype=torch.bool)
    for r0, c0 in borders_of:
        if r0:
            border[r0 - 1 : r0 + 1] = True
        if c0:
            border[:, c0 - 1 : c0 + 1] = True
    grey = picture[0].mean(0)
    dy = torch.zeros_like(grey)
    dx = torch.zeros_like(grey)
    dy[1:] = (grey[1:] - grey[:-1]).abs()
    dx[:, 1:] = (grey[:, 1:] - grey[:, :-1]).abs()
    magnitude = dx + dy
    return float(magnitude[border].mean() / magnitude[~border].mean())


def independent(stylizer, photo, painting, recipe, size, tile):
    """What the tiling scripts do: the photo at ``size`` cut into ``tile`` px tiles, each
    painted on its own as a picture of its own (same recipe at the tile's size), put back."""
    import torch

    from impasto.imageio import load_image, resize
    from impasto.inputs import Inputs
    from impasto.schedule import fit_longest_side

    image = load_image(photo)
    height, width = fit_longest_side(*image.shape[-2:], size)
    whole = resize(image, (height, width), "bicubic")
    out = torch.zeros_like(whole)
    corners = []
    for r0 in range(0, height, tile):
        for c0 in range(0, width, tile):
            part = whole[..., r0 : r0 + tile, c0 : c0 + tile]
            painted = stylizer.run(Inputs.of(part, [painting]), recipe.replace(size=max(part.shape[-2:])))
            out[..., r0 : r0 + tile, c0 : c0 + tile] = resize(painted, tuple(part.shape[-2:]), "bicubic")
            corners.append((r0, c0))
    return out, corners


def seams(size: int, tile: int, preset_name: str, pairs: list[tuple[str, str]]) -> None:
    from impasto.engine.stylizer import Stylizer
    from impasto.engine.tiles import margins, windows
    from impasto.imageio import load_image, save_image, size_of
    from impasto.inputs import Inputs
    from impasto.metrics import figures, references
    from impasto.presets import preset
    from impasto.runtime import Runtime

    print(f"machine: {machine()}")
    print(f"{preset_name} at {size} px, tiles of {tile} px against the whole picture, and each tile painted alone")
    print("| pair | run | seconds | style distance | content distance | seam figure |")
    print("|---|---|---|---|---|---|")
    for content_name, style_name in pairs:
        photo, painting = find_image(content_name, "content"), find_image(style_name, "style")
        recipe = preset(preset_name).replace(size=size, pixels=None, seed=0)
        for label in ("whole", f"{tile} px tiles", "each tile alone"):
            started = time.perf_counter()
            stylizer = Stylizer(Runtime(tile=tile) if label.endswith("tiles") else Runtime())
            if label == "each tile alone":
                out, corners = independent(stylizer, photo, painting, recipe, size, tile)
            else:
                out = stylizer.run(Inputs.of(photo, [painting]), recipe)
                halo, align = margins(stylizer.encoder, ("relu5_1",))
                corners = [(w.inner[0][0], w.inner[1][0]) for w in windows(*size_of(out), tile, halo, align)]
            seconds = time.perf_counter() - started
            name = f"benchmarks/out/tiles_{content_name}_{style_name}_{size}_{label.split()[0]}.png"
            Path(name).parent.mkdir(exist_ok=True)
            save_image(out, name)
            c, s = references(load_image(photo), load_image(painting), max(size_of(out)))
            style_distance, content_distance = figures(stylizer.encoder, out, c, s)
            seam = seam_figure(out, tile, corners)
            print(f"| {content_name} + {style_name} | {label} | {seconds:.0f} | {style_distance:.4f} | "
                  f"{content_distance:.4f} | {seam:.3f} |", flush=True)  # fmt: skip


def exactness() -> None:
    """One evaluation of default and gatys on a 340x290 picture in tiles against the whole
    picture, real VGG19 in float32: the loss, the terms and the gradient (96 px tiles, 12
    of them); then each term alone (128 px tiles), its tiled and whole gradients against
    each other and each against the same evaluation in float64 (network included)."""
    import copy
    import dataclasses

    import torch

    from impasto.engine.optimize import WholeImage
    from impasto.engine.tiles import Tiled
    from impasto.imageio import resize
    from impasto.model.encoder import Encoder
    from impasto.model.weights import load_original
    from impasto.objective.targets import build_targets
    from impasto.objective.terms import Objective, recipe_objective
    from impasto.presets import PRESETS

    vgg = Encoder(load_original(), ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1"), "max")
    exact_vgg = copy.deepcopy(vgg).double()

    def case(network, name, dtype):
        recipe = PRESETS[name]
        generator = torch.Generator().manual_seed(1)
        content = resize(torch.rand(1, 3, 10, 12, generator=generator), (290, 340)).to(dtype)
        style = resize(torch.rand(1, 3, 8, 8, generator=generator), (200, 200)).to(dtype)
        targets = build_targets(network, content, [style], recipe.content_layers, recipe.style_layers,
                                style_loss=recipe.style_loss, histogram=recipe.histogram_weight > 0)  # fmt: skip
        objective = recipe_objective(recipe, targets)
        image = (content * 0.7 + 0.15 + 0.05 * torch.rand(content.shape, generator=generator).to(dtype)).clamp(0, 1)
        terms = [
            dataclasses.replace(
                t,
                **{
                    f.name: getattr(t, f.name).to(dtype)
                    for f in dataclasses.fields(t)
                    if torch.is_tensor(getattr(t, f.name))
                },
            )
            for t in objective.terms
        ]
        return Objective(tuple(terms)), image

    def run(evaluator, image):
        pixels = image.clone().requires_grad_(True)
        loss, terms = evaluator(pixels, backward=True)
        return loss.item(), {k: v.item() for k, v in terms.items()}, pixels.grad.double()

    def apart(a, b):
        return float((a - b).norm() / b.norm())

    print("| preset | loss, relative | worst term, relative | gradient, relative (norm) |")
    print("|---|---|---|---|")
    rows = []
    for name in ("default", "gatys"):
        objective, image = case(vgg, name, torch.float32)
        (loss, terms, grad), (tiled, tiled_terms, tiled_grad) = (
            run(WholeImage(vgg, objective), image), run(Tiled(vgg, objective, tile=96), image))  # fmt: skip
        worst = max(abs(tiled_terms[k] - v) / max(abs(v), 1e-30) for k, v in terms.items())
        print(f"| {name} | {abs(tiled - loss) / loss:.1e} | {worst:.1e} | {apart(tiled_grad, grad):.1e} |")
        exact, exact_image = case(exact_vgg, name, torch.float64)
        for term, exact_term in zip(objective.terms, exact.terms, strict=True):
            if term.layers:
                alone = Objective((term,))
                _, _, whole = run(WholeImage(vgg, alone), image)
                _, _, tiles = run(Tiled(vgg, alone, tile=128), image)
                _, _, truth = run(WholeImage(exact_vgg, Objective((exact_term,))), exact_image)
                rows.append((name, term.key, apart(tiles, whole), apart(whole, truth), apart(tiles, truth)))
    print()
    print("| preset | term | tiled vs whole | whole vs float64 | tiled vs float64 |")
    print("|---|---|---|---|---|")
    for name, key, a, b, c in rows:
        print(f"| {name} | {key} | {a:.1e} | {b:.1e} | {c:.1e} |")


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
    parser.add_argument("--plans", action="store_true", help="print each size's memory plan within --max-memory")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--tile", type=int, default=128)
    parser.add_argument("--pairs", default="tubingen+starry_night,stata+the_scream", help="--seams: photo+painting,...")
    args = parser.parse_args()
    if args.one:
        tile = None if args.force_tile == 0 else args.force_tile
        print(json.dumps(one(args.one, args.max_memory or None, args.steps, args.preset, tile)))
        return
    if args.seams:
        pairs = [tuple(pair.split("+")) for pair in args.pairs.split(",")]
        seams(args.size, args.tile, args.preset, pairs)  # type: ignore[arg-type]
        return
    if args.exactness:
        exactness()
        return
    if args.plans:
        plans(args.sizes.split(","), args.max_memory, args.preset)
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
