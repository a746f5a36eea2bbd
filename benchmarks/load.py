"""A run beside a busy machine: how much slower is a tiny run when another process keeps
both cores busy, than alone? With a fair share of two cores it should take about twice
its time; the aim is at most 2.5x. Runs the command line alone and beside a process
spinning on every core, under each OpenMP setting in turn (``--settings``: environment
assignments, ``-`` for the command line's own), ``--repeats`` times, and prints the medians.

    python benchmarks/load.py --repeats 3
    python benchmarks/load.py --size 128 --steps 30 --settings OMP_WAIT_POLICY=PASSIVE - GOMP_SPINCOUNT=300000
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, run_timed

from impasto.demo import demo_content, paint_style


def _spin(seconds: float) -> None:
    end = time.time() + seconds
    while time.time() < end:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--settings", nargs="+", default=["OMP_WAIT_POLICY=PASSIVE", "-", "OMP_WAIT_POLICY=ACTIVE"])
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="impasto-load-"))
    style = folder / "style.png"
    paint_style(256).save(style)
    command = [sys.executable, "-m", "impasto", "stylize", str(demo_content()), str(style), "-o",
               str(folder / "out.png"), "--size", str(args.size), "--steps", str(args.steps),
               "--scales", "1", "-q"]  # fmt: skip
    cores = os.cpu_count() or 1
    print(f"machine: {machine()}\n")
    print(f"{args.size} px, {args.steps} steps\n")
    print("| OpenMP setting | alone s (median) | beside a busy process s | ratio |")
    print("|---|---|---|---|")
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    for setting in args.settings:
        env = dict(base)
        if setting != "-":
            name, _, value = setting.partition("=")
            env[name] = value
        alone = [run_timed(command, env=env).seconds for _ in range(args.repeats)]
        busy = []
        for _ in range(args.repeats):
            spinners = [multiprocessing.Process(target=_spin, args=(600,)) for _ in range(cores)]
            for spinner in spinners:
                spinner.start()
            time.sleep(0.5)
            try:
                busy.append(run_timed(command, env=env).seconds)
            finally:
                for spinner in spinners:
                    spinner.terminate()
                    spinner.join()
        a, b = statistics.median(alone), statistics.median(busy)
        label = setting if setting != "-" else "the command line's own"
        print(f"| {label} | {a:.1f} | {b:.1f} | {b / a:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
