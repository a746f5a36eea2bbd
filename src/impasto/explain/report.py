"""The report: five sections, each with a few plain sentences, its figures (matplotlib) and
the data they were drawn from; rendered as one self-contained HTML file (images inline,
nothing loaded from anywhere) or as PNG files."""

from __future__ import annotations

import base64
import html
import io
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import Tensor

from impasto.config import StyleConfig
from impasto.digest import digest
from impasto.engine.memory import BASELINE_BYTES, available_bytes, feature_elements_per_pixel, gigabytes
from impasto.engine.stylizer import Stylizer
from impasto.errors import ConfigError, ImageError, ImpastoWarning
from impasto.explain import figures, probes
from impasto.explain.history import History, Recorder
from impasto.imageio import load_image, resize, save_bytes, save_image, size_of
from impasto.inputs import Inputs
from impasto.metrics import LAYERS as METRIC_LAYERS
from impasto.metrics import figures as quality_figures
from impasto.model.encoder import weights_digest
from impasto.resources import user_folder
from impasto.runtime import Runtime
from impasto.schedule import fit_longest_side

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Layers whose feature maps are shown, shallow to deep.
MAP_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
#: Channels shown per layer.
MAP_CHANNELS = 6
#: The classic figure's layers: style from relu1_1 up to each, content at each.
STYLE_LADDER = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LADDER = ("relu1_2", "relu2_2", "relu3_2", "relu4_2", "relu5_2")
#: Reconstructions: longest side and L-BFGS steps of each.
RECONSTRUCT_SIZE = 160
RECONSTRUCT_STEPS = 60


@dataclass
class Section:
    key: str
    title: str
    text: list[str]
    figures: dict[str, Figure] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    html: str = ""
    """Extra markup (tables) after the text."""


@dataclass
class Report:
    sections: list[Section]
    title: str
    timings: dict[str, float]

    def section(self, key: str) -> Section:
        return next(s for s in self.sections if s.key == key)

    def to_html(self) -> str:
        parts = [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            # No network: nothing but inline images may load, and no script runs.
            '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; '
            "style-src 'unsafe-inline'\">",
            f"<title>{html.escape(self.title)}</title>",
            f"<style>{CSS}</style></head><body>",
            f"<h1>{html.escape(self.title)}</h1>",
            "<nav><ol>",
            *(f'<li><a href="#{s.key}">{html.escape(s.title)}</a></li>' for s in self.sections),
            "</ol></nav>",
        ]
        for s in self.sections:
            parts.append(f'<section id="{s.key}"><h2>{html.escape(s.title)}</h2>')
            parts += [f"<p>{html.escape(t)}</p>" for t in s.text]
            parts.append(s.html)
            for name, fig in s.figures.items():
                data = base64.b64encode(_png(fig)).decode()
                parts.append(f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,{data}"></figure>')
            parts.append("</section>")
        times = ", ".join(f"{k} {v:.1f} s" for k, v in self.timings.items())
        parts.append(f"<footer>Made by impasto explain ({html.escape(times)}).</footer></body></html>")
        return "\n".join(parts)

    def save_figures(self, folder: str | Path, inputs: Sequence[object] = ()) -> list[Path]:
        """Each figure as ``NN-section-name.png`` in ``folder``; returns the paths. None
        of them replaces one of ``inputs``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for n, s in enumerate(self.sections, start=1):
            for name, fig in s.figures.items():
                path = folder / f"{n:02d}-{s.key}-{name}.png"
                save_bytes(_png(fig), path, (".png",), inputs=inputs)
                paths.append(path)
        return paths


CSS = """
body { font-family: system-ui, sans-serif; max-width: 1250px; margin: 2em auto; padding: 0 1em; color: #222;
       line-height: 1.45; }
h1 { font-size: 1.7em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; }
table { border-collapse: collapse; margin: .6em 0; } td, th { border: 1px solid #ccc; padding: .2em .5em; }
td { text-align: right; font-variant-numeric: tabular-nums; } code { background: #f3f3f3; padding: 0 .2em; }
footer { margin-top: 3em; color: #777; font-size: .9em; }
"""


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def cache_folder() -> Path:
    return user_folder("cache") / "explain"


def reconstruct(
    stylizer: Stylizer, content: Tensor, style: Tensor, recipe: StyleConfig, size: int, steps: int,
    cache: Path | None,
) -> tuple[list[tuple[str, Tensor]], list[tuple[str, Tensor]], float]:  # fmt: skip
    """Images from noise that match only the style of relu1_1 .. each ladder layer, and
    only the content at each content ladder layer; cached by their inputs. Returns both
    strips and the seconds spent computing (0 when all came from the cache)."""
    h, w = fit_longest_side(*size_of(content), size)
    content = resize(content, (h, w), "bicubic")
    base = StyleConfig(size=size, steps=steps, init="noise", tv_weight=0.0, style_loss=recipe.style_loss,
                       pooling=recipe.pooling, colors="style")  # fmt: skip
    jobs = []
    # The term left out (weight 0) sits at a layer the other needs anyway, so the network
    # runs no deeper than the layers matched.
    for k, layer in enumerate(STYLE_LADDER):
        layers = STYLE_LADDER[: k + 1]
        config = base.replace(style_layers=layers, content_layers=(layer,), content_weight=0.0, style_weight=1.0)
        jobs.append((f"style {layers[0]}–{layer}" if k else f"style {layer}", config))
    for layer in CONTENT_LADDER:
        config = base.replace(content_layers=(layer,), style_layers=("relu1_1",), style_weight=0.0, content_weight=1.0)
        jobs.append((f"content {layer}", config))
    spent = 0.0
    out = []
    weights = weights_digest(stylizer.encoder)
    for caption, config in jobs:
        key = digest(content, style, config.to_json(), weights, size=12)
        path = None if cache is None else cache / f"{key}.png"
        if path is not None and path.is_file():
            out.append((caption, load_image(path)))
            continue
        started = time.perf_counter()
        image = stylizer.run(Inputs.of(content, [style]), config)
        spent += time.perf_counter() - started
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                save_image(image, path)
            except (OSError, ImageError) as error:  # the cache is optional: go on without it
                reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
                message = f"cannot keep reconstructions in {cache} ({reason}); going on without the cache"
                warnings.warn(message, ImpastoWarning, stacklevel=2)
                cache = None
        out.append((caption, image))
    return out[: len(STYLE_LADDER)], out[len(STYLE_LADDER) :], spent


#: Longest side of the layer reconstructions: at least what the network reads, at most
#: what teaching figures need (ten runs of them).
MIN_RECONSTRUCT_SIZE, MAX_RECONSTRUCT_SIZE = 32, 1024


def check_reconstructions(size: int, steps: int) -> None:
    """The reconstructions' longest side (0: none) and steps, or one ConfigError."""
    if size != 0 and not MIN_RECONSTRUCT_SIZE <= size <= MAX_RECONSTRUCT_SIZE:
        raise ConfigError(
            "reconstruct_size",
            f"must be 0 (off) or from {MIN_RECONSTRUCT_SIZE} to {MAX_RECONSTRUCT_SIZE} px, got {size}",
        )
    if steps < 1:
        raise ConfigError("reconstruct_steps", f"must be a positive number of steps, got {steps}")


def _layers(recipe: StyleConfig) -> tuple[str, ...]:
    """The layers the report shows, shallow to deep."""
    return tuple(dict.fromkeys((*MAP_LAYERS, *recipe.style_layers, *recipe.content_layers)))


def report_bytes(encoder, size: tuple[int, int], recipe: StyleConfig) -> int:
    """Peak bytes of the report's own work on a result of ``size = (h, w)``: the three
    images' float32 features at the layers shown and at those the quality figures read,
    the largest pair of activations of a forward, and the images' copies."""
    features = feature_elements_per_pixel(encoder, _layers(recipe)) + feature_elements_per_pixel(encoder, METRIC_LAYERS)
    per_pixel = 3 * 4 * features + 2 * 64 * 4 + 3 * 3 * 4 * 4
    # 10% for what the figures add: measured 1.34 and 3.46 GB at 512 and 1024 px, this
    # estimate 1.3 and 3.6 GB (docs/reliability.md).
    return int(BASELINE_BYTES + size[0] * size[1] * per_pixel * 1.1)


def check_report_memory(encoder, size: tuple[int, int], recipe: StyleConfig, device, field: str = "result") -> None:
    """Fail before the work when the report on a result of ``size`` cannot fit in memory."""
    need, have = report_bytes(encoder, size, recipe), available_bytes(device)
    if have is not None and need > have:
        raise ConfigError(
            field,
            f"a report on a {size[1]}x{size[0]} result needs about {gigabytes(need)} of memory and "
            f"{gigabytes(have)} is available on {device.type}; explain a smaller result (`size`)",
        )


def explain(
    inputs: Inputs,
    recipe: StyleConfig,
    runtime: Runtime | None = None,
    *,
    result: Tensor | None = None,
    history: History | None = None,
    stylizer: Stylizer | None = None,
    reconstruct_size: int = RECONSTRUCT_SIZE,
    reconstruct_steps: int = RECONSTRUCT_STEPS,
    cache: Path | None = None,
    on_progress=None,
) -> Report:
    """Run ``recipe`` on ``inputs`` (unless a finished ``result`` is given, with its
    ``history`` if one was recorded) and build the report on it."""
    check_reconstructions(reconstruct_size, reconstruct_steps)
    stylizer = stylizer or Stylizer(runtime)
    encoder = stylizer.encoder
    if result is not None:
        check_report_memory(encoder, size_of(result), recipe, stylizer.device)
    timings: dict[str, float] = {}
    before = weights_digest(encoder)
    if result is None:
        recorder = Recorder(on_progress)
        started = time.perf_counter()
        result = stylizer.run(inputs, recipe, on_progress=recorder, previews=recorder.previews)
        timings["stylisation"] = time.perf_counter() - started
        history = recorder.history
    after = weights_digest(encoder)
    started = time.perf_counter()
    size = size_of(result)
    # Decoded no larger than the report uses them (the result's size, the reconstructions').
    needed = max(size[0] * size[1], reconstruct_size**2)
    photo_full = load_image(inputs.content, name="content", needed=needed)
    painting_full = load_image(inputs.styles[0], name="style", needed=needed * recipe.style_scale**2)
    (h, w), (ph, pw) = size, size_of(photo_full)
    if abs(w / h - pw / ph) > 0.02 * pw / ph + 1 / min(h, w):
        raise ConfigError("result", f"is {w}x{h}, not the shape of the photo ({pw}x{ph}): not a result of this photo")
    photo = resize(photo_full, size, "bicubic")
    from impasto.metrics import references

    _, painting = references(photo_full, painting_full, max(size))
    images = {"photo": photo, "painting": painting, "result": result}
    layers = _layers(recipe)
    feats = {who: probes.features(encoder, im, layers, recipe.pooling) for who, im in images.items()}

    sections = [
        _network(encoder, recipe, size, before, after, photo, result),
        _feature_maps(feats),
        _style(images, feats, recipe),
    ]
    timings["figures"] = time.perf_counter() - started
    if reconstruct_size > 0:
        style_strip, content_strip, spent = reconstruct(
            stylizer, photo_full, painting_full, recipe, reconstruct_size, reconstruct_steps, cache
        )
        timings["reconstructions"] = spent
        sections.append(_ladder(style_strip, content_strip, spent, reconstruct_size, reconstruct_steps))
    style_d, content_d = quality_figures(encoder, result, photo, painting)
    sections.append(_optimisation(history, style_d, content_d))
    title = f"How impasto painted {_name(inputs.content)} in the style of {_name(inputs.styles[0])}"
    return Report(sections, title, timings)


def _name(source: object) -> str:
    return Path(source).name if isinstance(source, (str, Path)) else "the photo"


def _network(encoder, recipe, size, before, after, photo, result) -> Section:
    layers = probes.network_layers(encoder, recipe.content_layers, recipe.style_layers, size)
    convs = sum(1 for layer in layers if layer.kind == "conv")
    pools = sum(1 for layer in layers if layer.kind == "pool")
    unused = [layer.name for layer in layers if layer.role == "unused"]
    moved = float((result - photo).abs().mean())
    name = "VGG19" if convs == 16 else "VGG16" if convs == 13 else "VGG"
    text = [
        f"The picture was made with {name}, a network trained once to recognise objects in photos. "
        f"It has {convs} convolution layers (each followed by a ReLU) and {pools} pooling layers that halve "
        "the picture's size; its fully connected layers, which name objects, are not needed and not loaded.",
        f"The style is read at {', '.join(recipe.style_layers)} and the content at "
        f"{', '.join(recipe.content_layers)}. "
        + (f"The grey layers ({', '.join(unused)}) were never computed: nothing deeper is used." if unused else ""),
        "The network never changes while the picture is painted: only the picture's pixels are optimised. "
        f"The checksum of its weights before the run was {before[:16]}… and after it {after[:16]}… "
        f"({'the same' if before == after else 'DIFFERENT'}), while the picture moved on average "
        f"{moved * 255:.0f} of 255 levels per pixel away from the photo.",
    ]
    fig = figures.network(layers, f"{name} as loaded, for a {size[1]}×{size[0]} picture")
    data = {"layers": layers, "checksum_before": before, "checksum_after": after, "mean_change": moved}
    return Section("network", "1. The network, as loaded", text, {"network": fig}, data)


def _feature_maps(feats) -> Section:
    example = probes.conv_example()
    figs: dict[str, Figure] = {"convolution": figures.conv_example(example)}
    channels = {}
    for layer in MAP_LAYERS:
        maps = {who: f[layer] for who, f in feats.items()}
        channels[layer] = probes.top_channels(list(maps.values()), MAP_CHANNELS)
        figs[layer] = figures.feature_maps(maps, channels[layer], layer)
    text = [
        "A convolution layer slides small filters over its input; each filter gives one feature map, a picture "
        "of where its pattern occurs. In the small example below, a 3×3 image with 3 colour channels passes "
        "through 4 filters of 2×2 and becomes 4 feature maps of 2×2 (the numbers are the layer's own).",
        "Below it, the same channels of each layer for the photo, the painting and the result (bright = strong "
        "response). Shallow layers respond to edges and colours; deeper ones to textures and parts of objects, "
        "at a coarser resolution.",
    ]
    rows = "".join(
        f"<tr><th>map {k + 1}</th>" + "".join(f"<td>{v:.3f}</td>" for v in example["maps"][k].flatten().tolist())
        + f"<td>{example['bias'][k]:.3f}</td></tr>"
        for k in range(4)
    )  # fmt: skip
    table = (
        f"<table><tr><th></th><th>(0,0)</th><th>(0,1)</th><th>(1,0)</th><th>(1,1)</th><th>bias</th></tr>{rows}</table>"
    )
    return Section("feature-maps", "2. Feature maps", text, figs, {"example": example, "channels": channels}, table)


def _style(images, feats, recipe) -> Section:
    palettes = {who: probes.palette(images[who]) for who in ("painting", "result", "photo")}
    hists = {who: probes.histograms(images[who]) for who in ("photo", "result", "painting")}
    figs: dict[str, Figure] = {"palettes": figures.palettes(palettes), "histograms": figures.histograms(hists)}
    order = {"painting": feats["painting"], "result": feats["result"], "photo": feats["photo"]}
    data: dict[str, Any] = {"palettes": palettes, "histograms": hists, "images": images}
    wasserstein = recipe.style_loss == "wasserstein"
    for layer in recipe.style_layers:
        if wasserstein:
            stats = probes.moments(order, layer)
            data.setdefault("moments", {})[layer] = stats
            covs = {who: stats[who]["cov"] for who in order}
            figs[f"covariance-{layer}"] = figures.matrices(covs, layer, "covariance", ("result", "painting"))
            figs[f"means-{layer}"] = figures.means({who: stats[who] for who in order}, layer)
        else:
            grams = probes.gram_matrices(order, layer)
            data.setdefault("grams", {})[layer] = grams
            views = {who: grams[who] for who in order}
            figs[f"gram-{layer}"] = figures.matrices(views, layer, "Gram matrix F·Fᵀ / (C·H·W)", ("result", "painting"))
    statistic = (
        "the mean and the covariance of each layer's features (the Wasserstein loss compares these)"
        if wasserstein
        else "the Gram matrix of each layer, the feature-map matrix times its transpose"
    )
    text = [
        "Style is what stays when the arrangement is forgotten: the selected colours, how they are distributed, "
        "the width of the strokes and which patterns occur together. The bars show each picture's main colours "
        "and how much of it each covers; the curves show how bright its red, green and blue are.",
        f"The network sees style as {statistic}: cell (i, j) says how much channels i and j fire together "
        "anywhere in the picture, whatever the place. The result's matrices are pushed towards the painting's "
        "and away from the photo's; the last panel shows what is left to match (same channel order in every "
        "panel, sorted by the painting's diagonal, one colour scale).",
    ]
    return Section("style", "3. What is style?", text, figs, data)


def _ladder(style_strip, content_strip, spent, size, steps) -> Section:
    figs = {
        "style-layers": figures.strip(style_strip, "Noise optimised to match only the painting's style up to a layer"),
        "content-layers": figures.strip(content_strip, "Noise optimised to match only the photo's content at a layer"),
    }
    note = f"these took {spent:.0f} s" if spent else "these came from the cache"
    text = [
        "Each picture in the first row started as noise and was changed only to match the painting's style at "
        "the layers named: with relu1_1 alone only colours and fine grain come back; each deeper layer adds "
        "larger strokes and patterns.",
        "The second row matched only the photo's content at one layer: from shallow layers the photo comes back "
        "almost exactly; from deep ones only the layout of objects remains, and the detail fades.",
        f"(At {size} px, {steps} steps each; {note}.)",
    ]
    return Section(
        "layers", "4. Which layer carries what", text, figs, {"style": style_strip, "content": content_strip}
    )


def _optimisation(history: History | None, style_d: float, content_d: float) -> Section:
    figs: dict[str, Figure] = {}
    text = []
    if history is not None and history.steps:
        figs["losses"] = figures.losses(history)
        strip = [(f"step {k}", image) for k, image in history.thinned(8)]
        figs["filmstrip"] = figures.strip(strip, "The picture at checkpoints of the run (smaller scales first)")
        text.append(
            "The curves show each part of the loss over the run, one line per layer: the style terms (solid) and "
            "the content term (dashed) fall as the picture forms; at each grey line the picture is enlarged and "
            "the optimisation goes on at the larger size."
        )
    else:
        text.append("No history was recorded for this result (run impasto stylize --record FILE to keep one).")
    text.append(
        f"Style distance {style_d:.3f} and content distance {content_d:.3f}: the first is how far the result's "
        "features are from the painting's, as a share of how far the photo's are (0 = the painting's style, "
        "1 = no more than the photo); the second is how far it moved from the photo's content (0 = unchanged). "
        "Lower is closer to each; one cannot reach 0 without the other growing."
    )
    data = {"style_distance": style_d, "content_distance": content_d, "history": history}
    return Section("optimisation", "5. How the optimisation went", text, figs, data)
