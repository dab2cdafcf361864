"""Multi-frame passages: the reads of one vehicle passing one camera lane become
one result, by a weighted vote, more accurate than any single frame.

A passage is a run of reads at one camera and lane with gaps of at most
``gap_s`` whose texts look like the same plate (same look-alike key, or at most
two edits apart). The vote sums each read's confidence for its text and a
discounted share for its alternative candidates, so three reads of ``51F86988``
outvote one confident ``51F86986``.

Up to ``max_duration_s`` long, a passage takes any read that looks like its first;
beyond, only reads of its own plate (the look-alike key of its first read, or of the
reads most of its confidence is on) and alike reads within ``gap_s`` of those. A
vehicle standing in view (a barrier, a red light) stays one passage however long, misreads
and all, while dense traffic of different plates that merely look alike ends within
``gap_s`` of the last read of the passage's plate instead of merging into one endless passage.

:class:`PassageAssembler` builds passages as reads stream in (a session window
per lane). Open passages are held, and final ones for ``FINISHED_KEPT_S``: a read
delivered again changes nothing, and a read delivered late rejoins its final passage,
which is handed out again, final, under its key, instead of counting its vehicle twice.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from detectors.plate_format import lookalike_key

CANDIDATE_WEIGHT = 0.5
MAX_EDITS = 2
GAP_S = 3.0  # longest pause between two reads of one vehicle
MAX_DURATION_S = 30.0  # longer, only reads of the passage's own plate (a vehicle standing in view) join it
FINISHED_KEPT_S = 120.0  # how long a final passage is kept: replays change nothing, late reads rejoin it


@dataclass(frozen=True)
class Observation:
    """One read as the vote sees it; ``at`` in seconds (any epoch), ``candidates``
    as ``(text, confidence)`` alternatives."""

    read_id: str
    at: float
    text: str
    confidence: float
    candidates: tuple[tuple[str, float], ...] = ()
    info: Any = field(default=None, compare=False)  # the caller's own data about the read
    frame: Hashable = None  # the image it was read in, where known: one frame's plates are other vehicles


@dataclass(frozen=True)
class PassageVote:
    text: str
    confidence: float
    support: int  # reads whose own text is the winner
    best_read_id: str  # the most confident read of the winning text


def _edit_distance(a: str, b: str, limit: int) -> int:
    """Levenshtein distance, or ``limit + 1`` as soon as it must exceed ``limit``
    (only a band of ``2 * limit + 1`` cells per row is computed)."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    over = limit + 1
    previous = [j if j <= limit else over for j in range(len(b) + 1)]
    for i, ca in enumerate(a, 1):
        lo, hi = max(1, i - limit), min(len(b), i + limit)
        current = [over] * (len(b) + 1)
        current[0] = i if i <= limit else over
        for j in range(lo, hi + 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != b[j - 1]), over)
        if min(current[max(0, lo - 1) : hi + 1]) > limit:
            return over
        previous = current
    return previous[-1]


def _key_edits(a: str, b: str) -> int:
    """Edits between two look-alike keys, or ``MAX_EDITS + 1`` when more; an edit changes the
    set of characters by at most two, which rules most pairs out cheaply."""
    if a == b:
        return 0
    if len(set(a) ^ set(b)) > 2 * MAX_EDITS:
        return MAX_EDITS + 1
    return _edit_distance(a, b, MAX_EDITS)


def _similar_keys(a: str, b: str) -> bool:
    return _key_edits(a, b) <= MAX_EDITS


def same_plate(a: str, b: str) -> bool:
    return _similar_keys(lookalike_key(a), lookalike_key(b))


@dataclass(eq=False)
class Passage:
    """One vehicle's reads at one lane so far, in capture order."""

    lane: Hashable
    key: str  # the read that opened it: a stable identity while reads join
    reads: list[Observation]
    touched: float  # processing time of the last change
    changed: bool = True
    plate_key: str = ""  # look-alike key of the opening read: what later reads are compared with
    final: bool = False  # for good: a read that joins it later was delivered late
    rejoined: bool = False  # final, and handed out again since: a late read joined it
    # per look-alike key of its reads: (summed confidence, first and last capture time), and the key
    # with the most confidence: a vehicle standing in view is told by these (its first read may be a misread)
    keys: dict[str, tuple[float, float, float]] = field(default_factory=dict, repr=False)
    lead_key: str = ""

    def __post_init__(self) -> None:
        for read in self.reads:
            self._tally(read, lookalike_key(read.text))

    def join(self, read: Observation, key: str, *, now: float) -> None:
        bisect.insort(self.reads, read, key=lambda r: r.at)
        self._tally(read, key)
        self.touched, self.changed = now, True

    def _tally(self, read: Observation, key: str) -> None:
        weight, first, last = self.keys.get(key, (0.0, read.at, read.at))
        self.keys[key] = (weight + read.confidence, min(first, read.at), max(last, read.at))
        if key != self.lead_key and self.keys[key][0] > self.keys.get(self.lead_key, (0.0,))[0]:
            self.lead_key = key

    @property
    def start(self) -> float:
        return self.reads[0].at

    @property
    def end(self) -> float:
        return self.reads[-1].at


class PassageAssembler:
    """Session windows per lane over a stream of reads.

    Two clocks: a read's capture time (``Observation.at``) groups it; processing time
    (``now``, e.g. ``time.monotonic()``) ends passages of lanes that went quiet. A
    passage is final once its lane has seen reads ``2 * gap_s`` later than its end,
    or nothing joined it for ``2 * gap_s`` of processing time.
    """

    def __init__(self, *, gap_s: float = GAP_S, max_duration_s: float = MAX_DURATION_S) -> None:
        self.gap_s, self.max_duration_s = gap_s, max_duration_s
        self._open: dict[Hashable, list[Passage]] = {}
        self._watermark: dict[Hashable, float] = {}
        self._by_read: dict[str, Passage] = {}
        # final passages per lane, with when they last became final (oldest first), and their reads:
        # a read delivered again (Kafka replays after a rebalance) must not open a passage of its
        # own, or, where it opened the passage, overwrite the stored one with a passage of one read;
        # a read delivered late (a consumer behind) must not count its vehicle twice
        self._final: dict[Hashable, dict[Passage, float]] = {}
        self._finished: dict[str, Passage] = {}
        self._rejoined: dict[Passage, None] = {}  # final passages late reads joined since the last flush

    def __len__(self) -> int:
        return sum(len(passages) for passages in self._open.values())

    def open_passages(self, lane: Hashable) -> list[Passage]:
        return list(self._open.get(lane, ()))

    def add(self, lane: Hashable, read: Observation, *, now: float) -> Passage:
        """Put a read into its passage (a known read changes nothing)."""
        if (known := self._by_read.get(read.read_id) or self._finished.get(read.read_id)) is not None:
            return known
        passages = self._open.setdefault(lane, [])
        key = lookalike_key(read.text)
        # a read that fits an open passage is no late read; only one that fits none (a vehicle's
        # first read) is compared with the lane's final passages
        target = self._closest(passages, read, key) or self._closest(self._final.get(lane, {}), read, key)
        if target is None:
            target = Passage(lane, read.read_id, [read], now, plate_key=key)
            passages.append(target)
        else:
            target.join(read, key, now=now)
        if target.final:
            self._finished[read.read_id] = target
            self._rejoined[target] = None
            target.rejoined = True
        else:
            self._by_read[read.read_id] = target
        self._watermark[lane] = max(self._watermark.get(lane, read.at), read.at)
        return target

    def _closest(self, passages: Iterable[Passage], read: Observation, key: str) -> Passage | None:
        """The passage the read belongs to: of those it fits in time and look, the one whose
        plate it matches best (then the nearest in time). Every passage given is looked at: a
        swarm of motorbikes puts a dozen plates in each frame."""
        best, best_rank = None, None
        for passage in passages:
            if not self._fits_in_time(passage, read):
                continue
            edits = _key_edits(passage.plate_key, key)
            if edits > MAX_EDITS or not self._fits_in_length(passage, read, key):
                continue
            rank = (edits, min(abs(read.at - passage.start), abs(read.at - passage.end)))
            if best_rank is None or rank < best_rank:
                best, best_rank = passage, rank
        return best

    def _fits_in_time(self, passage: Passage, read: Observation) -> bool:
        """Within the gap of the passage, and not of a frame it already has a read of: two plates
        in one frame are two vehicles however alike they read. (By the frame's identity, not its
        time: a camera stamping whole seconds gives several frames one.)"""
        return (
            passage.start - self.gap_s <= read.at <= passage.end + self.gap_s
            and (read.frame is None or all(other.frame != read.frame for other in passage.reads))
        )

    def _fits_in_length(self, passage: Passage, read: Observation, key: str) -> bool:
        """Not making the passage longer than ``max_duration_s``, unless the read is of the passage's
        own plate (a vehicle standing in view), or a misread within ``gap_s`` of one of those: a chain
        of different vehicles whose plates merely look alike is still cut."""
        if max(passage.end, read.at) - min(passage.start, read.at) <= self.max_duration_s:
            return True
        own = {passage.plate_key, passage.lead_key}
        if key in own:
            return True
        first = min(passage.keys[k][1] for k in own)
        last = max(passage.keys[k][2] for k in own)
        return first - self.gap_s <= read.at <= last + self.gap_s

    def flush(self, *, now: float) -> list[tuple[Passage, bool]]:
        """Passages changed since the last flush or now final, each with whether it is final;
        a final passage a late read joined is handed out again, final. Final passages are
        forgotten ``FINISHED_KEPT_S`` after they last became final."""
        out: list[tuple[Passage, bool]] = []
        for passage in self._rejoined:
            out.append((passage, True))
            passage.changed = False
            kept = self._final[passage.lane]
            del kept[passage]  # to the end: a lane's final passages stay in the order they are forgotten
            kept[passage] = now
        self._rejoined.clear()
        for lane in list(self._open):
            keep = []
            for passage in self._open[lane]:
                final = (self._watermark[lane] - passage.end > 2 * self.gap_s
                         or now - passage.touched > 2 * self.gap_s)
                if passage.changed or final:
                    out.append((passage, final))
                passage.changed = False
                if final:
                    passage.final = True
                    for read in passage.reads:
                        del self._by_read[read.read_id]
                        self._finished[read.read_id] = passage
                    self._final.setdefault(lane, {})[passage] = now
                else:
                    keep.append(passage)
            if keep:
                self._open[lane] = keep
            else:
                del self._open[lane], self._watermark[lane]
        self._forget_finished(now)
        return out

    def _forget_finished(self, now: float) -> None:
        # dicts keep insertion order: a lane's oldest final passages come first
        for lane in list(self._final):
            kept = self._final[lane]
            while kept:
                passage, finished_at = next(iter(kept.items()))
                if now - finished_at <= FINISHED_KEPT_S:
                    break
                del kept[passage]
                for read in passage.reads:
                    del self._finished[read.read_id]
            if not kept:
                del self._final[lane]


def group_passages(
    reads: Sequence[Observation], *, gap_s: float = GAP_S, max_duration_s: float = MAX_DURATION_S
) -> list[list[Observation]]:
    """Split one lane's reads into passages (all at once, e.g. for a report)."""
    assembler = PassageAssembler(gap_s=gap_s, max_duration_s=max_duration_s)
    for read in sorted(reads, key=lambda r: r.at):
        assembler.add(None, read, now=0.0)
    return [p.reads for p in assembler.open_passages(None)]


def vote(passage: Sequence[Observation]) -> PassageVote:
    """The passage's plate: the text with the highest weighted support."""
    if not passage:
        raise ValueError("a passage has at least one read")
    scores: dict[str, float] = defaultdict(float)
    for read in passage:
        scores[read.text] += read.confidence
        for text, confidence in read.candidates:
            if text != read.text:
                scores[text] += CANDIDATE_WEIGHT * confidence
    winner = max(scores, key=lambda t: (scores[t], t))
    supporters = [r for r in passage if r.text == winner]
    # Independent agreeing reads: the chance that all of them are wrong shrinks with each.
    all_wrong = 1.0
    for read in supporters:
        all_wrong *= 1.0 - read.confidence
    share = scores[winner] / sum(scores.values())
    confidence = share * (1.0 - all_wrong) if supporters else share * 0.5
    best = max(supporters or passage, key=lambda r: r.confidence)
    return PassageVote(winner, round(min(confidence, 0.9999), 4), len(supporters), best.read_id)
