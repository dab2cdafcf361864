import pytest

from detectors.passages import Observation, PassageAssembler, group_passages, same_plate, vote


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


def test_assembler_streams_reads_into_passages_and_finalises_them() -> None:
    assembler = PassageAssembler(gap_s=3.0)
    for read in (obs(1, 0.0, "51F86988", 0.9), obs(2, 0.5, "29X504899", 0.8), obs(3, 0.9, "51F86986", 0.6)):
        assembler.add("lane", read, now=100.0)
    assembler.add("lane", obs(1, 0.0, "51F86988", 0.9), now=100.0)  # a replayed read changes nothing
    flushed = assembler.flush(now=100.5)
    # the car behind does not split the first car's passage
    assert [([r.read_id for r in p.reads], final) for p, final in flushed] == [(["r1", "r3"], False),
                                                                              (["r2"], False)]
    assert assembler.flush(now=101.0) == []  # nothing changed, nothing final yet

    # a read 8 s later (capture time) at the lane closes both: the lane has moved on
    assembler.add("lane", obs(4, 8.0, "30A11111", 0.9), now=101.5)
    flushed = assembler.flush(now=101.6)
    assert [(p.key, final) for p, final in flushed] == [("r1", True), ("r2", True), ("r4", False)]
    assert len(assembler) == 1
    # a quiet lane closes its passages by processing time
    assert [(p.key, final) for p, final in assembler.flush(now=110.0)] == [("r4", True)]
    assert len(assembler) == 0


def test_assembler_puts_a_late_read_into_its_passage_in_capture_order() -> None:
    assembler = PassageAssembler(gap_s=3.0)
    for read in (obs(1, 1.0, "20A12345", 0.9), obs(2, 2.0, "20A12345", 0.9), obs(3, 0.5, "20A12345", 0.7)):
        assembler.add("lane", read, now=0.0)
    (passage, _), = assembler.flush(now=0.0)
    assert [r.read_id for r in passage.reads] == ["r3", "r1", "r2"] and passage.key == "r1"
