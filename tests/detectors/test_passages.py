import pytest

from detectors.passages import Observation, group_passages, same_plate, vote


def obs(i: int, at: float, text: str, conf: float, cands=()) -> Observation:
    return Observation(f"r{i}", at, text, conf, tuple(cands))


def test_reads_of_one_vehicle_form_one_passage_and_the_next_vehicle_another() -> None:
    reads = [obs(1, 0.0, "51F86988", 0.9), obs(2, 0.4, "51F86986", 0.6), obs(3, 0.8, "51F86988", 0.8),
             obs(4, 1.5, "29X504899", 0.9),  # a different plate right behind
             obs(5, 9.0, "51F86988", 0.9)]  # the first car again, much later
    passages = group_passages(reads, gap_s=3.0)
    assert [[r.read_id for r in p] for p in passages] == [["r1", "r2", "r3"], ["r4"], ["r5"]]


def test_vote_beats_a_single_confident_misread() -> None:
    passage = [obs(1, 0, "51F86988", 0.7), obs(2, 0.3, "51F86986", 0.95), obs(3, 0.6, "51F86988", 0.75)]
    result = vote(passage)
    assert result.text == "51F86988" and result.support == 2 and result.best_read_id == "r3"
    assert 0.5 < result.confidence < 1.0


def test_candidates_count_at_a_discount() -> None:
    passage = [obs(1, 0, "20A12345", 0.5, [("20A12345", 0.5), ("20A12346", 0.45)]),
               obs(2, 0.3, "20A12346", 0.55, [("20A12346", 0.55), ("20A12345", 0.4)])]
    assert vote(passage).text == "20A12346"


def test_agreement_raises_confidence() -> None:
    one = vote([obs(1, 0, "20A12345", 0.8)])
    three = vote([obs(i, i * 0.2, "20A12345", 0.8) for i in range(3)])
    assert three.confidence > one.confidence


def test_same_plate_tolerates_lookalikes_and_small_edits_only() -> None:
    assert same_plate("51F86988", "51F869B8")
    assert same_plate("51F86988", "51F8698")
    assert not same_plate("51F86988", "29X504899")


def test_empty_passage_is_an_error() -> None:
    with pytest.raises(ValueError):
        vote([])
