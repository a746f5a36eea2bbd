"""The package's layering, checked on every import statement that runs (those inside
functions too; not those for annotations only): UIs → drivers → engine → objective →
model → base, each importing only its own layer and those below, and no two parts of the
package, nor two modules, importing each other."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

SOURCE = Path(__file__).resolve().parent.parent / "src"

#: Top to bottom. The longest prefix decides a module's layer.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("UIs", ("impasto.cli", "impasto.web", "impasto.__main__", "impasto")),  # the package's facade too
    (
        "drivers",
        ("impasto.batch", "impasto.video", "impasto.explain", "impasto.jobs", "impasto.prints", "impasto.demo"),
    ),
    (
        "engine",
        ("impasto.engine", "impasto.schedule", "impasto.runtime", "impasto.inputs", "impasto.metrics", "impasto.color"),
    ),
    ("objective", ("impasto.objective",)),
    ("model", ("impasto.model",)),
    # the network's layer names are data the recipe checks against: no torch, no model
    (
        "base",
        (
            "impasto.config",
            "impasto.presets",
            "impasto.errors",
            "impasto.digest",
            "impasto.numerics",
            "impasto.imageio",
            "impasto.resources",
            "impasto._lazy",
            "impasto._version",
            "impasto.model.layers",
        ),
    ),
]


def layer(module: str) -> int:
    matches = [
        (len(prefix), index)
        for index, (_, prefixes) in enumerate(LAYERS)
        for prefix in prefixes
        if module == prefix or module.startswith(prefix + ".")
    ]
    assert matches, f"{module} is in no layer: add it to LAYERS"
    return max(matches)[1]


def _runtime_nodes(tree: ast.AST):
    """Every node, but those under ``if TYPE_CHECKING:`` (annotations only, never run)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            yield from (n for child in node.orelse for n in [child, *_runtime_nodes(child)])
            continue
        yield node
        yield from _runtime_nodes(node)


def _submodule(module: str, name: str) -> str:
    """``from module import name``: the module ``module.name`` where there is one."""
    path = SOURCE.joinpath(*module.split("."), name)
    return f"{module}.{name}" if path.with_suffix(".py").is_file() or path.is_dir() else module


def imports() -> list[tuple[str, str]]:
    """(importer, imported) for every import of an impasto module in the package."""
    found = []
    for path in sorted((SOURCE / "impasto").rglob("*.py")):
        module = ".".join(path.relative_to(SOURCE).with_suffix("").parts).removesuffix(".__init__")
        for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [_submodule(node.module, alias.name) for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            found += [(module, name) for name in names if name == "impasto" or name.startswith("impasto.")]
    return found


def test_every_import_points_down_the_layers():
    upward = [
        f"{a} ({LAYERS[layer(a)][0]}) imports {b} ({LAYERS[layer(b)][0]})" for a, b in imports() if layer(b) < layer(a)
    ]
    assert upward == []


def test_no_two_parts_of_the_package_import_each_other():
    def part(module: str) -> str:
        return ".".join(module.split(".")[:2])

    for name in (part, lambda module: module):  # between parts, and between any two modules
        edges = {(name(a), name(b)) for a, b in imports() if name(a) != name(b)}
        pairs = itertools.product(edges, edges)
        circles = sorted(f"{a} ⇄ {b}" for (a, b), (c, d) in pairs if (a, b) == (d, c) and a < b)
        assert circles == []


def test_the_check_sees_an_upward_import():
    # the model importing the engine would be caught
    assert layer("impasto.model.encoder") > layer("impasto.engine.plan")
    assert layer("impasto.model.layers") == len(LAYERS) - 1 and layer("impasto") == 0
