"""The one table of VGG layer names and block shapes.

Layers are strings everywhere (recipe, encoder output keys, loss report keys):
``conv1_1, relu1_1, conv1_2, relu1_2, pool1, ..., pool5``.
"""

from __future__ import annotations

import difflib

from impasto.errors import ConfigError

#: Convolutions per block.
VGG19_BLOCKS = (2, 2, 4, 4, 4)
VGG16_BLOCKS = (2, 2, 3, 3, 3)
#: A weights file is told apart by its number of convolutions.
BLOCKS_BY_CONV_COUNT = {sum(blocks): blocks for blocks in (VGG19_BLOCKS, VGG16_BLOCKS)}
#: The network's pooling: max (as trained) or average (Gatys et al.'s choice for pictures).
POOLINGS = ("max", "avg")
#: The smallest side, in pixels, of any image the network is run on.
MIN_SIDE = 16


def layer_names(blocks: tuple[int, ...] = VGG19_BLOCKS) -> tuple[str, ...]:
    """Names of a VGG's feature layers in order: ``conv1_1, relu1_1, ..., pool5``."""
    names: list[str] = []
    for block, convs in enumerate(blocks, start=1):
        for i in range(1, convs + 1):
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
        names.append(f"pool{block}")
    return tuple(names)


LAYER_NAMES = layer_names()


def check_layers(field: str, layers: tuple[str, ...], known: tuple[str, ...] = LAYER_NAMES) -> None:
    """Raise ConfigError for an empty list, an unknown name (with a "did you mean") or a
    layer listed twice."""
    if not layers:
        raise ConfigError(field, "needs at least one layer")
    for name in layers:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f" (layers are named like {known[1]!r})"
            raise ConfigError(field, f"unknown layer {name!r}{hint}")
    if len(set(layers)) != len(layers):
        raise ConfigError(field, f"lists a layer twice: {', '.join(layers)}")
