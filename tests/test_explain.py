"""``impasto explain``: the report's sections, its numbers against the engine's own code, the
HTML in a real browser, and the command's errors."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("matplotlib", reason="pip install 'impasto[explain]'")

from impasto.config import StyleConfig
from impasto.engine.stylizer import Stylizer
from impasto.explain import explain
from impasto.explain.history import History
from impasto.explain.probes import conv_example, network_layers
from impasto.imageio import save_image
from impasto.inputs import Inputs
from impasto.model.encoder import Encoder, weights_digest
from impasto.objective.losses import gram
from impasto.runtime import Runtime

TINY = StyleConfig(size=48, steps=6, content_weight=0.05, tv_weight=1.0)
CPU = Runtime(device="cpu", precision="float32")


def _pictures(folder: Path) -> tuple[Path, Path]:
    ys, xs = torch.meshgrid(torch.linspace(0, 1, 40), torch.linspace(0, 1, 56), indexing="ij")
    photo = torch.stack([xs, ys, 1 - xs]).unsqueeze(0)
    stripes = (torch.sin(torch.arange(64) * 0.7) > 0).float()
    painting = torch.stack([stripes.expand(64, 64), stripes.expand(64, 64).T, torch.full((64, 64), 0.3)])
    save_image(photo, folder / "photo.png")
    save_image(painting.unsqueeze(0), folder / "painting.png")
    return folder / "photo.png", folder / "painting.png"


@pytest.fixture(scope="module")
def full_vgg19(vgg19_weights) -> Encoder:
    return Encoder(vgg19_weights)


@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> tuple[Path, Path]:
    return _pictures(tmp_path_factory.mktemp("pictures"))


@pytest.fixture(scope="module")
def report(full_vgg19, pictures, tmp_path_factory):
    stylizer = Stylizer(CPU, encoder=full_vgg19)
    inputs = Inputs.of(pictures[0], [pictures[1]])
    cache = tmp_path_factory.mktemp("cache")
    return explain(inputs, TINY, stylizer=stylizer, reconstruct_size=40, reconstruct_steps=3, cache=cache)


@pytest.fixture(scope="module")
def w2_report(full_vgg19, pictures):
    stylizer = Stylizer(CPU, encoder=full_vgg19)
    inputs = Inputs.of(pictures[0], [pictures[1]])
    return explain(inputs, TINY.replace(style_loss="wasserstein"), stylizer=stylizer, reconstruct_size=0)


def test_every_section_is_present_with_text_and_figures(report):
    keys = [s.key for s in report.sections]
    assert keys == ["network", "feature-maps", "style", "layers", "optimisation"]
    for section in report.sections:
        assert section.text and all(len(t) > 40 for t in section.text), section.key
        assert section.figures, section.key
        for fig in section.figures.values():
            assert fig.axes and any(ax.images or ax.lines or ax.patches for ax in fig.axes)
    assert set(report.section("style").figures) >= {"palettes", "histograms"} | {f"gram-{n}" for n in TINY.style_layers}
    assert len(report.section("layers").data["style"]) == 5 and len(report.section("layers").data["content"]) == 5


def test_gram_heat_map_shows_gram_of_the_same_features(report, full_vgg19):
    style = report.section("style")
    data, fig = style.data["grams"]["relu2_1"], style.figures["gram-relu2_1"]
    painting = style.data["images"]["painting"]  # the painting as the report scored it
    order = data["order"]
    expected = gram(full_vgg19(painting, ["relu2_1"])["relu2_1"].float())[0][order][:, order]
    assert torch.allclose(data["painting"], expected, rtol=1e-5, atol=1e-7)
    shown = fig.axes[0].images[0].get_array()  # the heat map's own values
    n = shown.shape[0]
    assert n == 64 and torch.allclose(torch.as_tensor(shown.data), expected[:n, :n], rtol=1e-5, atol=1e-7)
    # channels in one order: sorted by the painting's diagonal, largest first
    assert torch.all(torch.diagonal(data["painting"])[:-1] >= torch.diagonal(data["painting"])[1:])


def test_wasserstein_recipe_shows_means_and_covariances(w2_report):
    style = w2_report.section("style")
    assert "grams" not in style.data and set(style.data["moments"]) == set(TINY.style_layers)
    stats = style.data["moments"]["relu1_1"]
    cov = stats["painting"]["cov"]
    assert torch.allclose(cov, cov.T, atol=1e-4) and torch.all(torch.diagonal(cov)[:-1] >= torch.diagonal(cov)[1:])
    assert {"covariance-relu1_1", "means-relu1_1"} <= set(style.figures)
    assert [s.key for s in w2_report.sections] == ["network", "feature-maps", "style", "optimisation"]


def test_weight_checksum_is_real_and_unchanged_by_the_run(report, full_vgg19, tiny_weights):
    data = report.section("network").data
    assert data["checksum_before"] == data["checksum_after"] == weights_digest(full_vgg19)
    assert data["mean_change"] > 0.01  # the picture did move
    other = Encoder(tiny_weights)
    before = weights_digest(other)
    with torch.no_grad():
        other.conv("conv3_2").weight[0, 0, 0, 0] += 1e-3
    assert weights_digest(other) != before


def test_network_drawing_follows_the_model(full_vgg19):
    layers = network_layers(full_vgg19, ("relu4_2",), ("relu1_1", "relu3_1"), (96, 128))
    assert sum(1 for x in layers if x.kind == "conv") == 16 and sum(1 for x in layers if x.kind == "pool") == 5
    by_name = {x.name: x for x in layers}
    assert by_name["conv4_2"].role == "content" and by_name["conv3_1"].role == "style"
    assert by_name["conv1_2"].role == "computed" and by_name["conv5_1"].role == "unused"
    assert by_name["conv1_1"].size == (96, 128) and by_name["conv3_1"].size == (24, 32)
    assert by_name["conv4_2"].channels == 512 and by_name["pool1"].size == (48, 64)


def test_conv_example_is_the_decks_shape_and_the_layers_numbers():
    example = conv_example()
    assert example["image"].shape == (3, 3, 3) and example["maps"].shape == (4, 2, 2)
    w, b, x = example["weight"], example["bias"], example["image"]
    by_hand = torch.tensor(
        [[[(w[k] * x[:, i : i + 2, j : j + 2]).sum() + b[k] for j in range(2)] for i in range(2)] for k in range(4)]
    )
    assert torch.allclose(example["maps"], by_hand, atol=1e-5)


def test_history_round_trips_and_marks_the_scales(report):
    history = report.section("optimisation").data["history"]
    assert [s.step for s in history.steps] == list(range(1, TINY.steps + 1))
    again = History.from_json(history.to_json())
    assert [s.loss for s in again.steps] == [s.loss for s in history.steps]
    assert len(again.checkpoints) >= 1 and again.checkpoints[-1][0] == history.checkpoints[-1][0]
    assert again.final is not None and again.final.loss == history.final.loss


def test_html_is_self_contained(report):
    text = report.to_html()
    assert text.count("<section") == 5 and "<script" not in text
    sources = re.findall(r'src="([^"]*)"', text)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r"https?://", text)


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="no Chromium: apt-get install -y chromium")
def test_report_opens_in_chromium_without_errors_or_network(report, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    path = tmp_path / "report.html"
    path.write_text(report.to_html())
    errors, requests = [], []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        page = browser.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(path.as_uri())
        page.wait_for_load_state("load")
        shown = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete && i.naturalWidth > 0)")
        headings = page.eval_on_selector_all("h2", "hs => hs.map(h => h.textContent)")
        browser.close()
    assert errors == []
    assert all(url.startswith(("file:", "data:")) for url in requests), requests
    assert shown and all(shown)
    assert headings[0].startswith("1. The network") and len(headings) == 5


def _impasto(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "impasto", *args], capture_output=True, text=True, cwd=cwd, timeout=600
    )


def test_cli_record_then_explain_the_result(pictures, tmp_path):
    photo, painting = pictures
    common = ["--size", "40", "--steps", "4", "--start-size", "40", "--device", "cpu"]
    done = _impasto("stylize", str(photo), str(painting), "-o", "out.png", "--record", "run.json", "-q", *common,
                    cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    history = History.load(tmp_path / "run.json")
    assert [s.step for s in history.steps] == [1, 2, 3, 4]
    given = ["--result", "out.png", "--history", "run.json", "--figures", "figs", "--reconstruct-size", "0"]
    done = _impasto("explain", str(photo), str(painting), "-o", "report.html", *given, *common, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    html = (tmp_path / "report.html").read_text()
    assert html.count("<section") == 4  # no reconstructions asked for
    assert 'alt="losses"' in html and 'alt="filmstrip"' in html  # from the recorded history
    figures = sorted(p.name for p in (tmp_path / "figs").iterdir())
    assert {"01-network-network.png", "04-optimisation-losses.png", "04-optimisation-filmstrip.png"} <= set(figures)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.png", "{painting}", "-o", "r.html"], r"missing\.png"),
        (["{photo}", "{painting}", "-o", "r.png"], r"--output: r\.png: must end in \.html or \.htm"),
        (["{photo}", "{painting}", "-o", "r.html", "--history", "h.json"], r"--history: goes with --result"),
        (["{photo}", "{painting}", "-o", "r.html", "--reconstruct-size", "8"], r"--reconstruct-size: must be 0"),
        (
            ["{photo}", "{painting}", "-o", "nowhere/r.html"],
            r"--output: nowhere/r\.html: output folder nowhere does not exist",
        ),
        (["{photo}", "{painting}", "-o", "r.html", "--result", "{painting}"], r"--result: is 64x64, not the shape"),
        (
            ["{photo}", "{painting}", "-o", "r.html", "--result", "{painting}", "--history", "{photo}"],
            r"not a history written by impasto stylize --record",
        ),
        # bounded before work: sizes bounded before anything is allocated
        (["{photo}", "{painting}", "-o", "r.html", "--reconstruct-size", "20000"], r"from 32 to 1024 px, got 2"),
        (
            ["{photo}", "{painting}", "-o", "r.html", "--result", "{huge}"],
            r"--result: a report on a 9000x6000 .* needs",
        ),
        # class 4: a --figures folder that cannot be made is refused before the work
        (["{photo}", "{painting}", "-o", "r.html", "--figures", "{photo}/figs"], r"--figures: .* is not a folder"),
        (["{photo}", "{painting}", "-o", "r.html", "--figures", "{photo}"], r"--figures: .* exists and is not a"),
    ],
)
def test_cli_bad_input_is_one_line_and_writes_nothing(pictures, tmp_path, args, message):
    from PIL import Image

    photo, painting = pictures
    huge = tmp_path / "huge.png"  # 54 Mpx in a small file: refused from its header, never decoded
    Image.new("RGB", (9000, 6000), (40, 90, 200)).save(huge)
    args = [a.format(photo=photo, painting=painting, huge=huge) for a in args]
    done = _impasto("explain", *args, "--size", "40", "--device", "cpu", cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(message, lines[0]), done.stderr
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("option", ["--mask", "--init"])
def test_cli_explain_never_writes_over_a_mask_or_start_image(pictures, tmp_path, option):
    """Nothing lost: every file explain reads is protected from its output, however
    it is named (a PNG called mask.html is still a mask)."""
    photo, painting = pictures
    shutil.copy(photo, tmp_path / "input.html")
    before = (tmp_path / "input.html").read_bytes()
    done = _impasto("explain", str(photo), str(painting), "-o", "input.html", option, "input.html",
                    "--size", "40", "--device", "cpu", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2 and "is an input" in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert (tmp_path / "input.html").read_bytes() == before


def test_cli_explain_goes_on_without_a_cache_it_cannot_write(pictures, tmp_path):
    """Nothing lost: the reconstruction cache is optional; one warning, the report written."""
    photo, painting = pictures
    blocked = tmp_path / "cache-is-a-file"
    blocked.write_text("not a folder")
    done = subprocess.run(
        [sys.executable, "-m", "impasto", "explain", str(photo), str(painting), "-o", "r.html", "--size", "40",
         "--steps", "2", "--reconstruct-size", "32", "--reconstruct-steps", "1", "--device", "cpu", "-q"],
        capture_output=True, text=True, cwd=tmp_path, timeout=600, env={**os.environ, "XDG_CACHE_HOME": str(blocked)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "going on without the cache" in warnings[0], done.stderr
    assert "Traceback" not in done.stderr and "<section" in (tmp_path / "r.html").read_text()


def _history_with(checkpoint_png: bytes | None = None, loss: str = "1.0", nesting: int = 0) -> str:
    import base64

    step = '{"step": 1, "scale": 0, "size": [30, 40], "loss": %s, "terms": {"style.relu1_1": 1.0}, "elapsed": 0.1}'
    checkpoints = "[]"
    if checkpoint_png is not None:
        checkpoints = '[{"step": 1, "png": "' + base64.b64encode(checkpoint_png).decode() + '"}]'
    final = "[" * nesting + "]" * nesting if nesting else "null"
    steps = step.replace("%s", loss)
    return f'{{"version": 1, "steps": [{steps}], "final": {final}, "checkpoints": {checkpoints}}}'


def _png_of(size: tuple[int, int]) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", size, 0).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (_history_with(_png_of((9000, 9000))), "declares 9000x9000 pixels"),  # 81 Mpx in 80 KB
        (_history_with(loss="1e400"), "a loss is not finite"),
        (_history_with(nesting=3000), "nested too deep"),
        (_history_with(loss="9" * 5000), "not a history"),
    ],
    ids=["bomb checkpoint", "1e400", "3000 deep", "5000 digits"],
)
def test_a_damaged_history_is_one_line(tmp_path, text, reason):
    """A --history file that is damaged or hostile is one ImageError line."""
    from impasto.errors import ImageError

    path = tmp_path / "run.json"
    path.write_text(text)
    with pytest.raises(ImageError) as caught:
        History.load(path)
    message = str(caught.value)
    assert "\n" not in message and reason in message and "run.json" in message, message


def test_a_recorded_history_still_loads(report, tmp_path):
    path = tmp_path / "run.json"
    path.write_text(report.section("optimisation").data["history"].to_json())
    assert History.load(path).steps
