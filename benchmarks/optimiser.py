"""The optimiser's rule, measured: one recipe on some pairs under each rule, with the loss
per scale (first > best@step > last), the result's loss and both quality figures.

Rules: ``last`` (0.1: the last iterate handed out, no restarts), ``best`` (the best
evaluated iterate handed out), ``restart`` (best, and L-BFGS restarts from it when the loss
climbs more than --rise above it; the shipped rule at --rise 0.02).

    python benchmarks/optimiser.py --size 256 --recipe quality --rules last best restart \\
        --pairs astronaut:mosaic coffee:dots
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import holdout
from common import find_image as find
from common import machine

from impasto import Inputs, Stylizer
from impasto.engine import DEFAULT_POLICY, Policy
from impasto.imageio import load_image
from impasto.metrics import figures, references
from impasto.model import build_encoder
from impasto.presets import CROWSONKB, preset


def record(trace: list, event) -> None:
    trace.append((event.scale, event.loss, event.done))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--recipe", default="default")
    parser.add_argument("--rules", nargs="+", default=["last", "best", "restart"])
    parser.add_argument("--rise", type=float, default=DEFAULT_POLICY.restart_rise)
    parser.add_argument("--pairs", nargs="+", default=["astronaut:mosaic", "coffee:dots"])
    args = parser.parse_args()
    holdout.make()
    encoder = build_encoder()
    print(f"machine: {machine()}")
    for pair in args.pairs:
        c, s = pair.split(":")
        content, style = find(c, "content"), find(s, "style")
        photo, painting = references(load_image(content), load_image(style), args.size)
        for rule in args.rules:
            policy = Policy(hand_out_best=rule != "last", restart_rise=args.rise if rule == "restart" else math.inf)
            stylizer = Stylizer(encoder=encoder, policy=policy)
            base = CROWSONKB if args.recipe == "crowsonkb" else preset(args.recipe)
            config = base.replace(size=args.size, pixels=None)
            trace: list[tuple[int, float, bool]] = []
            started = time.perf_counter()
            out = stylizer.run(Inputs.of(content, [style]), config, on_progress=partial(record, trace))
            seconds = time.perf_counter() - started
            style_d, content_d = figures(stylizer.encoder, out, photo, painting)
            scales = []
            for k in sorted({t[0] for t in trace}):
                losses = [loss for scale, loss, done in trace if scale == k and not done]
                low = min(losses)
                scales.append(f"{losses[0]:.4g} > {low:.4g}@{losses.index(low)} > {losses[-1]:.4g}")
            print(f"{pair} {args.recipe} {rule}: {seconds:.0f} s, style {style_d:.3f}, content {content_d:.3f}, "
                  f"result {trace[-1][1]:.4g} | " + " | ".join(scales), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
