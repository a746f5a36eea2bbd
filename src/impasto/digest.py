"""One definition of "the same input": a content hash of tensors, bytes, text and files.

The style-statistics cache, the explain report's reconstruction cache and weight
checksum, and a batch item's key all ask the same question, so they share this answer.
Each part is hashed with its kind and length in front, so that no two different lists of
parts run together into the same bytes. (The weights file's SHA-256 in
:mod:`impasto.model.weights` is another thing: a published checksum it is compared to.)
"""

from __future__ import annotations

import hashlib
import os

import torch
from torch import Tensor

Part = Tensor | bytes | str | os.PathLike

#: Bytes read from a file at a time.
_CHUNK = 1 << 20


def digest(*parts: Part, size: int = 16) -> str:
    """The hex BLAKE2b hash (``size`` bytes) of ``parts``: a tensor by its shape, dtype
    and values (wherever it lives), bytes and text as they are, a path by its file's
    bytes."""
    h = hashlib.blake2b(digest_size=size)
    for part in parts:
        _update(h, part)
    return h.hexdigest()


def _update(h, part: Part) -> None:
    if isinstance(part, Tensor):
        data = part.detach().cpu().contiguous()
        h.update(f"tensor {tuple(data.shape)} {data.dtype} ".encode())
        h.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    elif isinstance(part, bytes):
        h.update(f"bytes {len(part)} ".encode())
        h.update(part)
    elif isinstance(part, str):
        text = part.encode("utf-8", "surrogatepass")
        h.update(f"text {len(text)} ".encode())
        h.update(text)
    else:
        with open(part, "rb") as stream:
            h.update(f"file {os.fstat(stream.fileno()).st_size} ".encode())
            while chunk := stream.read(_CHUNK):
                h.update(chunk)
