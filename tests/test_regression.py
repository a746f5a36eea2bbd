"""Results do not change with the code's layout: the pixels of a few small runs of 0.1's
recipes (``default``, ``gatys``, a masked run, colours kept with Adam and EMA) under 0.1's
optimiser rule (the last iterate handed out, no restarts; 0.2 changed the rule on
purpose), recorded per machine in tests/golden_0_1.json, and the same pixels from one
long-lived Stylizer (cache warm) as from a fresh one per run.

The pixels depend on the CPU's kernels, torch and the thread count (the machine's key): a
single picture's sums are torch's own, split between threads (``Runtime.same_bits`` is on
in batches only; benchmarks/same_bits.py checks the same bytes on 1 and 2 threads there). The first record (a Xeon) held
impasto 0.1.0's own pixels; they changed when those sums and L-BFGS's inner products were
put in a fixed order (last bits, carried on by L-BFGS), and the records were made again on
the machine at hand (``python -m tests.test_regression`` prints one)."""

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from impasto import PRESETS, Inputs, Runtime, Stylizer
from impasto.engine import Policy
from impasto.imageio import tensor_to_pil

GOLDEN = json.loads((Path(__file__).with_name("golden_0_1.json")).read_text())
PRECISIONS = ("auto", "float32")


def _images():
    g = torch.Generator().manual_seed(3)
    ys, xs = torch.meshgrid(torch.linspace(0, 1, 72), torch.linspace(0, 1, 96), indexing="ij")
    base = torch.stack([xs, ys, 1 - xs * ys]).unsqueeze(0)
    # antialiased: torch's plain bilinear kernel gives other bits on 1 and 2 threads
    noise = F.interpolate(torch.rand(1, 3, 9, 12, generator=g), size=(72, 96), mode="bilinear", antialias=True)
    content = (0.6 * base + 0.4 * noise).clamp(0, 1)
    t = torch.arange(80).float()
    stripes = (torch.sin(t * 0.7)[None, :] * torch.cos(t * 0.3)[:, None] > 0).float()
    style = torch.stack([stripes, stripes.T, 0.3 + 0.4 * stripes.roll(5, 0)]).unsqueeze(0)
    style = (0.8 * style + 0.2 * torch.rand(1, 3, 80, 80, generator=g)).clamp(0, 1)
    mask = torch.zeros(1, 3, 72, 96)
    mask[..., :, :48] = 1.0
    return content, style, mask


def _cases():
    content, style, mask = _images()
    # 0.1's `default` recipe: the preset since gained the histogram term and a content
    # weight to go with it (0.2's rule); the cases' steps are set below.
    default = PRESETS["default"].replace(histogram_weight=0.0, content_weight=0.016)
    gatys = PRESETS["gatys"]
    return {
        "default": (default.replace(size=96, start_size=48, first_steps=12, steps=6, final_steps=8),
                    Inputs.of(content, [style])),
        "gatys": (gatys.replace(pixels=None, size=96, first_steps=8, steps=4, final_steps=6),
                  Inputs.of(content, [style])),
        "masked": (default.replace(size=96, start_size=64, first_steps=8, steps=6, mask_feather=2.0),
                   Inputs.of(content, [style, style.flip(-1) * 0.7], masks=[mask, 1 - mask])),
        "colors_content_adam": (
            default.replace(size=80, start_size=None, steps=10, colors="content", optimizer="adam", ema_decay=0.9),
            Inputs.of(content, [style]),
        ),
    }  # fmt: skip


def _digest(image):
    return hashlib.sha256(np.asarray(tensor_to_pil(image)).tobytes()).hexdigest()


def _machine():
    """What the pixels depend on besides the code: the CPU (its generation too: oneDNN
    picks AMX, AVX-512 BF16 or plain AVX-512 kernels), torch and the thread count."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""

    def first(key):
        found = [line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.split(":")[0].strip() == key]
        return found[0] if found else ""

    return {
        "cpu": f"{first('model name')} family {first('cpu family')} model {first('model')}",
        "amx": "amx_bf16" in cpuinfo,
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "bfloat16": bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()),
        "threads": torch.get_num_threads(),
    }


def _record():
    """This machine's record, or None."""
    return next((record for record in GOLDEN["records"] if record["machine"] == _machine()), None)


def _pixels(precision):
    """Each case's digest, run as 0.1 ran: the last iterate handed out, no restarts."""
    policy = Policy(hand_out_best=False, restart_rise=math.inf)
    stylizer = Stylizer(Runtime(device="cpu", precision=precision), policy=policy)
    return {f"{name}/{precision}": _digest(stylizer.run(inputs, recipe)) for name, (recipe, inputs) in _cases().items()}


@pytest.mark.slow
@pytest.mark.parametrize("precision", PRECISIONS)
def test_the_recorded_pixels_of_0_1s_recipes(precision):
    record = _record()
    if record is None:
        pytest.skip(f"no pixels recorded on this machine ({_machine()}); `python -m tests.test_regression` makes them")
    for case, digest in _pixels(precision).items():
        assert digest == record["cases"][case], case


@pytest.mark.slow
def test_a_warm_stylizer_paints_what_a_fresh_one_paints():
    shared = Stylizer(Runtime(device="cpu"))
    for name, (recipe, inputs) in _cases().items():
        recipe = recipe.replace(steps=3, first_steps=3, final_steps=3)
        first = shared.run(inputs, recipe)
        warm = shared.run(inputs, recipe)  # style statistics from the cache
        fresh = Stylizer(Runtime(device="cpu")).run(inputs, recipe)
        assert torch.equal(first, warm) and torch.equal(first, fresh), name


if __name__ == "__main__":
    # A record of this machine's pixels, for tests/golden_0_1.json's "records".
    cases = {case: digest for precision in PRECISIONS for case, digest in _pixels(precision).items()}
    print(json.dumps({"machine": _machine(), "cases": cases}, indent=1))
