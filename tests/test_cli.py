"""The command line: options reach the config, bad input gives one line and exit 2 with
nothing written, Ctrl-C saves the image so far. The engine is patched out except in
the one end-to-end run."""

import io

import pytest
import torch
from PIL import Image

from impasto import cli
from impasto.cli import options
from impasto.cli import stylize as stylize_command
from impasto.cli.progress import ProgressBar
from impasto.config import fields_help
from impasto.engine import Interrupted, Progress, Stylizer
from impasto.presets import DEFAULT, GATYS
from impasto.runtime import Runtime


@pytest.fixture
def images(tmp_path):
    content = tmp_path / "content.png"
    style = tmp_path / "style.png"
    Image.new("RGB", (40, 30), (200, 120, 40)).save(content)
    Image.new("RGB", (32, 32), (20, 40, 220)).save(style)
    return content, style


@pytest.fixture
def recorded(monkeypatch):
    """Replace the engine run with one that records its arguments and writes a grey image."""
    calls = []

    def fake_run(inputs, recipe, runtime, output, **kwargs):
        calls.append({"inputs": inputs, "config": recipe, "runtime": runtime, "output": output, **kwargs})
        from impasto.imageio import save_image

        save_image(torch.full((1, 3, 8, 8), 0.5), output)
        return 0

    monkeypatch.setattr(stylize_command, "run_stylize", fake_run)
    monkeypatch.setattr("impasto.cli.demo.run_stylize", fake_run)
    return calls


def test_options_reach_the_config(images, tmp_path, recorded):
    content, style = images
    out = tmp_path / "out.png"
    code = cli.main([
        "stylize", str(content), str(style), str(style), "-o", str(out),
        "--size", "320", "--style-scale", "0.5", "--style-weights", "3,1", "--content-weight", "0.2",
        "--style-weight", "5", "--tv-weight", "0.1", "--content-layers", "relu3_2",
        "--style-layers", "relu1_1,relu2_1", "--style-layer-weights", "2,1", "--steps", "7",
        "--first-steps", "9", "--final-steps", "4", "--start-size", "64", "--scales", "2",
        "--optimizer", "adam", "--lr", "0.05",
        "--init", "noise", "--seed", "11", "--device", "cpu", "--pooling", "avg",
        "--resample", "bilinear", "--no-clamp", "--save-every", "3", "-q", "--precision", "float32",
        "--target-loss", "1e4", "--time-limit", "60", "--style-loss", "wasserstein", "--ema-decay", "0.9",
        "--colors", "match", "--upscale-style", "--mask", str(content), str(content), "--style-mask", "-",
        str(style), "--mask-feather", "2",
    ])  # fmt: skip
    assert code == 0
    (call,) = recorded
    assert call["config"] == DEFAULT.replace(
        size=320, style_scale=0.5, style_weights=(3.0, 1.0), content_weight=0.2, style_weight=5.0,
        tv_weight=0.1, content_layers=("relu3_2",), style_layers=("relu1_1", "relu2_1"),
        style_layer_weights=(2.0, 1.0), steps=7, first_steps=9, final_steps=4, start_size=64, scales=2,
        optimizer="adam", lr=0.05,
        init="noise", seed=11, pooling="avg", resample="bilinear", clamp=False,
        target_loss=1e4, time_limit=60.0, style_loss="wasserstein", ema_decay=0.9,
        colors="match", upscale_style=True, mask_feather=2.0,
    )  # fmt: skip
    assert call["runtime"] == Runtime(device="cpu", precision="float32")
    inputs = call["inputs"]
    assert inputs.masks == (str(content), str(content)) and inputs.style_masks == (None, str(style))
    assert call["save_every"] == 3 and call["quiet"] is True
    assert len(inputs.styles) == 2 and inputs.content.shape == (1, 3, 30, 40) and inputs.init is None


def test_init_file_is_an_input_and_runtime_options(images, tmp_path, recorded):
    content, style = images
    out = tmp_path / "out.png"
    args = [
        "stylize",
        str(content),
        str(style),
        "-o",
        str(out),
        "--init",
        str(style),
        "--weights",
        "vgg16",
        "--download",
    ]
    assert cli.main(args) == 0
    (call,) = recorded
    assert call["config"] == DEFAULT.replace(init="image")
    assert call["inputs"].init.shape == (1, 3, 32, 32)
    assert call["runtime"] == Runtime(weights="vgg16", download=True)


def test_preset_and_size_overrides(images, tmp_path, recorded):
    content, style = images
    assert cli.main(["stylize", str(content), str(style), "-o", str(tmp_path / "o.png"), "--preset", "gatys"]) == 0
    assert recorded[-1]["config"] == GATYS
    assert cli.main(["stylize", str(content), str(style), "-o", str(tmp_path / "o.png"), "--preset", "gatys",
                     "--size", "128"]) == 0  # fmt: skip
    assert recorded[-1]["config"] == GATYS.replace(size=128, pixels=None)


def test_help_shows_every_default(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["stylize", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for name, meta in fields_help().items():
        assert options.flag(name) in text
        if name != "init":
            assert " ".join(options.flag_text(meta["help"]).split()) in text, name
    for name in ("device", "precision", "weights", "download", "masks", "style_masks"):
        assert options.flag(name) in text
    assert "`" not in text  # setting names became flags
    assert "(default: 512)" in text and "(default: relu4_2)" in text and "(default: lbfgs)" in text
    assert "(default: 0.3333)" in text  # --content-size-exponent, short


def _existing_output(tmp_path):
    out = tmp_path / "existing.png"
    out.write_bytes(b"keep me")
    return out


def _bad_cases(tmp_path, content, style):
    folder = tmp_path / "a_folder"
    folder.mkdir()
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "text.jpg"
    text.write_text("hello")
    truncated = tmp_path / "truncated.png"
    buffer = io.BytesIO()
    Image.new("RGB", (300, 300), (1, 2, 3)).save(buffer, "PNG", compress_level=0)
    truncated.write_bytes(buffer.getvalue()[:5000])
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (8, 8)).save(tiny)
    c, s = str(content), str(style)
    return {
        "missing content": ([str(tmp_path / "nope.jpg"), s], "nope.jpg: no such file"),
        "missing style": ([c, str(tmp_path / "gone.png")], "gone.png: no such file"),
        "folder": ([str(folder), s], "is a folder"),
        "empty": ([c, str(empty)], "empty"),
        "not an image": ([str(text), s], "not an image"),
        "truncated": ([c, str(truncated)], "truncated"),
        "too small": ([str(tiny), s], "at least 16 px"),
        "zero steps": ([c, s, "--steps", "0"], "--steps: must be a positive"),
        "negative steps": ([c, s, "--steps", "-5"], "--steps: must be a positive"),
        "zero size": ([c, s, "--size", "0"], "--size: must be a positive"),
        "negative size": ([c, s, "--size", "-3"], "--size: must be a positive"),
        "negative pixels": ([c, s, "--pixels", "-100"], "--pixels: must be a positive"),
        "negative weight": ([c, s, "--style-weight", "-1"], "--style-weight: must not be negative"),
        "negative content weight": ([c, s, "--content-weight", "-0.5"], "--content-weight: must not be negative"),
        "negative blend": ([c, s, "--style-weights", "-1"], "--style-weights: must not be negative"),
        "unknown layer": ([c, s, "--style-layers", "relu1_1,relu9_1"], "unknown layer 'relu9_1'"),
        "misspelt layer": ([c, s, "--content-layers", "rleu4_2"], "did you mean 'relu4_2'"),
        "unknown preset": ([c, s, "--preset", "gatis"], "did you mean 'gatys'"),
        "bad number": ([c, s, "--steps", "many"], "--steps: invalid int value"),
        "bad optimizer": ([c, s, "--optimizer", "sgd"], "--optimizer: invalid choice"),
        "wrong weight count": ([c, s, "--style-weights", "1,2"], "--style-weights: gives 2 weights for 1 style"),
        "bad init file": ([c, s, "--init", str(tmp_path / "init.png")], "init.png: no such file"),
        "negative save-every": ([c, s, "--save-every", "-1"], "--save-every"),
        "zero time limit": ([c, s, "--time-limit", "0"], "--time-limit: must be positive"),
        "bad precision": ([c, s, "--precision", "int8"], "--precision: invalid choice"),
        "ema decay of one": ([c, s, "--ema-decay", "1"], "--ema-decay: must be between 0 and 1"),
        "missing mask": ([c, s, "--mask", str(tmp_path / "mask.png")], "mask.png: no such file"),
        "mask of another shape": ([c, s, "--mask", s], "style.png: a 32x32 mask does not have the shape"),
        "mask count": ([c, s, s, s, "--mask", c, c], "--mask: gives 2 masks for 3 style images"),
        "style mask alone": ([c, s, "--style-mask", s], "--style-mask: apply only with --mask"),
        "negative feather": ([c, s, "--mask", c, "--mask-feather", "-2"], "--mask-feather: must not be negative"),
        "bad device": ([c, s, "--device", "cpu:x"], "--device: unknown device 'cpu:x'"),
    }


BAD_CASES = (
    "missing content", "missing style", "folder", "empty", "not an image", "truncated", "too small", "zero steps",
    "negative steps", "zero size", "negative size", "negative pixels", "negative weight", "negative content weight",
    "negative blend", "unknown layer", "misspelt layer", "unknown preset", "bad number", "bad optimizer",
    "wrong weight count", "bad init file", "negative save-every", "zero time limit", "bad precision",
    "ema decay of one", "missing mask", "mask of another shape", "mask count", "style mask alone",
    "negative feather", "bad device",
)  # fmt: skip


@pytest.mark.parametrize("name", BAD_CASES)
def test_bad_input_gives_one_line_exit_2_and_writes_nothing(images, tmp_path, capsys, recorded, name):
    content, style = images
    out = _existing_output(tmp_path)
    cases = _bad_cases(tmp_path, content, style)
    assert set(cases) == set(BAD_CASES)
    args, message = cases[name]
    before = sorted(p.name for p in tmp_path.iterdir())
    try:
        code = cli.main(["stylize", *args, "-o", str(out)])
    except SystemExit as exit_info:  # argparse's own errors
        code = exit_info.code
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert out.read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert recorded == []


@pytest.mark.parametrize(
    ("output", "message"),
    [("missing_dir/out.png", "does not exist"), ("out.bmp", "unsupported output format"), ("a_dir", "is a folder")],
)
def test_bad_output_path(images, tmp_path, capsys, recorded, output, message):
    (tmp_path / "a_dir").mkdir()
    content, style = images
    code = cli.main(["stylize", str(content), str(style), "-o", str(tmp_path / output)])
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "missing_dir").exists() and not (tmp_path / "out.bmp").exists()


def _event(step, total=10, done=False, image=True):
    picture = torch.full((1, 3, 8, 8), step / total) if image else None
    return Progress(step, total, 0, 1, (8, 8), 1.0, {"content.relu4_2": 0.5, "style.relu1_1": 0.5}, 0.1,
                    picture, done, step / total)  # fmt: skip


def test_ctrl_c_writes_the_current_image_and_exits_130(images, tmp_path, monkeypatch, capsys):
    def interrupted(self, inputs, recipe, on_progress=None, previews=None, on_tile=None):
        on_progress(_event(1, image=False))
        on_progress(_event(2, image=False))
        raise Interrupted(torch.full((1, 3, 30, 40), 0.2), _event(2, image=False))

    monkeypatch.setattr(Stylizer, "__init__", lambda self, runtime=None, **kwargs: None)
    monkeypatch.setattr(Stylizer, "run", interrupted)
    content, style = images
    out = tmp_path / "out.png"
    assert cli.main(["stylize", str(content), str(style), "-o", str(out), "-q"]) == 130
    assert "interrupted at step 2/10" in capsys.readouterr().err
    with Image.open(out) as saved:
        assert saved.size == (40, 30) and saved.getpixel((0, 0)) == (51, 51, 51)  # Interrupted's image


def test_a_signal_noted_but_not_raised_stops_the_run_at_its_next_step(images, tmp_path, monkeypatch, capsys):
    import signal

    from impasto.cli.signals import SIGNALS

    steps = []

    def run(self, inputs, recipe, on_progress=None, previews=None, on_tile=None):
        # as the engine does: a KeyboardInterrupt out of a step hands out the picture so far
        try:
            for step in range(1, 11):
                steps.append(step)
                if step == 2:  # a signal landed where it could not be raised (a C extension swallowed it)
                    SIGNALS.received = signal.SIGINT
                on_progress(_event(step, image=False))
        except KeyboardInterrupt:
            raise Interrupted(torch.full((1, 3, 30, 40), 0.2), _event(steps[-1], image=False)) from None
        return torch.zeros(1, 3, 30, 40)

    monkeypatch.setattr(Stylizer, "__init__", lambda self, runtime=None, **kwargs: None)
    monkeypatch.setattr(Stylizer, "run", run)
    content, style = images
    out = tmp_path / "out.png"
    assert cli.main(["stylize", str(content), str(style), "-o", str(out), "-q"]) == 130
    assert steps == [1, 2] and out.is_file()  # stopped at the step it was noted in, the picture so far kept
    assert "interrupted at step 2/10" in capsys.readouterr().err


def test_ctrl_c_before_the_first_step_writes_nothing(images, tmp_path, monkeypatch, capsys):
    def interrupted(self, inputs, recipe, on_progress=None, previews=None, on_tile=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(Stylizer, "__init__", lambda self, runtime=None, **kwargs: None)
    monkeypatch.setattr(Stylizer, "run", interrupted)
    content, style = images
    out = tmp_path / "out.png"
    assert cli.main(["stylize", str(content), str(style), "-o", str(out), "-q"]) == 130
    assert "nothing written" in capsys.readouterr().err and not out.exists()


def test_save_every_asks_for_images_and_writes_numbered_snapshots(images, tmp_path, monkeypatch):
    asked = []

    def run(self, inputs, recipe, on_progress=None, previews=None, on_tile=None):
        asked.append(previews)
        for step in range(1, 5):
            on_progress(_event(step, 4, image=previews.due(step, 0.0, None)))
        on_progress(_event(4, 4, done=True))
        return torch.zeros(1, 3, 8, 8)

    monkeypatch.setattr(Stylizer, "__init__", lambda self, runtime=None, **kwargs: None)
    monkeypatch.setattr(Stylizer, "run", run)
    content, style = images
    out = tmp_path / "out.png"
    assert cli.main(["stylize", str(content), str(style), "-o", str(out), "--save-every", "2", "-q"]) == 0
    assert sorted(p.name for p in tmp_path.glob("out*")) == ["out.00002.png", "out.00004.png", "out.png"]
    assert asked[0].every_steps == 2
    assert cli.main(["stylize", str(content), str(style), "-o", str(out), "-q"]) == 0
    assert asked[1].every_steps is None and asked[1].every_seconds is None  # no snapshots: no image copies


def test_progress_bar_lines():
    stream = io.StringIO()
    bar = ProgressBar(stream)
    for step in range(1, 11):
        bar(_event(step))
    bar(_event(10, done=True))
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("[##") and "1/10" in lines[0] and "content 0.5 style 0.5" in lines[0]
    assert "10/10" in lines[-1] and "<0:00" in lines[-1]


def test_progress_bar_says_when_the_time_limit_stopped_the_run():
    import dataclasses

    for timed_out in (False, True):
        stream = io.StringIO()
        bar = ProgressBar(stream)
        bar(_event(4))
        bar(dataclasses.replace(_event(4, done=True), score="last step", timed_out=timed_out))
        said = [line for line in stream.getvalue().splitlines() if "time limit" in line]
        assert said == (["time limit reached after step 4 of 10: the picture so far, at the output's size (the "
                         "figures are the last step's)"] if timed_out else [])  # fmt: skip


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_counts_a_tiled_steps_windows_on_a_terminal_only():
    terminal, log = _Terminal(), io.StringIO()
    for stream in (terminal, log):
        bar = ProgressBar(stream)
        bar.tile(1, 12)  # before any step: nothing to add to
        bar(_event(3))
        for done in range(1, 13):
            bar.tile(done, 12)
    drawn = terminal.getvalue().split("\r")
    assert "3/10, window 12/12 " in drawn[-1]  # the last window always drawn
    assert drawn[-1].rstrip().endswith("style 0.5)")  # the count before the loss terms, which a narrow terminal cuts
    assert all("window" not in line for line in drawn[:2])
    assert "window" not in log.getvalue() and len(log.getvalue().splitlines()) == 1  # logs keep their ten lines


def test_presets_command(capsys):
    assert cli.main(["presets"]) == 0
    text = capsys.readouterr().out
    assert "gatys" in text and "pixels = 250000" in text and "size = unset, --pixels applies" in text


def test_presets_as_json_are_the_recipes(capsys):
    import json

    from impasto.config import StyleConfig
    from impasto.presets import PRESETS

    assert cli.main(["presets", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {name: StyleConfig.from_dict(recipe) for name, recipe in data.items()} == PRESETS


def test_documented_option_table_is_the_generated_one():
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "options.md").read_text()
    start, end = "<!-- options:start -->\n", "\n<!-- options:end -->"
    assert start in page and end in page, "docs/options.md marks its option table"
    table = page.split(start, 1)[1].split(end, 1)[0]
    assert table == options.options_table(), "regenerate it: impasto presets --markdown"


def test_stylize_end_to_end_with_the_real_network(images, tmp_path, capsys):
    content, style = images
    out = tmp_path / "out.jpg"
    assert cli.main(["stylize", str(content), str(style), "-o", str(out), "--size", "48", "--steps", "3"]) == 0
    with Image.open(out) as saved:
        assert saved.size == (48, 36)
    assert f"wrote {out}" in capsys.readouterr().out


def test_python_dash_m(images, tmp_path):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "impasto", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("impasto ")


def test_demo_uses_built_in_inputs(tmp_path, recorded, capsys):
    out = tmp_path / "demo.png"
    assert cli.main(["demo", "-o", str(out), "--steps", "5", "--save-inputs", str(tmp_path), "-q"]) == 0
    (call,) = recorded
    assert call["config"].size == 256 and call["config"].steps == 5
    assert call["inputs"].content.shape[-2:] == (600, 512)  # matplotlib's grace_hopper.jpg
    assert call["inputs"].styles[0].shape[-2:] == (512, 512)
    assert (tmp_path / "demo_content.png").exists() and (tmp_path / "demo_style.png").exists()
    assert str(out.resolve()) in capsys.readouterr().out


def test_painted_style_is_deterministic_and_colourful():
    from impasto.demo import paint_style
    from impasto.imageio import load_image

    first, again, other = (load_image(paint_style(128, seed)) for seed in (0, 0, 1))
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert first.std(dim=(2, 3)).min() > 0.05  # texture in every channel, not a flat fill
