"""How the command line's OpenMP threads wait for work, chosen before torch loads OpenMP
(which reads its settings once, when it loads).

A thread of torch's team that finds no work either spins for a while or sleeps at once.
Sleeping at once (``OMP_WAIT_POLICY=PASSIVE``) costs a wake-up at every parallel region:
a million context switches in a 256 px picture, which then took 1.35-1.5x as long as with
a brief spin, alone on two cores (``benchmarks/load.py``). Spinning long (GNU OpenMP's own
default, about 3 ms) takes a core from another busy process, and a run beside one took 5x
its time alone. So: a brief spin (``GOMP_SPINCOUNT``, about 0.1 ms) when the machine is
idle as the run starts, and sleeping at once when other work already keeps at least half
a core busy, or where the load cannot be read. A user's own ``OMP_WAIT_POLICY`` or
``GOMP_SPINCOUNT`` wins.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, MutableMapping
from pathlib import Path

#: Busy cores (other processes') from which the threads sleep at once.
BUSY_CORES = 0.5
#: GNU OpenMP's spins before a waiting thread sleeps (it counts about 100,000 a millisecond).
BRIEF_SPIN = 10_000
#: Seconds over which the machine's load is read.
SAMPLE_SECONDS = 0.1

_SETTINGS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def cpu_times(path: Path = Path("/proc/stat")) -> tuple[int, int, int] | None:
    """The machine's CPU time so far as ``(idle, total, cores)`` (Linux's clock ticks: idle
    and I/O wait count as idle), or None where it cannot be read."""
    try:
        lines = path.read_text().splitlines()
        fields = [int(v) for v in lines[0].split()[1:]]
    except (OSError, IndexError, ValueError):
        return None
    cores = sum(1 for line in lines if line.startswith("cpu") and line[3:4].isdigit())
    if len(fields) < 4 or cores == 0:
        return None
    # user nice system idle iowait irq softirq steal (guest time is already in user)
    return fields[3] + (fields[4] if len(fields) > 4 else 0), sum(fields[:8]), cores


def busy_cores(
    read: Callable[[], tuple[int, int, int] | None] = cpu_times, seconds: float = SAMPLE_SECONDS
) -> float | None:
    """How many cores other work kept busy over the next ``seconds`` (this process sleeps
    meanwhile), or None where the load cannot be read."""
    first = read()
    time.sleep(seconds)
    second = read()
    if first is None or second is None or second[1] <= first[1]:
        return None
    idle, total = second[0] - first[0], second[1] - first[1]
    return (1 - idle / total) * second[2]


def choose_waits(environ: MutableMapping[str, str], busy: Callable[[], float | None] = busy_cores) -> None:
    """Set how OpenMP's threads wait in ``environ``, unless it says so already."""
    if any(name in environ for name in _SETTINGS):
        return
    cores = busy()
    if cores is None or cores >= BUSY_CORES:
        environ["OMP_WAIT_POLICY"] = "PASSIVE"
    else:
        environ["GOMP_SPINCOUNT"] = str(BRIEF_SPIN)


def before_torch() -> None:
    """:func:`choose_waits` for this process, when torch (and so OpenMP) is not loaded yet."""
    if "torch" not in sys.modules:
        choose_waits(os.environ)
