"""What the hostile-input tests throw at the system: injection strings, bad timestamps,
and the example budget that keeps tests/hostile within a few minutes on two cores.

``IOC_HOSTILE_EXAMPLES`` scales every hypothesis budget (default 1.0; e.g. 5 for a
longer fuzzing run before a release).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

__all__ = ["BAD_TIMESTAMPS", "INJECTIONS", "examples"]

_SCALE = float(os.environ.get("IOC_HOSTILE_EXAMPLES", "1"))

# SQL, LIKE, JSON-path and shell metacharacters; quote look-alikes; NUL and other
# control characters; overlong and mixed encodings as they arrive after decoding
INJECTIONS: tuple[str, ...] = (
    "' OR 1=1 --",
    "' OR '1'='1",
    "'; DROP TABLE plate_reads; --",
    "'; DELETE FROM audit_log; --",
    "1; UPDATE users SET role='admin' --",
    "\" OR \"\"=\"",
    "%' --",
    "%",
    "_",
    "%%",
    "\\",
    "\\'",
    "30A' UNION SELECT password_hash FROM users --",
    "') OR ('a'='a",
    "$$; SELECT pg_sleep(5); $$",
    "1' AND pg_sleep(5)::text = '",
    "\u2019 OR 1=1 --",          # right single quotation mark
    "\u02bc OR 1=1 --",          # modifier letter apostrophe
    "\uff07 OR 1=1 --",          # fullwidth apostrophe
    "30A12345\x00' OR 1=1 --",   # NUL byte
    "\x00",
    "a\r\nSet-Cookie: x=1",
    "{\"$gt\": \"\"}",
    "../../etc/passwd",
    "=cmd|' /C calc'!A0",
    "\ud800",                    # lone surrogate (not encodable as UTF-8)
    "\u202e54321A03",            # right-to-left override
    "Đ" * 30,
)

BAD_TIMESTAMPS: tuple[str, ...] = (
    "2026-13-01T00:00:00Z",
    "2026-02-30T00:00:00Z",
    "2026-01-01T25:61:61Z",
    "0000-01-01T00:00:00Z",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-23:59",
    "+275760-09-13T00:00:00Z",
    "2026-01-01T00:00:00",
    "2026-01-01",
    "1e309",
    "now",
    "",
    "2026-01-01T00:00:00+99:00",
    "1700000000",
)


def examples(count: int, **overrides: object) -> settings:
    """A hypothesis budget of about ``count`` examples, no deadline (the machine is shared),
    no example database (results must not depend on a previous run)."""
    return settings(
        max_examples=max(1, int(count * _SCALE)),
        deadline=None,
        database=None,
        derandomize=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                               HealthCheck.data_too_large, HealthCheck.filter_too_much],
        **overrides,  # type: ignore[arg-type]
    )
