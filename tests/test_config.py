"""The recipe is plain data: hashable, comparable, JSON round trips, errors naming the field."""

import json

import pytest

from impasto.config import StyleConfig, fields_help
from impasto.errors import ConfigError
from impasto.presets import PRESETS


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_round_trip_through_json_exactly(name):
    recipe = PRESETS[name]
    again = StyleConfig.from_json(recipe.to_json())
    assert again == recipe and hash(again) == hash(recipe)
    assert again.style_layer_weights == recipe.style_layer_weights  # floats to the last bit
    assert json.loads(recipe.to_json())["style_layers"] == list(recipe.style_layers)


def test_a_recipe_holds_only_plain_data():
    for value in PRESETS["default"].to_dict().values():
        assert value is None or isinstance(value, bool | int | float | str | list)
    assert len({PRESETS["default"], PRESETS["default"].replace(size=512), PRESETS["fast"]}) == 2


def test_from_dict_applies_overrides_to_a_base():
    recipe = StyleConfig.from_dict({"size": 96, "style_weights": [1, 3], "content_weight": 2}, PRESETS["fast"])
    assert recipe == PRESETS["fast"].replace(size=96, style_weights=(1, 3), content_weight=2.0)
    assert isinstance(recipe.content_weight, float) and recipe.style_weights == (1, 3)


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"sise": 96}, "sise", "did you mean 'size'"),
        ({"device": "cpu"}, "device", "impasto.Runtime(device=...)"),
        ({"masks": ["a.png"]}, "masks", "Inputs"),
        ({"steps": "many"}, "steps", "positive whole number"),
        ({"steps": 2.5}, "steps", "positive whole number"),
        ({"clamp": "yes"}, "clamp", "true or false"),
        ({"style_layers": "relu1_1"}, "style_layers", "must be a list"),
        ({"style_layers": ["relu9_1"]}, "style_layers", "unknown layer"),
        ({"init": "photo.jpg"}, "init", "unknown value"),
        ({"seed": 2**64}, "seed", "2^64"),
    ],
)
def test_bad_recipes_name_the_field(data, field, message):
    with pytest.raises(ConfigError) as raised:
        StyleConfig.from_dict(data)
    assert raised.value.field == field and message in str(raised.value)


def test_bad_json_is_one_config_error():
    with pytest.raises(ConfigError, match=r"recipe.*not valid JSON"):
        StyleConfig.from_json("{size: 3")
    with pytest.raises(ConfigError, match=r"recipe.*object"):
        StyleConfig.from_json("[1, 2]")


def test_every_field_is_described():
    for name, meta in fields_help().items():
        assert meta["help"] and meta["kind"] in ("int", "float", "str", "bool", "floats", "layers"), name
