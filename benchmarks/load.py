"""A run beside a busy machine: how much slower is a tiny run when another process keeps
both cores busy, than alone? With a fair share of two cores it should take about twice
its time; the aim is at most 2.5x. Runs the command line (which sets OMP_WAIT_POLICY to
PASSIVE unless the environment says otherwise) alone and beside a process spinning on
every core, each setting in turn, ``--repeats`` times, and prints the medians.

    python benchmarks/load.py --repeats 3
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
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="impasto-load-"))
    style = folder / "style.png"
    paint_style(256).save(style)
    command = [sys.executable, "-m", "impasto", "stylize", str(demo_content()), str(style), "-o",
               str(folder / "out.png"), "--size", str(args.size), "--steps", str(args.steps),
               "--scales", "1", "-q"]  # fmt: skip
    cores = os.cpu_count() or 1
    print(f"machine: {machine()}\n")
    print("| OMP_WAIT_POLICY | alone s (median) | beside a busy process s | ratio |")
    print("|---|---|---|---|")
    for policy in ("PASSIVE", "ACTIVE"):
        env = {**os.environ, "OMP_WAIT_POLICY": policy}
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
        print(f"| {policy} | {a:.1f} | {b:.1f} | {b / a:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
