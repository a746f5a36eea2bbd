"""The version, in one place: the package metadata reads it from here (pyproject.toml's
dynamic version), and batch keys, video keys and reports include it."""

__version__ = "0.4.0.dev0"
