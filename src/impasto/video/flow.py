"""Optical flow between frames, warping by it, where it can be trusted, and the warping
error that measures flicker.

A flow ``f`` from frame ``a`` to frame ``b`` is an ``(h, w, 2)`` float32 array of pixel
offsets (x, y) with ``a(p) ≈ b(p + f(p))``: :func:`warp` of ``b`` by ``f`` is then ``a``
wherever ``p`` is visible in both. Flow is computed by OpenCV's DIS (Kroeger et al. 2016),
which needs no downloaded model and runs in milliseconds a frame at these sizes.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np


def _grey(frame: np.ndarray) -> np.ndarray:
    if frame.dtype != np.uint8:
        frame = np.clip(frame * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)


def flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The flow from RGB frame ``a`` to RGB frame ``b`` (same size; uint8, or float in [0, 1])."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)  # type: ignore[attr-defined]
    return dis.calc(_grey(a), _grey(b), None)


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    return np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))


def warp(image: np.ndarray, f: np.ndarray, cubic: bool = False) -> np.ndarray:
    """``image`` sampled at ``p + f(p)``, bilinear or bicubic (a uint8 image stays in range);
    positions outside repeat the border."""
    gx, gy = _grid(*f.shape[:2])
    interpolation = cv2.INTER_CUBIC if cubic else cv2.INTER_LINEAR
    return cv2.remap(
        np.ascontiguousarray(image), gx + f[..., 0], gy + f[..., 1], interpolation, borderMode=cv2.BORDER_REPLICATE
    )


def reliability(used: np.ndarray, reverse: np.ndarray) -> np.ndarray:
    """Where warping by ``used`` (frame t to frame s) can be trusted: 1, else 0, ``(h, w)``
    float32. ``reverse`` is the flow from s to t.

    Ruder et al.'s checks: a pixel is occluded when the reverse flow at its target does
    not bring it back (``|w̃ + w|² > 0.01 (|w̃|² + |w|²) + 0.5``), on a motion boundary
    when the flow changes fast around it (``|∇u|² + |∇v|² > 0.01 |w|² + 0.002``); and here
    also where its target lies outside the frame (it has just come into view)."""
    h, w = used.shape[:2]
    back = warp(reverse, used)
    length = (used**2).sum(-1) + (back**2).sum(-1)
    occluded = ((back + used) ** 2).sum(-1) > 0.01 * length + 0.5
    uy, ux = np.gradient(used[..., 0])
    vy, vx = np.gradient(used[..., 1])
    boundary = ux**2 + uy**2 + vx**2 + vy**2 > 0.01 * (used**2).sum(-1) + 0.002
    gx, gy = _grid(h, w)
    x, y = gx + used[..., 0], gy + used[..., 1]
    outside = (x < 0) | (x > w - 1) | (y < 0) | (y > h - 1)
    return (~(occluded | boundary | outside)).astype(np.float32)


def pair_flows(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The flow from ``b`` back to ``a`` (to warp a picture of ``a`` onto ``b``) and its
    reliability."""
    back, ahead = flow(b, a), flow(a, b)
    return back, reliability(back, ahead)


def warping_error(outputs: Sequence[np.ndarray], frames: Sequence[np.ndarray], gap: int = 1) -> float:
    """Flicker, after Lai et al. (2018): the mean over consecutive pairs of
    ``Σ M ‖O_t − warp(O_{t+1})‖² / Σ M``, with the flow and the non-occlusion mask M of the
    *input* ``frames`` (uint8 RGB), ``outputs`` as float RGB in [0, 1] (the squared norm
    sums the three channels); with ``gap`` the pairs ``t, t + gap`` (long-term
    consistency). 0 for fewer than ``gap + 1`` frames."""
    if len(outputs) != len(frames):
        raise ValueError(f"{len(outputs)} outputs for {len(frames)} frames")
    errors = []
    for t in range(len(frames) - gap):
        used, mask = pair_flows(frames[t + gap], frames[t])  # warps frame t+gap's picture onto frame t
        difference = ((outputs[t] - warp(outputs[t + gap], used)) ** 2).sum(-1)
        errors.append(float((mask * difference).sum() / max(mask.sum(), 1.0)))
    return float(np.mean(errors)) if errors else 0.0
