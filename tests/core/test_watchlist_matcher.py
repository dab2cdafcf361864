import random
from datetime import UTC, datetime, timedelta

import pytest

from ioc.schemas import PlateCandidate, WatchlistEntry
from ioc.watchlist_matcher import WatchlistMatcher, wildcard_regex

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


def test_wildcard_index_finds_what_a_scan_of_every_pattern_finds() -> None:
    """Wildcard entries are indexed by their literal prefix: the hits must be exactly
    those of matching every pattern, whatever the prefix (none, longer than the read)."""
    rng = random.Random(7)
    alphabet = "0123456789ABCDEFGHKLMNPSTUVXYZ"

    def plate() -> str:
        return f"{rng.randint(11, 99)}{rng.choice('ABCDEFGH')}{rng.randint(10000, 99999)}"

    patterns = set()
    for _ in range(400):
        text = list(plate())
        for _ in range(rng.randint(1, 2)):
            text[rng.randrange(len(text))] = "?"
        if rng.random() < 0.5:
            text = text[: rng.randint(1, len(text) - 1)] + ["*"]
        patterns.add("".join(text))
    patterns |= {"*5", "?" * 8, "51F86988123*"}
    matcher = WatchlistMatcher([entry(p) for p in patterns])
    reads = [plate() for _ in range(300)] + ["".join(rng.choice(alphabet) for _ in range(7))]
    reads += [p.replace("?", "7").replace("*", "") for p in list(patterns)[:100]]
    for read in reads:
        found = {h.entry.pattern for h in matcher.match(read) if h.match_kind == "wildcard"}
        expected = {p for p in patterns if wildcard_regex(p).match(read)}
        assert found == expected, read
    assert sum(bool(matcher.match(r)) for r in reads) > 100  # the reads do hit patterns


def test_edit_hits_are_exactly_those_one_character_apart() -> None:
    """Edit hits skip building a read's deletions when no entry can be one of them:
    they must still be exactly the entries one character shorter or longer than the
    read, whatever the lengths (short texts included) and wherever the character is."""
    rng = random.Random(11)
    alphabet = "0123456789ACFHKLMX"

    def text(length: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(length))

    patterns = {text(rng.randint(2, 10)) for _ in range(300)}
    matcher = WatchlistMatcher([entry(p) for p in patterns])
    reads = [text(rng.randint(1, 11)) for _ in range(300)]
    for p in list(patterns)[:150]:  # each pattern with one character dropped or added
        i = rng.randrange(len(p))
        reads += [p[:i] + p[i + 1:], p[:i] + rng.choice(alphabet) + p[i:]]

    def one_apart(a: str, b: str) -> bool:
        longer, shorter = (a, b) if len(a) > len(b) else (b, a)
        return len(longer) == len(shorter) + 1 and any(
            longer[:i] + longer[i + 1:] == shorter for i in range(len(longer)))

    edits = 0
    for read in reads:
        hits = {h.entry.pattern for h in matcher.match(read) if h.match_kind == "edit"}
        expected = {p for p in patterns if one_apart(read, p)}
        assert hits == expected, read
        edits += len(hits)
    assert edits > 150  # the reads do hit entries
