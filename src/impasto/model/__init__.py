"""The network: the layer table, the weights and the frozen encoder."""

from impasto.model.encoder import Encoder, build_encoder, preprocess
from impasto.model.layers import LAYER_NAMES, MIN_SIDE, check_layers, layer_names
from impasto.model.weights import VGGWeights, load_weights

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
