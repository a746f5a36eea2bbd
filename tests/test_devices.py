"""The same code on a GPU: run where CUDA or MPS is present, skipped elsewhere."""

import math

import pytest
import torch

from impasto.config import StyleConfig
from impasto.engine import stylize
from impasto.errors import ConfigError
from impasto.runtime import Runtime, resolve_device


def _accelerator() -> str | None:
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return None


needs_gpu = pytest.mark.skipif(_accelerator() is None, reason="no CUDA or MPS device")


@pytest.mark.parametrize(
    ("cuda", "mps", "expected"),
    [(False, False, "cpu"), (True, False, "cuda"), (False, True, "mps"), (True, True, "cuda")],
)
def test_auto_device_prefers_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert resolve_device("auto").type == expected


@pytest.mark.parametrize("name", ["cpu:x", "gpu", "cuda:", "cpu:0"])
def test_unknown_device_names_are_config_errors(name):
    with pytest.raises(ConfigError, match="device"):
        Runtime(device=name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present")
def test_asking_for_missing_cuda_is_a_config_error():
    with pytest.raises(ConfigError, match="device"):
        resolve_device("cuda")


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_gpu_precisions_stay_finite(vgg19, precision):
    events = []
    config = StyleConfig(size=128, steps=8, content_weight=0.05)
    runtime = Runtime(device=_accelerator(), precision=precision)
    content, style = torch.rand(1, 3, 96, 128), torch.rand(1, 3, 80, 80)
    stylize(content, style, config, on_progress=events.append, encoder=vgg19, runtime=runtime)
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
    config = StyleConfig(size=96, steps=10, content_weight=0.05)
    content = torch.rand(1, 3, 72, 96)
    style = torch.rand(1, 3, 80, 80) ** 2
    out = stylize(
        content, style, config, on_progress=events.append, encoder=vgg19, runtime=Runtime(device=_accelerator())
    )
    assert out.device.type == "cpu" and out.shape == (1, 3, 72, 96)
    assert next(vgg19.parameters()).device.type == "cpu"  # the caller's encoder is not moved
    assert events[-1].loss < events[0].loss
