"""How much memory a run needs, estimated before anything large is allocated.

The estimate adds, at the final scale: the activations autograd keeps for the backward
pass (every ReLU and pooling output, and pooling's int64 indices), room for the
backward's own buffers, both copies of the network's weights, the optimiser's state
(L-BFGS keeps 2 x history vectors the size of the image) and the process itself.
The constants were fitted to peak RSS measured on a CPU (see README, Performance).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from impasto.encoder import Encoder

#: Python, torch and the inputs, before the run (measured: about 0.45 GB RSS).
BASELINE_BYTES = 500 * 2**20
#: Backward buffers relative to the saved activations (fitted).
BACKWARD_FACTOR = 1.6
LBFGS_HISTORY = 30


def activation_elements_per_pixel(encoder: Encoder) -> tuple[float, float]:
    """Saved ``(values, pooling indices)`` per input pixel, for a forward with grad."""
    values = indices = 0.0
    area = 1.0
    channels = 3
    for name in encoder.names:
        if name.startswith("conv"):
            channels = encoder.convs[name].out_channels
        elif name.startswith("relu"):
            values += channels / area
        else:  # pooling: its output is saved by the next conv, its indices by itself
            area *= 4
            values += channels / area
            indices += channels / area
    return values, indices


def estimate_bytes(encoder: Encoder, size: tuple[int, int], low_precision: bool, optimizer: str) -> int:
    """Peak bytes of a run whose final scale is ``size = (h, w)``."""
    pixels = size[0] * size[1]
    values, indices = activation_elements_per_pixel(encoder)
    element = 2 if low_precision else 4
    activations = pixels * (values * element + indices * 8)
    weights = sum(p.numel() for p in encoder.parameters()) * (4 + (2 if low_precision else 0))
    state = pixels * 3 * 4 * (2 * LBFGS_HISTORY + 4 if optimizer == "lbfgs" else 6)
    return int(BASELINE_BYTES + activations * (1 + BACKWARD_FACTOR) + weights + state)


def available_bytes(device: torch.device) -> int | None:
    """Memory free for this run on ``device``; None where it cannot be told."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type == "cpu":
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 + _own_rss()
        except OSError:
            return None
    return None


def _own_rss() -> int:
    """Resident bytes of this process (already counted in BASELINE_BYTES)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


def gigabytes(count: int) -> str:
    return f"{count / 2**30:.1f} GB"
