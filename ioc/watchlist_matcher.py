"""Fuzzy matching of plate reads against watchlist entries.

How commercial hotlist matchers behave, and what an officer can judge: an exact
read; one look-alike substitution (0/O/D/Q, 1/I/T, 2/Z, 5/S, 6/G, 8/B, 4/A);
one inserted or dropped character; a hit on one of the read's alternative
candidates; or a wildcard entry (``30A12*``, ``29?1234``). Each hit says how it
matched and with what score, so operators can rank hits.

Lookups are indexed (exact text, look-alike skeleton, single-deletion
variants, and wildcard entries by their literal prefix), so a read costs a few
dictionary probes however long the watchlist; only the wildcard entries whose
prefix the read starts with run their pattern.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from detectors.plate_format import canonical
from detectors.plate_format import lookalike_key as skeleton
from ioc.schemas import PlateCandidate, WatchlistEntry

MatchKind = Literal["exact", "wildcard", "lookalike", "edit", "candidate"]

SCORES: dict[MatchKind, float] = {
    "exact": 1.0,
    "wildcard": 0.95,
    "lookalike": 0.85,
    "edit": 0.75,
    "candidate": 0.7,  # multiplied by the candidate's confidence
}
MIN_CANDIDATE_CONFIDENCE = 0.05

def _deletions(text: str) -> set[str]:
    return {text[:i] + text[i + 1 :] for i in range(len(text))}


def is_wildcard(pattern: str) -> bool:
    return "*" in pattern or "?" in pattern


def wildcard_regex(pattern: str) -> re.Pattern[str]:
    body = "".join(
        ".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern
    )
    return re.compile(f"^{body}$")


def normalise_pattern(pattern: str) -> str:
    """Canonical form of an entry's pattern, keeping wildcards."""
    return "".join(canonical(part) if part not in "*?" else part for part in re.split(r"([*?])", pattern))


@dataclass(frozen=True)
class Hit:
    entry: WatchlistEntry
    match_kind: MatchKind
    score: float
    matched_text: str


class WatchlistMatcher:
    """An immutable index over entries; build a new one when the watchlist changes."""

    def __init__(self, entries: Iterable[WatchlistEntry]) -> None:
        self._exact: dict[str, list[WatchlistEntry]] = defaultdict(list)
        self._by_skeleton: dict[str, list[WatchlistEntry]] = defaultdict(list)
        self._by_deletion: dict[str, list[WatchlistEntry]] = defaultdict(list)
        # wildcard entries by the literal text before their first wildcard ("" for `*12345`)
        self._wildcards: dict[str, list[tuple[re.Pattern[str], WatchlistEntry]]] = defaultdict(list)
        # exact patterns by (length, first three characters) and (length, last three): see _may_drop_to_entry
        self._heads: set[tuple[int, str]] = set()
        self._tails: set[tuple[int, str]] = set()
        self.size = 0
        for entry in entries:
            self.size += 1
            pattern = normalise_pattern(entry.pattern)
            if is_wildcard(pattern):
                prefix = re.split(r"[*?]", pattern, maxsplit=1)[0]
                self._wildcards[prefix].append((wildcard_regex(pattern), entry))
                continue
            self._exact[pattern].append(entry)
            self._heads.add((len(pattern), pattern[:3]))
            self._tails.add((len(pattern), pattern[-3:]))
            self._by_skeleton[skeleton(pattern)].append(entry)
            for variant in _deletions(pattern):
                self._by_deletion[variant].append(entry)
        self._prefix_lengths = sorted({len(prefix) for prefix in self._wildcards})

    def match(
        self, text: str, *, candidates: Sequence[PlateCandidate] = (), at: datetime | None = None
    ) -> list[Hit]:
        """Best hit per entry for a read, highest score first."""
        text = canonical(text)
        found = self._direct_hits(text)
        for candidate in candidates:
            cand_text = canonical(candidate.text)
            if cand_text == text or candidate.confidence < MIN_CANDIDATE_CONFIDENCE:
                continue
            for entry in self._exact.get(cand_text, ()):
                found.append((entry, "candidate", SCORES["candidate"] * candidate.confidence, cand_text))
        if not found:  # nearly every read: a few dictionary probes and out
            return []
        best: dict[object, Hit] = {}
        for entry, kind, score, matched in found:
            if not _is_live(entry, at):
                continue
            current = best.get(entry.entry_id)
            if current is None or score > current.score:
                best[entry.entry_id] = Hit(entry, kind, round(score, 4), matched)
        return sorted(best.values(), key=lambda h: h.score, reverse=True)

    def _direct_hits(self, text: str) -> list[tuple[WatchlistEntry, MatchKind, float, str]]:
        found: list[tuple[WatchlistEntry, MatchKind, float, str]] = []
        for entry in self._exact.get(text, ()):
            found.append((entry, "exact", SCORES["exact"], text))
        for length in self._prefix_lengths:  # ascending
            if length > len(text):
                break
            for regex, entry in self._wildcards.get(text[:length], ()):
                if regex.match(text):
                    found.append((entry, "wildcard", SCORES["wildcard"], text))
        for entry in self._by_skeleton.get(skeleton(text), ()):
            pattern = normalise_pattern(entry.pattern)
            if pattern != text and sum(a != b for a, b in zip(pattern, text, strict=True)) == 1:
                found.append((entry, "lookalike", SCORES["lookalike"], text))
        # one character dropped from the read, or one extra character in it
        if self._may_drop_to_entry(text):
            for variant in _deletions(text):
                for entry in self._exact.get(variant, ()):
                    found.append((entry, "edit", SCORES["edit"], text))
        for entry in self._by_deletion.get(text, ()):
            found.append((entry, "edit", SCORES["edit"], text))
        return found

    def _may_drop_to_entry(self, text: str) -> bool:
        """Whether ``text`` less one character might be an exact entry: two set probes
        instead of building its deletions, which took half the time of matching a read.

        ``text`` less its character i starts with ``text``'s first three characters
        when i >= 3, and ends with its last three when i < len(text) - 3: for a text of
        six or more characters, one of the two holds whatever i is.
        """
        shorter = len(text) - 1
        return len(text) < 6 or (shorter, text[:3]) in self._heads or (shorter, text[-3:]) in self._tails


def _is_live(entry: WatchlistEntry, at: datetime | None) -> bool:
    if not entry.active:
        return False
    return at is None or entry.expires_at is None or entry.expires_at > at
