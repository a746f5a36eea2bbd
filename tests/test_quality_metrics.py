"""The quality report's figures (benchmarks/quality.py) are measurements: check them."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from quality import sliced_wasserstein


def test_sliced_wasserstein_zero_for_the_same_distribution_in_any_order():
    a = torch.randn(1, 8, 10, 12)
    shuffled = a.flatten(2)[..., torch.randperm(120)].reshape(a.shape)
    assert sliced_wasserstein(a, shuffled) == pytest.approx(0.0, abs=1e-9)


def test_sliced_wasserstein_of_a_shift_and_different_sizes():
    a = torch.randn(1, 4, 30, 30)
    # Shifting every channel by 1 moves each projection by the direction's sum of components.
    shifted = sliced_wasserstein(a, a + 1.0)
    assert 0.5 < shifted < 2.0
    assert sliced_wasserstein(a, torch.randn(1, 4, 20, 25)) < 0.3 < sliced_wasserstein(a, 3 * torch.randn(1, 4, 20, 25))
