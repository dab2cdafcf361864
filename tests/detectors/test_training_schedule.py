"""The training scripts' learning-rate schedule (no torch needed: it only sets param groups)."""

from types import SimpleNamespace

import pytest

from detectors.training.schedule import CosineOverTime


def test_cosine_decay_over_the_steps_the_time_budget_holds() -> None:
    optimiser = SimpleNamespace(param_groups=[{"lr": 1e-3}, {"lr": 1e-3}])
    schedule = CosineOverTime(optimiser, 1e-3, budget_s=100.0, pace_steps=10)
    schedule.update(5, elapsed_s=0.5)
    assert optimiser.param_groups[0]["lr"] == 1e-3  # the pace is not known yet
    schedule.update(10, elapsed_s=1.0)  # 10 steps a second: the budget holds 1,000
    assert schedule.steps == 1000
    schedule.update(500, elapsed_s=50.0)
    assert optimiser.param_groups[1]["lr"] == pytest.approx(1e-3 * (0.02 + 0.98 * 0.5))
    schedule.update(2000, elapsed_s=99.0)  # past the estimate: held at the floor
    assert all(group["lr"] == pytest.approx(2e-5) for group in optimiser.param_groups)
