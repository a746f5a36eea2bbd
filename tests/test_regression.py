"""Results do not change with the code's layout: the pixels of a few small runs of 0.1's
recipes (``default``, ``gatys``, a masked run, colours kept with Adam and EMA) under 0.1's
optimiser rule (the last iterate handed out, no restarts; 0.2 changed the rule on
purpose), recorded per machine class in tests/golden_0_1.json, and the same pixels from
one long-lived Stylizer (cache warm) as from a fresh one per run.

The pixels depend on the CPU's kernels, torch and the thread count: a machine's class is
its CPU vendor and family (one microarchitecture generation: oneDNN picks its kernels and
their blocking from it), the instruction sets torch and oneDNN use (AVX2, AVX-512,
AVX-512 BF16, AMX), torch's version and the thread count. A single picture's sums are
torch's own, split between threads (``Runtime.same_bits`` is on in batches only;
benchmarks/same_bits.py checks the same bytes on 1 and 2 threads there). The test runs
wherever a record of its class exists; ``python -m tests.test_regression --record``
adds or renews this class's record (the CPU models it was made on are kept beside it)."""

import hashlib
import json
import math
import platform
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from impasto import PRESETS, Inputs, Runtime, Stylizer
from impasto.engine import Policy
from impasto.imageio import tensor_to_pil, write_atomically

GOLDEN_PATH = Path(__file__).with_name("golden_0_1.json")
GOLDEN = json.loads(GOLDEN_PATH.read_text())
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


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (empty where there is none)."""
    path = Path("/proc/cpuinfo")
    fields: dict[str, str] = {}
    for line in (path.read_text() if path.exists() else "").splitlines():
        if not line.strip():
            break
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def _machine():
    """The machine's class: what the pixels depend on besides the code (see above)."""
    cpuinfo = _cpuinfo()
    flags = cpuinfo.get("flags", "").split()
    return {
        "cpu": f"{cpuinfo.get('vendor_id') or platform.machine()} family {cpuinfo.get('cpu family', '?')}",
        "amx": "amx_bf16" in flags,
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "bfloat16": bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()),
        "threads": torch.get_num_threads(),
    }


def _cpu_model() -> str:
    cpuinfo = _cpuinfo()
    return f"{cpuinfo.get('model name', platform.processor())} model {cpuinfo.get('model', '?')}"


def _record():
    """This machine class's record, or None."""
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
        assert digest == record["cases"][case], f"{case} (recorded on {', '.join(record['seen_on'])})"


@pytest.mark.slow
def test_a_warm_stylizer_paints_what_a_fresh_one_paints():
    shared = Stylizer(Runtime(device="cpu"))
    for name, (recipe, inputs) in _cases().items():
        recipe = recipe.replace(steps=3, first_steps=3, final_steps=3)
        first = shared.run(inputs, recipe)
        warm = shared.run(inputs, recipe)  # style statistics from the cache
        fresh = Stylizer(Runtime(device="cpu")).run(inputs, recipe)
        assert torch.equal(first, warm) and torch.equal(first, fresh), name


def test_recording_adds_or_renews_this_class_only(tmp_path, monkeypatch):
    path = tmp_path / "golden.json"
    other = {"machine": {"cpu": "elsewhere"}, "seen_on": ["x"], "cases": {"default/auto": "0"}, "note": "kept"}
    path.write_text(json.dumps({"records": [other]}))
    digests = {"auto": "1", "float32": "2"}
    here = sys.modules[__name__]
    monkeypatch.setattr(here, "_pixels", lambda precision: {f"default/{precision}": digests[precision]})
    monkeypatch.setattr(here, "_cpu_model", lambda: "CPU A")
    record_this_machine(path)
    monkeypatch.setattr(here, "_cpu_model", lambda: "CPU B")
    record_this_machine(path)  # the same pixels on another model of the class
    records = json.loads(path.read_text())["records"]
    assert records[0] == other and len(records) == 2
    assert records[1]["machine"] == _machine() and records[1]["seen_on"] == ["CPU A", "CPU B"]
    assert records[1]["cases"] == {"default/auto": "1", "default/float32": "2"}
    digests["auto"] = "3"  # other pixels: the record is renewed, seen on this model only
    record_this_machine(path)
    records = json.loads(path.read_text())["records"]
    assert len(records) == 2 and records[1]["seen_on"] == ["CPU B"] and records[1]["cases"]["default/auto"] == "3"


def record_this_machine(path: Path = GOLDEN_PATH) -> dict:
    """Add this machine class's record to ``path`` (renewing one there was), with the CPU
    model it was made on; the file is replaced whole, or left as it was on failure."""
    cases = {case: digest for precision in PRECISIONS for case, digest in _pixels(precision).items()}
    golden = json.loads(path.read_text())
    machine = _machine()
    old = next((r for r in golden["records"] if r["machine"] == machine), None)
    seen = sorted({*(old["seen_on"] if old and old["cases"] == cases else []), _cpu_model()})
    record = {"machine": machine, "seen_on": seen, "cases": cases, "note": old["note"] if old else ""}
    golden["records"] = [r for r in golden["records"] if r is not old] + [record]
    text = json.dumps(golden, indent=1) + "\n"
    write_atomically(path, lambda stream: stream.write(text.encode()))
    return record


if __name__ == "__main__":
    if sys.argv[1:] == ["--record"]:
        print(json.dumps(record_this_machine(), indent=1))
    else:
        # This machine's record, printed only.
        cases = {case: digest for precision in PRECISIONS for case, digest in _pixels(precision).items()}
        print(json.dumps({"machine": _machine(), "seen_on": [_cpu_model()], "cases": cases}, indent=1))
