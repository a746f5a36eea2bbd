"""Neural neighbours: each position's feature pulled toward its nearest feature of the
painting, as Li & Wand's CNNMRF (2016) and Kolkin et al.'s NNST (2022) match features to
features instead of statistics to statistics.

Features are compared by centred cosine similarity: both the picture's and the painting's
features less the painting's mean feature, then normalised, so a match is a direction in
feature space (which marks, not how strong). The painting's features are sampled to a
bounded count (:func:`sample_positions`), and the matches are found in blocks of
positions (:func:`nearest`) so that no step holds a full positions-by-samples matrix.
Shapes: features ``(1, C, H, W)``, samples ``(M, C)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from impasto.numerics import ordered_sum
from impasto.objective.histogram import channel_values

#: Painting features kept per layer (a 512 px painting has 24,576 positions at relu3_1).
SAMPLES = 2048
#: Entries of one block of the similarity matrix (positions x samples): 16 MiB in float32.
BLOCK_ENTRIES = 1 << 22
#: The seed of the positions sampled (the same painting gives the same samples).
SEED = 20220401


def sample_positions(count: int, total: int, device: torch.device | str = "cpu") -> Tensor:
    """Indices of ``min(count, total)`` of ``total`` positions: a fixed pseudo-random
    choice in a fixed pseudo-random order (the same for the same ``total``), so that any
    prefix of them is a sample of the whole map too."""
    generator = torch.Generator().manual_seed(SEED)
    return torch.randperm(total, generator=generator)[:count].to(device)


def positions_of(features: Tensor) -> Tensor:
    """``(1, C, H, W)`` features as ``(H·W, C)`` rows (:func:`channel_values`) in at least
    float32."""
    return channel_values(features).to(torch.promote_types(features.dtype, torch.float32))


def painting_samples(features: Tensor, count: int = SAMPLES, under: Tensor | None = None) -> Tensor:
    """A painting's features at :func:`sample_positions` of its map, ``(M, C)`` float32;
    with ``under`` ``(1, 1, H, W)``, of the positions where it is above 0 only."""
    rows = positions_of(features)
    if under is not None and bool((under > 0).any()):
        rows = rows[under.reshape(-1) > 0]
    return rows[sample_positions(count, rows.shape[0], rows.device)].clone()


def directions(rows: Tensor, centre: Tensor) -> Tensor:
    """Rows less ``centre`` ``(C,)``, scaled to unit length (a zero row stays zero)."""
    return F.normalize(rows - centre, dim=1, eps=1e-12)


def sample_directions(samples: Tensor) -> tuple[Tensor, Tensor]:
    """The painting's samples ``(M, C)`` as :func:`neighbour_sum` compares them: their
    :func:`directions` about their mean, and that mean ``(C,)``."""
    centre = samples.mean(dim=0)
    return directions(samples, centre), centre


def nearest(queries: Tensor, keys: Tensor, block_entries: int = BLOCK_ENTRIES) -> Tensor:
    """For each row of ``queries`` ``(N, C)``, the index of the row of ``keys`` ``(M, C)``
    with the largest inner product (ties: the first), computed ``block_entries // M`` rows
    at a time: ``(N,)`` int64."""
    rows = max(1, block_entries // max(1, keys.shape[0]))
    found = [(queries[start : start + rows] @ keys.T).argmax(dim=1) for start in range(0, queries.shape[0], rows)]
    return torch.cat(found) if found else queries.new_zeros(0, dtype=torch.long)


def neighbour_sum(features: Tensor, keys: Tensor, centre: Tensor, weights: Tensor | None = None) -> Tensor:
    """``Σ_p m_p (1 - cos(f_p - μ, s_{n(p)} - μ))`` over the positions of ``features``,
    ``s_{n(p)}`` the sample nearest to ``f_p`` in centred cosine, ``μ = centre``, ``keys``
    the samples' directions (:func:`sample_directions`); ``m`` the positions' ``weights``
    ``(H·W,)`` (None = 1). The matches are held constant, so the gradient pulls each
    feature's direction toward its match's. A 0-d float32 tensor."""
    rows = directions(positions_of(features), centre)
    with torch.no_grad():
        match = nearest(rows, keys)
    distance = 1 - (rows * keys[match]).sum(dim=1)
    if weights is not None:
        distance = distance * weights
    return ordered_sum(distance)
