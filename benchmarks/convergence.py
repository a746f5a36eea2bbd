"""How far each scale of a run is from done: per scale, how much the loss still falls
after step k (``L_k / L_last - 1``) and by how much it fell over the ten steps before k
(``(L_{k-10} - L_k) / L_k``), read from histories that ``impasto stylize --record``
wrote. A stopping rule on the loss's relative change can only save steps where that fall
has become small.

    impasto stylize tubingen.jpg shipwreck.jpg --size 512 -o out.png --record run.json
    python benchmarks/convergence.py run.json [more.json ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

MARKS = (40, 50, 60, 70, 80)


def scale_losses(history: dict) -> dict[int, tuple[list[int], list[float]]]:
    """The size ``[h, w]`` and the losses of each scale's steps, in order."""
    losses: dict[int, tuple[list[int], list[float]]] = {}
    for step in history["steps"]:
        losses.setdefault(step["scale"], (step["size"], []))[1].append(step["loss"])
    return losses


def table(name: str, history: dict) -> list[str]:
    head = " | ".join(f"step {k}" for k in MARKS)
    lines = [f"### {name}", "", "still to fall after the step, and the fall over the 10 steps before it:", "",
             f"| scale | size | steps | {head} |", "|---|---|---|" + "---|" * len(MARKS)]  # fmt: skip
    for scale, (size, losses) in sorted(scale_losses(history).items()):
        cells = []
        for k in MARKS:
            if k > len(losses) or k <= 10:
                cells.append("")
                continue
            rest = losses[k - 1] / losses[-1] - 1
            fall = (losses[k - 11] - losses[k - 1]) / losses[k - 1]
            cells.append(f"{rest:.1%}, {fall:.1%}")
        lines.append(f"| {scale} | {size[1]}x{size[0]} | {len(losses)} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("histories", nargs="+", type=Path)
    args = parser.parse_args()
    for path in args.histories:
        print("\n".join(table(path.stem, json.loads(path.read_text()))) + "\n")


if __name__ == "__main__":
    main()
