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
    "has_wildcards",
    "normalise_query",
    "plate_skeleton",
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
_NOT_PLATE = re.compile(r"[^0-9A-ZĐ*?]")


def plate_skeleton(text: str) -> str:
    """``'30A-I2345'`` style look-alikes collapse: ``plate_skeleton('3OA12345') == '30412345'``."""
    return text.translate(_TABLE)


def normalise_query(text: str) -> str:
    """Uppercase, drop separators and spaces; keep letters, digits and ``*`` / ``?``."""
    return _NOT_PLATE.sub("", text.upper())


def has_wildcards(pattern: str) -> bool:
    return "*" in pattern or "?" in pattern


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
