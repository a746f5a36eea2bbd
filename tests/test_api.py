"""The public API: what ``impasto`` exports, and the 0.1 calls that still work."""

import pytest
import torch

import impasto


def test_all_lists_the_public_names():
    expected = {
        "PRESETS", "ConfigError", "ImageError", "ImpastoError", "Inputs", "Interrupted", "Previews", "Progress",
        "Runtime", "StyleConfig", "Stylizer", "WeightsError", "__version__", "load_image", "save_image", "stylize",
    }  # fmt: skip
    assert set(impasto.__all__) == expected
    for name in impasto.__all__:
        assert getattr(impasto, name) is not None


def test_the_readme_example_of_0_1(tmp_path, vgg19):
    config = impasto.PRESETS["default"].replace(size=32, content_weight=2.0, start_size=None, steps=2)
    seen = []
    image = impasto.stylize(torch.rand(1, 3, 24, 32), [torch.rand(1, 3, 40, 40)], config,
                            on_progress=lambda p: seen.append((p.step, p.loss, p.terms)), encoder=vgg19)  # fmt: skip
    assert image.shape == (1, 3, 24, 32) and len(seen) == 3
    assert impasto.save_image(image, tmp_path / "out.png").is_file()


@pytest.mark.parametrize("field", ["device", "precision", "weights", "masks", "style_masks"])
def test_fields_that_left_the_recipe_say_where_they_went(field):
    with pytest.raises(impasto.ConfigError, match=r"not part of the recipe since impasto 0.2"):
        impasto.PRESETS["default"].replace(**{field: "x"})


def test_every_public_name_has_a_home():
    from impasto import _HOMES

    assert set(_HOMES) | {"__version__"} == set(impasto.__all__)


def test_importing_the_command_line_loads_no_torch():
    import subprocess
    import sys

    code = "import sys, impasto.cli; print(sorted(m for m in ('torch', 'PIL', 'numpy') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
