"""16-bit files of a print: size and seconds of impasto's PNG and TIFF writers against the
libraries that write them (tifffile and pypng skipped when not installed; OpenCV, of the
``video`` extra, is needed: it reads every file back), on
one picture at A4 and 300 dpi (3508x2480): a shared photo resized to it in float (bicubic),
as a print's pixels are (every 16-bit sample its own, not an 8-bit value times 257).

    python benchmarks/sixteen.py
    python benchmarks/sixteen.py --photo chicago --size 4961   # A3

Every file is read back and checked to hold the same samples.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import find_image, machine

from impasto.imageio import load_image, resize, srgb_icc
from impasto.imageio.sixteen import to_uint16, write_png16, write_tiff16


def writers(dpi: float, icc: bytes) -> dict[str, Callable[[np.ndarray], bytes]]:
    def ours(write):
        def run(pixels):
            stream = io.BytesIO()
            write(stream, pixels, dpi, icc)
            return stream.getvalue()

        return run

    found = {"impasto PNG": ours(write_png16), "impasto TIFF": ours(write_tiff16)}
    try:
        import tifffile

        def tiff(pixels, **options):
            stream = io.BytesIO()
            tifffile.imwrite(stream, pixels, photometric="rgb", resolution=(dpi, dpi), resolutionunit="INCH",
                             iccprofile=icc, **options)  # fmt: skip
            return stream.getvalue()

        found["tifffile, uncompressed"] = tiff
        found["tifffile, zlib + predictor"] = lambda p: tiff(p, compression="zlib", predictor=True)
    except ImportError:
        pass
    try:
        import png

        def pypng(pixels):
            stream = io.BytesIO()
            h, w, _ = pixels.shape
            png.Writer(w, h, greyscale=False, bitdepth=16).write(stream, pixels.reshape(h, w * 3))
            return stream.getvalue()

        found["pypng"] = pypng
    except ImportError:
        pass
    try:
        import cv2

        found["OpenCV PNG"] = lambda p: cv2.imencode(".png", np.ascontiguousarray(p[..., ::-1]))[1].tobytes()
        found["OpenCV TIFF"] = lambda p: cv2.imencode(".tiff", np.ascontiguousarray(p[..., ::-1]))[1].tobytes()
    except ImportError:
        pass
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photo", default="tubingen")
    parser.add_argument("--size", type=int, default=3508, help="longest side (A4 at 300 dpi: 3508)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    image = load_image(find_image(args.photo, "content"))
    h, w = image.shape[-2:]
    size = (round(h * args.size / max(h, w)), round(w * args.size / max(h, w)))
    pixels = to_uint16(resize(image, size, "bicubic").clamp(0, 1))
    import cv2

    print(f"{machine()}; {args.photo} at {size[1]}x{size[0]}, 16-bit RGB ({pixels.nbytes / 1e6:.0f} MB of samples)\n")
    print("| writer | MB | seconds (median) |")
    print("|---|---|---|")
    for name, write in writers(300.0, srgb_icc()).items():
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            data = write(pixels)
            times.append(time.perf_counter() - started)
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        assert decoded.dtype == np.uint16 and (decoded[..., ::-1] == pixels).all(), name
        print(f"| {name} | {len(data) / 1e6:.1f} | {statistics.median(times):.2f} |", flush=True)


if __name__ == "__main__":
    main()
