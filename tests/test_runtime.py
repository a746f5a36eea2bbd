import sys
from pathlib import Path

import pytest
import torch

from impasto import numerics
from impasto.engine.memory import activation_elements_per_pixel, available_bytes, estimate_bytes


def test_activation_count_of_vgg19_to_relu5_1(vgg19):
    values, indices = activation_elements_per_pixel(vgg19)
    # ReLU outputs: 2x64 + 2x128/4 + 4x256/16 + 4x512/64 + 512/256; pooling outputs 64/4 + 128/16 + 256/64 + 512/256
    assert values == 128 + 64 + 64 + 32 + 2 + (16 + 8 + 4 + 2)
    assert indices == 16 + 8 + 4 + 2


def test_estimate_grows_with_size_and_shrinks_with_lower_precision(vgg19):
    small = estimate_bytes(vgg19, (256, 256), False, "lbfgs")
    large = estimate_bytes(vgg19, (1024, 1024), False, "lbfgs")
    assert large > 10 * (small - estimate_bytes(vgg19, (1, 1), False, "lbfgs"))
    assert estimate_bytes(vgg19, (1024, 1024), True, "lbfgs") < large
    assert estimate_bytes(vgg19, (1024, 1024), False, "adam") < large


def test_available_memory_on_this_machine():
    free = available_bytes(torch.device("cpu"))
    if sys.platform.startswith("linux"):  # /proc/meminfo is there: the figure must be read
        lines = Path("/proc/meminfo").read_text().splitlines()
        meminfo = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in lines}
        assert free is not None and meminfo["MemAvailable"] <= free <= meminfo["MemTotal"]
    else:
        assert free is None or free > 100 * 2**20


def test_available_memory_elsewhere_is_unknown():
    assert available_bytes(torch.device("meta")) is None


_FAULTS = """
import resource, sys, torch
from impasto import numerics

def faults(mib):
    # Page faults of a tensor made after two like it were freed: the fewest of five tries
    # (the machine's own page activity only adds faults).
    size = mib * 2**20 // 4
    counts = []
    for _ in range(5):
        for _ in range(2):
            torch.ones(size).sum()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        torch.ones(size).sum()
        counts.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return min(counts)

with numerics.kept_allocations():
    with numerics.kept_allocations():
        nested = faults(16)
    within = faults(16)
print(nested, within, faults(16))
"""


@pytest.mark.skipif(numerics._glibc() is None, reason="the allocator's settings are glibc's")
def test_kept_allocations_serve_a_freed_tensors_pages_again_and_end_with_glibcs_defaults():
    # Within, a freed 16 MiB tensor's pages (4,096) serve the next one, nested too (another
    # thread's run); after, glibc maps such a tensor afresh (its default threshold, 128 KiB)
    # and unmaps it when freed, so the next one faults its pages in again. In a process of
    # its own: a run still going in another test's thread would keep the setting.
    import subprocess

    done = subprocess.run([sys.executable, "-c", _FAULTS], capture_output=True, text=True, check=True)
    nested, within, after = map(int, done.stdout.split())
    assert nested < 1000 and within < 1000
    assert after > 3000


def test_same_bits_is_on_in_batches_and_off_for_one_picture_unless_asked():
    from impasto.runtime import Runtime

    assert Runtime().same_bits is None and Runtime().for_batch().same_bits is True
    assert Runtime(same_bits=False).for_batch().same_bits is False  # asked off: a batch keeps it off
    assert Runtime(same_bits=True).for_batch().same_bits is True
