"""The studio's numbers, measured as a person uses it: ``impasto serve`` in one process,
Debian's chromium (headless, Playwright) on its page, the demo pair painted.

- time from pressing Paint to the first preview on the page, and the interval between
  previews (from the page: when each new picture was shown);
- the overhead of serving a run against the CLI on the same job: the engine's own time of
  the run (its last progress event's ``elapsed``; the CLI's from ``stylize --record``),
  runs alternated CLI, studio, CLI, studio… with the page open and fetching previews;
- the server's memory (resident set) with 10 results in the gallery;
- a screenshot of the page mid-run (``--screenshot docs/studio.jpg``).

Run it alone: another busy process on these cores changes every figure.

    python benchmarks/studio.py --size 192 --repeats 2 --screenshot docs/studio.jpg
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, machine

IMPASTO = [sys.executable, "-m", "impasto"]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        sys.exit("studio benchmark: no Chromium (apt-get install -y chromium)")
    return path


class Server:
    def __init__(self, data: Path) -> None:
        self.proc = subprocess.Popen(
            [*IMPASTO, "serve", "--port", "0", "--no-browser", "--data-dir", str(data)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        line = self.proc.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+)/\?token=(\S+)", line)
        if not match:
            sys.exit(f"studio benchmark: serve printed {line!r}: {self.proc.stderr.read()}")
        self.origin, self.token = match.groups()
        self.url = f"{self.origin}/?token={self.token}"

    def get(self, path: str) -> bytes:
        request = urllib.request.Request(self.origin + path, headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(request) as response:
            return response.read()

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def browser_cpu() -> float:
    """CPU seconds used so far by every chromium process (Linux: /proc)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if b"chromium" not in (entry / "cmdline").read_bytes():
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def wait(page, script: str, timeout: float = 900) -> None:
    """Poll the page every half second: each poll is work for the browser, on the cores
    the run uses (at 20 ms they took 16 s of CPU in a 150 s run). The times measured come
    from the page's own clock, not from here."""
    end = time.monotonic() + timeout
    while not page.evaluate(script):
        if time.monotonic() > end:
            raise TimeoutError(script)
        time.sleep(0.5)


WATCH = """() => {
  window.__shown = [];
  const img = document.getElementById('preview');
  new MutationObserver(() => window.__shown.push(performance.now()))
    .observe(img, {attributes: true, attributeFilter: ['data-count']});
}"""


def studio_run(page, server: Server, size: int, screenshot: Path | None) -> dict:
    """Paint the demo pair from the page; what the page saw and the run's own time."""
    page.goto(server.url)
    page.click("#demo")
    wait(page, "document.querySelectorAll('#styles li').length === 1")
    page.fill("#size", str(size))
    page.evaluate(WATCH)
    pressed = page.evaluate("performance.now()")
    cpu = browser_cpu()
    page.click("#paint")
    wait(page, "window.__shown.length >= 1")
    if screenshot is not None:
        wait(page, "document.getElementById('bar').value > 0.6")
        raw = screenshot.with_suffix(".png")
        page.screenshot(path=str(raw))
        Image.open(raw).convert("RGB").save(screenshot, quality=85)
        raw.unlink()
    wait(page, "!document.getElementById('download-png').hidden")
    cpu = browser_cpu() - cpu
    shown = page.evaluate("window.__shown")
    job = json.loads(server.get("/api/jobs"))["jobs"][-1]
    previews = shown[:-1]  # the last picture shown is the result, not a preview
    gaps = [b - a for a, b in itertools.pairwise(previews)]
    return {
        "first_preview": (shown[0] - pressed) / 1000,
        "gaps": [g / 1000 for g in gaps],
        "seconds": job["seconds"],
        "steps": job["figures"]["steps"],
        "browser_cpu": cpu,
    }


def cli_run(content: Path, style: Path, size: int, folder: Path) -> float:
    record = folder / "cli.json"
    subprocess.run(
        [*IMPASTO, "stylize", str(content), str(style), "-o", str(folder / "cli.png"), "--size", str(size),
         "--record", str(record), "-q"],
        check=True,
    )  # fmt: skip
    return json.loads(record.read_text())["final"]["elapsed"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--repeats", type=int, default=2, help="runs of each, alternated")
    parser.add_argument("--gallery-size", type=int, default=128, help="size of the 10 gallery results")
    parser.add_argument("--screenshot", type=Path, help="save a JPEG of the page mid-run here")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "studio.md")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    folder = Path(tempfile.mkdtemp(prefix="impasto-studio-"))
    server = Server(folder / "data")
    content, style = folder / "demo_content.jpg", folder / "demo_style.png"
    content.write_bytes(server.get("/api/demo/content"))
    style.write_bytes(server.get("/api/demo/style"))
    rows: list[dict] = []
    cli: list[float] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 1180})
            for k in range(args.repeats):
                cli.append(cli_run(content, style, args.size, folder))
                print(f"cli {k + 1}: {cli[-1]:.1f} s", flush=True)
                rows.append(studio_run(page, server, args.size, args.screenshot if k == 0 else None))
                print(f"studio {k + 1}: {rows[-1]['seconds']:.1f} s, first preview {rows[-1]['first_preview']:.2f} s",
                      flush=True)  # fmt: skip
            base = server.rss_mb()
            for k in range(10 - len(rows)):
                page.fill("#size", str(args.gallery_size))
                page.select_option("#preset", "fast")
                page.click("#paint")
                wait(page, f"document.querySelectorAll('#gallery li').length === {len(rows) + k + 1}")
                wait(page, "!document.getElementById('download-png').hidden")
            wait(
                page,
                "[...document.querySelectorAll('#gallery li .state')].every(s => s.textContent.startsWith('done'))",
            )
            page.reload()
            wait(page, "document.querySelectorAll('#gallery li img').length === 10")
            jobs = json.loads(server.get("/api/jobs"))["jobs"]
            memory = server.rss_mb()
            browser.close()
    finally:
        server.close()
    gaps = [g for r in rows for g in r["gaps"]]
    later = ", ".join(f"{r['first_preview']:.2f}" for r in rows[1:]) or "–"
    studio = [r["seconds"] for r in rows]
    ratio = statistics.median(studio) / statistics.median(cli)
    lines = [
        f"### Studio: demo pair, default preset at {args.size} px ({machine()})",
        "",
        "| figure | value |",
        "|---|---|",
        "| Paint pressed → first preview on the page: the server's first job; later jobs | "
        f"{rows[0]['first_preview']:.2f} s; {later} s |",
        f"| interval between previews on the page: median / 95th percentile / max | {statistics.median(gaps):.2f} / "
        f"{sorted(gaps)[int(0.95 * (len(gaps) - 1))]:.2f} / {max(gaps):.2f} s |",
        f"| the run's own time, CLI (median of {len(cli)}) | {statistics.median(cli):.1f} s "
        f"({', '.join(f'{c:.1f}' for c in cli)}) |",
        f"| the run's own time, studio with the page watching (median of {len(studio)}) | "
        f"{statistics.median(studio):.1f} s "
        f"({', '.join(f'{s:.1f}' for s in studio)}) |",
        f"| studio / CLI: ratio of the medians; each studio run over the CLI run just before it | {ratio:.3f} "
        f"({100 * (ratio - 1):+.1f}%); {', '.join(f'{s / c:.3f}' for s, c in zip(studio, cli, strict=True))} |",
        "| CPU the browser used while a run formed, as a share of the run's time on 2 cores (runs without "
        f"the screenshot) | {statistics.median(r['browser_cpu'] / r['seconds'] / 2 for r in rows[1:] or rows):.1%} |",
        f"| server memory (RSS) after the {len(rows)} runs above | {base:.0f} MB |",
        f"| server memory (RSS) with {len(jobs)} results in the gallery (the rest at {args.gallery_size} px), "
        f"page reloaded | {memory:.0f} MB |",
        "",
        "Made by `python benchmarks/studio.py "
        f"--size {args.size} --repeats {args.repeats} --gallery-size {args.gallery_size}`.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    args.out.write_text(text)
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
