import pytest

from detectors.passages import (
    FINISHED_KEPT_S,
    Observation,
    PassageAssembler,
    group_passages,
    same_plate,
    vote,
)


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


def test_a_vehicle_standing_in_view_longer_than_max_duration_stays_one_passage() -> None:
    """A vehicle waiting at a barrier, read every second for 90 s, was cut into a passage per
    MAX_DURATION_S and counted three times. Its misreads (one character wrong in some frames, its
    first read among them) stay with it too."""
    assembler = PassageAssembler(gap_s=3.0, max_duration_s=30.0)
    for i in range(90):
        assembler.add("lane", obs(i, float(i), "51F86986" if i % 7 == 0 else "51F86988", 0.9, frame=i), now=i)
        assert [(p.key, final) for p, final in assembler.flush(now=i + 0.5)] == [("r0", False)]
    [(passage, final)] = assembler.flush(now=100.0)
    assert final and len(passage.reads) == 90 and vote(passage.reads).text == "51F86988"


def test_alike_plates_behind_a_standing_vehicle_do_not_make_its_passage_endless() -> None:
    """Dense traffic of different plates each within two edits of the first is still cut by
    MAX_DURATION_S: beyond it only the passage's own plate keeps it going, and a read of a
    plate merely alike to it only close to one of those."""
    standing = [obs(i, float(i), "51F86900", 0.9) for i in range(40)]
    queue = [obs(1000 + n * 10 + j, 40.0 + n + j * 0.3, f"51F869{n + 1:02d}", 0.9)
             for n in range(60) for j in range(3)]  # 60 other vehicles, one a second, alike to it
    passages = group_passages(standing + queue, gap_s=3.0, max_duration_s=30.0)
    first, *rest = sorted(passages, key=lambda p: p[0].at)
    assert set(standing) <= set(first) and first[-1].at <= standing[-1].at + 3.0
    assert rest and all(p[-1].at - p[0].at <= 30.0 for p in rest)


def test_a_late_read_of_a_final_passage_rejoins_it() -> None:
    """A read delivered after its passage became final (a consumer behind, a partition replayed
    late) opened a passage of its own: a second vehicle counted. It rejoins the final passage,
    which is handed out again, final and under its key, so its stored row is overwritten."""
    assembler = PassageAssembler(gap_s=3.0)
    for read in (obs(1, 0.0, "51F86988", 0.9, frame=1), obs(2, 0.4, "51F86988", 0.9, frame=2)):
        assembler.add("lane", read, now=0.0)
    [(passage, final)] = assembler.flush(now=10.0)
    assert final
    assembler.add("lane", obs(3, 2.5, "51F86986", 0.7, frame=3), now=11.0)  # a misread, even
    [(again, final)] = assembler.flush(now=11.5)
    assert again is passage and final and again.key == "r1"
    assert [r.read_id for r in again.reads] == ["r1", "r2", "r3"] and len(assembler) == 0

    # replays of its reads, the late one included, change nothing
    for read in (obs(3, 2.5, "51F86986", 0.7, frame=3), obs(1, 0.0, "51F86988", 0.9, frame=1)):
        assembler.add("lane", read, now=12.0)
    assert assembler.flush(now=12.5) == []
    # another plate, a plate of a frame it has a read of, or a read too far from it: other vehicles
    for read in (obs(4, 1.0, "29X504899", 0.8, frame=4), obs(5, 0.4, "51F86989", 0.8, frame=2),
                 obs(6, 5.6, "51F86988", 0.9, frame=6)):
        assembler.add("lane", read, now=13.0)
    assert sorted((p.key, final) for p, final in assembler.flush(now=13.5)) == [
        ("r4", False), ("r5", False), ("r6", False)]
    assert [r.read_id for r in passage.reads] == ["r1", "r2", "r3"]


def test_a_final_passage_is_forgotten_after_finished_kept_s() -> None:
    """Final passages are kept for late reads and replays FINISHED_KEPT_S after they last became
    final, not longer: then a late read is a passage of its own, and so is a replay."""
    assembler = PassageAssembler(gap_s=3.0)
    assembler.add("lane", obs(1, 0.0, "51F86988", 0.9), now=0.0)
    assert [final for _, final in assembler.flush(now=10.0)] == [True]
    now = 5.0 + FINISHED_KEPT_S
    assembler.add("lane", obs(2, 1.0, "51F86988", 0.9), now=now)  # rejoins: kept longer
    assert [(p.key, final) for p, final in assembler.flush(now=now)] == [("r1", True)]
    now += FINISHED_KEPT_S - 5.0
    assembler.add("lane", obs(3, 2.0, "51F86988", 0.9), now=now)
    assert [(p.key, final) for p, final in assembler.flush(now=now)] == [("r1", True)]
    now += FINISHED_KEPT_S + 5.0
    assert assembler.flush(now=now) == []
    assembler.add("lane", obs(4, 3.0, "51F86988", 0.9), now=now)
    assembler.add("lane", obs(1, 0.0, "51F86988", 0.9), now=now)  # no longer known
    assert [([r.read_id for r in p.reads], final) for p, final in assembler.flush(now=now + 10.0)] == [
        (["r1", "r4"], True)]
