"""What ``impasto explain`` costs: on the demo pair and the four tuning pairs, the report
(stylisation + figures + layer reconstructions) against the stylisation alone, at one size
(default 256 px, the `default` preset). Reconstructions are computed afresh (no cache).
Writes each report and its figures under --out.

    python benchmarks/explain.py --size 256
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, machine, shared_pair
from quality import PAIRS

from impasto import Inputs, Stylizer
from impasto.demo import demo_content, paint_style
from impasto.explain import explain
from impasto.imageio import save_image
from impasto.presets import preset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--pairs", nargs="+", default=["demo", *PAIRS])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "explain")
    parser.add_argument("--screenshots", type=Path, metavar="DIR", help="screenshots of the demo report's sections")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    stylizer = Stylizer()
    recipe = preset("default").replace(size=args.size, pixels=None)
    print(f"machine: {machine()}\n")
    print("| pair | stylisation s | figures s | reconstructions s | report s | report / stylisation |")
    print("|---|---|---|---|---|---|")
    ratios = []
    for pair in args.pairs:
        if pair == "demo":
            style = args.out / "demo_style.png"
            save_image(paint_style(), style)
            content: Path = demo_content()
        else:
            content, style = shared_pair(*pair.split(":"))
        started = time.perf_counter()
        report = explain(Inputs.of(content, [style]), recipe, stylizer=stylizer, cache=None)
        total = time.perf_counter() - started
        name = pair.replace(":", "_")
        (args.out / f"{name}.html").write_text(report.to_html())
        report.save_figures(args.out / name)
        t = report.timings
        ratio = total / t["stylisation"]
        ratios.append(ratio)
        print(f"| {pair} | {t['stylisation']:.0f} | {t['figures']:.0f} | {t['reconstructions']:.0f} | {total:.0f} "
              f"| {ratio:.2f} |", flush=True)  # fmt: skip
    print(f"\nmedian report / stylisation: {statistics.median(ratios):.2f}, worst {max(ratios):.2f}")
    if args.screenshots and "demo" in args.pairs:
        screenshots(args.out / "demo.html", args.screenshots)


def screenshots(report: Path, folder: Path, sections: tuple[str, ...] = ("network", "style", "layers")) -> None:
    """JPEG screenshots of some sections of a report, as Debian's chromium shows them."""
    import shutil

    from PIL import Image
    from playwright.sync_api import sync_playwright

    folder.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(report.as_uri())
        for key in sections:
            png = folder / f"explain_{key}.png"
            page.locator(f"#{key}").screenshot(path=str(png))
            with Image.open(png) as im:
                im.convert("RGB").save(png.with_suffix(".jpg"), quality=82)
            png.unlink()
        browser.close()


if __name__ == "__main__":
    main()
