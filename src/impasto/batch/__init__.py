"""Many pictures, resumable: a batch's items, their names, keys and manifest
(:mod:`impasto.batch.items`), and the driver that paints them on a runner and reports
typed events (:mod:`impasto.batch.driver`). ``impasto batch`` is this, plus option
parsing and the lines it prints."""

from impasto.batch.driver import (
    Batch,
    BatchEvent,
    Ended,
    Painting,
    Planned,
    Stopped,
    batch_runner,
    paint_batch,
    plan_batch,
)
from impasto.batch.items import (
    DEFAULT_NAME,
    MANIFEST,
    NAME_FIELDS,
    NAME_MAX,
    SUFFIXES,
    Item,
    Manifest,
    check_not_read,
    check_template,
    collect,
    item_key,
    item_recipe,
    plan_items,
    read_pairs,
)

__all__ = [
    "DEFAULT_NAME",
    "MANIFEST",
    "NAME_FIELDS",
    "NAME_MAX",
    "SUFFIXES",
    "Batch",
    "BatchEvent",
    "Ended",
    "Item",
    "Manifest",
    "Painting",
    "Planned",
    "Stopped",
    "batch_runner",
    "check_not_read",
    "check_template",
    "collect",
    "item_key",
    "item_recipe",
    "paint_batch",
    "plan_batch",
    "plan_items",
    "read_pairs",
]
