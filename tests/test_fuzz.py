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


# -- every numeric option of the command line -------------------------------------------------


def _numeric_options(command: str) -> list[str]:
    """The options of ``command`` that take a number, read from the parser itself (so that
    a new option is fuzzed without being listed here)."""
    import argparse

    from impasto.cli import parser

    commands = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(a.option_strings[-1] for a in commands.choices[command]._actions if a.type in (int, float))


NUMBERS = (
    st.integers(min_value=-(2**70), max_value=2**70).map(str)
    | st.floats(allow_nan=True, allow_infinity=True).map(repr)
    | st.sampled_from(["", "1e400", "-1e400", "1e-400", "-0", "0x10", "1_000", " 7", "\u0663", "9" * 400, "-inf"])
)


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    from PIL import Image

    folder = tmp_path_factory.mktemp("fuzz-cli")
    Image.new("RGB", (40, 30), (200, 120, 40)).save(folder / "photo.png")
    Image.effect_noise((48, 48), 60).convert("RGB").save(folder / "painting.png")
    return folder


def _cli(args: list[str]) -> tuple[int, str]:
    import contextlib
    import io

    from impasto import cli

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            code = cli.main(args)
        except SystemExit as exit:  # argparse's own refusals
            code = exit.code
    return code, err.getvalue()


def _blank_run(args: list[str]) -> tuple[int, str]:
    """The command line on ``args`` with the painting replaced by a blank picture of the
    planned size (everything before it runs); exit 0 or 2, never a traceback."""
    from unittest import mock

    import torch

    import impasto.engine.stylizer as stylizer_module

    blank = lambda plan, *_: torch.zeros(1, 3, *plan.schedule.final)  # noqa: E731
    with mock.patch.object(stylizer_module, "paint", blank):
        code, err = _cli(args)
    assert code in (0, 2), (args, code, err)
    assert "Traceback" not in err, err
    return code, err


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_value_of_any_numeric_option_is_a_run_or_one_line(pictures, data):
    """Every numeric option of stylize (and explain's own), any value: exit 0 or
    2 with one line. The painting itself is replaced by a blank picture of the planned size
    (everything before it runs: parsing, the recipe's checks, reading the inputs, the
    schedule and the memory check); tests below run real steps at extreme values."""

    command = data.draw(st.sampled_from(["stylize", "explain"]))
    options = _numeric_options("stylize") if command == "stylize" else ["--reconstruct-size", "--reconstruct-steps"]
    option, value = data.draw(st.sampled_from(options)), data.draw(NUMBERS)
    out = pictures / ("out.png" if command == "stylize" else "report.html")
    args = [command, str(pictures / "photo.png"), str(pictures / "painting.png"), "-o", str(out), "-q",
            "--size", "32", "--steps", "1", f"{option}={value}"]  # fmt: skip
    if command == "explain":
        pytest.importorskip("matplotlib")
        args += ["--reconstruct-size", "0"] if option == "--reconstruct-steps" else ["--reconstruct-steps", "1"]
    code, err = _blank_run(args)
    if code == 2:
        assert err.strip() and err.strip().count("\n") == 0, err


#: The options that reach the steps themselves, at the values that break arithmetic.
IN_THE_STEPS = ["--lr", "--content-weight", "--style-weight", "--tv-weight", "--histogram-weight", "--ema-decay",
                "--target-loss", "--time-limit", "--mask-feather"]  # fmt: skip


@pytest.mark.parametrize("value", ["1e300", "1e-300", "1e38", "0"])
@pytest.mark.parametrize("option", IN_THE_STEPS)
def test_extreme_values_in_real_steps_are_a_run_or_one_line(pictures, option, value):
    """--lr 1e300 was a traceback from inside L-BFGS (float32 overflow)."""
    args = ["stylize", str(pictures / "photo.png"), str(pictures / "painting.png"), "-o", str(pictures / "x.png"),
            "-q", "--size", "32", "--steps", "2", f"{option}={value}"]  # fmt: skip
    if option == "--mask-feather":
        args += ["--mask", str(pictures / "photo.png")]
    code, err = _cli(args)
    assert code in (0, 2) and "Traceback" not in err, (code, err)
    if code == 2:
        assert err.strip().count("\n") == 0, err


# -- batch, video and print options ------------------------------------------------------------

PAPERS = st.text(max_size=12) | st.sampled_from(["A4", "a3", "8x10in", "0x0cm", "1e9x1mm", "9" * 400 + "x1cm", "x"])
NAMES = st.text(max_size=16) | st.sampled_from(["{photo}.png", "{photo}.{ext}", "{n}", "{size}", "{photo", "../x"])


@pytest.fixture(scope="module")
def clip(pictures):
    pytest.importorskip("av", reason="pip install 'impasto[video]'")
    import numpy as np

    from .test_video import write_clip

    path = pictures / "clip.mp4"
    write_clip(path, [np.full((24, 32, 3), 60 * n, np.uint8) for n in range(3)], audio=False)
    return path


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_batch_video_or_print_option_is_a_run_or_one_error_line(pictures, clip, data, tmp_path_factory):
    """Every numeric option of batch and video (not --workers: it starts processes, and
    has its own test), batch's --name and --format, and --print's paper: exit 0 or 2,
    one error line, never a traceback. The painting is a blank picture, as above."""

    out = tmp_path_factory.mktemp("out")
    command = data.draw(st.sampled_from(["batch", "video", "print"]))
    photo, painting = str(pictures / "photo.png"), str(pictures / "painting.png")
    if command == "print":
        paper, dpi = data.draw(PAPERS), data.draw(NUMBERS)
        args = ["stylize", photo, painting, "-o", str(out / "p.png"), "-q", "--steps", "1", f"--print={paper}",
                f"--dpi={dpi}", "--max-memory", "2G"]  # fmt: skip
    else:
        options = [o for o in _numeric_options(command) if o != "--workers"]
        option, value = data.draw(st.sampled_from(options)), data.draw(NUMBERS)
        if command == "batch":
            args = ["batch", photo, "--style", painting, "-o", str(out / "b"), "-q", "--size", "32", "--steps", "1",
                    f"{option}={value}", f"--name={data.draw(NAMES)}",
                    f"--format={data.draw(st.sampled_from(['png', 'jpg', 'webp', 'tiff']))}"]  # fmt: skip
        else:
            args = ["video", str(clip), painting, "-o", str(out / "v.gif"), "-q", "--size", "32", "--steps", "1",
                    "--warm-steps", "1", f"{option}={value}"]  # fmt: skip
    code, err = _blank_run(args)
    if code == 2:
        errors = [line for line in err.strip().splitlines() if "error" in line]
        assert len(errors) == 1 and errors[0] == err.strip().splitlines()[-1], err
