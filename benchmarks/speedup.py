"""Before and after, side by side: a preset of this tree against the same preset at an
earlier commit (the baseline: by default impasto 0.2, 5736c44), on the
same pairs and sizes, one run at a time, alternating which side goes first.

``--after COMMIT`` measures a commit instead of the working tree (in a worktree of its
own, so that the tree may change while a long run goes on). Each run is its own process
(``python benchmarks/speedup.py --paint``) with the side's
``src`` first on its path, so the baseline runs its own code (a ``git worktree`` of the
commit under benchmarks/out/); its time is that of ``Stylizer.run`` alone (the network is
loaded before the clock starts, as in a warm studio or batch). Both sides' saved PNGs are
scored by this tree's impasto.metrics (style and content distance, lower is better)
against the same references. Records go to benchmarks/results/speedup/SIZE/MACHINE/ and are
reused while the side's source is unchanged (a digest of its src/ tree).

Prints per size: per pair, seconds before and after, their ratio, and the change of each
figure; the median ratio and the worst change of each figure.

    python benchmarks/speedup.py --sizes 256 512
    python benchmarks/speedup.py --sizes 256 --pairs tubingen:starry_night --report
    python benchmarks/speedup.py --sizes 256 --report --deep relu5_1   # a layer the figures leave out
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

ROOT = Path(__file__).resolve().parents[1]
#: impasto 0.2, before the speed work of 0.3 ("default in half the time").
BASELINE = "5736c44"
#: The four tuning pairs of benchmarks/quality.py and four held-out ones (benchmarks/holdout.py).
PAIRS = (
    "tubingen:starry_night",
    "hoovertowernight:the_scream",
    "brad_pitt:picasso_selfport1907",
    "tubingen:shipwreck",
    "astronaut:strokes",
    "chelsea:dots",
    "coffee:mosaic",
    "rocket:strokes",
)
#: A figure within this of the baseline's counts as the same (the speed aims: "within 2%").
SAME = 0.02


def paint(args: argparse.Namespace) -> None:
    """In a child process: paint one pair with the impasto found first on the path."""
    import torch

    from impasto import Inputs, Stylizer

    try:
        from impasto.presets import preset
    except ImportError:  # a tree from before the presets module
        from impasto.config import preset  # type: ignore[attr-defined,no-redef]
    from impasto.imageio import save_image

    stylizer = Stylizer()
    config = preset(args.preset).replace(size=args.size, pixels=None)
    inputs = Inputs.of(args.content, [args.style])
    started = time.perf_counter()
    image = stylizer.run(inputs, config)
    seconds = time.perf_counter() - started
    save_image(image, args.out)
    print(json.dumps({"seconds": seconds, "threads": torch.get_num_threads()}))


def source_digest(src: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(src.rglob("*.py")):
        h.update(str(path.relative_to(src)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def baseline_tree(rev: str) -> Path:
    """A checkout of ``rev`` under benchmarks/out/, made once."""
    folder = ROOT / "benchmarks" / "out" / f"baseline-{rev}"
    if not (folder / "src" / "impasto").is_dir():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(folder), rev], check=True)
    return folder


class Bench:
    def __init__(self, baseline: str, after: str | None, preset: str, size: int, report_only: bool) -> None:
        from common import machine
        from sweep import machine_folder

        self.preset, self.size = preset, size
        self.machine = machine()
        self.sides = {
            "before": baseline_tree(baseline) / "src",
            "after": (baseline_tree(after) if after else ROOT) / "src",
        }
        self.digests = {side: source_digest(src) for side, src in self.sides.items()}
        self.records = ROOT / "benchmarks" / "results" / "speedup" / f"{preset}_{size}" / machine_folder(self.machine)
        self.images = ROOT / "benchmarks" / "out" / "speedup" / f"{preset}_{size}"
        self.report_only = report_only
        self.encoder = None

    def record_path(self, pair: str, side: str) -> Path:
        return self.records / f"{pair.replace(':', '_')}_{side}.json"

    def recorded(self, pair: str, side: str) -> dict | None:
        path = self.record_path(pair, side)
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        return data if data.get("source") == self.digests[side] else None

    def run(self, pair: str, side: str) -> dict:
        from common import find_image as find

        from impasto.imageio import load_image
        from impasto.metrics import figures, references
        from impasto.model import build_encoder

        photo, painting = pair.split(":")
        content, style = find(photo, "content"), find(painting, "style")
        self.images.mkdir(parents=True, exist_ok=True)
        image = self.images / f"{pair.replace(':', '_')}_{side}.png"
        env = {"PYTHONPATH": str(self.sides[side])}
        command = [sys.executable, __file__, "--paint", "--preset", self.preset, "--size", str(self.size),
                   "--content", str(content), "--style", str(style), "--out", str(image)]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, env={**_environ(), **env})
        if done.returncode != 0:
            raise RuntimeError(f"{side} {pair} failed:\n{done.stderr[-3000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        if self.encoder is None:
            self.encoder = build_encoder()
        refs = references(load_image(content), load_image(style), self.size)
        style_d, content_d = figures(self.encoder, load_image(image), *refs)
        data = {"pair": pair, "side": side, "size": self.size, "preset": self.preset,
                "seconds": result["seconds"], "style": style_d, "content": content_d,
                "machine": self.machine, "source": self.digests[side]}  # fmt: skip
        path = self.record_path(pair, side)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(path)
        return data

    def pair(self, pair: str, index: int) -> dict[str, dict]:
        order = ("before", "after") if index % 2 == 0 else ("after", "before")
        out = {}
        for side in order:
            data = self.recorded(pair, side)
            if data is None and not self.report_only:
                data = self.run(pair, side)
                print(f"  {pair} {side}: {data['seconds']:.1f} s, style {data['style']:.4f}, "
                      f"content {data['content']:.4f}", flush=True)  # fmt: skip
            if data is not None:
                out[side] = data
        return out


def _environ() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def report(size: int, preset: str, machine: str, rows: dict[str, dict[str, dict]]) -> list[str]:
    lines = [f"### `{preset}` at {size} px ({machine})", "",
             "| pair | before s | after s | after/before | style before → after | content before → after |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    ratios, style_changes, content_changes = [], [], []
    for pair, sides in rows.items():
        if len(sides) < 2:
            continue
        b, a = sides["before"], sides["after"]
        ratio = a["seconds"] / b["seconds"]
        ds, dc = a["style"] / b["style"] - 1, a["content"] / b["content"] - 1
        ratios.append(ratio)
        style_changes.append(ds)
        content_changes.append(dc)
        lines.append(f"| {pair} | {b['seconds']:.1f} | {a['seconds']:.1f} | {ratio:.2f} | "
                     f"{b['style']:.4f} → {a['style']:.4f} ({ds:+.1%}) | "
                     f"{b['content']:.4f} → {a['content']:.4f} ({dc:+.1%}) |")  # fmt: skip
    if ratios:
        held = sum(ds <= SAME and dc <= SAME for ds, dc in zip(style_changes, content_changes, strict=True))
        spread = f"{min(ratios):.2f}-{max(ratios):.2f}"
        lines += ["", f"median after/before {statistics.median(ratios):.2f} (range {spread}); "
                  f"worst change: style {max(style_changes):+.1%}, content {max(content_changes):+.1%}; "
                  f"both figures within {SAME:.0%} (or better) on {held}/{len(ratios)} pairs"]  # fmt: skip
    return lines


def deep_report(bench: Bench, rows: dict[str, dict[str, dict]], layer: str) -> list[str]:
    """The change of ``layer``'s own distance (scored as the style figure scores each of its
    layers, which ``layer`` is not among) between the saved before and after pictures."""
    from common import find_image as find

    from impasto.imageio import load_image
    from impasto.metrics import layer_distance, references
    from impasto.model import build_encoder

    encoder = bench.encoder or build_encoder()
    lines = ["", f"| pair | {layer} before → after |", "|---|---|"]
    changes = []
    for pair, sides in rows.items():
        images = [bench.images / f"{pair.replace(':', '_')}_{side}.png" for side in ("before", "after")]
        if len(sides) < 2 or not all(path.is_file() for path in images):
            continue
        photo, painting = pair.split(":")
        content, style = references(load_image(find(photo, "content")), load_image(find(painting, "style")), bench.size)
        f_content, f_style = encoder(content, (layer,))[layer], encoder(style, (layer,))[layer]
        before, after = (layer_distance(encoder(load_image(p), (layer,))[layer], f_content, f_style) for p in images)
        changes.append(after / before - 1)
        lines.append(f"| {pair} | {before:.4f} → {after:.4f} ({changes[-1]:+.1%}) |")
    if changes:
        lines += ["", f"{layer}: median change {statistics.median(changes):+.1%}, worst {max(changes):+.1%}"]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[256, 512])
    parser.add_argument("--pairs", nargs="+", default=list(PAIRS))
    parser.add_argument("--preset", default="default")
    parser.add_argument("--baseline", default=BASELINE)
    parser.add_argument(
        "--after", help="a commit to measure instead of the working tree (so that the tree can change meanwhile)"
    )
    parser.add_argument("--report", action="store_true", help="print from the records, run nothing")
    parser.add_argument("--deep", metavar="LAYER", help="also each saved picture's distance at LAYER (e.g. relu5_1)")
    # The child's options.
    parser.add_argument("--paint", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--content", help=argparse.SUPPRESS)
    parser.add_argument("--style", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.paint:
        paint(args)
        return
    for size in args.sizes:
        bench = Bench(args.baseline, args.after, args.preset, size, args.report)
        rows = {pair: bench.pair(pair, k) for k, pair in enumerate(args.pairs)}
        print("\n".join(report(size, args.preset, bench.machine, rows)), flush=True)
        if args.deep:
            print("\n".join(deep_report(bench, rows, args.deep)), flush=True)


if __name__ == "__main__":
    main()
