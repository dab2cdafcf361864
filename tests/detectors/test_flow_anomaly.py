import pytest

from detectors.flow_anomaly import choose_baseline, detect_flow_anomaly, judge_flow

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


# the same five minutes of the morning rush on earlier days, and the two hours before it today
RUSH = [96.0, 101.0, 99.0, 104.0, 98.0, 100.0, 97.0]
RAMP = [10.0] * 12 + [12.0, 17.0, 23.0, 30.0, 37.0, 45.0, 53.0, 61.0, 70.0, 78.0, 86.0, 93.0]


def test_the_usual_rush_is_no_surge_against_the_time_of_day() -> None:
    assert detect_flow_anomaly(100, RAMP) is not None, "against the last two hours it is a surge"
    assert judge_flow(100, RAMP, RUSH) is None


def test_a_surge_above_the_usual_rush_is_one() -> None:
    anomaly = judge_flow(200, RAMP, RUSH)
    assert anomaly is not None and (anomaly.kind, anomaly.baseline) == ("surge", "time_of_day")
    assert anomaly.expected == pytest.approx(99.0)


def test_a_drop_below_the_usual_rush_is_one_though_the_last_two_hours_were_quieter() -> None:
    anomaly = judge_flow(40, RAMP, RUSH)
    assert anomaly is not None and (anomaly.kind, anomaly.baseline) == ("drop", "time_of_day")


def test_a_new_checkpoint_is_judged_against_the_last_two_hours() -> None:
    assert choose_baseline(RAMP, [100.0, 98.0, None, None, None, None, None]) == ("trailing", RAMP)
    anomaly = judge_flow(100, RAMP, [100.0, 98.0, None, None, None, None, None])
    assert anomaly is not None and (anomaly.kind, anomaly.baseline) == ("surge", "trailing")


def test_days_without_data_do_not_count_but_quiet_days_do() -> None:
    # three nights with traffic that day, none in this window: the usual is nothing, too quiet to judge
    assert choose_baseline(STEADY, [0.0, None, 0.0, None, 0.0, None, None]) == ("time_of_day", [0.0] * 3)
    assert judge_flow(30, STEADY, [0.0, None, 0.0, None, 0.0, None, None]) is None


def test_one_day_with_an_incident_does_not_move_the_usual() -> None:
    assert judge_flow(100, RAMP, [*RUSH[:6], 400.0]) is None
    assert judge_flow(300, RAMP, [*RUSH[:6], 400.0]) is not None, "nor does it hide the next one"


def test_the_same_weekday_comes_first_once_there_are_weeks_of_it() -> None:
    sundays = [52.0, 49.0, 50.0, 48.0]
    assert judge_flow(50, RAMP, RUSH, sundays) is None, "a quiet Sunday rush, as on Sundays"
    anomaly = judge_flow(50, RAMP, RUSH, sundays[:2] + [None, None])
    assert anomaly is not None and (anomaly.kind, anomaly.baseline) == ("drop", "time_of_day")
    anomaly = judge_flow(120, RAMP, RUSH, sundays)
    assert anomaly is not None and (anomaly.kind, anomaly.baseline) == ("surge", "same_weekday")
