"""What went wrong around a command (its settings, the database, the broker), in one line.

A province's operator running ``ioc users list`` with the database down needs the reason, not a
traceback; and the reason must not carry the database password, which libpq repeats when it
cannot parse a URL. Errors of the command's own making are not described: they keep their
traceback.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pydantic import ValidationError

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails

__all__ = ["describe", "masked"]

# to the last @ before the host: a password with an unencoded @ or / is starred out whole. The
# password runs on to the last @ of the word, neither past a space (the message's next words) nor
# into another URL's ://; more is starred than the password where the database name or a
# parameter has an @ of its own, never less.
_URL_PASSWORD = re.compile(r"(\w[\w+.-]*://[^:/@\s]*:)(?:(?!://)\S)*@")
_KEYWORD_PASSWORD = re.compile(r"(password\s*=\s*)('[^']*'|\S+)", re.IGNORECASE)


def masked(text: str) -> str:
    """``text`` with the passwords of connection URLs and ``password=`` settings starred out."""
    return _KEYWORD_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", text))


def describe(exc: BaseException) -> str | None:
    """One line for an error of the command's surroundings; None for any other error."""
    from ioc.config import SettingMissing  # not at import: `ioc anpr` carries no settings

    if isinstance(exc, SettingMissing):
        return str(exc)
    if isinstance(exc, ValidationError) and exc.title == "Settings":
        # the error's own text quotes the input, which can be a secret
        return "invalid settings: " + "; ".join(_setting_error(error) for error in exc.errors())
    module = type(exc).__module__
    if module.startswith("psycopg"):
        import psycopg

        if isinstance(exc, psycopg.OperationalError | psycopg.ProgrammingError):
            return f"database: {masked(_one_line(exc))}"
    if module == "ioc.storage.migrations":
        from ioc.storage.migrations import MigrationError

        if isinstance(exc, MigrationError):  # the server cannot have the schema asked for (--layout)
            return str(exc)
    if module.startswith(("kafka", "aiokafka")):
        return f"Kafka ({type(exc).__name__}): {masked(_one_line(exc))}"
    return None


def _one_line(exc: BaseException) -> str:
    """libpq puts its hint on a line of its own ("Is the server running on that host ...")."""
    return " ".join(str(exc).split())


def _setting_error(error: ErrorDetails) -> str:
    where = "_".join(map(str, error["loc"])).upper()
    return f"IOC_{where}: {error['msg']}" if where else error["msg"]
