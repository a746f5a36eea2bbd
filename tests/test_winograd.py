"""Winograd F(4x4, 3x3) convolutions: the same outputs and input gradients as the direct
convolution within float32 rounding, on every size (whole blocks or not), and the same
bytes on any thread count."""

import pytest
import torch
import torch.nn.functional as F

from impasto.model.winograd import WinogradConv
from impasto.runtime import step_network


def _direct_and_winograd(channels, outputs, size, batch=1, seed=0):
    torch.manual_seed(seed)
    conv = torch.nn.Conv2d(channels, outputs, 3, padding=1).requires_grad_(False)
    x = torch.randn(batch, channels, *size).contiguous(memory_format=torch.channels_last)
    grad = torch.randn(batch, outputs, *size)
    results = []
    for module in (conv, WinogradConv(conv)):
        pixels = x.clone().requires_grad_(True)
        out = module(pixels)
        out.backward(grad)
        results.append((out, pixels.grad))
    return results


def _relative(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.mark.parametrize(
    ("channels", "outputs", "size", "batch"),
    [(8, 16, (4, 4), 1), (16, 8, (17, 13), 2), (24, 24, (5, 21), 1), (32, 16, (1, 1), 1), (8, 8, (2, 9), 3)],
)
def test_outputs_and_input_gradients_are_the_direct_convolutions(channels, outputs, size, batch):
    (out, grad), (w_out, w_grad) = _direct_and_winograd(channels, outputs, size, batch)
    assert w_out.shape == out.shape and w_grad.shape == grad.shape
    assert w_out.is_contiguous(memory_format=torch.channels_last)
    assert _relative(w_out, out) < 3e-5
    assert _relative(w_grad, grad) < 3e-5


def test_the_border_is_zero_padded_like_the_direct_convolution():
    # A single lit pixel in each corner: the output is the kernel (turned) around it, cut at the border.
    conv = torch.nn.Conv2d(1, 1, 3, padding=1, bias=False).requires_grad_(False)
    with torch.no_grad():
        conv.weight.copy_(torch.arange(1.0, 10.0).view(1, 1, 3, 3))
    x = torch.zeros(1, 1, 6, 7)
    x[0, 0, 0, 0] = x[0, 0, 5, 6] = 1.0
    out = WinogradConv(conv)(x.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(out, F.conv2d(x, conv.weight, padding=1), atol=1e-5)
    assert out[0, 0, 0, 0] == pytest.approx(5.0) and out[0, 0, 1, 1] == pytest.approx(1.0)
    assert out[0, 0, 5, 6] == pytest.approx(5.0) and out[0, 0, 4, 5] == pytest.approx(9.0)


def test_only_stride_one_padding_one_3x3_convolutions_are_taken():
    with pytest.raises(ValueError, match="3x3"):
        WinogradConv(torch.nn.Conv2d(4, 4, 5, padding=2))
    with pytest.raises(ValueError, match="3x3"):
        WinogradConv(torch.nn.Conv2d(4, 4, 3, padding=1, stride=2))


def test_the_same_bytes_on_one_and_two_threads():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = _direct_and_winograd(64, 64, (23, 31), seed=3)[1]
        torch.set_num_threads(2)
        two = _direct_and_winograd(64, 64, (23, 31), seed=3)[1]
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one[0], two[0]) and torch.equal(one[1], two[1])


def test_the_float32_cpu_step_network_takes_it_for_wide_layers_and_gives_the_same_gradient(vgg19):
    network = step_network(vgg19, None)
    assert set(network.winograd) == {n for n in vgg19.convs if vgg19.conv(n).out_channels >= 256}
    assert "conv3_1" in network.winograd and "conv2_2" not in network.winograd
    assert not step_network(vgg19, torch.bfloat16).winograd  # the bfloat16 network keeps oneDNN's
    image = torch.rand(1, 3, 37, 45)
    grads = []
    for encoder in (vgg19, network):
        pixels = image.clone().requires_grad_(True)
        features = encoder(pixels, ["relu3_1", "relu4_2"])
        assert features["relu4_2"].shape == (1, 512, 4, 5)
        (features["relu3_1"].square().mean() + features["relu4_2"].square().mean()).backward()
        grads.append(pixels.grad)
    assert ((grads[1] - grads[0]).norm() / grads[0].norm()).item() < 2e-3
