"""Shared fixtures: a tiny random VGG for fast unit tests, the real VGG19 for the tests
that matter, the reference images beside the project (tests skip without them), and the
device and dtype of the loss, optimiser and engine tests that take them:

    pytest --device cuda                  # those tests on the GPU
    pytest --device cuda --dtype float64  # and in float64 where they allow it
"""

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


def pytest_addoption(parser):
    parser.addoption("--device", default="cpu", help="device of the tests that take one: cpu, cuda, cuda:N, mps")
    parser.addoption("--dtype", default="float32", choices=("float32", "float64"), help="their floating dtype")


@pytest.fixture(scope="session")
def device(request) -> torch.device:
    name = request.config.getoption("--device")
    if name.startswith("cuda") and not torch.cuda.is_available():
        pytest.skip(f"--device {name}: this torch sees no CUDA GPU")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        pytest.skip("--device mps: Apple MPS is not available")
    return torch.device(name)


@pytest.fixture(scope="session")
def dtype(request) -> torch.dtype:
    return getattr(torch, request.config.getoption("--dtype"))


def tolerance(dtype: torch.dtype) -> float:
    """Relative tolerance of a comparison of sums in ``dtype``."""
    return 1e-5 if dtype == torch.float32 else 1e-10


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
