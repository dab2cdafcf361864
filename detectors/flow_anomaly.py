"""Flow anomalies: a checkpoint's traffic far outside its recent baseline.

Robust statistics (median and MAD) so one past surge does not hide the next,
with a Poisson floor on the spread so quiet checkpoints (a few vehicles per
window) do not alarm on ordinary noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

_MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class FlowAnomaly:
    kind: Literal["surge", "drop"]
    observed: float
    expected: float
    score: float  # robust z-score


def detect_flow_anomaly(
    observed: float,
    history: Sequence[float],
    *,
    min_history: int = 6,
    min_expected: float = 5.0,
    threshold: float = 4.0,
) -> FlowAnomaly | None:
    """Compare one window's count with the counts of the windows before it.

    ``history`` holds the counts of equally long earlier windows (zeros
    included). Returns None when there is too little history, the checkpoint is
    too quiet to judge, or the count is within ``threshold`` robust deviations.
    """
    if len(history) < min_history:
        return None
    values = np.asarray(history, dtype=np.float64)
    expected = float(np.median(values))
    if expected < min_expected:
        return None
    spread = _MAD_TO_SIGMA * float(np.median(np.abs(values - expected)))
    sigma = max(spread, math.sqrt(expected))
    score = (observed - expected) / sigma
    if abs(score) < threshold:
        return None
    return FlowAnomaly("surge" if score > 0 else "drop", float(observed), expected, round(score, 2))
