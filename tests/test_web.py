"""The studio's API and its defences, through the ASGI test client: on the fake runner
(fast) and on the real engine at a small size. The browser tests are in test_web_browser.py."""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="pip install 'impasto[web]'")
from fastapi.testclient import TestClient

from impasto.engine.stylizer import Stylizer
from impasto.jobs import FakeRunner, LocalRunner
from impasto.model import Encoder
from impasto.presets import PRESETS
from impasto.runtime import Runtime
from impasto.web.app import create_app
from impasto.web.studio import MAX_UPLOAD, Studio

TOKEN = "test-token"
PORT = 8765
BASE = f"http://127.0.0.1:{PORT}"


def png(color=(200, 40, 40), size=(64, 48), mode="RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def client_for(studio: Studio, *, token: bool = True, **app_options) -> TestClient:
    client = TestClient(create_app(studio, TOKEN, host="127.0.0.1", port=PORT, **app_options), base_url=BASE)
    if token:
        client.cookies.set(f"impasto-{PORT}", TOKEN)
    return client


def submit(client: TestClient, recipe: dict | None = None, content: bytes | None = None, name: str = "photo.png",
           styles: list[bytes] | None = None, **extra):  # fmt: skip
    files = [("content", (name, content if content is not None else png()))]
    files += [("style", (f"painting{k}.png", s)) for k, s in enumerate(styles or [png((30, 30, 200))])]
    data = {"recipe": json.dumps(recipe if recipe is not None else {"preset": "fast", "size": 64}), **extra}
    return client.post("/api/jobs", files=files, data=data)


def follow(client: TestClient, job_id: str, since: int = 0) -> list[dict]:
    events = []
    with client.stream("GET", f"/api/jobs/{job_id}/events?since={since}") as stream:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    return events


@pytest.fixture
def fake(tmp_path):
    studio = Studio(tmp_path / "data", FakeRunner(steps=6, delay=0.02))
    yield studio
    studio.close()


@pytest.fixture
def client(fake):
    return client_for(fake)


@pytest.fixture
def make(tmp_path):
    """``make(runner, **studio_or_app_options)`` -> ``(studio, client)`` over ``tmp_path``;
    every studio made is closed at the end of the test."""
    made: list[Studio] = []

    def make(runner, max_upload: int = MAX_UPLOAD, **app_options):
        studio = Studio(tmp_path, runner, max_upload=max_upload)
        made.append(studio)
        return studio, client_for(studio, **app_options)

    yield make
    for studio in made:
        studio.close()


# -- the API on the fake runner


def test_a_job_runs_streams_its_events_and_keeps_its_result(client, fake, tmp_path):
    response = submit(client, {"preset": "fast", "size": 64})
    assert response.status_code == 201
    job_id = response.json()["id"]
    events = follow(client, job_id)
    assert [e["type"] for e in events] == ["progress"] * 6 + ["done"]
    assert [e["step"] for e in events[:-1]] == list(range(1, 7))
    assert [e["preview"] for e in events[:-1]] == list(range(1, 7))  # every fake step has an image
    assert all("output" not in e for e in events)  # no server path reaches the page
    status = client.get(f"/api/jobs/{job_id}").json()
    assert status["state"] == "done" and status["result"] is True
    # fast's steps, the size given
    assert status["recipe"]["size"] == 64 and status["recipe"]["steps"] == PRESETS["fast"].steps
    assert status["request"] == {"preset": "fast", "size": 64}
    assert status["inputs"] == {"content": "photo.png", "styles": ["painting0.png"], "mask": None}
    assert status["figures"]["steps"] == 6 and status["seconds"] > 0
    png_bytes = client.get(f"/api/jobs/{job_id}/result.png")
    assert png_bytes.headers["content-disposition"] == f'attachment; filename="impasto-{job_id}.png"'
    with Image.open(io.BytesIO(png_bytes.content)) as image:
        assert image.format == "PNG" and image.size == (64, 48)
        assert image.getpixel((3, 3)) == (255, 255, 255)  # the fake's last step: all 1.0
    with Image.open(io.BytesIO(client.get(f"/api/jobs/{job_id}/result.jpg").content)) as image:
        assert image.format == "JPEG" and image.size == (64, 48)
    assert client.get(f"/api/jobs/{job_id}/preview.jpg").headers["content-type"] == "image/jpeg"
    folder = tmp_path / "data" / "jobs" / job_id
    assert sorted(p.name for p in folder.iterdir()) == [
        "content", "history.json", "job.json", "result.jpg", "result.png", "style-1",
    ]  # fmt: skip
    assert [j["id"] for j in client.get("/api/jobs").json()["jobs"]] == [job_id]


def test_the_queue_runs_one_job_at_a_time_and_shows_each_place(tmp_path, make):
    studio, client = make(FakeRunner(steps=20, delay=0.05))
    ids = [submit(client).json()["id"] for _ in range(3)]
    runner_ids = [studio._runner_ids[i] for i in ids]  # the runner forgets a job once it settles
    time.sleep(0.2)
    states = [client.get(f"/api/jobs/{i}").json() for i in ids]
    assert [s["state"] for s in states] == ["running", "queued", "queued"]
    assert [s["position"] for s in states] == [None, 0, 1]
    assert client.get(f"/api/jobs/{ids[1]}/explain").status_code == 404  # nothing to explain yet
    # cancelling the running job frees the queue at once: the next one starts
    assert client.delete(f"/api/jobs/{ids[0]}").json()["done"] == "cancelled"
    assert follow(client, ids[0])[-1]["type"] == "cancelled"
    time.sleep(0.2)
    assert client.get(f"/api/jobs/{ids[1]}").json()["state"] == "running"
    assert client.get(f"/api/jobs/{ids[2]}").json()["position"] == 0
    # a queued job cancelled never runs
    client.delete(f"/api/jobs/{ids[2]}")
    assert follow(client, ids[1])[-1]["type"] == "done"
    assert client.get(f"/api/jobs/{ids[2]}").json()["state"] == "cancelled"
    assert studio.runner.executed == runner_ids[:2]
    # a finished job is removed with its files
    assert client.delete(f"/api/jobs/{ids[1]}").json()["done"] == "removed"
    assert client.get(f"/api/jobs/{ids[1]}").status_code == 404
    assert not (tmp_path / "jobs" / ids[1]).exists()


def test_stop_keeps_the_picture_so_far_as_the_result(tmp_path, make):
    _, client = make(FakeRunner(steps=200, delay=0.02))
    job_id = submit(client).json()["id"]
    time.sleep(0.3)
    assert client.post(f"/api/jobs/{job_id}/stop").status_code == 200
    events = follow(client, job_id)
    assert events[-1]["type"] == "done"
    # (the stream may have been asked after the job settled: then it has the end only)
    steps = client.get(f"/api/jobs/{job_id}").json()["figures"]["steps"]
    assert 1 <= steps < 200
    with Image.open(io.BytesIO(client.get(f"/api/jobs/{job_id}/result.png").content)) as image:
        assert abs(image.getpixel((0, 0))[0] - round(255 * steps / 200)) <= 1  # the fake's picture at that step


def test_a_failed_job_shows_its_error_and_frees_the_queue(tmp_path, make):
    _, client = make(FakeRunner(steps=3, fail_seed=7))
    bad = submit(client, {"preset": "fast", "size": 64, "seed": 7}).json()["id"]
    good = submit(client).json()["id"]
    assert follow(client, bad)[-1] == {"type": "failed", "error": "fake failure"}
    assert client.get(f"/api/jobs/{bad}").json()["error"] == "fake failure"
    assert client.get(f"/api/jobs/{bad}/result.png").status_code == 404
    assert follow(client, good)[-1]["type"] == "done"


def test_restarting_the_server_keeps_the_gallery(tmp_path):
    studio = Studio(tmp_path, FakeRunner(steps=2))
    client = client_for(studio)
    done = submit(client, {"preset": "fast", "size": 64, "seed": 3}).json()["id"]
    follow(client, done)
    studio.close()
    # a job still queued when the server stops is not lost silently either
    slow = Studio(tmp_path, FakeRunner(steps=1000, delay=0.05))
    unfinished = submit(client_for(slow)).json()["id"]
    slow.runner._closed = True  # as a killed process: nothing more is written,
    os.close(slow._lock_file)  # and the system releases its lock on the folder
    slow._lock_file = -1
    again = Studio(tmp_path, FakeRunner(steps=2))
    client = client_for(again)
    try:
        jobs = {j["id"]: j for j in client.get("/api/jobs").json()["jobs"]}
        assert jobs[done]["state"] == "done" and jobs[done]["request"]["seed"] == 3
        assert jobs[unfinished]["state"] == "failed" and "stopped" in jobs[unfinished]["error"]
        assert client.get(f"/api/jobs/{done}/result.png").status_code == 200
        replayed = follow(client, done)  # an earlier server's job: its recorded steps, then its end
        assert replayed[-1] == {"type": "done", "error": None}
        assert [e["step"] for e in replayed[:-1]] == [1, 2] and all(e["type"] == "progress" for e in replayed[:-1])
        # "again with…": the inputs of the earlier job, new settings
        redo = client.post("/api/jobs", data={"recipe": json.dumps({"preset": "fast", "size": 48}), "again": done})
        assert redo.status_code == 201, redo.text
        new = redo.json()["id"]
        assert follow(client, new)[-1]["type"] == "done"
        status = client.get(f"/api/jobs/{new}").json()
        assert status["inputs"] == jobs[done]["inputs"] and status["recipe"]["size"] == 48
        folder = tmp_path / "jobs"
        assert (folder / new / "content").read_bytes() == (folder / done / "content").read_bytes()
    finally:
        again.close()
        slow.runner.close()  # the "killed" studio's worker, still painting its fake steps


def test_presets_and_input_thumbnails(client):
    data = client.get("/api/presets").json()
    assert set(data["presets"]) == {"default", "fast", "quality", "gatys", "print"}
    assert data["presets"]["fast"]["steps"] == PRESETS["fast"].steps and "content_weight" in data["fields"]
    job_id = submit(client, content=png(size=(1200, 900))).json()["id"]
    follow(client, job_id)
    thumb = client.get(f"/api/jobs/{job_id}/inputs/content")
    with Image.open(io.BytesIO(thumb.content)) as image:  # re-encoded, never the bytes as sent
        assert image.format == "JPEG" and image.size == (512, 384)
    assert client.get(f"/api/jobs/{job_id}/inputs/job.json").status_code == 404
    assert client.get(f"/api/jobs/{job_id}/inputs/..%2Fjob.json").status_code == 404


def test_large_uploads_and_their_thumbnails_are_decoded_reduced(client):
    """Bounded before work: a 27 Mpx photo and painting (small files) sent for a 48 px run
    are decoded near the size they are used at, at submit and for the thumbnails: the
    float copies of the whole pictures (324 MB each) are never made."""
    import tracemalloc

    big = png(size=(6000, 4500))
    tracemalloc.start()
    try:
        job_id = submit(client, content=big, styles=[big, big], recipe={"size": 48, "steps": 2}).json()["id"]
        _, at_submit = tracemalloc.get_traced_memory()
        follow(client, job_id)
        tracemalloc.reset_peak()
        thumb = client.get(f"/api/jobs/{job_id}/inputs/style-2")
        _, at_thumbnail = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert thumb.status_code == 200
    with Image.open(io.BytesIO(thumb.content)) as image:
        assert image.size == (512, 384)
    assert at_submit < 60 * 2**20 and at_thumbnail < 60 * 2**20, (at_submit, at_thumbnail)


# -- defences


def test_every_request_needs_the_token(fake):
    anonymous = client_for(fake, token=False)
    assert anonymous.get("/api/jobs").status_code == 401
    assert anonymous.get("/api/presets").status_code == 401
    assert anonymous.get("/static/studio.js").status_code == 401
    assert anonymous.get("/").status_code == 401
    assert submit(anonymous).status_code == 401 and not fake.jobs()
    assert anonymous.get("/api/jobs", headers={"authorization": "Bearer wrong"}).status_code == 401
    assert anonymous.get("/?token=wrong", follow_redirects=False).status_code == 401
    assert anonymous.get("/api/jobs", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
    # the printed URL sets the cookie (HttpOnly, SameSite=Strict) and drops the token from the address
    first = anonymous.get(f"/?token={TOKEN}", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/"
    cookie = first.headers["set-cookie"].lower()
    assert f"impasto-{PORT}={TOKEN}".lower() in cookie and "httponly" in cookie and "samesite=strict" in cookie
    assert anonymous.get("/api/jobs").status_code == 200  # the client keeps the cookie


def test_wrong_host_and_cross_site_requests_are_refused(client, fake):
    assert client.get("/api/jobs", headers={"host": "evil.example:8765"}).status_code == 403  # DNS rebinding
    assert client.get("/api/jobs", headers={"host": "localhost:8765"}).status_code == 200
    assert client.get("/api/jobs", headers={"host": "10.0.0.5:8765"}).status_code == 403  # not bound there
    cross = {"origin": "http://evil.example"}
    assert submit(client, **{}).status_code == 201
    job_id = fake.jobs()[0]["id"]
    assert client.post("/api/jobs", headers=cross, data={"recipe": "{}"}).status_code == 403
    assert client.delete(f"/api/jobs/{job_id}", headers=cross).status_code == 403
    assert client.post(f"/api/jobs/{job_id}/stop", headers={"sec-fetch-site": "cross-site"}).status_code == 403
    assert client.get(f"/api/jobs/{job_id}/events", headers=cross).status_code == 403
    assert client.get(f"/api/jobs/{job_id}/events", headers={"sec-fetch-site": "same-site"}).status_code == 403
    assert len(fake.jobs()) == 1
    # no CORS: nothing tells a browser that another site may read an answer
    answer = client.get("/api/jobs", headers=cross)
    assert answer.status_code == 200 and not any(h.lower().startswith("access-control") for h in answer.headers)
    assert client.options("/api/jobs", headers={**cross, "access-control-request-method": "POST"}).status_code >= 400
    # same-origin requests pass, and every answer carries the policy
    same = client.delete(f"/api/jobs/{job_id}", headers={"origin": BASE})
    assert same.status_code == 200 and "default-src 'none'" in same.headers["content-security-policy"]


def test_an_exposed_server_takes_ip_hosts_but_not_names(fake):
    client = TestClient(create_app(fake, TOKEN, host="0.0.0.0", port=PORT), base_url=BASE)
    client.cookies.set(f"impasto-{PORT}", TOKEN)
    assert client.get("/api/jobs", headers={"host": "192.168.1.20:8765"}).status_code == 200
    assert client.get("/api/jobs", headers={"host": "rebind.example:8765"}).status_code == 403


def test_bad_uploads_are_refused_with_one_line_and_the_server_keeps_serving(tmp_path, make):
    studio, client = make(FakeRunner(steps=2), max_upload=200_000)
    bomb = io.BytesIO()
    Image.new("1", (12_000, 10_000)).save(bomb, format="PNG")  # 120 M pixels in a small file
    assert len(bomb.getvalue()) < 200_000
    cases = [
        (dict(content=b"GIF89a but not really"), 400, "content: photo.png: not an image"),
        (dict(content=png()[:60]), 400, "content: photo.png: cannot decode image (truncated or corrupt"),
        (dict(content=b""), 400, "content: photo.png: file is empty"),
        (dict(content=bomb.getvalue()), 413, "content: photo.png: declares 12000x10000 pixels, over the limit"),
        (dict(content=b"x" * 200_001), 413, "content: photo.png: is 0.2 MB, over the 0 MB limit"),
        (dict(content=png(size=(8, 8))), 400, "content: photo.png: image is 8x8 px; the network needs"),
        (dict(content=png(), name="../../../../etc/cron.d/evil.png"), 201, None),
        (dict(content=b"<script>alert(1)</script>", name="x.png.html"), 400, "content: x.png.html: not an image"),
        (dict(recipe={"preset": "nope"}), 400, "preset: unknown"),
        (dict(recipe={"size": -3}), 400, "size: must be a positive whole number, got -3"),
        (dict(recipe={"sizes": 64}), 400, "sizes: is not a recipe setting; did you mean 'size'?"),
        (dict(recipe=[1, 2]), 400, "recipe: expected an object of settings"),
        (dict(styles=[png(), png()], recipe={"style_weights": [1.0]}), 400, "style_weights"),
    ]
    for kwargs, status, text in cases * 2:  # 26 uploads, 24 of them bad
        response = submit(client, **kwargs)
        assert response.status_code == status, (kwargs.get("name"), response.text)
        if text is not None:
            error = response.json()["error"]
            assert error.startswith(text) or text in error, error
            assert "\n" not in error and str(tmp_path) not in error
    bad_json = client.post("/api/jobs", files=[("content", ("a.png", png())), ("style", ("b.png", png()))],
                           data={"recipe": "{size: 64"})  # fmt: skip
    assert bad_json.status_code == 400 and bad_json.json()["error"].startswith("recipe: not valid JSON")
    no_style = client.post("/api/jobs", files=[("content", ("a.png", png()))], data={"recipe": "{}"})
    assert no_style.json()["error"] == "style: no painting was sent"
    # the two uploads with a path for a name were kept under server-made names only
    kept = sorted(p.name for p in (tmp_path / "jobs").iterdir())
    assert len(kept) == 2 and not (tmp_path / "etc").exists()
    named = [j for j in studio.jobs() if j["inputs"]["content"] == "evil.png"]
    assert len(named) == 2
    for job in studio.jobs():
        studio.wait(job["id"], 10)
    # and after all that, a good job runs to the end
    good = submit(client).json()["id"]
    assert follow(client, good)[-1]["type"] == "done"
    assert not [p for p in (tmp_path / "jobs").iterdir() if p.name.startswith(".")]  # no staging left


def test_a_request_body_over_the_limit_is_refused_before_it_is_read(tmp_path, make):
    _, client = make(FakeRunner(steps=1), max_upload=1000, max_body=50_000)
    response = submit(client, content=b"x" * 60_000)
    assert response.status_code == 413 and "over the limit" in response.json()["error"]
    assert not list((tmp_path / "jobs").iterdir())


# -- the real engine


@pytest.mark.slow
def test_a_real_job_at_a_small_size(tmp_path, make, vgg19):
    runner = LocalRunner(stylizer=Stylizer(Runtime(device="cpu"), encoder=vgg19), preview_seconds=0)
    _, client = make(runner)
    photo = Image.linear_gradient("L").convert("RGB").resize((96, 72))
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG")
    painting = io.BytesIO()
    Image.effect_noise((64, 64), 80).convert("RGB").save(painting, format="PNG")
    response = submit(client, {"preset": "fast", "size": 64, "first_steps": 6, "steps": 3}, buffer.getvalue(),
                      "gradient.jpg", [painting.getvalue()])  # fmt: skip
    assert response.status_code == 201, response.text
    job_id = response.json()["id"]
    events = follow(client, job_id)
    progress = [e for e in events if e["type"] == "progress"]
    assert events[-1] == {"type": "done", "error": None}
    assert progress[-1]["done"] and progress[-1]["step"] == progress[-1]["total_steps"]
    assert {k.split(".")[0] for k in progress[0]["terms"]} == {"content", "style", "histogram", "tv"}
    with Image.open(io.BytesIO(client.get(f"/api/jobs/{job_id}/result.png").content)) as image:
        assert image.size == (64, 48)
        result = image.convert("RGB")
    assert result.getextrema() != photo.resize((64, 48)).getextrema()  # painted, not the photo
    history = json.loads((tmp_path / "jobs" / job_id / "history.json").read_text())
    assert len(history["steps"]) == progress[-1]["total_steps"] and history["checkpoints"]


@pytest.mark.slow
def test_the_explain_report_of_a_finished_job(tmp_path, make, vgg19_weights):
    pytest.importorskip("matplotlib")
    encoder = Encoder(vgg19_weights)  # the whole network, as a server loads it
    runner = LocalRunner(stylizer=Stylizer(Runtime(device="cpu"), encoder=encoder), preview_seconds=0)
    _, client = make(runner)
    job_id = submit(client, {"preset": "fast", "size": 64, "first_steps": 4, "steps": 2}).json()["id"]
    follow(client, job_id)
    report = client.get(f"/api/jobs/{job_id}/explain")
    assert report.status_code == 200 and report.headers["content-security-policy"].startswith("default-src 'none'")
    html = report.text
    assert "How impasto painted photo.png in the style of painting0.png" in html
    sections = ("1. The network, as loaded", "2. Feature maps", "3. What is style?", "5. How the optimisation went")
    for heading in sections:
        assert heading in html
    assert Path(tmp_path / "jobs" / job_id / "explain.html").read_text() == html  # made once, kept


# -- the command


def test_serve_refuses_a_taken_port_and_an_unwritable_data_folder(tmp_path, capsys):
    import socket

    from impasto.cli import main

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        code = main(["serve", "--port", str(port), "--no-browser", "--data-dir", str(tmp_path)])
    finally:
        taken.close()
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"impasto: error: --port: cannot listen on 127.0.0.1:{port}")
    assert err.count("\n") == 1
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["serve", "--no-browser", "--data-dir", str(blocker / "data")]) == 2
    assert capsys.readouterr().err.startswith(f"impasto: error: --data-dir: {blocker / 'data'}: cannot write there")
    assert main(["serve", "--no-browser", "--port", "70000", "--data-dir", str(tmp_path)]) == 2
    assert "--port: 70000 is not a port number" in capsys.readouterr().err


def test_serve_without_the_web_extra_names_the_pip_command(monkeypatch, capsys):
    import importlib.util

    from impasto.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a))
    assert main(["serve", "--no-browser"]) == 2
    assert capsys.readouterr().err == "impasto: error: impasto serve needs uvicorn: pip install 'impasto[web]'\n"


def test_a_second_studio_on_the_same_folder_is_refused_naming_the_first(tmp_path):
    from impasto.errors import ImpastoError

    first = Studio(tmp_path, FakeRunner(steps=2), owner="port 8765")
    refused = FakeRunner(steps=2)
    try:
        with pytest.raises(ImpastoError, match=r"in use by another impasto studio \(port 8765 pid \d+\)"):
            Studio(tmp_path, refused)
    finally:
        refused.close()  # the runner the refused studio was given: its worker ends here
        first.close()
    Studio(tmp_path, FakeRunner(steps=2)).close()  # free again once the first has stopped


def test_a_damaged_job_file_is_skipped_with_a_warning_and_the_rest_served(tmp_path, capsys):
    studio = Studio(tmp_path, FakeRunner(steps=2))
    client = client_for(studio)
    good = submit(client).json()["id"]
    bad = submit(client).json()["id"]
    follow(client, good)
    follow(client, bad)
    studio.close()
    meta = json.loads((tmp_path / "jobs" / bad / "job.json").read_text())
    meta["submitted"] = "yesterday"
    (tmp_path / "jobs" / bad / "job.json").write_text(json.dumps(meta))
    (tmp_path / "jobs" / ".0123456789ab.part").mkdir()  # a staging folder a killed server left
    again = Studio(tmp_path, FakeRunner(steps=2))
    try:
        err = capsys.readouterr().err
        assert f"{bad}" in err and "left out" in err and err.count("\n") == 1
        ids = [j["id"] for j in client_for(again).get("/api/jobs").json()["jobs"]]
        assert ids == [good]
        assert not (tmp_path / "jobs" / ".0123456789ab.part").exists()
    finally:
        again.close()


def test_an_event_stream_asked_from_past_the_end_of_a_finished_job_ends(client, fake):
    job = submit(client).json()["id"]
    events = follow(client, job)
    assert events[-1]["type"] == "done"
    started = time.monotonic()
    with client.stream("GET", f"/api/jobs/{job}/events", headers={"Last-Event-ID": str(len(events) + 5)}) as stream:
        lines = [line for line in stream.iter_lines() if line.startswith("data: ")]
    assert time.monotonic() - started < 5
    assert [json.loads(line[6:]) for line in lines] == [{"type": "done", "error": None}]


def test_a_settled_job_is_forgotten_by_the_runner_and_served_from_its_folder(fake, client):
    """A long-lived studio kept every job's events and last preview in
    the runner's memory; once a job's files are written, the runner drops it and the page
    gets the same answers from the job's folder."""
    job_id = submit(client).json()["id"]
    events = follow(client, job_id)
    assert events[-1]["type"] == "done" and any(e["type"] == "progress" for e in events)
    deadline = time.monotonic() + 10
    while fake.runner.jobs() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fake.runner.jobs() == []  # nothing kept in memory
    status = client.get(f"/api/jobs/{job_id}").json()
    assert status["state"] == "done" and status["result"] is True
    again = follow(client, job_id)  # replayed from the job's history.json, for the page's chart
    replayed = [e for e in again if e["type"] == "progress"]
    assert again[-1] == {"type": "done", "error": None}
    assert [e["step"] for e in replayed] == [e["step"] for e in events if e["type"] == "progress" and not e["done"]]
    assert all(set(e) >= {"terms", "loss", "scale", "scales", "total_steps", "fraction", "size"} for e in replayed)
    assert follow(client, job_id, since=len(replayed)) == [{"type": "done", "error": None}]  # from the end
    assert client.get(f"/api/jobs/{job_id}/preview.jpg").status_code == 200
    assert client.delete(f"/api/jobs/{job_id}").status_code == 200


def test_a_finished_picture_is_printed_as_a_job_of_its_own_continued_from_it(client, fake, tmp_path):
    job_id = submit(client, {"preset": "fast", "size": 64}).json()["id"]
    follow(client, job_id)
    # A6 at 20 dpi for a 64x48 photo: landscape, 148 x 105 mm -> 110x83 px
    response = client.post(f"/api/jobs/{job_id}/print", data={"paper": "A6", "dpi": "20"})
    assert response.status_code == 201, response.text
    printed = response.json()["id"]
    events = follow(client, printed)
    assert events[-1]["type"] == "done"
    status = client.get(f"/api/jobs/{printed}").json()
    assert status["request"] == {"preset": "fast", "size": 64, "print": "A6", "dpi": 20.0}
    recipe = status["recipe"]
    assert recipe["size"] == 110 and recipe["init"] == "image" and recipe["start_size"] == 64
    assert recipe["look_size"] == 64 and recipe["detail_size"] == 64  # the preview's look, print's steps
    assert recipe["steps"] == PRESETS["fast"].steps and recipe["first_steps"] == 10
    assert status["inputs"] == {"content": "photo.png", "styles": ["painting0.png"], "mask": None}
    folder = tmp_path / "data" / "jobs" / printed
    assert (folder / "init").read_bytes() == (tmp_path / "data" / "jobs" / job_id / "result.png").read_bytes()
    with Image.open(folder / "result.png") as image:
        assert image.info["dpi"] == pytest.approx((20, 20), abs=0.02)  # PNG keeps dots per metre
    refusals = [
        ({"paper": "B9", "dpi": "300"}, 400, "paper"),
        ({"paper": "A6", "dpi": "5"}, 400, "dpi"),
        ({"paper": "A6", "dpi": "many"}, 400, "dpi"),
        ({"paper": "A6", "dpi": "10"}, 400, "not smaller than the picture asked"),  # 55x41 px: no larger
        ({"paper": "9" * 400 + "x10cm", "dpi": "300"}, 400, "no print is that large"),
        ({"paper": "9000x9000mm", "dpi": "2400"}, 400, "choose a smaller paper or dpi"),
    ]
    for data, status_code, words in refusals:
        refused = client.post(f"/api/jobs/{job_id}/print", data=data)
        assert refused.status_code == status_code and words in refused.json()["error"], (data, refused.text)
        assert "\n" not in refused.json()["error"]
    assert client.post("/api/jobs/0123456789ab/print", data={"paper": "A4"}).status_code == 404
    running = submit(client, {"preset": "fast", "size": 64}).json()["id"]
    assert client.post(f"/api/jobs/{running}/print", data={"paper": "A4"}).status_code == 409
    assert len(client.get("/api/jobs").json()["jobs"]) == 3  # nothing kept of the refused ones
