"""Deploy-test fixtures. The readers live in deploy_files.py (a unique module name, so
test modules can import them without clashing with other folders' conftest)."""

from __future__ import annotations

import pytest
from deploy_files import MetricInfo, registered_metrics


@pytest.fixture(scope="session")
def metric_samples() -> dict[str, MetricInfo]:
    """Sample name -> metric info for everything ioc.metrics registers."""
    return registered_metrics()
