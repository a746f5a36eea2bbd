"""A runner for tests: no network, no images read; each job makes ``steps`` progress
events ``delay`` seconds apart, with a preview that brightens step by step, and a grey
result (or fails with ``fail``'s message when the recipe's seed equals ``fail_seed``)."""

from __future__ import annotations

import time

import torch
from torch import Tensor

from impasto.engine.events import Progress
from impasto.errors import ImpastoError
from impasto.jobs.base import JobRecord, QueueRunner


class FakeRunner(QueueRunner):
    def __init__(self, steps: int = 5, delay: float = 0.0, fail_seed: int | None = None, workers: int = 1) -> None:
        self.steps, self.delay, self.fail_seed = steps, delay, fail_seed
        self.executed: list[str] = []
        super().__init__(workers)

    def execute(self, record: JobRecord) -> Tensor:
        self.executed.append(record.id)
        recipe = record.job.recipe
        if self.fail_seed is not None and recipe.seed == self.fail_seed:
            raise ImpastoError("fake failure")
        size = (max(16, (recipe.size or 64) * 3 // 4), recipe.size or 64)
        image = torch.zeros(1, 3, *size)
        started = time.perf_counter()
        for step in range(1, self.steps + 1):
            time.sleep(self.delay)
            image = torch.full((1, 3, *size), step / self.steps)
            terms = {"content.relu4_2": 1.0 / step, "style.relu1_1": 2.0 / step}
            event = Progress(step, self.steps, 0, 1, size, sum(terms.values()), terms,
                             time.perf_counter() - started, image, False, step / self.steps)  # fmt: skip
            if self.progress(record, event):
                break
        return image
