"""This worker's open passages: fed by the reads it stores, written by the passages timer.

A worker writes passages only for lanes its own partitions feed (camera id is the Kafka key,
so a lane belongs to one worker): passages seeded from the database after a restart or a
rebalance are completed there, never overwritten by a worker that merely loaded them. A lane
whose partition is revoked is no longer this worker's: it is seeded again if it comes back, and
is this worker's again once seeded (a rebalance revokes every partition, most to give them back).
A seeded passage that opened before the seeding's window may lack its first reads (its vehicle
was in view before), so it takes the reads of its vehicle but is never written: written, it
would be a second passage of that vehicle under another id (its first read's).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Collection, Hashable, Set
from dataclasses import dataclass, field
from datetime import datetime

from detectors import plate_format
from detectors.passages import Observation, Passage, PassageAssembler, vote
from ioc.schemas import PlateRead
from ioc.storage.passages import LaneRead, PassageRow

Lane = tuple[str, int]  # (camera_id, lane)


def _observe(read: PlateRead | LaneRead, candidates: tuple[tuple[str, float], ...]) -> Observation:
    """The vote's view of a read; the read itself rides along for the passage row."""
    return Observation(str(read.read_id), read.captured_at.timestamp(), read.text, read.confidence,
                       candidates, info=read, frame=read.source_event_id)


def passage_row(passage: Passage, *, final: bool) -> PassageRow:
    result = vote(passage.reads)
    first: PlateRead | LaneRead = passage.reads[0].info
    last: PlateRead | LaneRead = passage.reads[-1].info
    return PassageRow(
        passage_id=uuid.uuid5(uuid.UUID(passage.key), "passage"),
        camera_id=first.camera_id, checkpoint_id=first.checkpoint_id, lane=first.lane,
        direction=str(first.direction), started_at=first.captured_at, ended_at=last.captured_at,
        text=result.text, display=_display(passage, result.text, result.best_read_id),
        confidence=result.confidence,
        reads=len(passage.reads), support=result.support,
        read_ids=[r.info.read_id for r in passage.reads], best_read_id=uuid.UUID(result.best_read_id),
        status="final" if final else "provisional",
    )


def _display(passage: Passage, text: str, best_read_id: str) -> str:
    """The display of the passage's best read where it read the winning text: it was formatted
    with the read's layout (a motorbike's 29-X5 1234, not 29X-512.34) and keeps its Đ. A text
    that won on the reads' alternatives alone is formatted in that read's layout."""
    best: PlateRead | LaneRead = next(r.info for r in passage.reads if r.read_id == best_read_id)
    if best.text == text:
        return best.display
    return plate_format.display(text, getattr(best, "layout", None))  # a seeded LaneRead has none


@dataclass
class LivePassages:
    assembler: PassageAssembler = field(default_factory=PassageAssembler)
    rewritten: set[uuid.UUID] = field(default_factory=set)  # of the last flush
    # the lanes this worker feeds -> the partition that fed each last (see release)
    feeds: dict[Lane, Hashable] = field(default_factory=dict)
    # lane -> capture time (Unix) before which a passage opened by a seeded read is not written
    whole_from: dict[Lane, float] = field(default_factory=dict)
    # partitions revoked and not assigned again: a batch of theirs still being stored feeds no lane
    revoked: set[Hashable] = field(default_factory=set)
    # lanes a revoked partition fed (released, or fed by a batch in flight) -> that partition: the
    # lane is this worker's again once the partition is assigned back and the lane seeded (reclaim)
    returning: dict[Lane, Hashable] = field(default_factory=dict)
    # passages of returning lanes a flush handed out -> whether their becoming final was among it
    # (never written, so not counted yet): written once their lane is reclaimed, dropped if not
    held: dict[Passage, bool] = field(default_factory=dict)

    @property
    def owned(self) -> Set[Lane]:
        """The lanes this worker feeds: their passages are its to write."""
        return self.feeds.keys()

    def add(self, read: PlateRead, partition: Hashable = None) -> None:
        """A read this worker stored, from its ``partition``: the lane is this worker's unless the
        partition was revoked meanwhile (the read reaches the new owner through the database)."""
        lane = (read.camera_id, read.lane)
        if partition not in self.revoked:
            self.feeds[lane] = partition
            self.returning.pop(lane, None)
        elif lane not in self.feeds:  # the partition may come straight back: the lane with it
            self.returning[lane] = partition
        candidates = tuple((c.text, c.confidence) for c in read.candidates)
        self.assembler.add(lane, _observe(read, candidates), now=time.monotonic())

    def seed(self, read: LaneRead, *, whole_from: datetime) -> None:
        """A read loaded from the database after a start or a rebalance. The load reaches further
        back than ``whole_from``: passages opened since then are whole and written once this
        worker feeds the lane, earlier ones only take the reads of their vehicles."""
        lane = (read.camera_id, read.lane)
        self.whole_from[lane] = max(self.whole_from.get(lane, 0.0), whole_from.timestamp())
        candidates = tuple((c["text"], c["confidence"]) for c in read.candidates)
        self.assembler.add(lane, _observe(read, candidates), now=time.monotonic())

    def release(self, partitions: Collection[Hashable]) -> None:
        """``partitions`` were revoked: the lanes they fed are another worker's now. Kept, they
        were never seeded again on their return, so a vehicle in view then got a second passage."""
        self.revoked.update(partitions)
        for lane, partition in list(self.feeds.items()):
            if partition in partitions:
                self.returning[lane] = self.feeds.pop(lane)

    def assign(self, partitions: Collection[Hashable]) -> None:
        """``partitions`` are this worker's (again): their reads feed their lanes. The lanes of the
        revoked partitions that did not come back are another worker's now."""
        self.revoked.difference_update(partitions)
        self.returning = {lane: p for lane, p in self.returning.items() if p not in self.revoked}

    def reclaim(self) -> None:
        """Once seeded, the lanes whose partition came back are this worker's again. A rebalance
        revokes every partition, mostly to give it straight back: such a lane stayed unowned until
        its next read, and a passage that became final meanwhile was never written nor counted.
        Not before the seeding, which skips owned lanes: the reads another worker stored while
        the lane was its own would miss from the passage."""
        for lane, partition in list(self.returning.items()):
            if partition not in self.revoked:
                self.feeds.setdefault(lane, partition)
                del self.returning[lane]

    def _writable(self, passage: Passage) -> bool:
        if passage.lane not in self.owned:
            return False
        opened_by_seed = isinstance(passage.reads[0].info, LaneRead)
        return not (opened_by_seed and passage.start < self.whole_from.get(passage.lane, 0.0))

    def flush(self) -> list[PassageRow]:
        """Rows for the passages of owned lanes that changed or became final. The ids of final
        passages written before, which a late read joined, are in :attr:`rewritten` until the
        next flush: their vehicle is counted already. Those of lanes whose partition may come back
        (between a rebalance's signals, or until the lane is seeded) are held until it is known:
        handed out then, a passage that became final meanwhile was lost."""
        flushed, self.held = self.held, {}
        for passage, final in self.assembler.flush(now=time.monotonic()):
            flushed[passage] = flushed.get(passage, False) or (final and not passage.rejoined)
        rows: list[PassageRow] = []
        self.rewritten = set()
        for passage, first_final in flushed.items():
            if passage.lane in self.returning:
                self.held[passage] = first_final
            elif self._writable(passage):
                rows.append(row := passage_row(passage, final=passage.final))
                if passage.rejoined and not first_final:
                    self.rewritten.add(row.passage_id)
        return rows
