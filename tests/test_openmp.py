"""How the command line sets OpenMP's waits from the machine's load, before torch loads."""

import os
import subprocess
import sys

import pytest

from impasto.cli import openmp

STAT = """cpu  {user} 0 {system} {idle} {iowait} 0 0 0 0 0
cpu0 1 0 1 1 0 0 0 0 0 0
cpu1 1 0 1 1 0 0 0 0 0 0
intr 12345
"""


def write_stat(path, user, system, idle, iowait=0):
    path.write_text(STAT.format(user=user, system=system, idle=idle, iowait=iowait))


def test_cpu_times_reads_idle_total_and_cores(tmp_path):
    stat = tmp_path / "stat"
    write_stat(stat, user=100, system=50, idle=800, iowait=50)
    assert openmp.cpu_times(stat) == (850, 1000, 2)


@pytest.mark.parametrize("text", ["", "cpu a b c\n", "cpu 1 2\ncpu0 1 2\n", "cpu 1 2 3 4 5\n"])
def test_cpu_times_none_when_unreadable(tmp_path, text):
    stat = tmp_path / "stat"
    stat.write_text(text)
    assert openmp.cpu_times(stat) is None
    assert openmp.cpu_times(tmp_path / "missing") is None


def test_busy_cores_from_two_readings():
    readings = iter([(100, 200, 2), (150, 300, 2)])  # half of two cores' time idle
    assert openmp.busy_cores(lambda: next(readings), seconds=0) == pytest.approx(1.0)
    readings = iter([(100, 200, 2), (200, 300, 2)])  # all idle
    assert openmp.busy_cores(lambda: next(readings), seconds=0) == 0
    readings = iter([(100, 200, 2), (100, 200, 2)])  # no time passed: cannot tell
    assert openmp.busy_cores(lambda: next(readings), seconds=0) is None
    assert openmp.busy_cores(lambda: None, seconds=0) is None


@pytest.mark.parametrize(
    ("busy", "expected"),
    [
        (0.0, {"GOMP_SPINCOUNT": str(openmp.BRIEF_SPIN)}),
        (0.3, {"GOMP_SPINCOUNT": str(openmp.BRIEF_SPIN)}),
        (0.5, {"OMP_WAIT_POLICY": "PASSIVE"}),
        (1.7, {"OMP_WAIT_POLICY": "PASSIVE"}),
        (None, {"OMP_WAIT_POLICY": "PASSIVE"}),
    ],
)
def test_waits_follow_the_load(busy, expected):
    environ = {"PATH": "/bin"}
    openmp.choose_waits(environ, lambda: busy)
    assert environ == {"PATH": "/bin", **expected}


@pytest.mark.parametrize("own", [{"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "0"}])
def test_a_users_own_setting_wins(own):
    environ = dict(own)

    def never() -> float:
        raise AssertionError("the load is not read when the user chose")

    openmp.choose_waits(environ, never)
    assert environ == own


def test_set_before_torch_loads_in_a_fresh_process():
    """The command line's choice is in the environment before torch is imported (OpenMP
    reads it when it loads), and nothing is changed once torch is there."""
    code = (
        "import os, sys\n"
        "from impasto.cli import openmp\n"
        "assert 'torch' not in sys.modules\n"
        "openmp.before_torch()\n"
        "print(os.environ.get('OMP_WAIT_POLICY'), os.environ.get('GOMP_SPINCOUNT'))\n"
        "import torch\n"
        "os.environ.pop('OMP_WAIT_POLICY', None); os.environ.pop('GOMP_SPINCOUNT', None)\n"
        "openmp.before_torch()\n"
        "print(os.environ.get('OMP_WAIT_POLICY'), os.environ.get('GOMP_SPINCOUNT'))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    first, after_torch = out.stdout.splitlines()
    assert first in ("PASSIVE None", f"None {openmp.BRIEF_SPIN}")
    assert after_torch == "None None"
