"""Property-based tests (Hypothesis) of what takes input from outside: any JSON as a recipe
(the library and the studio's API) is a recipe or a one-line ConfigError / 400, never
another exception or a 500. Examples are bounded so that the suite stays within minutes."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from impasto.config import StyleConfig
from impasto.errors import ConfigError
from impasto.jobs.base import recipe_from

FIELDS = [f.name for f in dataclasses.fields(StyleConfig)]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["relu1_1", "relu4_2", "conv3_4", "pool2", "lbfgs", "adam", "wasserstein", "max", "content"])
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)
keys = st.sampled_from([*FIELDS, "preset", "device", "masks", "sise", ""]) | st.text(max_size=10)
recipes = st.dictionaries(keys, values, max_size=6)
anything = recipes | values

BOUNDED = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _is_one_line(error: ConfigError) -> None:
    text = str(error)
    assert text and "\n" not in text and "\r" not in text


@BOUNDED
@given(anything)
def test_any_json_is_a_recipe_or_one_config_error(data):
    text = json.dumps(data, allow_nan=True)
    try:
        recipe = StyleConfig.from_json(text)
    except ConfigError as error:
        _is_one_line(error)
        return
    # What was accepted round-trips exactly.
    assert StyleConfig.from_json(recipe.to_json()) == recipe


@BOUNDED
@given(recipes)
def test_any_request_recipe_is_a_recipe_or_one_config_error(data):
    try:
        recipe_from(data)
    except ConfigError as error:
        _is_one_line(error)


@pytest.mark.parametrize(
    "text",
    ['{"seed": ' + "9" * 5000 + "}", "[" * 3000 + "]" * 3000, '{"size": 1e400}', '{"steps": -0.0}', "\ud800"],
    ids=["5000 digits", "3000 deep", "1e400", "negative zero", "lone surrogate"],
)
def test_json_python_cannot_read_as_asked_is_one_config_error(text):
    with pytest.raises(ConfigError) as caught:
        StyleConfig.from_json(text)
    _is_one_line(caught.value)


@pytest.fixture(scope="module")
def studio_client(tmp_path_factory):
    pytest.importorskip("fastapi", reason="pip install 'impasto[web]'")
    from impasto.jobs import FakeRunner
    from impasto.web.studio import Studio
    from tests.test_web import client_for

    studio = Studio(tmp_path_factory.mktemp("studio"), FakeRunner(steps=1))
    yield client_for(studio)
    studio.close()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(recipes, values, st.text(max_size=20)))
def test_any_recipe_sent_to_the_studio_is_a_job_or_a_400_with_one_line(studio_client, data):
    from tests.test_web import png

    text = data if isinstance(data, str) else json.dumps(data, allow_nan=True)
    files = [("content", ("photo.png", png())), ("style", ("painting.png", png((30, 30, 200))))]
    response = studio_client.post("/api/jobs", files=files, data={"recipe": text})
    assert response.status_code in (201, 400), response.text
    if response.status_code == 400:
        message = response.json()["error"]
        assert message and "\n" not in message
