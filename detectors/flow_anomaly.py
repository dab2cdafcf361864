"""Flow anomalies: a checkpoint's traffic far outside its usual level.

Robust statistics (median and MAD) so one past surge does not hide the next,
with a Poisson floor on the spread so quiet checkpoints (a few vehicles per
window) do not alarm on ordinary noise.

Traffic follows the clock: the morning rush ramps up over an hour, the evening
ebbs. Against the last two hours alone every ordinary rush is a "surge" and every
evening a "drop", and operators learn to ignore the alerts. So a window is judged,
where the checkpoint has the history, against the same window on earlier days
(:func:`judge_flow`), and against the last two hours only while it is too new.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

_MAD_TO_SIGMA = 1.4826

# What a window was compared with: the same clock time on the same weekday of earlier weeks,
# the same clock time on each earlier day, or the windows just before it.
Baseline = Literal["same_weekday", "time_of_day", "trailing"]

MIN_DAYS = 3  # earlier days with data before the time of day is trusted (median of 3 outvotes one odd day)


@dataclass(frozen=True)
class FlowAnomaly:
    kind: Literal["surge", "drop"]
    observed: float
    expected: float
    score: float  # robust z-score
    baseline: Baseline = "trailing"


def detect_flow_anomaly(
    observed: float,
    history: Sequence[float],
    *,
    min_history: int = 6,
    min_expected: float = 5.0,
    threshold: float = 4.0,
    baseline: Baseline = "trailing",
) -> FlowAnomaly | None:
    """Compare one window's count with the counts of comparable windows (``baseline`` says
    which, for the alert).

    ``history`` holds the counts of equally long windows (zeros included). Returns None when
    there is too little history, the checkpoint is too quiet to judge, or the count is within
    ``threshold`` robust deviations.
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
    return FlowAnomaly("surge" if score > 0 else "drop", float(observed), expected, round(score, 2), baseline)


def choose_baseline(
    trailing: Sequence[float],
    daily: Sequence[float | None],
    weekly: Sequence[float | None] = (),
    *,
    min_days: int = MIN_DAYS,
) -> tuple[Baseline, list[float]]:
    """The history to judge a window by: the same weekday of earlier weeks, else the same clock
    time of earlier days, each once ``min_days`` of them have data, else the trailing windows.

    ``daily`` and ``weekly`` hold the same window's count on earlier days, None for a day the
    checkpoint had no data at all (not yet installed, or down all day): such a day says nothing,
    while a zero on a day with traffic (a quiet night) is a real count. The same weekday comes
    first because weekend mornings are not weekday mornings; it needs weeks of history.
    """
    for kind, days in (("same_weekday", weekly), ("time_of_day", daily)):
        known = [n for n in days if n is not None]
        if len(known) >= min_days:
            return kind, known
    return "trailing", list(trailing)


def judge_flow(
    observed: float,
    trailing: Sequence[float],
    daily: Sequence[float | None],
    weekly: Sequence[float | None] = (),
    *,
    min_days: int = MIN_DAYS,
) -> FlowAnomaly | None:
    """Judge one window against the best baseline its checkpoint's history allows
    (:func:`choose_baseline`)."""
    baseline, history = choose_baseline(trailing, daily, weekly, min_days=min_days)
    if baseline == "trailing":
        return detect_flow_anomaly(observed, history)
    return detect_flow_anomaly(observed, history, min_history=min_days, baseline=baseline)
