"""Nothing a person owns is lost, every failure is one line, every signal keeps the work.

One test id per case. The command-line runs go through `cli.main` in-process where no
signal is involved, and through a subprocess where one is (real signals, sent at several
moments: during the imports, during a step, during the save)."""

import os
import random
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from impasto import cli
from impasto.errors import ImageError
from impasto.imageio import load_image, save_image

PY = sys.executable


@pytest.fixture
def files(tmp_path):
    content, style, mask = tmp_path / "photo.png", tmp_path / "painting.png", tmp_path / "mask.png"
    Image.new("RGB", (40, 30), (200, 120, 40)).save(content)
    Image.effect_noise((48, 48), 60).convert("RGB").save(style)
    Image.new("L", (40, 30), 255).save(mask)
    return content, style, mask


def _one_line(capsys, code, expected_code=2):
    err = capsys.readouterr().err
    assert code == expected_code, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


# -- 1. the output is never one of the inputs -------------------------------------------------

SAME_FILE = ["content", "style", "mask", "style mask", "init", "relative", "dotdot", "link"]


@pytest.mark.parametrize("case", SAME_FILE)
def test_the_output_is_never_an_input(files, tmp_path, capsys, monkeypatch, case):
    content, style, mask = files
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    os.symlink(content, tmp_path / "link.png")
    output = {
        "content": str(content), "style": str(style), "mask": str(mask), "style mask": str(style),
        "init": str(style), "relative": "photo.png", "dotdot": "sub/../photo.png", "link": "link.png",
    }[case]  # fmt: skip
    extra = {"mask": ["--mask", str(mask)], "style mask": ["--mask", str(mask), "--style-mask", str(style)],
             "init": ["--init", str(style)]}.get(case, [])  # fmt: skip
    before = {p: p.read_bytes() for p in (content, style, mask)}
    code = cli.main(["stylize", str(content), str(style), "-o", output, "--size", "32", "--steps", "1", *extra])
    err = _one_line(capsys, code)
    assert "is an input" in err
    assert {p: p.read_bytes() for p in before} == before


# -- 2. settings that size allocations are bounded or counted ------------------------------


def test_a_huge_feather_costs_no_more_than_the_mask():
    from impasto.objective.masks import gaussian_blur

    masks = torch.zeros(1, 1, 30, 40)
    masks[..., :20] = 1
    started = time.perf_counter()
    out = gaussian_blur(masks, 1e12)
    assert out.shape == masks.shape and time.perf_counter() - started < 1.0
    assert out.max() - out.min() < 0.5  # that blurred, it is nearly flat


def test_a_huge_feather_runs(files, tmp_path, capsys):
    content, style, mask = files
    out = tmp_path / "out.png"
    args = ["stylize", str(content), str(style), "-o", str(out), "--size", "32", "--steps", "1", "-q",
            "--mask", str(mask), "--mask-feather", "1e15"]  # fmt: skip
    assert cli.main(args) == 0 and out.exists()


def test_an_upscaled_style_is_counted_by_the_memory_check(files, tmp_path, capsys, monkeypatch):
    import impasto.engine.memory

    monkeypatch.setattr(impasto.engine.memory, "available_bytes", lambda device: 2 * 2**30)
    content, style, _ = files
    out = tmp_path / "out.png"
    args = ["stylize", str(content), str(style), "-o", str(out), "--size", "64", "--steps", "1",
            "--style-scale", "100", "--upscale-style"]  # fmt: skip
    err = _one_line(capsys, cli.main(args))
    assert "a style image at" in err and "--style-scale" in err and not out.exists()


def test_a_large_input_is_decoded_reduced(tmp_path):
    path = tmp_path / "large.jpg"
    Image.new("RGB", (9000, 6000), (90, 140, 200)).save(path, quality=80)
    whole = load_image(path)
    reduced = load_image(path, needed=512 * 512)
    assert whole.shape[-2:] == (6000, 9000)
    assert reduced.shape[-1] < 9000 and reduced.shape[-1] >= 3 * 512 * 9000 / (9000 * 6000) ** 0.5
    small = tmp_path / "small.jpg"
    Image.new("RGB", (2000, 1500), (90, 140, 200)).save(small, quality=80)
    assert load_image(small, needed=64 * 64).shape[-2:] == (1500, 2000)  # under 4 Mpx: decoded whole


@pytest.mark.parametrize("name", ["photo.png", "photo.jpg", "odd.jpg", "odd.png"])
def test_a_reduced_decode_keeps_the_picture_the_run_starts_from(tmp_path, name):
    """Reduced decoding keeps the geometry exact (no partial last block stretching the
    picture): at the output's size it differs from the whole decode by under a level
    (JPEG's DCT scaling rings differently at these edges than a whole decode: 0.84)."""
    from impasto.imageio import resize

    w, h = (4000, 3000) if name.startswith("photo") else (3999, 2999)
    y, x = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    pattern = ((x // 40 + y // 40) % 2 * 180 + 40).to(torch.uint8)  # sharp edges everywhere
    Image.fromarray(torch.stack([pattern, pattern.flip(1), pattern.flip(0)], -1).numpy()).save(tmp_path / name)
    whole = load_image(tmp_path / name)
    reduced = load_image(tmp_path / name, needed=256 * 256)
    assert reduced.shape[-1] < w / 2
    size = (round(h * 256 / w), 256)
    diff = (resize(whole, size) - resize(reduced, size)).abs() * 255
    # a partial last block (the stretch this guards against) gives 3.6 and 11 levels here
    assert float(diff.mean()) < 1.0 and float(diff.flatten().quantile(0.99)) < 3.0


def test_masks_are_decoded_reduced(tmp_path):
    from impasto.objective.masks import load_masks

    path = tmp_path / "labels.png"
    label = Image.new("RGB", (6000, 4500), (0, 0, 0))
    label.paste((255, 255, 255), (3000, 0, 6000, 4500))
    label.save(path)
    masks = load_masks([path], 2, 4 / 3, needed=64 * 48)
    assert masks.shape[0] == 2 and masks.shape[-1] <= 3 * 64 + 1
    assert float(masks[0, 0, :, : masks.shape[-1] // 2 - 2].min()) == 1.0  # dark half: the first style


# -- 3. a finished result is never thrown away ------------------------------------------------


@pytest.mark.parametrize("length", [241, 250, 255])
def test_long_legal_output_names_work(files, tmp_path, length):
    content, style, _ = files
    out = tmp_path / ("a" * (length - 4) + ".png")
    assert cli.main(["stylize", str(content), str(style), "-o", str(out), "--size", "32", "--steps", "1", "-q"]) == 0
    assert out.exists() and not list(tmp_path.glob(".impasto-*"))


def test_a_name_over_255_bytes_is_one_line_before_the_run(files, tmp_path, capsys):
    content, style, _ = files
    out = tmp_path / ("a" * 252 + ".png")
    err = _one_line(capsys, cli.main(["stylize", str(content), str(style), "-o", str(out), "--size", "32"]))
    assert "256 bytes long; the limit is 255" in err


def test_a_save_that_fails_at_the_end_says_where_the_picture_went(files, tmp_path, capsys, monkeypatch):
    import impasto.imageio

    content, style, _ = files
    out = tmp_path / "out.png"
    real = impasto.imageio.save_image

    def full_disk(image, path, **kwargs):
        if Path(path) == out:
            raise ImageError(f"{path}: cannot write (No space left on device)")
        return real(image, path, **kwargs)

    monkeypatch.setattr("impasto.cli.stylize.save_image", full_disk)
    err = _one_line(capsys, cli.main(["stylize", str(content), str(style), "-o", str(out), "--size", "32",
                                      "--steps", "1", "-q"]))  # fmt: skip
    rescued = Path(err.rsplit("saved to ", 1)[1].split(" instead")[0])
    assert "No space left" in err and rescued.is_file() and not out.exists()
    with Image.open(rescued) as image:
        assert image.size == (32, 24)
    rescued.unlink()


def test_a_failed_snapshot_warns_and_the_run_goes_on(files, tmp_path, capsys, monkeypatch):
    content, style, _ = files
    out = tmp_path / "out.png"
    (tmp_path / "out.00001.png").mkdir()  # a folder where the first snapshot should go
    args = ["stylize", str(content), str(style), "-o", str(out), "--size", "32", "--steps", "3", "--scales", "1",
            "--save-every", "1", "-q"]  # fmt: skip
    assert cli.main(args) == 0
    err = capsys.readouterr().err
    assert err.count("warning: snapshot not written") == 1 and out.exists()
    assert (tmp_path / "out.00002.png").exists() and (tmp_path / "out.00003.png").exists()


# -- 4. signals -----------------------------------------------------------------------------


@pytest.fixture
def started():
    """Start the command line in a subprocess; whatever is still running at the end is killed."""
    processes = []

    def start(args, script=None):
        command = [PY, "-c", script, *args] if script else [PY, "-m", "impasto", *args]
        # The default dispositions in the child, whatever pytest inherited (under nohup
        # SIGHUP is ignored, in a background job SIGINT is, and impasto keeps those ignored).
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_default_signals
        )
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def _default_signals():
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


def _wait_for(process, text, timeout=120):
    """Read stderr until a line contains ``text``; returns all lines read (a thread keeps reading)."""
    lines, seen = [], threading.Event()

    def read():
        for line in process.stderr:
            lines.append(line)
            if text in line:
                seen.set()
        seen.set()

    threading.Thread(target=read, daemon=True).start()
    assert seen.wait(timeout), lines
    return lines


def _long_run(files, out):
    content, style, _ = files
    return ["stylize", str(content), str(style), "-o", str(out), "--preset", "gatys", "--size", "32", "--scales", "1",
            "--steps", "5000"]  # fmt: skip


SIGNAL_CODES = [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)]
#: Moments from the start of the process: inside the interpreter's start, inside torch's
#: import (about a second), and after it. Seeded, so a failure names its moment; the
#: 200-try figure of docs/reliability.md comes from benchmarks/signals.py.
_RNG = random.Random(22)
START_UP_DELAYS = sorted(round(_RNG.uniform(0.15, 2.5), 2) for _ in range(4))


@pytest.mark.parametrize(("signum", "code"), SIGNAL_CODES)
@pytest.mark.parametrize("delay", [0.25, 0.6, *START_UP_DELAYS])
def test_a_signal_during_start_up_exits_cleanly(files, tmp_path, started, signum, code, delay):
    out = tmp_path / "out.png"
    process = started(_long_run(files, out))
    time.sleep(delay)
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    assert process.returncode == code, err
    assert "Traceback" not in err and err.strip().count("\n") == 0, err
    assert ("nothing written" in err and not out.exists()) or ("interrupted at step" in err and out.exists())


@pytest.mark.parametrize(("signum", "code"), SIGNAL_CODES)
@pytest.mark.parametrize("twice", [False, True])
def test_a_signal_during_the_steps_saves_the_picture(files, tmp_path, started, signum, code, twice):
    out = tmp_path / "out.png"
    process = started(_long_run(files, out))
    lines = _wait_for(process, "/5000")
    process.send_signal(signum)
    if twice:  # the second lands while the first is being handled or the picture saved
        time.sleep(0.02)
        process.send_signal(signum)
    process.wait(timeout=120)
    time.sleep(0.2)
    err = "".join(lines)
    assert process.returncode == code, err
    assert "Traceback" not in err and "interrupted at step" in err, err
    with Image.open(out) as image:
        assert image.size == (32, 24)
    assert not list(tmp_path.glob(".impasto-*"))


SLOW_SAVE = """
import os, sys, time
from impasto.cli import main
real = os.replace
def slow(a, b):
    if str(b).endswith("out.png"):
        sys.stderr.write("SAVING\\n"); sys.stderr.flush(); time.sleep(1.5)
    return real(a, b)
os.replace = slow
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_the_save_lets_the_save_finish(files, tmp_path, started, signum, code):
    content, style, _ = files
    out = tmp_path / "out.png"
    process = started(["stylize", str(content), str(style), "-o", str(out), "--size", "32", "--steps", "2", "-q"],
                     SLOW_SAVE)  # fmt: skip
    lines = _wait_for(process, "SAVING")
    process.send_signal(signum)
    process.wait(timeout=60)
    time.sleep(0.2)
    assert process.returncode == code, "".join(lines)
    assert "Traceback" not in "".join(lines)
    with Image.open(out) as image:
        image.load()
        assert image.size == (32, 24)
    assert not list(tmp_path.glob(".impasto-*"))


# -- 5. permissions ---------------------------------------------------------------------------


@pytest.mark.parametrize(("umask", "mode"), [(0o077, 0o600), (0o022, 0o644), (0o002, 0o664)])
def test_a_new_output_honours_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        path = save_image(torch.zeros(1, 3, 16, 16), tmp_path / "new.png")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == mode


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o664])
def test_an_existing_output_keeps_its_mode(tmp_path, mode):
    path = tmp_path / "private.png"
    path.write_bytes(b"old")
    path.chmod(mode)
    save_image(torch.zeros(1, 3, 16, 16), path)
    assert stat.S_IMODE(path.stat().st_mode) == mode and path.read_bytes() != b"old"


def test_a_read_only_output_is_left_alone(files, tmp_path, capsys):
    content, style, _ = files
    out = tmp_path / "locked.png"
    out.write_bytes(b"keep me")
    out.chmod(0o444)
    err = _one_line(capsys, cli.main(["stylize", str(content), str(style), "-o", str(out), "--size", "32"]))
    assert "read-only" in err and out.read_bytes() == b"keep me"


def test_a_link_as_output_is_written_through(tmp_path):
    target = tmp_path / "real.png"
    target.write_bytes(b"old")
    link = tmp_path / "link.png"
    os.symlink(target, link)
    save_image(torch.zeros(1, 3, 16, 16), link)
    assert link.is_symlink() and Image.open(target).size == (16, 16)


# -- never replace what is not a regular file (the rules, class 1) ---------------------------------


def test_an_output_that_is_a_device_is_refused_before_the_run_and_left_a_device(files, tmp_path, capsys):
    # A character device node of our own (as root, which CI is): renaming a PNG over it is
    # what turned /dev/null into a file. Elsewhere, a link to /dev/zero (also a device, and
    # not one impasto writes into) shows the same refusal.
    content, style, _ = files
    if os.geteuid() == 0:
        device = tmp_path / "zero-node"
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 5))  # the node of /dev/zero
    else:
        device = Path("/dev/zero")
    out = tmp_path / "out.png"
    os.symlink(device, out)
    err = _one_line(capsys, cli.main(["stylize", str(content), str(style), "-o", str(out), "--size", "32"]))
    assert "is a device, not a regular file" in err and str(out) in err
    assert stat.S_ISCHR(os.stat(device).st_mode) and out.is_symlink()
    with pytest.raises(ImageError, match="not a regular file"):
        save_image(torch.zeros(1, 3, 16, 16), out)
    assert stat.S_ISCHR(os.stat(device).st_mode)


def test_an_output_that_is_a_socket_is_refused(files, tmp_path, capsys):
    import socket

    content, style, _ = files
    out = tmp_path / "out.png"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(out))
        err = _one_line(capsys, cli.main(["stylize", str(content), str(style), "-o", str(out), "--size", "32"]))
        assert "is a socket" in err and stat.S_ISSOCK(out.stat().st_mode)
    finally:
        server.close()


def test_a_fifo_as_output_is_written_into_as_a_stream(files, tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    save_image(torch.rand(1, 3, 20, 30), fifo)
    reader.join(timeout=10)
    assert stat.S_ISFIFO(fifo.stat().st_mode)  # still a FIFO, not replaced by a file
    with Image.open(__import__("io").BytesIO(received[0])) as image:
        assert image.size == (30, 20)


def test_the_null_device_as_output_discards_the_picture_and_stays_a_device(tmp_path):
    # As root, a node of the null device of our own (so that a build that still replaced
    # it would replace this one, not the machine's /dev/null); otherwise /dev/null itself.
    null = Path(os.devnull)
    if os.geteuid() == 0:
        null = tmp_path / "null-node"
        os.mknod(null, 0o666 | stat.S_IFCHR, os.stat(os.devnull).st_rdev)
    link = tmp_path / "discard.png"
    os.symlink(null, link)
    save_image(torch.rand(1, 3, 16, 16), link)
    assert stat.S_ISCHR(os.stat(null).st_mode) and link.is_symlink()


# -- 6. errors that must stay one line ------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("name too long", "File name too long"),
        ("huge seed", "--seed: must be a whole number from 0 to 2^64 - 1"),
        ("device", "--device: unknown device 'cpu:x'"),
        ("overflowing weights", "--style-weights: add up to more than a number can hold"),
        ("two from stdin", "only one image can come from standard input"),
        ("empty name", "content: the file name is empty"),
        ("absurd style scale", "--style-scale: must be at most 100"),
        (
            "thin style",
            "painting.png: a 48x48 painting is 1x1 px at a 32x24 scale (--style-scale 1e-09), under the "
            "network's 16 px; use --style-scale of at least 0.58",
        ),
    ],
)
def test_errors_that_escaped_are_one_line(files, tmp_path, capsys, case, message):
    content, style, _ = files
    out = tmp_path / "out.png"
    args = {
        "name too long": [str(tmp_path / ("b" * 300 + ".png")), str(style)],
        "huge seed": [str(content), str(style), "--init", "noise", "--seed", str(2**64)],
        "device": [str(content), str(style), "--device", "cpu:x"],
        "overflowing weights": [str(content), str(style), str(style), "--style-weights", "1e308,1e308"],
        "two from stdin": ["-", "-"],
        "empty name": ["", str(style)],
        "absurd style scale": [str(content), str(style), "--style-scale", "1e200", "--upscale-style"],
        "thin style": [str(content), str(style), "--style-scale", "1e-9"],
    }[case]
    err = _one_line(capsys, cli.main(["stylize", *args, "-o", str(out), "--size", "32"]))
    assert message in err and not out.exists()
    if case == "thin style":  # the advice works
        advised = ["stylize", str(content), str(style), "--style-scale", "0.58", "-o", str(out), "--size", "32"]
        assert cli.main([*advised, "--steps", "1", "-q"]) == 0 and out.exists()


def test_a_folder_without_search_permission_is_one_line(files, tmp_path):
    """Run as an unprivileged user (root searches any folder)."""
    content, style, _ = files
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "photo.png").write_bytes(content.read_bytes())
    locked.chmod(0o600)
    tmp_path.chmod(0o755)
    for path in (content, style):
        path.chmod(0o644)
    command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", PY, "-m", "impasto", "stylize",
               str(locked / "photo.png"), str(style), "-o", "/tmp/never.png"]  # fmt: skip
    if os.geteuid() != 0 or subprocess.run(["setpriv", "--version"], capture_output=True).returncode != 0:
        pytest.skip("needs root and setpriv to run as another user")
    preflight = subprocess.run([*command[:5], "-c", "import impasto.cli"], capture_output=True, text=True, timeout=120)
    if preflight.returncode != 0:  # e.g. the checkout lies in a folder only root may enter
        pytest.skip(f"the unprivileged user cannot run impasto here: {preflight.stderr.strip()[-200:]}")
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "permission denied" in result.stderr and result.stderr.count("\n") == 1, result.stderr


# -- 7. advice that works, and the panorama ------------------------------------------------------


def test_a_panorama_names_a_size_that_works_and_runs_at_it(tmp_path, capsys):
    panorama = tmp_path / "panorama.png"
    Image.linear_gradient("L").resize((10000, 20)).convert("RGB").save(panorama)
    style = tmp_path / "style.png"
    Image.effect_noise((64, 64), 60).convert("RGB").save(style)
    out = tmp_path / "out.png"
    err = _one_line(capsys, cli.main(["stylize", str(panorama), str(style), "-o", str(out)]))
    assert "use --size of at least 8000" in err
    args = ["stylize", str(panorama), str(style), "-o", str(out), "--size", "8000", "--steps", "1", "--first-steps",
            "1", "-q", "--preset", "fast"]  # fmt: skip
    assert cli.main(args) == 0
    with Image.open(out) as image:
        assert image.size == (8000, 16)


# -- also decided: pipes ---------------------------------------------------------------------------


def test_stdin_and_stdout_in_a_pipeline(files, tmp_path):
    content, style, _ = files
    result = subprocess.run(
        [PY, "-m", "impasto", "stylize", "-", str(style), "-o", "-", "--size", "32", "--steps", "1", "-q"],
        input=content.read_bytes(), capture_output=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    import io

    with Image.open(io.BytesIO(result.stdout)) as image:
        assert image.format == "PNG" and image.size == (32, 24)
    assert b"wrote -" in result.stderr


# -- every setting and input bounded before work (the rules, class 2) ------------------------------


def test_a_billion_scales_is_one_line_before_anything_is_allocated(files, tmp_path, capsys):
    content, style, _ = files
    out = tmp_path / "out.png"
    err = _one_line(capsys, cli.main(["stylize", str(content), str(style), "-o", str(out), "--scales", "1000000000"]))
    assert "--scales: must be at most 40" in err and not out.exists()


def test_an_endless_standard_input_is_refused_by_its_size(monkeypatch):
    import io

    import impasto.imageio

    class Endless(io.RawIOBase):
        def readable(self):
            return True

        def readinto(self, buffer):
            buffer[:] = b"\0" * len(buffer)
            return len(buffer)

    monkeypatch.setattr(impasto.imageio.read, "MAX_STDIN_BYTES", 2**20)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BufferedReader(Endless())))
    with pytest.raises(ImageError, match="stdin: more than 1 MB"):
        load_image("-")


# -- a picture that cannot go where it was asked is still never lost (the rules, class 4) ----------


def test_a_run_with_standard_error_closed_runs_on_quietly(files, tmp_path):
    content, style, _ = files
    out = tmp_path / "out.png"
    command = [PY, "-m", "impasto", "stylize", str(content), str(style), "-o", str(out), "--preset", "gatys",
               "--size", "32", "--scales", "1", "--steps", "3"]  # fmt: skip
    done = subprocess.run(command, stdout=subprocess.PIPE, preexec_fn=lambda: os.close(2), timeout=300)
    assert done.returncode == 0
    assert done.stdout.decode().strip() == f"wrote {out}"  # nothing of stderr's went to stdout
    with Image.open(out) as image:
        assert image.size == (32, 24)


@pytest.mark.parametrize("where", ["a full disk", "closed"])
def test_a_picture_for_standard_output_that_cannot_go_there_is_rescued(files, tmp_path, where):
    if where == "a full disk" and not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    content, style, _ = files
    command = [PY, "-m", "impasto", "stylize", str(content), str(style), "-o", "-", "--preset", "gatys",
               "--size", "32", "--scales", "1", "--steps", "3", "-q"]  # fmt: skip
    if where == "closed":
        done = subprocess.run(command, stderr=subprocess.PIPE, text=True, preexec_fn=lambda: os.close(1), timeout=300)
    else:
        with open("/dev/full", "wb") as full:
            done = subprocess.run(command, stdout=full, stderr=subprocess.PIPE, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    rescued = Path(done.stderr.split("saved to ")[1].split(" instead")[0])
    try:
        assert "stdout" in rescued.name
        with Image.open(rescued) as image:
            assert image.size == (32, 24)
    finally:
        rescued.unlink(missing_ok=True)


def test_an_infinite_loss_from_the_histogram_weight_names_it(files, tmp_path, capsys):
    content, style, _ = files
    out = tmp_path / "out.png"
    args = ["stylize", str(content), str(style), "-o", str(out), "--size", "32", "--scales", "1", "--steps", "2",
            "--histogram-weight", "1e38", "--style-weight", "0", "--content-weight", "0",
            "--tv-weight", "0"]  # fmt: skip
    err = _one_line(capsys, cli.main(args))
    assert "infinite or NaN" in err and "--histogram-weight" in err and not out.exists()
