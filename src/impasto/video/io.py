"""Frames in and out.

In: a video file (anything the ffmpeg inside PyAV reads, its rotation metadata applied),
a folder of pictures or a glob of them (in natural order). Frames come out at a constant
frame rate (the input's, or ``--fps``): each output instant takes the input frame on
screen then, so a variable-frame-rate phone video keeps its timing. Each frame is resized to the
working size, whose sides are even (H.264 in yuv420p needs that).

Out: H.264 in yuv420p (``.mp4``, ``.mov``, ``.mkv``) with the input's audio copied (or
made AAC when the container cannot hold its codec), an animated ``.gif``, or a folder of
PNG frames. Every output is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import av
import cv2
import numpy as np
from PIL import Image

from impasto.errors import ConfigError, ImageError
from impasto.imageio import (
    IMAGE_SUFFIXES,
    check_output_path,
    header_size,
    load_image,
    temporary_name,
    tensor_to_pil,
    write_atomically,
)

#: Outputs written as video files; anything without a suffix is a folder of frames.
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv")
GIF = ".gif"
#: Audio codecs MP4 and QuickTime hold as they are (others are made AAC; Matroska holds all).
MP4_AUDIO = {"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"}
#: Frame rate of a folder or glob of pictures unless --fps says.
SEQUENCE_FPS = Fraction(25)


@dataclass(frozen=True)
class Source:
    """A video to paint: a file, or a sequence of picture files."""

    label: str
    path: Path | None
    """The video file (None for a sequence)."""
    pictures: tuple[Path, ...]
    """The sequence's files, in order (empty for a video file)."""
    size: tuple[int, int]
    """``(h, w)`` as shown (after rotation)."""
    fps: Fraction
    duration: float | None
    rotation: int
    audio: bool

    @property
    def files(self) -> tuple[Path, ...]:
        return (self.path,) if self.path is not None else self.pictures


def _natural(path: Path) -> list[object]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def open_source(spec: str) -> Source:
    """The video at ``spec`` (a file, a folder of pictures, a glob of them), checked:
    ConfigError naming the input for one that is not there, holds no frames or is not a
    video."""
    path = Path(spec)
    if path.is_dir() or (not path.exists() and glob.has_magic(spec)):
        names = sorted(path.iterdir()) if path.is_dir() else [Path(p) for p in glob.glob(spec)]
        pictures = tuple(sorted((p for p in names if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()), key=_natural))
        if not pictures:
            raise ConfigError("video", f"{spec}: holds no picture files")
        h, w = header_size(pictures[0], oriented=True)  # the header only: a large picture is not decoded
        return Source(spec, None, pictures, (h, w), SEQUENCE_FPS, len(pictures) / float(SEQUENCE_FPS), 0, False)
    if not path.exists():
        raise ConfigError("video", f"{spec}: no such file")
    if not path.is_file():
        raise ConfigError("video", f"{spec}: not a file")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ConfigError("video", f"{spec}: has no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            rotation = 0
            frame = next(container.decode(stream), None)
            if frame is None:
                raise ConfigError("video", f"{spec}: its video stream has no frames")
            rotation = round((frame.rotation or 0) / 90) % 4 * 90
            h, w = frame.height, frame.width
            if rotation in (90, 270):
                h, w = w, h
            duration = None
            if container.duration is not None:
                duration = container.duration / av.time_base
            elif stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            audio = bool(container.streams.audio)
    except av.FFmpegError as exc:
        raise ConfigError("video", f"{spec}: not a video this ffmpeg reads ({_reason(exc)})") from None
    if not rate or rate <= 0:
        rate = Fraction(25)
    return Source(spec, path, (), (h, w), Fraction(rate), duration, rotation, audio)


def _reason(exc: Exception) -> str:
    return str(getattr(exc, "strerror", None) or exc).splitlines()[0]


def even_size(height: int, width: int, size: int) -> tuple[int, int]:
    """The working ``(h, w)``: the longer side ``size`` (made even), the ratio kept, both even."""
    from impasto.schedule import fit_longest_side

    h, w = fit_longest_side(height, width, size - size % 2)
    return max(2, h - h % 2), max(2, w - w % 2)


def _resize(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    if frame.shape[:2] == (h, w):
        return np.ascontiguousarray(frame)
    shrink = h < frame.shape[0] or w < frame.shape[1]
    return cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def _timed_video(source: Source) -> Iterator[tuple[float, Callable[[], np.ndarray]]]:
    assert source.path is not None
    k = source.rotation // 90
    with av.open(str(source.path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for frame in container.decode(stream):
                if frame.time is None:
                    continue

                def picture(frame: av.VideoFrame = frame) -> np.ndarray:
                    array = frame.to_ndarray(format="rgb24")
                    return np.rot90(array, k) if k else array

                yield frame.time, picture
        except av.FFmpegError as exc:
            raise ImageError(f"{source.label}: cannot be decoded past this point ({_reason(exc)})") from None


def _timed_pictures(source: Source, size: tuple[int, int]) -> Iterator[tuple[float, Callable[[], np.ndarray]]]:
    for n, path in enumerate(source.pictures):

        def picture(path: Path = path) -> np.ndarray:  # a large picture decoded reduced, as stylize does
            return np.asarray(tensor_to_pil(load_image(path, name=str(path), needed=size[0] * size[1])))

        yield n / float(source.fps), picture


def read_frames(
    source: Source, size: tuple[int, int], fps: Fraction, start: float = 0.0, duration: float | None = None
) -> Iterator[np.ndarray]:
    """The frames of ``source`` from ``start`` for ``duration`` seconds (to the end when
    None) at ``fps``, each RGB uint8 at ``size``: for each output instant, the input frame
    on screen then (the last one that started at or before it)."""
    timed = _timed_video(source) if source.path is not None else _timed_pictures(source, size)
    end = None if duration is None else start + duration
    step = 1.0 / float(fps)
    interval = 1.0 / float(source.fps)
    # An instant a quarter of an input frame before a frame's start is that frame's:
    # containers round times (Matroska to milliseconds: 12 fps frames at 0.083 and 0.167 s).
    eps = 0.25 * min(step, interval)
    k = 0
    shown: tuple[int, float, Callable[[], np.ndarray]] | None = None  # (its number, time, decoder)
    cached: tuple[int, np.ndarray] | None = None  # (the number of the frame it holds, the frame)

    def due(limit: float) -> Iterator[np.ndarray]:
        nonlocal k, cached
        assert shown is not None
        while start + k * step < limit - eps and (end is None or start + k * step < end - eps):
            if cached is None or cached[0] != shown[0]:
                cached = (shown[0], _resize(shown[2](), size))
            yield cached[1]
            k += 1

    for number, (time, picture) in enumerate(timed):
        if shown is not None:
            yield from due(time)
        if end is not None and start + k * step >= end - eps:
            return
        shown = (number, time, picture)
    if shown is not None:
        yield from due(shown[1] + interval)


# -- out --------------------------------------------------------------------------------


def check_output(path: str, inputs: Sequence[Path]) -> Path:
    """The output checked before any work: a video or GIF file that can be written, or a
    folder for the frames (new, or empty)."""
    target = Path(path)
    if target.suffix.lower() in (*VIDEO_SUFFIXES, GIF):
        checked = check_output_path(target, inputs, suffixes=(*VIDEO_SUFFIXES, GIF))
        if os.path.exists(target) and not os.path.isfile(target):  # a pipe: a video file is written by seeking
            raise ConfigError("output", f"{path}: is not a regular file; a video or GIF is written to a file")
        return checked
    if target.suffix:
        raise ConfigError("output", f"{path}: must end in .mp4, .mov, .mkv or .gif, or name a folder for the frames")
    if target.is_symlink():
        raise ConfigError("output", f"{path}: is a link; the frames go to a new folder of that name")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ConfigError("output", f"{path}: exists and is not an empty folder; the frames go to a new folder")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError("output", f"{path}: its folder {parent} is missing or not writable")
    return target


def write_output(
    pictures: Sequence[Path], path: Path, fps: Fraction, source: Source, start: float, duration: float | None
) -> None:
    """Write the painted ``pictures`` (PNG files, in order) to ``path``: a video with
    ``source``'s audio over the same span, a GIF, or a folder of frames."""
    suffix = path.suffix.lower()
    if suffix == GIF:
        _written(path, lambda stream: _write_gif(pictures, stream, fps))
    elif suffix in VIDEO_SUFFIXES:
        audio = source.path if source.audio else None
        _written(path, lambda stream: _write_video(pictures, stream, fps, suffix, audio, start, duration))
    else:
        _write_folder(pictures, path)


def _written(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """``write`` the file through imageio's atomic writer (a temporary name renamed over the
    target, its permissions kept), with ffmpeg's errors as one line."""

    def guarded(stream: BinaryIO) -> None:
        try:
            write(stream)
        except av.FFmpegError as exc:
            raise ImageError(f"{path}: cannot write ({_reason(exc)})") from None

    write_atomically(path, guarded)


def read_picture(path: Path) -> np.ndarray:
    """A picture file as RGB uint8 ``(h, w, 3)``."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _write_gif(pictures: Sequence[Path], stream: BinaryIO, fps: Fraction) -> None:
    frames = [Image.open(p).convert("RGB") for p in pictures]
    frames[0].save(
        stream, format="GIF", save_all=True, append_images=frames[1:], duration=round(1000 / float(fps)), loop=0
    )


def _write_video(
    pictures: Sequence[Path],
    stream: BinaryIO,
    fps: Fraction,
    suffix: str,
    audio: Path | None,
    start: float,
    duration: float | None,
) -> None:
    formats = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska"}
    rate = Fraction(fps).limit_denominator(1001)
    seconds = len(pictures) / float(rate)
    end = start + min(duration if duration is not None else seconds, seconds)
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(av.open(stream, "w", format=formats[suffix]))
        first = read_picture(pictures[0])
        video = out.add_stream("libx264", rate=rate)
        video.height, video.width = first.shape[:2]
        video.pix_fmt = "yuv420p"
        video.options = {"crf": "18", "preset": "medium"}
        # every stream is added before the first packet is written (the header)
        sound = None
        if audio is not None:
            source = stack.enter_context(av.open(str(audio)))
            sound = _AudioCopy(source, out, suffix)
        for n, path in enumerate(pictures):
            frame = av.VideoFrame.from_ndarray(first if n == 0 else read_picture(path), format="rgb24")
            frame.pts = n
            frame.time_base = 1 / rate
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        if sound is not None:
            sound.copy(start, end)


class _AudioCopy:
    """The first audio stream of ``source`` into ``out``: its packets as they are, or made
    AAC when ``out`` cannot hold its codec."""

    def __init__(self, source: av.container.InputContainer, out: av.container.OutputContainer, suffix: str) -> None:
        self.source, self.out = source, out
        self.stream = source.streams.audio[0]
        self.packets = suffix == ".mkv" or self.stream.codec_context.name in MP4_AUDIO
        if self.packets:
            self.target = out.add_stream_from_template(self.stream)
        else:
            self.target = out.add_stream("aac", rate=self.stream.codec_context.sample_rate or 48000)

    def copy(self, start: float, end: float) -> None:
        """What lies between ``start`` and ``end`` seconds, moved to start at 0."""
        stream, out, target = self.stream, self.out, self.target
        if not self.packets:
            for frame in self.source.decode(stream):
                if frame.time is None or frame.time < start - 1e-6 or frame.time >= end - 1e-6:
                    continue
                frame.pts = None
                for packet in target.encode(frame):
                    out.mux(packet)
            for packet in target.encode():
                out.mux(packet)
            return
        base = stream.time_base
        if base is None:
            return
        offset = round(start / base)
        for packet in self.source.demux(stream):
            if packet.pts is None or packet.dts is None:
                continue
            time = float(packet.pts * base)
            if time < start - 1e-6 or time >= end - 1e-6:
                continue
            packet.pts -= offset
            packet.dts -= offset
            packet.stream = target
            out.mux(packet)


def _write_folder(pictures: Iterable[Path], path: Path) -> None:
    target = Path(os.path.abspath(path))
    tmp = target.parent / temporary_name()
    try:
        tmp.mkdir()
        for n, picture in enumerate(pictures, start=1):
            shutil.copyfile(picture, tmp / f"frame_{n:06d}.png")
        if target.exists():
            target.rmdir()  # empty (checked before the work)
        os.replace(tmp, target)
    except OSError as exc:
        raise ImageError(f"{path}: cannot write ({exc.strerror or exc})") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
