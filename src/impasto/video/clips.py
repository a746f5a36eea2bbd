"""Synthetic clips whose optical flow is known exactly, made from still pictures: a camera
that pans and zooms across a photo, with another picture moving over it on its own. The
tests check the flow and warping code against them; the benchmark paints them."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Clip:
    frames: list[np.ndarray]
    """RGB uint8 ``(h, w, 3)`` frames."""
    flows: list[np.ndarray]
    """The exact flow from frame t to frame t+1, ``(h, w, 2)`` float32 (x, y)."""


def _camera(t: int, size: tuple[int, int], pan: tuple[float, float], zoom: float, origin: tuple[float, float]):
    """The affine map (2x3) from frame t's pixel coordinates to the photo's."""
    h, w = size
    scale = zoom**-t  # zooming in: each frame sees less of the photo
    cx, cy = origin[0] + pan[0] * t + w / 2, origin[1] + pan[1] * t + h / 2
    return np.array([[scale, 0, cx - scale * w / 2], [0, scale, cy - scale * h / 2]], dtype=np.float64)


def pan_zoom_clip(
    photo: np.ndarray,
    size: tuple[int, int],
    count: int,
    *,
    pan: tuple[float, float] = (2.0, 0.5),
    zoom: float = 1.0,
    sprite: np.ndarray | None = None,
    sprite_step: tuple[float, float] = (-3.0, 1.0),
) -> Clip:
    """``count`` frames of ``size`` from ``photo`` (RGB uint8, larger than a frame by the
    whole pan): the camera moves by ``pan`` pixels of the photo a frame and zooms in by
    ``zoom`` a frame; ``sprite`` (RGB uint8), when given, moves over it by ``sprite_step``
    frame pixels a frame, starting near the frame's right side."""
    h, w = size
    origin = (0.0, 0.0)
    frames, cams = [], []
    start = np.array([w * 0.6, h * 0.3])
    for t in range(count):
        cam = _camera(t, size, pan, zoom, origin)
        cams.append(cam)
        frame = cv2.warpAffine(
            photo, cam, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT
        )
        if sprite is not None:
            at = start + np.array(sprite_step) * t
            move = np.array([[1, 0, at[0]], [0, 1, at[1]]], dtype=np.float64)
            layer = cv2.warpAffine(sprite, move, (w, h), flags=cv2.INTER_LINEAR)
            cover = cv2.warpAffine(np.full(sprite.shape[:2], 255, np.uint8), move, (w, h), flags=cv2.INTER_LINEAR)
            alpha = (cover.astype(np.float32) / 255.0)[..., None]
            frame = (alpha * layer + (1 - alpha) * frame + 0.5).astype(np.uint8)
        frames.append(frame)
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    flows = []
    for t in range(count - 1):
        a, b = cams[t], cams[t + 1]
        # a pixel p of frame t shows photo point A p; frame t+1 shows it at B⁻¹ A p
        px = a[0, 0] * gx + a[0, 2]
        py = a[1, 1] * gy + a[1, 2]
        qx, qy = (px - b[0, 2]) / b[0, 0], (py - b[1, 2]) / b[1, 1]
        f = np.stack([qx - gx, qy - gy], axis=-1)
        if sprite is not None:
            at = start + np.array(sprite_step) * t
            sh, sw = sprite.shape[:2]
            inside = (gx >= at[0]) & (gx <= at[0] + sw - 1) & (gy >= at[1]) & (gy <= at[1] + sh - 1)
            f[inside] = sprite_step
        flows.append(f.astype(np.float32))
    return Clip(frames, flows)
