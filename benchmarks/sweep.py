"""Quality sweep over many pairs, resumable: every run is recorded on disk as it finishes
(a JSON with its seconds, figures, machine, recipe and the recipe's fingerprint, under
benchmarks/results/sweep/SET_SIZE/MACHINE/, committed; the output PNG under
benchmarks/out/sweep/, for the contact sheets), so a sweep can be spread over sittings. A
run is redone when its recipe changed, or when the recipe no longer paints the canary (a
small drawn pair, three scales of 8 steps) to the same 8-bit pixels as when the run was
recorded: a refactor that changes no pixel keeps the records, a change that does paint
differently makes them stale. Pixels and times differ between processors, so records are
kept and compared per machine: a sweep runs and reports the records of the machine it runs on.

Pair sets:
- ``all``: every photo x painting of ../shared/images (5 x 7 = 35; the four tuning pairs of
  benchmarks/quality.py are marked with *);
- ``holdout``: benchmarks/holdout.py's photos x paintings (4 x 3), never tuned on;
- ``report``: the four tuning pairs and two others, for the 384 px table.

Prints, per recipe, the median and worst of each figure (style distance, content
distance: impasto.metrics, lower is better), the median time, and the comparisons the
presets are held to: ``quality`` against ``default``, ``default`` against crowsonkb's
recipe, ``fast`` against ``gatys``; writes the table (markdown) and contact sheets of the
worst pairs under --out.

    python benchmarks/sweep.py --set all --size 192           # run what is missing, then report
    python benchmarks/sweep.py --set holdout --size 192
    python benchmarks/sweep.py --set all --size 192 --report  # report only, run nothing
    python benchmarks/sweep.py --set all --size 192 --matched default  # the matched comparison

``--matched PRESET`` compares PRESET with crowsonkb's recipe along the trade-off rather than
at one point of it: besides PRESET at its own content weight, it runs PRESET at content
weights √2, 2 and 4 times larger or smaller (``PRESET@F`` records), nearest first, until two
runs bracket crowsonkb's content distance, and reads PRESET's style distance there
(linear in the log of the content weight); the converse (content distance at crowsonkb's
style distance) is read the same way, bracketed by more runs with ``--converse`` and
extrapolated from the nearest two otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import re
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

import holdout
from common import ROOT, SHARED, machine, side_by_side
from quality import PAIRS as TUNING
from quality import label

from impasto import Inputs, Stylizer
from impasto.config import StyleConfig
from impasto.imageio import load_image, save_image
from impasto.metrics import figures, references, structure
from impasto.model import build_encoder
from impasto.presets import CROWSONKB, DEFAULT, preset

RECIPES = ("default", "quality", "fast", "gatys", "crowsonkb")
REPORT_EXTRA = ("stata:la_muse", "chicago:woman-with-hat-matisse")
#: Held-out pairs that helped choose a setting (`default`'s content weight and histogram
#: term, the L-BFGS restart rule), so no longer untouched: marked † in the report, and the
#: comparisons are repeated without them and without the tuning pairs.
TOUCHED = (
    "astronaut:strokes",
    "astronaut:dots",
    "astronaut:mosaic",
    "chelsea:dots",
    "coffee:strokes",
    "coffee:mosaic",
    "rocket:mosaic",
)
#: Noise allowed when one recipe is to be "at least as good" as another (the presets' quality targets).
NOISE = 0.01


def canary() -> Inputs:
    """The fingerprint's pair: a 48x64 photo (gradients, a square with hard edges) and a
    64x64 painting (colour blobs and stripes), drawn from a fixed seed."""
    generator = torch.Generator().manual_seed(0)
    y, x = torch.meshgrid(torch.linspace(0, 1, 48), torch.linspace(0, 1, 64), indexing="ij")
    photo = torch.stack([x, y, 1 - x * y])
    photo[:, 12:36, 20:44] = torch.tensor([0.9, 0.2, 0.1]).view(3, 1, 1)
    blobs = F.interpolate(torch.rand(1, 3, 4, 4, generator=generator), size=(64, 64), mode="bicubic")
    stripes = (torch.arange(64) // 4 % 2).float().view(1, 1, 1, 64) * 0.3
    return Inputs.of(photo.unsqueeze(0), [(blobs + stripes).clamp(0, 1)])


def fingerprint(stylizer: Stylizer, config: StyleConfig) -> str:
    """What ``config`` paints on the canary at 64 px (scales from 32 px, 8 steps each:
    past the L-BFGS restart's grace steps): a digest of the 8-bit pixels."""
    small = config.replace(size=64, pixels=None, start_size=32, scales=None, first_steps=8, steps=8, final_steps=8)
    image = stylizer.run(canary(), small)
    return hashlib.sha256((image * 255).round().to(torch.uint8).numpy().tobytes()).hexdigest()[:16]


def same_recipe(recorded: str | None, config: str) -> bool:
    """Whether a record's recipe (JSON) is ``config``: a field the record lacks (one added
    since) counts as its default."""
    if recorded is None:
        return False
    defaults, old, new = (json.loads(text) for text in (StyleConfig().to_json(), recorded, config))
    return set(old) <= set(new) and all(old.get(key, defaults[key]) == value for key, value in new.items())


def machine_folder(name: str) -> str:
    """A folder name for a machine description."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


#: Recipes on trial, not presets (yet): named here so the sweep can run and match them.
TRIALS = {
    # the neighbour term at the four style layers with the histogram term, instead of W2
    "nn-hist": DEFAULT.replace(
        style_weight=0.0, neighbour_weight=3000.0, neighbour_layers=("relu1_1", "relu2_1", "relu3_1", "relu4_1")
    ),
}


def recipe_of(name: str, size: int) -> StyleConfig:
    """A recipe by name: a preset, ``crowsonkb``, one of :data:`TRIALS`, or ``PRESET@F``,
    the preset with its content weight times F (the matched comparison's other points of
    the trade-off)."""
    base, _, factor = name.partition("@")
    config = CROWSONKB if base == "crowsonkb" else TRIALS[base] if base in TRIALS else preset(base)
    if factor:
        config = config.replace(content_weight=config.content_weight * float(factor))
    return config.replace(size=size, pixels=None)


def pairs_of(which: str) -> list[tuple[str, Path, Path]]:
    """``(name, content, style)`` of a pair set."""
    if which == "holdout":
        content, style = holdout.make()
        photos, paintings = holdout.PHOTOS, holdout.PAINTINGS
    else:
        content, style = SHARED / "content", SHARED / "style"
        photos = tuple(sorted(p.stem for p in content.glob("*.jpg")))
        paintings = tuple(sorted(p.stem for p in style.glob("*.jpg")))
        if not photos or not paintings:
            sys.exit(f"sweep: no images under {SHARED} (set IMPASTO_SHARED_IMAGES)")
    names = [f"{c}:{s}" for c in photos for s in paintings]
    if which == "report":
        names = [*TUNING, *REPORT_EXTRA]
    return [(n, content / f"{n.split(':')[0]}.jpg", style / f"{n.split(':')[1]}.jpg") for n in names]


class Sweep:
    def __init__(self, out: Path, records: Path, size: int, borrow: tuple[str, ...] = ()) -> None:
        self.out, self.size = out, size
        self.machine = machine()
        self.records = records / machine_folder(self.machine)
        self.borrow = borrow
        self.encoder = build_encoder()
        self.stylizer = Stylizer(encoder=self.encoder)
        self.fingerprints: dict[str, str] = {}
        self.references: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def fingerprint(self, recipe: str) -> str:
        if recipe not in self.fingerprints:
            self.fingerprints[recipe] = fingerprint(self.stylizer, recipe_of(recipe, self.size))
        return self.fingerprints[recipe]

    def files(self, pair: str, recipe: str) -> tuple[Path, Path]:
        stem = f"{pair.replace(':', '_')}_{recipe}"
        return self.out / f"{stem}.png", self.records / f"{stem}.json"

    def recorded(self, pair: str, recipe: str) -> dict | None:
        """The record of a run, if it was made with this recipe and the recipe still paints
        the canary as it did then."""
        _, record = self.files(pair, recipe)
        config = recipe_of(recipe, self.size).to_json()
        for path in (record, *(self.records.parent / folder / record.name for folder in self.borrow)):
            if not path.is_file():
                continue
            data = json.loads(path.read_text())
            if same_recipe(data.get("config"), config) and data.get("fingerprint") == self.fingerprint(recipe):
                return data
        return None

    def reference(self, pair: str, content: Path, style: Path) -> tuple[torch.Tensor, torch.Tensor]:
        if pair not in self.references:
            self.references[pair] = references(load_image(content), load_image(style), self.size)
        return self.references[pair]

    def paint(self, pair: str, content: Path, style: Path, config: StyleConfig, image_path: Path) -> tuple:
        """Run ``config`` on the pair, save the picture, score the saved file: ``(seconds,
        style distance, content distance, structure)``."""
        started = time.perf_counter()
        image = self.stylizer.run(Inputs.of(content, [style]), config)
        seconds = time.perf_counter() - started
        save_image(image, image_path)
        saved, (photo, painting) = load_image(image_path), self.reference(pair, content, style)
        style_d, content_d = figures(self.encoder, saved, photo, painting)
        return seconds, style_d, content_d, structure(self.encoder, saved, photo)

    def run(self, pair: str, content: Path, style: Path, recipe: str) -> dict:
        image_path, record_path = self.files(pair, recipe)
        config = recipe_of(recipe, self.size)
        seconds, style_d, content_d, kept = self.paint(pair, content, style, config, image_path)
        data = {
            "pair": pair, "recipe": recipe, "size": self.size, "seconds": seconds,
            "style": style_d, "content": content_d, "structure": kept, "machine": self.machine,
            "fingerprint": self.fingerprint(recipe), "config": config.to_json(),
        }  # fmt: skip
        tmp = record_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(record_path)
        return data


def compare(
    rows: dict[str, dict[str, dict]], better: str, worse: str, which: tuple[str, ...]
) -> tuple[int, int, dict, int]:
    """How many pairs ``better`` is at least as good as ``worse`` on the ``which`` figures
    (within NOISE), out of how many, the largest relative excess on each figure, and on how
    many pairs ``better`` took more time."""
    wins, total, slower = 0, 0, 0
    excess = dict.fromkeys(which, -1.0)
    for results in rows.values():
        if better not in results or worse not in results:
            continue
        total += 1
        ratios = {f: results[better][f] / results[worse][f] - 1 for f in which}
        for f in which:
            excess[f] = max(excess[f], ratios[f])
        wins += all(r <= NOISE for r in ratios.values())
        slower += results[better]["seconds"] > results[worse]["seconds"]
    return wins, total, excess, slower


def comparisons(rows: dict[str, dict[str, dict]], recipes: tuple[str, ...], scope: str = "") -> list[str]:
    """The lines that hold the presets to their quality targets (docs/quality.md)."""
    lines = []
    for better, worse, which in (
        ("quality", "default", ("style", "content")),
        ("default", "crowsonkb", ("style", "content")),
        ("fast", "gatys", ("content",)),
    ):
        if better in recipes and worse in recipes:
            wins, total, excess, slower = compare(rows, better, worse, which)
            if total:
                worst = ", ".join(f"{f} {100 * e:+.1f}%" for f, e in excess.items())
                lines.append(
                    f"- {scope}`{better}` at least as good as `{worse}` on {' and '.join(which)} (within {NOISE:.0%}): "
                    f"{wins} of {total} pairs; its largest excess: {worst}; more time on {slower} of {total}"
                )
    return lines


def report(sweep: Sweep, pairs: list[tuple[str, Path, Path]], recipes: tuple[str, ...], title: str) -> str:
    rows: dict[str, dict[str, dict]] = {}
    for pair, _, _ in pairs:
        rows[pair] = {r: d for r in recipes if (d := sweep.recorded(pair, r)) is not None}
    done = sum(len(v) for v in rows.values())
    machines = sorted({d["machine"] for v in rows.values() for d in v.values()})
    lines = [f"### {title} at {sweep.size} px: {done} of {len(pairs) * len(recipes)} runs recorded", ""]
    lines += [f"machine: {m}" for m in machines] + [""]
    lines += ["| recipe | pairs | style median | style worst | content median | content worst | seconds median |"]
    lines += ["|---|---|---|---|---|---|---|"]
    for r in recipes:
        got = [v[r] for v in rows.values() if r in v]
        if not got:
            continue
        s, c, t = ([d[k] for d in got] for k in ("style", "content", "seconds"))
        lines.append(
            f"| {r} | {len(got)} | {statistics.median(s):.3f} | {max(s):.3f} | {statistics.median(c):.3f} "
            f"| {max(c):.3f} | {statistics.median(t):.0f} |"
        )
    lines.append("")
    lines += comparisons(rows, recipes)
    untouched = {p: v for p, v in rows.items() if p not in TUNING and p not in TOUCHED}
    if len(untouched) < len(rows):
        lines += comparisons(untouched, recipes, "untouched pairs only: ")
    lines += ["", "| pair | " + " | ".join(recipes) + " |", "|---|" + "---|" * len(recipes)]
    for pair, results in rows.items():
        mark = "*" if pair in TUNING else "†" if pair in TOUCHED else ""
        cells = [f"{results[r]['style']:.3f} / {results[r]['content']:.3f}" if r in results else "" for r in recipes]
        lines.append(f"| {pair}{mark} | " + " | ".join(cells) + " |")
    key = "cells: style distance / content distance; * a tuning pair, † a held-out pair that chose a setting"
    lines += ["", key, ""]
    return "\n".join(lines)


#: Content-weight factors tried on each side of a preset's own weight, nearest first, until
#: crowsonkb's figure lies between two of the preset's runs (names as ``recipe_of`` reads them).
LADDER = {True: ("1.414", "2", "4"), False: ("0.7071", "0.5", "0.25")}


def ensure(sweep: Sweep, pair: str, content: Path, style: Path, recipe: str) -> dict:
    """The record of ``recipe`` on the pair, run now when missing or stale."""
    if (d := sweep.recorded(pair, recipe)) is not None:
        return d
    d = sweep.run(pair, content, style, recipe)
    print(f"{pair} {recipe}: {d['seconds']:.0f} s, style {d['style']:.3f}, content {d['content']:.3f}", flush=True)
    return d


def factor_of(recipe: str) -> float:
    return float(recipe.partition("@")[2] or 1)


def bracket(
    sweep: Sweep, pair: str, content: Path, style: Path, base: str, key: str, target: float, points: dict[str, dict]
) -> None:
    """Add runs of ``base`` at other content weights (LADDER) until ``target`` lies between
    two runs' ``key`` figure, or the ladder ends. Content distance falls as the content
    weight grows; style distance rises."""
    while not min(d[key] for d in points.values()) <= target <= max(d[key] for d in points.values()):
        high = min(d[key] for d in points.values()) > target
        up = high if key == "content" else not high
        tried = [r for r in points if r != base and (factor_of(r) > 1) == up]
        if len(tried) == len(LADDER[up]):
            return
        name = f"{base}@{LADDER[up][len(tried)]}"
        points[name] = ensure(sweep, pair, content, style, name)


def at(points: dict[str, dict], key: str, target: float, other: str) -> tuple[float, bool]:
    """``other``'s figure where ``key``'s equals ``target``, both linear in the log of the
    content weight between neighbouring runs: ``(value, bracketed)``; when no two runs
    bracket the target, extrapolated from the two runs nearest it (``bracketed`` False)."""
    runs = [d for _, d in sorted(points.items(), key=lambda item: factor_of(item[0]))]
    segments = list(itertools.pairwise(runs))
    if not segments:
        return runs[0][other], False
    inside = [(a, b) for a, b in segments if min(a[key], b[key]) <= target <= max(a[key], b[key])]
    a, b = inside[0] if inside else min(segments, key=lambda s: min(abs(s[0][key] - target), abs(s[1][key] - target)))
    t = 0.0 if a[key] == b[key] else (target - a[key]) / (b[key] - a[key])
    return a[other] + t * (b[other] - a[other]), bool(inside)


def matched(
    sweep: Sweep,
    pairs: list[tuple[str, Path, Path]],
    base: str,
    run: bool,
    converse: bool,
    sheets: int,
    against: str = "crowsonkb",
) -> str:
    """The matched comparison: ``base``'s style distance at ``against``'s content
    distance (and the converse), each pair's runs at its own and bracketing content weights;
    contact sheets of the ``sheets`` pairs where ``base`` is furthest behind. Beside them,
    the structure figure (:func:`impasto.metrics.structure`), ``base``'s at ``against``'s
    content distance."""
    rows = []
    for pair, content, style in pairs:
        if run:
            ref = ensure(sweep, pair, content, style, against)
            points = {base: ensure(sweep, pair, content, style, base)}
            bracket(sweep, pair, content, style, base, "content", ref["content"], points)
            if converse:
                bracket(sweep, pair, content, style, base, "style", ref["style"], points)
        else:
            ref = sweep.recorded(pair, against)
            names = [base, *(f"{base}@{f}" for side in LADDER.values() for f in side)]
            points = {n: d for n in names if (d := sweep.recorded(pair, n)) is not None}
            if ref is None or base not in points:
                continue
        style_at, style_ok = at(points, "content", ref["content"], "style")
        content_at, content_ok = at(points, "style", ref["style"], "content")
        measured = all("structure" in d for d in points.values())
        kept_at = at(points, "content", ref["content"], "structure")[0] if measured else None
        rows.append((pair, ref, points, style_at, style_ok, content_at, content_ok, kept_at))
    lines = [f"### matched comparison at {sweep.size} px: `{base}` against `{against}`", ""]
    machines = sorted({d["machine"] for row in rows for d in (row[1], *row[2].values())} | {sweep.machine})
    lines += [f"machine: {m}" for m in machines] + [""]
    lines += [
        f"| pair | `{against}` | `{base}` | content weights run | style at `{against}`'s content | "
        f"content at `{against}`'s style | structure, `{against}` / `{base}` at its content |",
        "|---|---|---|---|---|---|---|",
    ]
    for pair, ref, points, style_at, style_ok, content_at, content_ok, kept_at in rows:
        own = points[base]
        mark = "*" if pair in TUNING else "†" if pair in TOUCHED else ""
        factors = ", ".join(f"×{factor_of(r):g}" for r in sorted(points, key=factor_of))
        lines.append(
            f"| {pair}{mark} | {ref['style']:.3f} / {ref['content']:.3f} | {own['style']:.3f} / {own['content']:.3f} "
            f"| {factors} | {style_at:.3f} ({100 * (style_at / ref['style'] - 1):+.1f}%){'' if style_ok else ' ~'} "
            f"| {content_at:.3f} ({100 * (content_at / ref['content'] - 1):+.1f}%){'' if content_ok else ' ~'} "
            f"| {kept(ref)} / {'-' if kept_at is None else f'{kept_at:.3f}'} |"
        )
    lines.append("")

    def summary(chosen: list, scope: str) -> str:
        excess = [style_at / ref["style"] - 1 for _, ref, _, style_at, *_ in chosen]
        converse_excess = [row[5] / row[1]["content"] - 1 for row in chosen]
        held = sum(e <= NOISE for e in excess)
        lower = sum(e <= -0.10 for e in excess)
        kept_as_well = sum(row[7] is not None and row[7] >= row[1].get("structure", 1.0) - 0.01 for row in chosen)
        worst, middle = 100 * max(excess), 100 * statistics.median(excess)
        c_worst, c_middle = 100 * max(converse_excess), 100 * statistics.median(converse_excess)
        return (
            f"- {scope}`{base}` holds (style distance at `{against}`'s content distance at most its + {NOISE:.0%}) "
            f"on {held} of {len(chosen)} pairs ({held / len(chosen):.0%}), at least 10% lower on {lower}; largest "
            f"excess {worst:+.1f}%, median {middle:+.1f}%; converse (content distance at `{against}`'s style "
            f"distance): median {c_middle:+.1f}%, largest {c_worst:+.1f}%; structure at least `{against}`'s "
            f"(within 0.01) on {kept_as_well} of {len(chosen)}"
        )

    files = {pair: (content, style) for pair, content, style in pairs}
    for row in sorted(rows, key=lambda row: row[3] / row[1]["style"], reverse=True)[:sheets]:
        pair, points = row[0], row[2]
        recipes = (against, *sorted(points, key=factor_of))
        sheet(sweep, pair, *files[pair], recipes, sweep.out / f"matched_{pair.replace(':', '_')}.jpg")
    if rows:
        lines.append(summary(rows, ""))
        untouched = [row for row in rows if row[0] not in TUNING and row[0] not in TOUCHED]
        if 0 < len(untouched) < len(rows):
            lines.append(summary(untouched, "untouched pairs only: "))
    key = (
        "cells: style distance / content distance; the style and content columns interpolate linearly in the log "
        f"of the content weight between the neighbouring runs (~: no two runs bracket `{against}`'s figure, "
        f"extrapolated from the nearest two); structure: `{base}`'s read the same way at `{against}`'s content "
        "distance; * a tuning pair, † a "
        "held-out pair that chose a setting"
    )
    lines += ["", key, ""]
    return "\n".join(lines)


def kept(record: dict) -> str:
    """A record's structure figure, or a dash for a record made before it was measured."""
    return f"{record['structure']:.3f}" if "structure" in record else "-"


def sheet(sweep: Sweep, pair: str, content: Path, style: Path, recipes: tuple[str, ...], path: Path) -> None:
    """A contact sheet: photo, painting, then each recipe's output labelled "recipe: style / content, time"."""
    c, s = sweep.reference(pair, content, style)
    h = c.shape[-2]
    tiles = [label(c, "content", h), label(s, "style", h)]
    for r in recipes:
        if (d := sweep.recorded(pair, r)) is not None and sweep.files(pair, r)[0].is_file():
            text = f"{r}: {d['style']:.3f} / {d['content']:.3f}, {d['seconds']:.0f} s"
            tiles.append(label(load_image(sweep.files(pair, r)[0]), text, h))
    side_by_side(tiles).save(path, quality=88)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", choices=("all", "holdout", "report"), default="all")
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES))
    parser.add_argument("--pairs", nargs="+", help="only these pairs of the set (content:style), in this order")
    parser.add_argument("--report", action="store_true", help="run nothing; report what is recorded")
    parser.add_argument(
        "--matched", metavar="PRESET", help="the matched comparison of PRESET against crowsonkb's recipe"
    )
    parser.add_argument("--against", default="crowsonkb", help="with --matched: the recipe matched against")
    parser.add_argument(
        "--converse", action="store_true", help="with --matched: also bracket crowsonkb's style distance (more runs)"
    )
    parser.add_argument(
        "--borrow",
        nargs="+",
        default=(),
        metavar="MACHINE",
        help="records folders of other machines whose runs count here when this machine paints the recipe's "
        "canary to the same bytes (the figures carry over; the seconds are that machine's)",
    )
    parser.add_argument("--sheets", type=int, default=3, help="contact sheets of this many worst pairs")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "sweep", help="images, sheets")
    parser.add_argument("--records", type=Path, default=ROOT / "benchmarks" / "results" / "sweep")
    args = parser.parse_args()
    recipes = tuple(args.recipes)
    out = args.out / f"{args.set}_{args.size}"
    records = args.records / f"{args.set}_{args.size}"
    out.mkdir(parents=True, exist_ok=True)
    sweep = Sweep(out, records, args.size, tuple(args.borrow))
    sweep.records.mkdir(parents=True, exist_ok=True)
    pairs = pairs_of(args.set)
    if args.pairs:  # in the order given: a sweep cut short has covered the first ones
        named = {p[0]: p for p in pairs}
        pairs = [named[name] for name in args.pairs if name in named]
    if args.matched:
        text = matched(sweep, pairs, args.matched, not args.report, args.converse, args.sheets, args.against)
        print(text)
        suffix = "" if args.against == "crowsonkb" else f"-vs-{args.against}"
        (sweep.records / f"matched-{args.matched}{suffix}.md").write_text(text)
        return
    if not args.report:
        for pair, content, style in pairs:
            for r in recipes:
                if sweep.recorded(pair, r) is None:
                    d = sweep.run(pair, content, style, r)
                    print(f"{pair} {r}: {d['seconds']:.0f} s, style {d['style']:.3f}, content {d['content']:.3f}",
                          flush=True)  # fmt: skip
    text = report(sweep, pairs, recipes, args.set)
    print(text)
    (sweep.records / "report.md").write_text(text)

    # Worst cases: the pairs where `default` is furthest behind crowsonkb's recipe.
    def behind(p: tuple[str, Path, Path]) -> float:
        a, b = sweep.recorded(p[0], "default"), sweep.recorded(p[0], "crowsonkb")
        return max(a["style"] / b["style"], a["content"] / b["content"]) if a and b else 0.0

    for pair, content, style in sorted(pairs, key=behind, reverse=True)[: args.sheets]:
        sheet(sweep, pair, content, style, recipes, out / f"sheet_{pair.replace(':', '_')}.jpg")


if __name__ == "__main__":
    main()
