import pytest
import torch

from impasto.model.encoder import Encoder, preprocess
from impasto.model.weights import CAFFE_MEAN_BGR, TORCHVISION_MEAN, TORCHVISION_STD, VGGWeights

from .conftest import tiny_convs


def _uniform_response(weight, bias, value):
    """conv output at an interior pixel of a uniform input whose channels are ``value``."""
    return bias + (weight.sum(dim=(2, 3)) * torch.as_tensor(value)).sum(dim=1)


def test_caffe_preprocessing_is_bgr_0_255_minus_mean(vgg19_weights):
    rgb = (0.2, 0.5, 0.9)
    image = torch.tensor(rgb).view(1, 3, 1, 1).expand(1, 3, 8, 8)
    encoder = Encoder(vgg19_weights, ["conv1_1"])
    out = encoder(image)["conv1_1"][0, :, 4, 4]
    bgr = [rgb[2] * 255 - CAFFE_MEAN_BGR[0], rgb[1] * 255 - CAFFE_MEAN_BGR[1], rgb[0] * 255 - CAFFE_MEAN_BGR[2]]
    weight, bias = vgg19_weights.convs[0]
    assert torch.allclose(out, _uniform_response(weight, bias, bgr), rtol=1e-4, atol=1e-3)


def test_mean_pixel_gives_the_bias(vgg19_weights):
    mean_rgb = torch.tensor(CAFFE_MEAN_BGR[::-1]) / 255
    image = mean_rgb.view(1, 3, 1, 1).expand(1, 3, 8, 8)
    out = Encoder(vgg19_weights, ["relu1_1"])(image)["relu1_1"][0, :, 4, 4]
    assert torch.allclose(out, vgg19_weights.convs[0][1].clamp(min=0), atol=1e-4)


def test_torchvision_preprocessing():
    weights = VGGWeights(tiny_convs(), "torchvision", "tiny")
    rgb = (0.1, 0.6, 0.3)
    image = torch.tensor(rgb).view(1, 3, 1, 1).expand(1, 3, 8, 8)
    out = Encoder(weights, ["conv1_1"])(image)["conv1_1"][0, :, 4, 4]
    normalised = [(v - m) / s for v, m, s in zip(rgb, TORCHVISION_MEAN, TORCHVISION_STD, strict=True)]
    assert torch.allclose(out, _uniform_response(*weights.convs[0], normalised), atol=1e-5)


def test_known_feature_value_of_the_real_network(vgg19):
    # A fixed smooth input; the values were recorded from this implementation and guard
    # against changes in preprocessing, layer order or dequantisation.
    ys, xs = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
    image = torch.stack([xs, ys, (xs + ys) / 2]).unsqueeze(0)
    features = vgg19(image)
    assert features["relu1_1"].mean().item() == pytest.approx(RECORDED["relu1_1"], rel=1e-3)
    assert features["relu5_1"].mean().item() == pytest.approx(RECORDED["relu5_1"], rel=1e-3)
    assert features["relu5_1"].shape == (1, 512, 4, 4)


RECORDED = {"relu1_1": 26.4594, "relu5_1": 60.3925}


def test_encoder_is_frozen_and_truncated(vgg19):
    assert all(not p.requires_grad for p in vgg19.parameters())
    assert vgg19.names[-1] == "relu5_1"
    assert "conv5_2" not in vgg19.convs
    image = torch.rand(1, 3, 32, 32, requires_grad=True)
    vgg19(image)["relu5_1"].sum().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0
    assert all(p.grad is None for p in vgg19.parameters())


def test_pooling_choice(tiny_weights):
    image = torch.rand(1, 3, 16, 16)
    maxed = Encoder(tiny_weights, ["pool1"], "max")(image)["pool1"]
    averaged = Encoder(tiny_weights, ["pool1"], "avg")(image)["pool1"]
    assert maxed.shape == averaged.shape == (1, 4, 8, 8)
    assert (maxed >= averaged - 1e-6).all() and not torch.allclose(maxed, averaged)


def test_channels_and_downsampling(vgg19):
    assert vgg19.channels("relu3_1") == 256
    assert vgg19.channels("relu5_1") == 512
    assert vgg19.downsampling("relu1_1") == 1
    assert vgg19.downsampling("relu4_2") == 8


def test_preprocess_does_not_modify_its_input():
    image = torch.rand(1, 3, 4, 4)
    copy = image.clone()
    preprocess(image, "caffe")
    assert torch.equal(image, copy)


def test_conv_and_relu_outputs_both_requested(tiny_weights):
    encoder = Encoder(tiny_weights, ["conv1_1", "relu1_1"])
    features = encoder(torch.rand(1, 3, 16, 16))
    assert (features["conv1_1"] < 0).any()  # not overwritten by the ReLU
    assert torch.equal(features["relu1_1"], features["conv1_1"].clamp(min=0))
