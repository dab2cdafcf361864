"""Plate text as the database indexes it: look-alike skeletons and wildcard patterns.

Readers confuse 0/O/D/Q, 1/I/T, 2/Z, 5/S, 6/G, 8/B and 4/A. Mapping every
letter of such a group to its digit gives a *skeleton*; two readings of the same
plate that differ only by look-alikes share a skeleton, so a fuzzy look-up is an
equality on an indexed column. The SQL function ``ioc_plate_skeleton`` is built
from the same table, so Python and the database always agree.
"""

from __future__ import annotations

import re

__all__ = [
    "LOOKALIKES",
    "MIN_PATTERN_RUN",
    "MIN_PLATE_CHARS",
    "has_wildcards",
    "expand_single_wildcard",
    "normalise_query",
    "plate_skeleton",
    "searchable_query",
    "skeleton_function_sql",
    "wildcard_to_like",
]

# digit -> letters read in its place
LOOKALIKES: dict[str, str] = {
    "0": "ODQĐ",
    "1": "IT",
    "2": "Z",
    "4": "A",
    "5": "S",
    "6": "G",
    "8": "B",
}

_FROM = "".join(LOOKALIKES.values())
_TO = "".join(digit * len(letters) for digit, letters in LOOKALIKES.items())
_TABLE = str.maketrans(_FROM, _TO)
_NOT_PLATE = re.compile(r"[^0-9A-Z*?]")
_WILDCARDS = re.compile(r"[*?]")

MIN_PLATE_CHARS = 2  # an exact (or look-alike) plate: an indexed equality, however short
MIN_PATTERN_RUN = 3  # a * / ? pattern: a run of letters or digits the trigram index can search by


def plate_skeleton(text: str) -> str:
    """``'30A-I2345'`` style look-alikes collapse: ``plate_skeleton('3OA12345') == '30412345'``."""
    return text.translate(_TABLE)


def normalise_query(text: str) -> str:
    """Uppercase, Đ folded to D, separators and spaces dropped; letters, digits and ``*`` / ``?``
    kept. Stored plates are ``detectors.plate_format.canonical`` (which folds Đ): a query or a
    watchlist pattern that kept Đ would match none of them."""
    return _NOT_PLATE.sub("", text.upper().replace("Đ", "D"))


def has_wildcards(pattern: str) -> bool:
    return "*" in pattern or "?" in pattern


def searchable_query(text: str) -> str:
    """``text`` normalised (:func:`normalise_query`), or ValueError when it would match,
    and so scan, nearly every plate.

    A plate needs two letters or digits; a ``*``/``?`` pattern needs three of them in
    a row: ``*12*`` or ``1?2*`` would flag a large share of all cars as wanted and make
    a search read every row of its window (no index narrows a run under three).
    """
    query = normalise_query(text)
    if has_wildcards(query):
        if max(len(run) for run in _WILDCARDS.split(query)) < MIN_PATTERN_RUN:
            raise ValueError(f"a * or ? pattern needs at least {MIN_PATTERN_RUN} letters or digits in a row, "
                             f"got {query!r}")
    elif len(query) < MIN_PLATE_CHARS:
        raise ValueError(f"a plate needs at least {MIN_PLATE_CHARS} letters or digits, got {query!r}")
    return query


PLATE_CHARACTERS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"  # stored text: Đ is folded to D


def expand_single_wildcard(pattern: str) -> list[str] | None:
    """Every plate a pattern with one ``?`` and no ``*`` can stand for (36), else None.

    ``26V?67558`` as a LIKE can only narrow by its prefix ``26V``: every read of every
    26V plate in the window. As 36 exact plates it is 36 probes of the plate index.
    """
    if "*" in pattern or pattern.count("?") != 1:
        return None
    return [pattern.replace("?", c) for c in PLATE_CHARACTERS]


def wildcard_to_like(pattern: str) -> str:
    """``30A12*`` -> ``30A12%``; ``?`` -> ``_``. The input holds no LIKE metacharacters
    once normalised, so nothing else needs escaping."""
    return normalise_query(pattern).replace("*", "%").replace("?", "_")


def skeleton_function_sql() -> str:
    """DDL of the SQL twin of :func:`plate_skeleton` (immutable, so it can feed an index)."""
    return (
        "CREATE OR REPLACE FUNCTION ioc_plate_skeleton(plate text) RETURNS text\n"
        "    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE\n"
        f"    RETURN translate(plate, '{_FROM}', '{_TO}')"
    )
