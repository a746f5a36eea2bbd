"""The network: the layer table (:mod:`impasto.model.layers`, no torch), the weights and
the frozen encoder."""

from __future__ import annotations

from typing import TYPE_CHECKING

from impasto._lazy import lazy_exports

_HOMES = {
    "Encoder": "impasto.model.encoder",
    "build_encoder": "impasto.model.encoder",
    "preprocess": "impasto.model.encoder",
    "LAYER_NAMES": "impasto.model.layers",
    "MIN_SIDE": "impasto.model.layers",
    "check_layers": "impasto.model.layers",
    "layer_names": "impasto.model.layers",
    "VGGWeights": "impasto.model.weights",
    "load_weights": "impasto.model.weights",
}
__all__ = [
    "LAYER_NAMES",
    "MIN_SIDE",
    "Encoder",
    "VGGWeights",
    "build_encoder",
    "check_layers",
    "layer_names",
    "load_weights",
    "preprocess",
]

if TYPE_CHECKING:
    from impasto.model.encoder import Encoder, build_encoder, preprocess
    from impasto.model.layers import LAYER_NAMES, MIN_SIDE, check_layers, layer_names
    from impasto.model.weights import VGGWeights, load_weights


__getattr__ = lazy_exports(globals(), _HOMES)
