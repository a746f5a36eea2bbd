"""impasto video: paint a video frame by frame without flicker, after Ruder, Dosovitskiy
and Brox (2016): each frame starts from the previous painting warped by the optical flow
of the input frames, and a temporal term keeps it there where the flow is reliable.
Needs PyAV and OpenCV: ``pip install 'impasto[video]'``.

- :mod:`impasto.video.flow`: optical flow (OpenCV's DIS), warping, the forward-backward
  reliability check, and the warping error of Lai et al. (2018).
- :mod:`impasto.video.io`: frames in (a video file, a folder of pictures, a glob) at a
  constant frame rate, frames out (H.264 with the input's audio, GIF, a folder of PNGs).
- :mod:`impasto.video.paint`: the frame loop, resumable from its work folder.
"""

from __future__ import annotations

from impasto._lazy import require_extra

#: Weight of the temporal term (``benchmarks/video.py``: the warping error against the
#: style and content figures, docs/video.md).
TEMPORAL_WEIGHT = 1e3
#: Optimiser steps of a frame after the first, at the final size only.
WARM_STEPS = 40
#: Earlier frames (t-2, t-4) that fill in where the previous frame's flow is not trusted
#: (long-term consistency, Ruder et al.; docs/video.md).
LONG_TERM = (2, 4)
NEEDS = {"av": "av", "cv2": "opencv-python-headless"}


def require_video() -> None:
    """ImpastoError with the pip command when a package the video command needs is missing."""
    require_extra("impasto video", "video", NEEDS)
