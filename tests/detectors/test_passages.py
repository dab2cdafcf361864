import pytest

from detectors.passages import Observation, PassageAssembler, group_passages, same_plate, vote


def obs(i: int, at: float, text: str, conf: float, cands=(), frame=None) -> Observation:
    return Observation(f"r{i}", at, text, conf, tuple(cands), frame=frame)


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


def _frames(plates: list[str], frames: int, *, every_s: float = 0.2) -> list[Observation]:
    """Each plate read in each of ``frames`` frames (one capture time per frame)."""
    return [obs(f * 100 + i, f * every_s, text, 0.9, frame=f)
            for f in range(frames) for i, text in enumerate(plates)]


def test_a_swarm_of_motorbikes_makes_one_passage_each() -> None:
    """A read was compared with the four newest passages only: with five or more plates in
    view every read opened a passage of its own (8 motorbikes in 8 frames: 64 passages)."""
    plates = ["29X504899", "30F78286", "51G10096", "20A12345",
              "29B167890", "37C24680", "43E13579", "88H11223"]
    passages = group_passages(_frames(plates, 8))
    assert sorted(p[0].text for p in passages) == sorted(plates)
    assert all(len(p) == 8 for p in passages)


def test_two_alike_plates_in_one_frame_are_two_vehicles() -> None:
    """Two reads of one frame never join one passage, however alike; each read joins the passage
    it matches best, not the first that is close enough."""
    passages = group_passages(_frames(["20A112345", "20A112346"], 5))
    assert sorted(tuple({r.text for r in p}) for p in passages) == [("20A112345",), ("20A112346",)]


def test_a_read_delivered_again_after_its_passage_ended_changes_nothing() -> None:
    """A Kafka replay after a rebalance re-delivers reads: the one that opened a final passage
    opened a new passage of one read with the same id, which overwrote the stored passage."""
    assembler = PassageAssembler(gap_s=3.0)
    for read in (obs(1, 0.0, "51F86988", 0.9), obs(2, 0.4, "51F86988", 0.9)):
        assembler.add("lane", read, now=0.0)
    [(passage, final)] = assembler.flush(now=10.0)
    assert final and len(passage.reads) == 2
    assembler.add("lane", obs(1, 0.0, "51F86988", 0.9), now=11.0)
    assert assembler.flush(now=11.5) == [] and len(assembler) == 0


def test_a_camera_stamping_whole_seconds_still_makes_one_passage_per_vehicle() -> None:
    """Frames are told apart by their identity, not their time: five frames stamped with one
    second are one vehicle's, not five."""
    reads = [obs(i, 100.0, "51F86988", 0.9, frame=f"frame-{i}") for i in range(5)]
    assert [len(p) for p in group_passages(reads)] == [5]
