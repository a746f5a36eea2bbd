"""Signals at random moments of a run's start: N runs of ``impasto stylize`` (a long run on a
tiny drawn pair), each sent SIGINT, SIGTERM or SIGHUP at a moment drawn uniformly from
[0, --until] seconds after the process starts. A try passes when the process exits with
128 + the signal's number and writes at most one line to stderr, no traceback.

Prints the failures (moment, signal, exit status, stderr) and the count; the reliability rules ask for
0 failures in 200 tries from 0 to 3 s. (Within the interpreter's own first milliseconds,
before any impasto code runs, Python's default action applies: such tries are counted
apart, as "before impasto".)

    python benchmarks/signals.py --tries 200 --until 3
"""

from __future__ import annotations

import argparse
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image


def default_signals() -> None:
    """In the child: the signals' default dispositions, whatever this script inherited (run
    under ``nohup`` SIGHUP is ignored, in a shell's background job SIGINT is; impasto keeps
    a signal ignored that it was started ignoring, as it should)."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tries", type=int, default=200)
    parser.add_argument("--until", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    failures, early = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        Image.new("RGB", (40, 30), (200, 120, 40)).save(folder / "photo.png")
        Image.effect_noise((48, 48), 60).convert("RGB").save(folder / "painting.png")
        for k in range(args.tries):
            out = folder / f"out{k}.png"
            command = [sys.executable, "-m", "impasto", "stylize", str(folder / "photo.png"),
                       str(folder / "painting.png"), "-o", str(out), "--preset", "gatys", "--size", "32",
                       "--scales", "1", "--steps", "5000"]  # fmt: skip
            moment, signum = rng.uniform(0, args.until), rng.choice(signals)
            process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_signals
            )
            time.sleep(moment)
            process.send_signal(signum)
            _, err = process.communicate(timeout=120)
            if process.returncode == -signum:
                early += 1  # killed by the default action: before impasto's handlers existed
                continue
            if process.returncode != 128 + signum or "Traceback" in err or err.strip().count("\n") > 0:
                failures.append((round(moment, 3), signal.Signals(signum).name, process.returncode, err.strip()))
    for failure in failures:
        print(failure)
    print(f"{args.tries} tries, 0 to {args.until} s: {len(failures)} failures, {early} before impasto's handlers")


if __name__ == "__main__":
    main()
