"""Shared fixtures: a tiny random VGG for fast unit tests, the real VGG19 for the tests
that matter, and the reference images beside the project (tests skip without them)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from impasto.model.encoder import Encoder
from impasto.model.layers import layer_names
from impasto.model.weights import VGGWeights, load_original

SHARED_IMAGES = Path(__file__).resolve().parents[2] / "shared" / "images"


def tiny_convs(blocks=(2, 2, 4, 4, 4), widths=(4, 6, 8, 8, 8), seed=0):
    """Random ``(weight, bias)`` pairs for a VGG with few channels."""
    generator = torch.Generator().manual_seed(seed)
    convs, channels = [], 3
    for count, width in zip(blocks, widths, strict=True):
        for _ in range(count):
            weight = torch.randn(width, channels, 3, 3, generator=generator) * (2.0 / (9 * channels)) ** 0.5
            convs.append((weight, torch.randn(width, generator=generator) * 0.01))
            channels = width
    return tuple(convs)


@pytest.fixture(scope="session")
def tiny_weights() -> VGGWeights:
    return VGGWeights(tiny_convs(), "caffe", "tiny test VGG19")


@pytest.fixture(scope="session")
def tiny_encoder(tiny_weights) -> Encoder:
    return Encoder(tiny_weights, layer_names())


@pytest.fixture(scope="session")
def vgg19_weights() -> VGGWeights:
    return load_original()


@pytest.fixture(scope="session")
def vgg19(vgg19_weights) -> Encoder:
    return Encoder(vgg19_weights, ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1"), "max")


@pytest.fixture
def shared_images() -> Path:
    if not SHARED_IMAGES.is_dir():
        pytest.skip(f"reference images not found at {SHARED_IMAGES}")
    return SHARED_IMAGES


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


#: Files whose tests start processes, browsers or Ray, or paint for many steps: seconds to a
#: minute each. ``make check`` (``-m "not slow"``) leaves them to ``make test``.
SLOW_FILES = {
    "test_workers.py",
    "test_memory_limit.py",
    "test_web_browser.py",
    "test_reliability.py",
    "test_fuzz.py",
    "test_tiles.py",
    "test_regression.py",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in SLOW_FILES:
            item.add_marker(pytest.mark.slow)
