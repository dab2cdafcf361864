from datetime import UTC, datetime, timedelta

import pytest

from ioc.schemas import PlateCandidate, WatchlistEntry
from ioc.watchlist_matcher import WatchlistMatcher

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def entry(pattern: str, **kw) -> WatchlistEntry:
    return WatchlistEntry(pattern=pattern, reason="test", **kw)


@pytest.fixture
def matcher() -> WatchlistMatcher:
    return WatchlistMatcher([
        entry("51F86988"), entry("30A12*"), entry("29?12345"), entry("20B00123"),
        entry("99A88888", expires_at=NOW - timedelta(hours=1)),
        entry("98C77777", active=False),
    ])


@pytest.mark.parametrize(
    ("read", "kind", "pattern"),
    [
        ("51F86988", "exact", "51F86988"),
        ("51F-869.88", "exact", "51F86988"),
        ("51F869B8", "lookalike", "51F86988"),  # 8 -> B
        ("S1F86988", "lookalike", "51F86988"),  # 5 -> S
        ("51F8698", "edit", "51F86988"),  # dropped character
        ("51F869888", "edit", "51F86988"),  # extra character
        ("30A12999", "wildcard", "30A12*"),
        ("29X12345", "wildcard", "29?12345"),
        ("20B0O123", "lookalike", "20B00123"),  # 0 -> O
    ],
)
def test_match_kinds(matcher: WatchlistMatcher, read: str, kind: str, pattern: str) -> None:
    hits = matcher.match(read, at=NOW)
    assert hits, f"{read} should match {pattern}"
    assert hits[0].match_kind == kind
    assert hits[0].entry.pattern == pattern


@pytest.mark.parametrize("read", ["51F86977", "51F12345", "30B12999", "2912345", "99A88888", "98C77777"])
def test_no_false_hits(matcher: WatchlistMatcher, read: str) -> None:
    assert matcher.match(read, at=NOW) == []


def test_candidate_hit_is_scored_by_candidate_confidence(matcher: WatchlistMatcher) -> None:
    hits = matcher.match(
        "51F86977",
        candidates=[PlateCandidate(text="51F86977", confidence=0.6),
                    PlateCandidate(text="51F86988", confidence=0.3)],
        at=NOW,
    )
    assert [h.match_kind for h in hits] == ["candidate"]
    assert hits[0].score == pytest.approx(0.7 * 0.3)


def test_best_hit_per_entry_and_ordering(matcher: WatchlistMatcher) -> None:
    hits = matcher.match("51F86988", candidates=[PlateCandidate(text="51F86988", confidence=0.9)], at=NOW)
    assert len(hits) == 1 and hits[0].score == 1.0
