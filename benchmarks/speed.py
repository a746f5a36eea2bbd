"""Time to quality against pastiche, side by side, on pre-sized pairs.

For each pair and size: pastiche 1.6.0 runs K L-BFGS steps (default 300); impasto's
``gatys`` preset runs (a) its default schedule and (b) until its loss is below
pastiche's final objective (``--target-loss``). Every saved 8-bit image is scored with
the same classic objective (impasto's code, float32), checked once against pastiche's
own loss on the same file. Prints both times, both objectives, the ratio pastiche time
/ impasto time at equal or lower objective, peak memory, the per-iteration throughput
of one impasto step next to the machine's measured conv peaks (FLOPs of an iteration:
the convolutions forward and their input gradient, 2x the forward, plus the Gram
products forward and backward), and whether bfloat16
keeps the objective within 1% of a float32 run.

    python benchmarks/speed.py                      # 2 pairs x 256, 384, 512 (about 50 min)
    python benchmarks/speed.py --sizes 384 --pairs tubingen:starry_night
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import itertools

from common import (
    ROOT,
    ClassicScorer,
    conv_peak,
    gram_flops,
    machine,
    presize,
    run_timed,
    shared_pair,
    vgg_forward_flops,
)

from impasto.engine import WholeImage, optimize_scale
from impasto.objective.targets import build_targets
from impasto.objective.terms import recipe_objective
from impasto.presets import GATYS
from impasto.runtime import network_precision, resolve_precision, step_network

PY = sys.executable


def impasto_command(content: Path, style: Path, output: Path, size: int, *extra: str) -> list[str]:
    return [PY, "-m", "impasto", "stylize", str(content), str(style), "-o", str(output), "--preset", "gatys",
            "--size", str(size), "-q", *extra]  # fmt: skip


def pastiche_command(content: Path, style: Path, output: Path, size: int, steps: int) -> list[str]:
    return [PY, "-m", "pastiche", "--content", str(content), "--styles", str(style), "--output", str(output),
            "--size", str(size), "--num-steps", str(steps), "--seed", "0", "--device", "cpu",
            "--info-step", str(steps)]  # fmt: skip


def pastiche_step_seconds(output: str, steps: int) -> float:
    """From pastiche's 'step elapsed loss' lines: seconds per step after its set-up."""
    rows = [line.split() for line in output.splitlines() if line[:1].isdigit()]
    elapsed = {int(r[0]): float(r[1]) for r in rows if len(r) == 3}
    return (elapsed[steps] - elapsed[0]) / steps


def pastiche_own_loss(content: Path, style: Path, image: Path) -> float:
    """pastiche's own objective of ``image``, through its artist started from that file."""
    from pastiche.pastiche import PasticheArtist

    artist = PasticheArtist(str(content), [str(style)], init=str(image), device="cpu", size_pixels=None)
    return float(artist.loss)


def step_seconds(scorer: ClassicScorer, precision: str, repeats: int = 8) -> float:
    """Median seconds of one gatys L-BFGS step at the pair's full size, in-process, timed
    through the engine's own per-scale loop."""
    device = torch.device("cpu")
    autocast = resolve_precision(precision, device)
    encoder = step_network(scorer.encoder, autocast)
    config = GATYS
    with network_precision(device.type, autocast):
        targets = build_targets(encoder, scorer.content, [scorer.style], config.content_layers, config.style_layers)
    stamps = [time.perf_counter()]

    def report(values, image) -> bool:
        stamps.append(time.perf_counter())
        return False

    evaluator = WholeImage(encoder, recipe_objective(config, targets), autocast)
    optimize_scale(evaluator, scorer.content, repeats + 2, report)
    times = [b - a for a, b in itertools.pairwise(stamps)]
    return statistics.median(times[2:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", nargs="+", default=["tubingen:starry_night", "hoovertowernight:the_scream"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[256, 384, 512])
    parser.add_argument("--pastiche-steps", type=int, default=300)
    parser.add_argument("--margin", type=float, default=0.97, help="impasto's --target-loss = margin x pastiche's")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="impasto-speed-"))

    peaks = {"float32": conv_peak(torch.float32), "bfloat16": conv_peak(torch.bfloat16)}
    lines = [
        f"machine: {machine()}",
        f"conv peak (3x3, 256->256, 128x128): float32 {peaks['float32']:.0f} GFLOP/s, "
        f"bfloat16 {peaks['bfloat16']:.0f} GFLOP/s",
        "",
        "| pair | size | pastiche s | pastiche objective | impasto default s | objective | impasto to target s "
        "| objective | speed-up | float32 default objective | bf16 vs fp32 | fp32 1 thread vs fp32 "
        "| step GFLOP/s bf16 (% peak) | fp32 "
        "| pastiche s/step | peak RSS MB pastiche / impasto |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)
    checked = False
    for pair in args.pairs:
        content_name, style_name = pair.split(":")
        content, style = shared_pair(content_name, style_name)
        for size in args.sizes:
            c, s = presize(content, style, size, work)
            scorer = ClassicScorer(c, s)
            tag = f"{content_name}_{style_name}_{size}"

            p_out = args.out / f"{tag}_pastiche.png"
            pastiche = run_timed(pastiche_command(c, s, p_out, size, args.pastiche_steps))
            p_score = scorer(p_out)
            if not checked:
                own = pastiche_own_loss(c, s, p_out)
                print(f"check: pastiche's own loss of {p_out.name} = {own:.6g}; impasto's = {p_score:.6g}", flush=True)
                checked = True

            d_out = args.out / f"{tag}_impasto.png"
            default = run_timed(impasto_command(c, s, d_out, size))
            d_score = scorer(d_out)

            t_out = args.out / f"{tag}_impasto_target.png"
            target = run_timed(impasto_command(c, s, t_out, size, "--final-steps", "400",
                                               "--target-loss", f"{args.margin * p_score:.6g}"))  # fmt: skip
            t_score = scorer(t_out)

            f_out = args.out / f"{tag}_impasto_fp32.png"
            run_timed(impasto_command(c, s, f_out, size, "--precision", "float32"))
            f_score = scorer(f_out)
            # The same float32 run on one thread: only the order of its sums differs. How far
            # its objective lands from the two-thread run's is the noise floor of a single
            # comparison (the optimisation is chaotic), against which bf16 vs fp32 is read.
            o_out = args.out / f"{tag}_impasto_fp32_1thread.png"
            run_timed(impasto_command(c, s, o_out, size, "--precision", "float32"),
                      env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
            o_score = scorer(o_out)

            best = [(run.seconds, score) for run, score in ((default, d_score), (target, t_score)) if score <= p_score]
            ratio = f"{pastiche.seconds / min(best)[0]:.1f}x" if best else "not reached"
            h, w = scorer.content.shape[-2:]
            conv_flops = 2 * vgg_forward_flops(scorer.encoder, h, w) / 1e9  # forward + input gradient
            flops = conv_flops + gram_flops(scorer.encoder, GATYS.style_layers, h, w) / 1e9
            bf16_seconds = step_seconds(scorer, "bfloat16")
            bf16, bf16_conv = flops / bf16_seconds, conv_flops / bf16_seconds
            fp32 = flops / step_seconds(scorer, "float32")
            row = (
                f"| {content_name} + {style_name} | {w}x{h} | {pastiche.seconds:.1f} | {p_score:.4g} "
                f"| {default.seconds:.1f} | {d_score:.4g} | {target.seconds:.1f} | {t_score:.4g} | {ratio} "
                f"| {f_score:.4g} | {(d_score / f_score - 1) * 100:+.1f}% | {(o_score / f_score - 1) * 100:+.1f}% "
                f"| {bf16:.0f} ({bf16 / peaks['bfloat16'] * 100:.0f}%; convolutions alone {bf16_conv:.0f}, "
                f"{bf16_conv / peaks['bfloat16'] * 100:.0f}%) "
                f"| {fp32:.0f} ({fp32 / peaks['float32'] * 100:.0f}%) "
                f"| {pastiche_step_seconds(pastiche.output, args.pastiche_steps):.2f} "
                f"| {pastiche.peak_rss_mb:.0f} / {max(default.peak_rss_mb, target.peak_rss_mb):.0f} |"
            )
            print(row, flush=True)
            lines.append(row)
    (args.out / "speed.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
