"""Hostile-input and access tests: the served API fixtures of tests/api, shared here.

``api_factory`` and ``api`` are the very fixtures of tests/api/conftest.py (loaded
from that file, not copied), so these tests run against the same real server,
database and broker as the API tests.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_API_TESTS = Path(__file__).resolve().parent.parent / "api"
if str(_API_TESTS) not in sys.path:
    sys.path.insert(0, str(_API_TESTS))  # served_api, as tests/api imports it

_spec = importlib.util.spec_from_file_location("_hostile_api_fixtures", _API_TESTS / "conftest.py")
assert _spec is not None and _spec.loader is not None
_api_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_api_fixtures)

api_factory = _api_fixtures.api_factory
api = _api_fixtures.api
