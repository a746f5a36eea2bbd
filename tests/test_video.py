"""impasto video: the flow and warping code against clips whose flow is known, the
temporal term, frames in and out (audio, rotation, frame rates, odd sizes), the frame
loop's resumption, and the command line on tiny clips."""

from __future__ import annotations

import fractions
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

av = pytest.importorskip("av", reason="the video extra is not installed")
cv2 = pytest.importorskip("cv2", reason="the video extra is not installed")

from impasto.cli import main  # noqa: E402
from impasto.errors import ConfigError  # noqa: E402
from impasto.objective.terms import Features, TemporalTerm  # noqa: E402
from impasto.presets import PRESETS  # noqa: E402
from impasto.video.clips import pan_zoom_clip  # noqa: E402
from impasto.video.flow import flow, pair_flows, reliability, warp, warping_error  # noqa: E402
from impasto.video.io import even_size, open_source, read_frames, write_output  # noqa: E402
from impasto.video.paint import FramePainter, warped_start  # noqa: E402


def texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth random RGB picture (flow needs texture at several scales)."""
    rng = np.random.default_rng(seed)
    layers = []
    for blur in (3, 9, 25):
        noise = rng.random((h, w, 3)).astype(np.float32)
        layers.append(cv2.GaussianBlur(noise, (0, 0), blur))
    picture = sum(layer - layer.mean() for layer in layers)
    picture = (picture - picture.min()) / (picture.max() - picture.min())
    return (picture * 255).astype(np.uint8)


def write_clip(path: Path, frames: list[np.ndarray], fps: int = 12, audio: bool = True, **stream) -> None:
    """A test clip: H.264 frames at ``fps`` (or at ``stream["pts"]`` in ``stream["time_base"]``),
    with a 440 Hz tone as long as the video when ``audio``."""
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.height, video.width = frames[0].shape[:2]
        video.pix_fmt = "yuv420p"
        if "rotation" in stream:
            video.set_display_rotation(stream["rotation"])
        sound = out.add_stream("aac", rate=44100) if audio else None
        for n, frame in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
            picture.pts = stream["pts"][n] if "pts" in stream else n
            picture.time_base = stream.get("time_base", fractions.Fraction(1, fps))
            for packet in video.encode(picture):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        if sound is not None:
            samples = int(len(frames) / fps * 44100)
            wave = (0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / 44100)).astype(np.float32)
            for k in range(0, samples, 1024):
                chunk = av.AudioFrame.from_ndarray(wave[None, k : k + 1024].copy(), format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts = 44100, k
                chunk.time_base = fractions.Fraction(1, 44100)
                for packet in sound.encode(chunk):
                    out.mux(packet)
            for packet in sound.encode():
                out.mux(packet)


def decoded(path: Path) -> tuple[list[np.ndarray], float | None, list[float]]:
    """A video's frames, its audio's duration in seconds (None without audio), frame times."""
    with av.open(str(path)) as container:
        frames, times = [], []
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            times.append(frame.time)
    audio_seconds = None
    with av.open(str(path)) as container:
        if container.streams.audio:
            audio_seconds = sum(f.samples for f in container.decode(audio=0)) / container.streams.audio[0].rate
    return frames, audio_seconds, times


@pytest.fixture(scope="module")
def moving():
    """A pan and zoom across a texture with another texture moving over it, exact flow known."""
    return pan_zoom_clip(texture(200, 260), (96, 128), 4, pan=(2.5, 1.0), zoom=1.01, sprite=texture(28, 28, 1))


# -- flow -------------------------------------------------------------------------------


def test_flow_matches_the_exact_flow_where_it_is_reliable(moving):
    for t in range(len(moving.frames) - 1):
        estimated = flow(moving.frames[t], moving.frames[t + 1])
        reliable = reliability(estimated, flow(moving.frames[t + 1], moving.frames[t]))
        error = np.linalg.norm(estimated - moving.flows[t], axis=-1)
        assert reliable.mean() > 0.8
        assert (error * reliable).sum() / reliable.sum() < 0.5  # pixels; the motion is 2.5-4 px a frame
        assert np.median(error) < 0.5


def test_warping_by_the_exact_flow_rebuilds_the_frame(moving):
    a, b = moving.frames[0], moving.frames[1]
    back, reliable = pair_flows(a, b)  # warps a picture of frame 0 onto frame 1
    rebuilt = warp(a.astype(np.float32), back)
    difference = np.abs(rebuilt - b).mean(-1)
    assert (difference * reliable).sum() / reliable.sum() < 4  # levels of 255 (resampling blur)
    # the unreliable pixels are where the sprite uncovers and covers the background
    assert difference[reliable == 0].mean() > 2 * (difference * reliable).sum() / reliable.sum()


def test_reliability_marks_what_comes_into_view():
    shift = np.full((64, 64, 2), (6.0, 0.0), np.float32)  # every pixel's match lies 6 px right
    reverse = -shift
    reliable = reliability(shift, reverse)
    assert reliable[:, :50].min() == 1
    assert reliable[:, 60:].max() == 0  # its match is outside the frame
    assert reliability(shift, shift)[:, :50].max() == 0  # a reverse flow that does not bring it back


def test_warping_error_orders_steady_and_flickering_outputs(moving):
    frames = moving.frames
    steady = [f.astype(np.float32) / 255 for f in frames]
    rng = np.random.default_rng(0)
    flicker = [np.clip(s + rng.normal(0, 0.1, s.shape).astype(np.float32), 0, 1) for s in steady]
    still = [np.full_like(steady[0], 0.5)] * len(frames)
    assert warping_error(still, frames) == 0
    assert 0 < warping_error(steady, frames) < warping_error(flicker, frames) / 10
    with pytest.raises(ValueError):
        warping_error(steady[:2], frames)


def test_warping_error_over_several_frames():
    """``gap``: the pairs t, t + gap (long-term consistency)."""
    clip = pan_zoom_clip(texture(200, 260), (96, 128), 6, pan=(2.0, 0.5))
    steady = [f.astype(np.float32) / 255 for f in clip.frames]
    drifting = [np.clip(s + 0.02 * k, 0, 1) for k, s in enumerate(steady)]  # brighter every frame
    assert warping_error(drifting, clip.frames, gap=4) > 4 * warping_error(steady, clip.frames, gap=4)
    assert warping_error(drifting, clip.frames, gap=4) > 4 * warping_error(drifting, clip.frames)
    assert warping_error(steady[:4], clip.frames[:4], gap=4) == 0


def test_earlier_frames_fill_in_what_was_hidden_for_a_frame():
    """A still photo that something hides for one frame (frame 4 of 6): at frame 5 the
    hidden part is back, the flow from frame 4 cannot be trusted there, the flow from
    frame 3 can. With frames 3 and 1 (t-2, t-4: long-term consistency) the start there
    is frame 3's picture of it, trusted; without, frame 4's warped picture, untrusted.
    The 'paintings' are the frames themselves, so the right start is the frame."""
    photo = texture(96, 128)
    frames = [photo.copy() for _ in range(6)]
    hidden = np.zeros((96, 128), bool)
    hidden[30:70, 40:90] = True
    frames[4][hidden] = texture(96, 128, 3)[hidden]
    inside = np.zeros_like(hidden)
    inside[38:62, 48:82] = True  # away from the edges, where any flow is smoothed over
    alone = warped_start(frames[5], frames[4], frames[4])
    held = warped_start(frames[5], frames[4], frames[4], earlier=[(frames[3], frames[3]), (frames[1], frames[1])])
    assert alone is not None and held is not None
    (start_alone, mask_alone), (start_held, mask_held) = alone, held
    assert set(np.unique(mask_held)) <= {0.0, 1.0} and (mask_held >= mask_alone).all()
    assert mask_alone[inside].mean() < 0.2 and mask_held[inside].mean() > 0.9
    error = lambda start: np.abs(start.astype(np.float32) - frames[5]).mean(-1)[inside].mean()  # noqa: E731
    assert error(start_held) < 0.25 * error(start_alone)
    assert (start_held == start_alone)[mask_alone == 1].all()  # the previous frame's trusted pixels stay
    # a cut: none
    assert warped_start(texture(96, 128, 2), frames[4], frames[4]) is None


# -- the temporal term ----------------------------------------------------------------


def test_temporal_term_pulls_reliable_pixels_only():
    target = torch.rand(1, 3, 8, 10)
    mask = torch.zeros(1, 1, 8, 10)
    mask[..., :5] = 1
    image = torch.rand(1, 3, 8, 10, requires_grad=True)
    term = TemporalTerm(target, mask, 3.0)
    value = term(Features(image, {}, ()))
    expected = 3.0 * ((image - target)[..., :5] ** 2).sum() / image.numel()
    assert torch.allclose(value, expected)
    value.backward()
    assert image.grad is not None
    assert image.grad[..., 5:].abs().max() == 0
    assert image.grad[..., :5].abs().min() > 0
    assert term.key == "temporal" and term.layers == ()


def test_a_cut_starts_the_painting_over():
    calls = []

    class Painter(FramePainter):
        def first(self, frame, on_progress=None):
            calls.append("first")
            return torch.zeros(1, 3, *frame.shape[:2])

    class Stylizer:
        def run(self, inputs, recipe, **kwargs):
            calls.append("warm")
            return inputs.init

    painter = Painter(Stylizer(), PRESETS["fast"], [torch.rand(1, 3, 32, 32)], ["s"])
    a, b = texture(48, 64, 1), texture(48, 64, 2)
    shifted = np.roll(a, 2, axis=1)
    painter.next(shifted, a, a)
    painter.next(b, a, a)  # another shot
    assert calls == ["warm", "first"]


# -- frames in and out ----------------------------------------------------------------


def test_read_frames_at_the_working_size_and_rate(tmp_path, moving):
    path = tmp_path / "clip.mp4"
    frames = [cv2.resize(f, (64, 48)) for f in moving.frames] * 3  # 12 frames at 12 fps
    write_clip(path, frames)
    source = open_source(str(path))
    assert source.size == (48, 64) and source.fps == 12 and source.audio
    got = list(read_frames(source, (24, 32), source.fps))
    assert len(got) == 12 and got[0].shape == (24, 32, 3)
    assert len(list(read_frames(source, (24, 32), fractions.Fraction(6)))) == 6  # every other frame
    assert len(list(read_frames(source, (24, 32), source.fps, start=0.5, duration=0.25))) == 3


def test_variable_frame_rate_keeps_the_timing(tmp_path):
    # four frames shown for 0.1, 0.3, 0.1 and 0.1 s (ms timestamps)
    frames = [np.full((32, 32, 3), v, np.uint8) for v in (0, 80, 160, 240)]
    path = tmp_path / "vfr.mkv"
    write_clip(path, frames, fps=10, audio=False, pts=[0, 100, 400, 500], time_base=fractions.Fraction(1, 1000))
    source = open_source(str(path))
    got = [int(f.mean()) for f in read_frames(source, (32, 32), fractions.Fraction(10))]
    assert [round(v / 80) for v in got] == [0, 1, 1, 1, 2, 3]
    # a constant rate whose times the container rounds (Matroska: milliseconds)
    path = tmp_path / "cfr.mkv"
    write_clip(path, frames[:3], fps=12, audio=False)
    source = open_source(str(path))
    got = [int(f.mean()) for f in read_frames(source, (32, 32), source.fps)]
    assert [round(v / 80) for v in got] == [0, 1, 2]


def numbered(count: int) -> list[np.ndarray]:
    """Frames that say their number: frame n is grey level 8 + 10 n."""
    return [np.full((16, 16, 3), 8 + 10 * n, np.uint8) for n in range(count)]


def numbers(frames) -> list[int]:
    return [round((float(f.mean()) - 8) / 10) for f in frames]


def assert_on_screen(got: list[int], starts: list[float], rate: float, input_rate: float) -> None:
    """Output frame k (at k / rate s) is the input frame on screen then: the last whose start
    is at or before it, give or take a quarter of a frame (containers round times)."""
    slack = 0.25 * min(1 / rate, 1 / input_rate)
    for k, n in enumerate(got):
        t = k / rate
        assert starts[n] <= t + slack + 1e-6, (k, got)
        assert n + 1 == len(starts) or starts[n + 1] > t + slack - 1e-6, (k, got)


@pytest.mark.parametrize("rate", [24, 12, 10, 7, 5, 30])
def test_frames_sampled_at_any_rate_are_the_ones_on_screen(tmp_path, rate):
    # skipping frames once froze the output (a cache keyed on the id() of a freed tuple)
    path = tmp_path / "clip.mp4"
    write_clip(path, numbered(24), fps=24, audio=False)
    got = numbers(read_frames(open_source(str(path)), (16, 16), fractions.Fraction(rate)))
    assert len(got) == rate
    assert_on_screen(got, [n / 24 for n in range(24)], rate, 24)
    # a folder of pictures at 25 fps, sampled the same way
    folder = tmp_path / "frames"
    folder.mkdir()
    for n, frame in enumerate(numbered(20)):
        Image.fromarray(frame).save(folder / f"{n + 1:04d}.png")
    got = numbers(read_frames(open_source(str(folder)), (16, 16), fractions.Fraction(rate)))
    assert_on_screen(got, [n / 25 for n in range(20)], rate, 25)
    assert got[-1] == 19 or rate < 25


def test_a_variable_frame_rate_clip_sampled_below_its_rate(tmp_path):
    pts = [0, 40, 80, 200, 240, 280, 520, 560, 600, 640, 680, 720]  # ms: bursts and holds
    path = tmp_path / "vfr.mkv"
    write_clip(path, numbered(len(pts)), fps=25, audio=False, pts=pts, time_base=fractions.Fraction(1, 1000))
    source = open_source(str(path))
    assert decoded(path)[2] == pytest.approx([p / 1000 for p in pts])
    for rate in (10, 7, 4):
        got = numbers(read_frames(source, (16, 16), fractions.Fraction(rate)))
        assert_on_screen(got, [p / 1000 for p in pts], rate, float(source.fps))
        assert len(set(got)) > len(got) // 2  # not frozen


def test_rotation_metadata_is_applied(tmp_path):
    frame = np.zeros((32, 48, 3), np.uint8)
    frame[:8, :8] = 255  # a white corner, top left as stored
    path = tmp_path / "phone.mp4"
    write_clip(path, [frame] * 3, audio=False, rotation=90)
    source = open_source(str(path))
    assert source.rotation == 90 and source.size == (48, 32)
    shown = next(read_frames(source, (48, 32), source.fps))
    assert shown.shape == (48, 32, 3)
    assert np.array_equal(shown > 128, np.rot90(frame, 1) > 128)


def test_frame_rates_are_said_as_a_person_writes_them(tmp_path, tiny_clip, capsys):
    clip, style = tiny_clip
    fast = tmp_path / "fast.mkv"  # a high-speed camera's clip
    write_clip(fast, numbered(3), fps=1000, audio=False)
    assert main(["video", str(fast), str(style), "-o", str(tmp_path / "a.gif"), "-q", *FAST]) == 0
    assert main(["video", str(clip), str(style), "-o", str(tmp_path / "b.gif"), "-q", *FAST, "--fps", "29.97"]) == 0
    err = capsys.readouterr().err
    assert "1000 fps" in err and "at 29.97 fps" in err and "e+" not in err, err


def test_odd_sides_become_even():
    assert even_size(47, 63, 63) == (46, 62)
    assert even_size(1080, 1920, 384) == (216, 384)
    for h, w in even_size(481, 853, 255), even_size(853, 481, 511):
        assert h % 2 == 0 and w % 2 == 0


def test_audio_survives_a_round_trip(tmp_path, moving):
    path = tmp_path / "in.mp4"
    frames = [cv2.resize(f, (64, 48)) for f in moving.frames] * 6  # 24 frames, 2 s
    write_clip(path, frames)
    source = open_source(str(path))
    pictures = []
    for n, frame in enumerate(read_frames(source, (48, 64), source.fps)):
        pictures.append(tmp_path / f"{n:03d}.png")
        cv2.imwrite(str(pictures[-1]), frame[..., ::-1])
    out = tmp_path / "out.mp4"
    write_output(pictures, out, source.fps, source, 0.5, 1.0)  # a second of it, from 0.5 s
    got, audio_seconds, times = decoded(out)
    assert len(got) == 24 - 0  # every picture given is a frame of the output
    assert audio_seconds is not None and abs(audio_seconds - 1.0) < 0.1
    _, original_audio, _ = decoded(path)
    assert original_audio is not None and abs(original_audio - 2.0) < 0.1
    assert abs(times[1] - times[0] - 1 / 12) < 1e-3
    gif = tmp_path / "out.gif"
    write_output(pictures[:5], gif, source.fps, source, 0, None)
    from PIL import Image

    with Image.open(gif) as image:
        assert image.n_frames == 5


# -- the command line -----------------------------------------------------------------


@pytest.fixture
def tiny_clip(tmp_path, moving):
    path = tmp_path / "clip.mp4"
    write_clip(path, [cv2.resize(f, (64, 48)) for f in moving.frames] + [cv2.resize(moving.frames[-1], (64, 48))] * 2)
    style = tmp_path / "style.png"
    cv2.imwrite(str(style), texture(64, 64, 5))
    return path, style


FAST = ["--size", "64", "--preset", "fast", "--steps", "4", "--warm-steps", "3"]


def test_video_command_paints_every_frame_and_keeps_the_audio(tmp_path, tiny_clip, capsys):
    clip, style = tiny_clip
    out = tmp_path / "out.mp4"
    assert main(["video", str(clip), str(style), "-o", str(out), "-q", *FAST]) == 0
    frames, audio_seconds, _ = decoded(out)
    original, _, _ = decoded(clip)
    assert len(frames) == 6 and frames[0].shape == (48, 64, 3)
    assert audio_seconds is not None and abs(audio_seconds - 0.5) < 0.1
    assert np.abs(frames[2].astype(float) - original[2]).mean() > 5  # painted, not copied
    assert not (tmp_path / "out.mp4.work").exists()  # the work folder goes once the video is written


def test_a_rerun_continues_from_the_frames_painted_and_gives_the_same_frames(tmp_path, tiny_clip, capsys):
    clip, style = tiny_clip
    whole, part = tmp_path / "whole", tmp_path / "part"
    assert main(["video", str(clip), str(style), "-o", str(whole), "-q", *FAST]) == 0
    work = tmp_path / "work"
    assert main(["video", str(clip), str(style), "-o", str(tmp_path / "a.gif"), "--work", str(work), "-q",
                 "--duration", "0.25", *FAST]) == 0  # fmt: skip
    assert len(list(work.glob("0*.png"))) == 3  # kept: --work was given
    stamp = {p: p.stat().st_mtime_ns for p in work.glob("0*.png")}
    assert main(["video", str(clip), str(style), "-o", str(part), "--work", str(work), "-q", *FAST]) == 0
    assert all(p.stat().st_mtime_ns == t for p, t in stamp.items())  # not painted again
    for a, b in zip(sorted(whole.iterdir()), sorted(part.iterdir()), strict=True):
        assert a.read_bytes() == b.read_bytes()
    # other settings: the folder's frames are painted again, and the run says so
    capsys.readouterr()
    assert main(["video", str(clip), str(style), "-o", str(tmp_path / "b.gif"), "--work", str(work), "-q",
                 *FAST, "--temporal-weight", "5"]) == 0  # fmt: skip
    assert any(p.stat().st_mtime_ns != t for p, t in stamp.items())
    assert "held 6 frames painted with other settings" in capsys.readouterr().err


def test_a_work_folder_impasto_did_not_make_is_never_emptied(tmp_path, tiny_clip, capsys):
    clip, style = tiny_clip
    frames = tmp_path / "frames"  # a user's picture sequence, with its own numbering
    frames.mkdir()
    for n, frame in enumerate(numbered(3), start=1):
        Image.fromarray(frame).save(frames / f"{n:06d}.png")
    before = {p.name: p.read_bytes() for p in frames.iterdir()}
    mine = tmp_path / "mine"  # another folder of the user's
    mine.mkdir()
    (mine / "000001.png").write_bytes(b"a picture of mine")
    (mine / "000002.png").write_bytes(b"another")
    for video, work in ((frames, frames), (clip, frames), (clip, mine)):
        kept = {p.name: p.read_bytes() for p in work.iterdir()}
        out = tmp_path / "out.gif"
        assert main(["video", str(video), str(style), "-o", str(out), "--work", str(work), "-q", *FAST]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("impasto: error: --work") and "impasto did not write" in err[0]
        assert {p.name: p.read_bytes() for p in work.iterdir()} == kept and not out.exists()
    assert {p.name: p.read_bytes() for p in frames.iterdir()} == before
    # the output's own folder is not a work folder either
    out = tmp_path / "painted"
    assert main(["video", str(clip), str(style), "-o", str(out), "--work", str(out / "w"), "-q", *FAST]) == 2
    assert "--work" in capsys.readouterr().err and not out.exists()


def test_outputs_that_would_fail_after_the_work_are_refused_before_it(tmp_path, tiny_clip, capsys):
    clip, style = tiny_clip
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)  # MP4 is written by seeking back to its index
    empty = tmp_path / "empty"
    empty.mkdir()
    link = tmp_path / "link"
    link.symlink_to(empty)
    for output, words in ((fifo, "not a regular file"), (link, "is a link")):
        assert main(["video", str(clip), str(style), "-o", str(output), "-q", *FAST]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("impasto: error: --output") and words in err and len(err.splitlines()) == 1, err
    assert list(empty.iterdir()) == [] and not (tmp_path / "link.work").exists()


def test_a_video_cut_short_says_so(tmp_path, moving, capsys):
    path = tmp_path / "cut.mkv"
    write_clip(path, [texture(48, 64, n) for n in range(24)], fps=12, audio=False)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # the header still says 2 s
    style = tmp_path / "style.png"
    cv2.imwrite(str(style), texture(64, 64, 5))
    out = tmp_path / "out.gif"
    assert main(["video", str(path), str(style), "-o", str(out), "-q", *FAST, "--long-term", "none"]) == 0
    err = capsys.readouterr().err
    with Image.open(out) as image:
        frames = image.n_frames
    assert f"ended after {frames} of its 24 frames" in err, err


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda d: (d / "x.mp4").write_text("not a video"), "x.mp4: not a video"),
        (lambda d: None, "missing.mp4: no such file"),
        (lambda d: (d / "empty").mkdir(), "holds no picture files"),
    ],
)
def test_bad_inputs_are_one_line(tmp_path, tiny_clip, capsys, make, expected):
    _, style = tiny_clip
    make(tmp_path)
    name = {"x.mp4: not a video": "x.mp4", "missing.mp4: no such file": "missing.mp4"}.get(expected, "empty")
    out = tmp_path / "out.mp4"
    out.write_bytes(b"keep me")
    assert main(["video", str(tmp_path / name), str(style), "-o", str(out), *FAST]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1 and err.startswith("impasto: error: VIDEO: ")
    assert out.read_bytes() == b"keep me"


def test_a_file_without_a_video_stream(tmp_path, tiny_clip, capsys):
    _, style = tiny_clip
    path = tmp_path / "sound.m4a"
    with av.open(str(path), "w", format="mp4") as out:
        sound = out.add_stream("aac", rate=44100)
        chunk = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        chunk.sample_rate, chunk.pts = 44100, 0
        for packet in [*sound.encode(chunk), *sound.encode()]:
            out.mux(packet)
    assert main(["video", str(path), str(style), "-o", str(tmp_path / "o.mp4"), *FAST]) == 2
    assert "has no video stream" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        (["--fps", "0"], "--fps: must be between 0 and 240"),
        (["--start", "-1"], "--start: must be 0 or more"),
        (["--start", "9"], "--start: 9 s is past the end"),
        (["--duration", "nan"], "--duration: must be more than 0"),
        (["--warm-steps", "0"], "--warm-steps: must be between 1"),
        (["--long-term", "1,4"], "--long-term: frames back must be between 2 and 30"),
        (["--long-term", "two"], "--long-term: must be whole numbers of frames"),
        (["--mask", "a.png"], "--mask: apply to one picture"),
        (["-o", "x.avi"], "must end in .mp4, .mov, .mkv or .gif"),
    ],
)
def test_bad_options_are_one_line(tmp_path, tiny_clip, capsys, option, expected):
    clip, style = tiny_clip
    out = ["-o", str(tmp_path / "o.mp4")] if "-o" not in option else ["-o", str(tmp_path / option[1])]
    rest = [x for x in option if x != "-o" and not x.endswith(".avi")]
    assert main(["video", str(clip), str(style), *out, *FAST, *rest]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o.mp4").exists()


def test_frames_in_a_folder_and_out_as_a_gif(tmp_path, tiny_clip):
    _, style = tiny_clip
    folder = tmp_path / "frames"
    folder.mkdir()
    for n in (1, 2, 10):  # natural order: 1, 2, 10
        cv2.imwrite(str(folder / f"f{n}.png"), texture(47, 63, n)[..., ::-1])  # odd sides
    out = tmp_path / "out.gif"
    assert main(["video", str(folder), str(style), "-o", str(out), "-q", "--fps", "5", *FAST]) == 0
    from PIL import Image

    with Image.open(out) as image:
        assert image.n_frames == 3 and image.size == (64, 48)  # 63x47 to 64 px, sides even
        assert image.info["duration"] == 200


def test_ctrl_c_leaves_a_playable_video_of_the_frames_so_far(tmp_path, tiny_clip):
    clip, style = tiny_clip
    out = tmp_path / "out.mp4"
    # 300 steps a later frame: time to interrupt it
    command = [sys.executable, "-m", "impasto", "video", str(clip), str(style), "-o", str(out), "-q", *FAST[:-1], "300"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert process.stderr is not None
    lines = []
    for line in process.stderr:
        lines.append(line)
        if line.startswith("frame 1"):
            process.send_signal(signal.SIGINT)
            break
    rest = process.communicate(timeout=120)[1]
    assert process.returncode == 130, "".join(lines) + rest
    assert "interrupted; 1 frames written" in rest
    frames, _, _ = decoded(out)
    assert len(frames) == 1
    assert (tmp_path / "out.mp4.work" / "000001.png").is_file()


def test_a_clip_from_python_without_the_command_line_paints_the_same_frames(tmp_path, tiny_clip):
    from impasto.jobs.base import recipe_from
    from impasto.video.clip import Clip, FramePainted
    from impasto.video.paint import VideoSettings

    source, style = tiny_clip
    cli_out = tmp_path / "cli"
    assert main(["video", str(source), str(style), "-o", str(cli_out), "-q", *FAST, "--duration", "0.25"]) == 0
    recipe = recipe_from({"preset": "fast", "size": 64, "steps": 4})  # what FAST builds
    settings = VideoSettings(warm_steps=3)
    clip = Clip(str(source), [style], tmp_path / "lib", recipe, settings=settings, duration=0.25)
    assert (clip.total, clip.size, clip.done_before) == (3, (48, 64), 0)
    steps: list[int] = []
    events = list(clip.paint(lambda n, event: steps.append(n)))
    assert all(isinstance(e, FramePainted) for e in events) and [e.n for e in events] == [1, 2, 3]
    assert events[-1].eta == 0 and events[0].eta is None and set(steps) == {1, 2, 3}
    assert clip.write() == 3 and not clip.cut_short
    for a, b in zip(sorted(cli_out.iterdir()), sorted((tmp_path / "lib").iterdir()), strict=True):
        assert a.read_bytes() == b.read_bytes()
    # A new clip of the same inputs continues from the work folder: nothing painted again.
    again = Clip(str(source), [style], tmp_path / "lib2", recipe, settings=settings, duration=0.25,
                 work=clip.work.path)  # fmt: skip
    assert again.done_before == 3 and list(again.paint()) == [] and again.write() == 3
    with pytest.raises(ConfigError, match="must be between 0 and 240"):
        Clip(str(source), [style], tmp_path / "x.mp4", recipe, fps=0)
