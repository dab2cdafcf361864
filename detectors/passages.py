"""Multi-frame passages: the reads of one vehicle passing one camera lane become
one result, by a weighted vote, more accurate than any single frame.

A passage is a run of reads at one camera and lane with gaps of at most
``gap_s`` whose texts look like the same plate (same look-alike key, or at most
two edits apart). The vote sums each read's confidence for its text and a
discounted share for its alternative candidates, so three reads of ``51F86988``
outvote one confident ``51F86986``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from detectors.plate_format import lookalike_key

CANDIDATE_WEIGHT = 0.5
MAX_EDITS = 2


@dataclass(frozen=True)
class Observation:
    """One read as the vote sees it; ``at`` in seconds (any epoch), ``candidates``
    as ``(text, confidence)`` alternatives."""

    read_id: str
    at: float
    text: str
    confidence: float
    candidates: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class PassageVote:
    text: str
    confidence: float
    support: int  # reads whose own text is the winner
    best_read_id: str  # the most confident read of the winning text


def _edit_distance(a: str, b: str, limit: int) -> int:
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def same_plate(a: str, b: str) -> bool:
    return lookalike_key(a) == lookalike_key(b) or _edit_distance(a, b, MAX_EDITS) <= MAX_EDITS


def group_passages(
    reads: Sequence[Observation], *, gap_s: float = 3.0, max_duration_s: float = 30.0
) -> list[list[Observation]]:
    """Split one lane's reads into passages (a vehicle standing in a queue for
    longer than ``max_duration_s`` starts a new one)."""
    passages: list[list[Observation]] = []
    for read in sorted(reads, key=lambda r: r.at):
        current = passages[-1] if passages else None
        if (
            current
            and read.at - current[-1].at <= gap_s
            and read.at - current[0].at <= max_duration_s
            and same_plate(current[0].text, read.text)
        ):
            current.append(read)
        else:
            passages.append([read])
    return passages


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
