"""The learning-rate schedule shared by the training scripts."""

from __future__ import annotations

import math
from typing import Any, Protocol


class _Optimiser(Protocol):
    param_groups: list[dict[str, Any]]


class CosineOverTime:
    """Cosine decay from ``peak_lr`` to 2 % of it over a wall-clock budget.

    Training runs for minutes, not a number of steps, so the steps the budget holds are
    estimated from the pace of the first ``pace_steps``; until then the rate stays at its peak.
    """

    def __init__(self, optimiser: _Optimiser, peak_lr: float, budget_s: float,
                 *, pace_steps: int = 50) -> None:  # fmt: skip
        self.optimiser, self.peak_lr = optimiser, peak_lr
        self.budget_s, self.pace_steps = budget_s, pace_steps
        self.steps: int | None = None  # the budget's steps, once the pace is known

    def update(self, step: int, elapsed_s: float) -> None:
        """Set the rate for ``step``, taken ``elapsed_s`` seconds into the budget."""
        if step == self.pace_steps:
            self.steps = int(self.budget_s / (elapsed_s / self.pace_steps))
        if self.steps:
            progress = min(step / self.steps, 1.0)
            for group in self.optimiser.param_groups:
                group["lr"] = self.peak_lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress)))
