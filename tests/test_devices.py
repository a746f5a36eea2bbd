"""The same code on a GPU: run where CUDA or MPS is present, skipped elsewhere."""

import math

import pytest
import torch

from impasto.config import StyleConfig
from impasto.engine import resolve_device, stylize
from impasto.errors import ConfigError


def _accelerator() -> str | None:
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return None


needs_gpu = pytest.mark.skipif(_accelerator() is None, reason="no CUDA or MPS device")


def test_auto_device_without_gpu_is_cpu():
    expected = _accelerator() or "cpu"
    assert resolve_device("auto").type == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present")
def test_asking_for_missing_cuda_is_a_config_error():
    with pytest.raises(ConfigError, match="device"):
        resolve_device("cuda")


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_gpu_precisions_stay_finite(vgg19, precision):
    events = []
    config = StyleConfig(size=128, steps=8, content_weight=0.05, device=_accelerator(), precision=precision)
    stylize(torch.rand(1, 3, 96, 128), torch.rand(1, 3, 80, 80), config, on_progress=events.append, encoder=vgg19)
    assert all(math.isfinite(e.loss) for e in events) and events[-1].loss < events[0].loss


@pytest.mark.gpu
@needs_gpu
def test_gpu_features_match_cpu(vgg19):
    image = torch.rand(1, 3, 64, 64)
    cpu = vgg19(image)
    device = _accelerator()
    gpu = vgg19.to(device)(image.to(device))
    vgg19.to("cpu")
    for name in cpu:
        # TF32 convolutions on CUDA: compare with a relative tolerance.
        assert torch.allclose(gpu[name].cpu(), cpu[name], rtol=2e-2, atol=2e-2 * cpu[name].abs().max().item())


@pytest.mark.gpu
@needs_gpu
def test_gpu_stylize_lowers_the_loss_and_returns_a_cpu_image(vgg19):
    events = []
    config = StyleConfig(size=96, steps=10, content_weight=0.05, device=_accelerator())
    content = torch.rand(1, 3, 72, 96)
    style = torch.rand(1, 3, 80, 80) ** 2
    out = stylize(content, style, config, on_progress=events.append, encoder=vgg19)
    assert out.device.type == "cpu" and out.shape == (1, 3, 72, 96)
    assert next(vgg19.parameters()).device.type == "cpu"  # the caller's encoder is not moved
    assert events[-1].loss < events[0].loss
