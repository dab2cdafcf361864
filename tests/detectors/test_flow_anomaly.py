import pytest

from detectors.flow_anomaly import detect_flow_anomaly

STEADY = [40, 42, 38, 45, 41, 39, 44, 40, 43, 37, 41, 42]


def test_ordinary_variation_is_not_an_anomaly() -> None:
    for observed in (35, 41, 50):
        assert detect_flow_anomaly(observed, STEADY) is None


@pytest.mark.parametrize(("observed", "kind"), [(2, "drop"), (0, "drop"), (120, "surge")])
def test_drops_and_surges(observed: float, kind: str) -> None:
    anomaly = detect_flow_anomaly(observed, STEADY)
    assert anomaly is not None and anomaly.kind == kind
    assert anomaly.expected == pytest.approx(41.0, abs=1)


def test_one_past_surge_does_not_mask_the_next() -> None:
    assert detect_flow_anomaly(130, [*STEADY, 300]) is not None


def test_quiet_checkpoints_and_short_history_are_not_judged() -> None:
    assert detect_flow_anomaly(0, [2, 3, 1, 2, 3, 2, 1]) is None
    assert detect_flow_anomaly(0, [40, 41, 42]) is None
