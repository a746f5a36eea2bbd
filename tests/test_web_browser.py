"""The studio end to end in a real browser: Debian's chromium, headless, driven by
Playwright, against ``impasto serve`` on the real engine. Skipped (with the command that
installs it) where no Chromium is found; .ci/run installs it."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="pip install 'impasto[web]'")
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium: apt-get install -y chromium"),
]


@pytest.fixture
def server(tmp_path, request):
    """``impasto serve`` on a free port (with the options a test's parameter names); yields
    the URL it printed."""
    flags = getattr(request, "param", [])
    proc = subprocess.Popen(
        [sys.executable, "-m", "impasto", "serve", "--port", "0", "--no-browser", "--data-dir", str(tmp_path / "data"),
         *flags],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    line = proc.stdout.readline()
    match = re.search(r"http://127\.0\.0\.1:\d+/\?token=\S+", line)
    assert match, line + proc.stderr.read()
    yield match.group(0)
    proc.terminate()
    assert proc.wait(30) == 0, proc.stderr.read()


@pytest.fixture
def page(server):
    """A page of the studio; on leaving, no console errors and no request that left the server."""
    origin = server.split("/?")[0]
    errors: list[str] = []
    requests: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        tab = browser.new_page(accept_downloads=True, viewport={"width": 1280, "height": 1000})
        tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        tab.on("pageerror", lambda e: errors.append(str(e)))
        tab.on("request", lambda r: requests.append(r.url))
        tab.goto(server)
        assert tab.url == origin + "/"  # the token went into a cookie, out of the address
        yield tab
        browser.close()
    assert errors == []
    outside = [u for u in requests if not (u.startswith(origin + "/") or u.startswith(f"blob:{origin}/"))]
    assert outside == [] and len(requests) > 5


def until(page, script: str, timeout: float = 180.0) -> None:
    """Wait for ``script`` to be true in the page (polled from here: the page's CSP forbids
    the eval that Playwright's wait_for_function uses)."""
    end = time.monotonic() + timeout
    while not page.evaluate(script):
        assert time.monotonic() < end, f"timed out waiting for {script}"
        time.sleep(0.1)


PREVIEWS = "parseInt(document.getElementById('preview').dataset.count || '0', 10)"


def test_paint_the_demo_pair_watch_it_stop_it_and_download(page, tmp_path):
    page.click("#demo")
    until(page, "document.querySelectorAll('#styles li').length === 1")
    page.fill("#size", "160")
    page.click("#paint")
    until(page, f"{PREVIEWS} >= 1")
    seen, end = set(), time.monotonic() + 120
    while len(seen) < 4:  # the picture changes at least 3 times while it forms
        seen.add(page.evaluate("document.getElementById('preview').src"))
        assert time.monotonic() < end and not page.evaluate("document.getElementById('stop').disabled")
        time.sleep(0.2)
    assert re.search(r"scale 1/\d+ · step \d+/\d+ · 137×160 px · 0:\d\d elapsed · ETA", page.inner_text("#status"))
    # content, default's 4 style layers, their 4 histogram terms, tv
    assert page.evaluate("document.querySelectorAll('#legend li').length") == 10
    page.click("#stop")
    until(page, "!document.getElementById('download-png').hidden")
    steps = int(re.search(r"done · (\d+) of (\d+) steps", page.inner_text("#status")).group(1))
    assert steps < int(re.search(r"of (\d+) steps", page.inner_text("#status")).group(1))  # stopped early
    with page.expect_download() as download:
        page.click("#download-png")
    path = tmp_path / "result.png"
    download.value.save_as(path)
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (137, 160)
    assert "done in" in page.inner_text("#gallery li")


def test_a_job_runs_to_the_end_and_is_kept_in_the_gallery(page, tmp_path):
    photo, painting = tmp_path / "street.png", tmp_path / "stripes.png"
    Image.radial_gradient("L").convert("RGB").resize((96, 64)).save(photo)
    stripes = Image.new("RGB", (64, 64), (20, 60, 160))
    for x in range(0, 64, 8):
        stripes.paste((230, 190, 40), (x, 0, x + 4, 64))
    stripes.save(painting)
    page.set_input_files("#content", str(photo))
    page.set_input_files("#style", str(painting))
    page.select_option("#preset", "fast")
    page.fill("#size", "64")
    page.click("#paint")
    until(page, "!document.getElementById('download-png').hidden")
    until(page, "document.querySelector('#gallery li .state').textContent.startsWith('done in')")
    card = page.locator("#gallery li").first
    assert "street.png + stripes.png" in card.inner_text() and "fast · 64 px" in card.inner_text()
    # the same pictures again, another size, from the gallery's "again with…"
    card.get_by_text("again with…").click()
    assert page.input_value("#preset") == "fast" and page.input_value("#size") == "64"
    page.fill("#size", "48")
    page.click("#paint")
    until(page, "document.querySelectorAll('#gallery li').length === 2")
    until(page, "[...document.querySelectorAll('#gallery li .state')].every(s => s.textContent.startsWith('done'))")
    cards = page.locator("#gallery li")
    assert "fast · 48 px" in cards.nth(0).inner_text() and "street.png + stripes.png" in cards.nth(0).inner_text()
    # open the older one from the gallery, then both side by side
    cards.nth(1).get_by_text("show").click()
    until(page, "document.getElementById('preview').naturalWidth === 64")
    cards.nth(0).locator("input[type=checkbox]").check()
    page.locator("#gallery li").nth(1).locator("input[type=checkbox]").check()
    until(page, "!document.getElementById('compare').hidden && document.getElementById('compare-b').naturalWidth > 0")
    page.fill("#compare-slider", "30")
    page.dispatch_event("#compare-slider", "input")
    assert page.evaluate("document.getElementById('compare-top').style.width") == "30%"
    with page.expect_download() as download:
        page.click("#download-jpg")
    with Image.open(io.BytesIO(Path(download.value.path()).read_bytes())) as image:
        assert image.format == "JPEG" and image.size == (64, 43)
    # print the 64 px one: A6 at 20 dpi is 117x78 px for this photo, continued from it
    older = page.locator("#gallery li").nth(1)
    older.get_by_text("print…").click()
    older.get_by_label("paper").select_option("A6")
    older.get_by_label("dpi").fill("20")
    older.get_by_role("button", name="print", exact=True).click()
    until(page, "document.querySelectorAll('#gallery li').length === 3")
    until(page, "document.querySelector('#gallery li .state').textContent.startsWith('done')")
    assert "print A6 at 20 dpi · 117 px" in page.locator("#gallery li").first.inner_text()
    until(page, "document.getElementById('preview').naturalWidth === 117")
    with page.expect_download() as download:
        page.click("#download-png")
    with Image.open(io.BytesIO(Path(download.value.path()).read_bytes())) as image:
        assert image.size == (117, 78) and round(image.info["dpi"][0]) == 20


def test_two_paintings_blended_by_a_mask_painted_over_the_photo(page, tmp_path):
    photo, warm, cold = tmp_path / "field.png", tmp_path / "warm.png", tmp_path / "cold.png"
    Image.linear_gradient("L").convert("RGB").resize((96, 64)).save(photo)
    Image.effect_noise((64, 64), 60).convert("RGB").save(warm)
    Image.new("RGB", (64, 64), (20, 40, 160)).save(cold)
    page.set_input_files("#content", str(photo))
    page.set_input_files("#style", [str(warm), str(cold)])
    assert page.locator("#styles input[type=range]").count() == 2  # blend sliders
    page.locator("#styles input[type=range]").nth(1).fill("25")
    page.click("#more summary")
    page.click("#mask-paint")
    until(page, "document.getElementById('mask-canvas').width === 96")
    assert page.locator("#brushes button").all_inner_texts() == ["warm.png", "cold.png"]
    page.locator("#brushes button").nth(1).click()
    page.fill("#brush-size", "120")
    box = page.locator("#mask-canvas").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.75, box["y"] + 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.75, box["y"] + box["height"] - 2, steps=8)
    page.mouse.up()
    page.select_option("#preset", "fast")
    page.fill("#size", "64")
    page.fill("#seed", "5")
    page.click("#paint")
    until(page, "!document.getElementById('download-png').hidden")
    status = page.evaluate("fetch('/api/jobs').then(r => r.json()).then(d => d.jobs[0])")
    assert status["state"] == "done" and status["inputs"]["mask"] == "painted-mask.png"
    assert status["request"]["style_weights"] == [1.0, 0.5] and status["request"]["seed"] == 5
    assert "mask" in page.inner_text("#gallery li")
    with Image.open(tmp_path / "data" / "jobs" / status["id"] / "mask") as mask:  # kept as the page painted it
        grey = mask.convert("L")
        assert grey.size == (96, 64) and grey.getpixel((2, 32)) == 0 and grey.getpixel((72, 32)) == 255


@pytest.mark.parametrize("server", [["--ray", "--workers", "2"]], indirect=True)
def test_several_photos_dropped_at_once_are_painted_together_on_a_local_ray_cluster(page, tmp_path):
    pytest.importorskip("ray")
    photos = []
    for n, colour in enumerate([(200, 80, 40), (40, 160, 90), (60, 60, 200)]):
        photo = tmp_path / f"photo{n}.png"
        Image.radial_gradient("L").convert("RGB").resize((80, 60)).save(photo)
        with Image.open(photo) as image:
            Image.blend(image, Image.new("RGB", image.size, colour), 0.5).save(photo)
        photos.append(str(photo))
    painting = tmp_path / "noise.png"
    Image.effect_noise((64, 64), 70).convert("RGB").save(painting)
    page.set_input_files("#content", photos)
    assert "3 photos, one picture each" in page.inner_text("#content-drop")
    page.set_input_files("#style", str(painting))
    page.fill("#size", "64")
    page.click("#paint")
    until(page, "document.querySelectorAll('#gallery li').length === 3")
    # two Ray actors of one core each: two jobs paint at the same time, each card says where
    until(page, "[...document.querySelectorAll('#gallery li .state')].filter(s => s.textContent.startsWith('running')"
                " && s.textContent.includes(' on Ray actor')).length === 2")  # fmt: skip
    until(page, "[...document.querySelectorAll('#gallery li .state')].every(s => s.textContent.startsWith('done'))")
    states = page.locator("#gallery li .state").all_inner_texts()
    actors = {re.search(r"on (Ray actor \d+)", s).group(1) for s in states}
    assert actors == {"Ray actor 1", "Ray actor 2"}, states
    names = page.locator("#gallery li").all_inner_texts()
    assert all(any(f"photo{n}.png + noise.png" in text for text in names) for n in range(3))
