"""Tokens and the sign-in throttle, without a server."""

from __future__ import annotations

import time

import pytest

from ioc.api.security import InvalidTokenError, LoginThrottle, Principal, issue_token, verify_token


def test_throttle_window_and_reset() -> None:
    throttle = LoginThrottle(max_failures=3, window_s=60)
    for moment in (0.0, 1.0, 2.0):
        assert throttle.retry_after("Bob", "10.0.0.1", now=moment) == 0
        throttle.failed("Bob", "10.0.0.1", now=moment)
    assert throttle.retry_after("bob", "10.0.0.1", now=3.0) == pytest.approx(57.0)
    assert throttle.retry_after("bob", "10.0.0.2", now=3.0) == 0   # other client
    assert throttle.retry_after("bob", "10.0.0.1", now=61.0) == 0  # first failure left the window
    throttle.failed("bob", "10.0.0.1", now=61.0)
    throttle.succeeded("bob", "10.0.0.1")
    assert throttle.retry_after("bob", "10.0.0.1", now=61.5) == 0


def test_throttle_memory_is_bounded() -> None:
    throttle = LoginThrottle(max_failures=1, window_s=60, max_keys=100)
    for i in range(1000):
        throttle.failed(f"user{i}", "10.0.0.1", now=1.0)
    assert throttle.retry_after("user999", "10.0.0.1", now=2.0) > 0
    assert throttle.retry_after("user0", "10.0.0.1", now=2.0) == 0  # evicted


def test_tokens_verify_only_with_their_secret_and_until_expiry() -> None:
    now = time.time()
    token = issue_token(Principal("anna", "officer"), secret="s1", ttl_s=60, now=now)
    assert verify_token(token, secret="s1", now=now + 59) == Principal("anna", "officer")
    for secret, moment in (("s2", now), ("s1", now + 61)):
        with pytest.raises(InvalidTokenError):
            verify_token(token, secret=secret, now=moment)
    future = issue_token(Principal("anna", "officer"), secret="s1", ttl_s=600, now=now + 300)
    with pytest.raises(InvalidTokenError):
        verify_token(future, secret="s1", now=now)
