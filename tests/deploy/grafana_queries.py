"""Grafana's side of the dashboards, for tests that run the panels' queries for real.

Grafana itself cannot be installed here, so this does what it does before a query
leaves: expands the PostgreSQL macros and the template variables of a ``rawSql``, or
the built-in and template variables of a PromQL ``expr``. And it sets up a PostgreSQL
cluster the way the compose stack does (deploy/timescaledb/initdb, ``ioc migrate``,
grafana-grants.sql), so the SQL runs as the read-only Grafana role.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import pytest
from deploy_files import DEPLOY
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ioc.embedded.postgres import EmbeddedPostgres, TimescaleUnavailable

__all__ = [
    "ProvisionedDatabase",
    "expand_macros",
    "expand_promql",
    "provisioned_cluster",
]


# ---------------------------------------------------------------- a cluster like the compose stack's
@dataclass(frozen=True)
class ProvisionedDatabase:
    layout: str
    ioc_url: str  # the application's role, owner of the schema
    grafana_url: str  # the read-only role Grafana's datasource uses
    admin_url: str  # the superuser (test set-up only)


def _psql() -> str:
    found = shutil.which("psql") or shutil.which("psql", path="/usr/lib/postgresql/15/bin")
    if not found:
        pytest.skip("psql not installed (Debian postgresql-client)")
    return found


def _run_psql(psql: str, env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [psql, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr


@contextlib.contextmanager
def provisioned_cluster(layout: str) -> Iterator[ProvisionedDatabase]:
    """A fresh cluster (``timescaledb`` or ``postgres``) set up like the compose stack's
    timescaledb service, then migrated and granted; stopped on exit."""
    psql = _psql()
    cluster = EmbeddedPostgres(timescale=layout == "timescaledb")
    try:
        cluster.start()
    except TimescaleUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        admin = conninfo_to_dict(cluster.url)
        ioc_password, grafana_password = secrets.token_hex(16), secrets.token_hex(16)
        server = {"PGHOST": admin["host"], "PGPORT": str(admin["port"])}
        done = subprocess.run(
            ["bash", str(DEPLOY / "timescaledb" / "initdb" / "10-ioc-roles.sh")],
            env={
                **os.environ,
                **server,
                "PGPASSWORD": admin["password"],
                "POSTGRES_USER": "postgres",
                "IOC_DB_PASSWORD": ioc_password,
                "GRAFANA_DB_PASSWORD": grafana_password,
                "PATH": f"{os.path.dirname(psql)}:{os.environ['PATH']}",
            },
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        ioc_url = make_conninfo(
            "", host=admin["host"], port=admin["port"], dbname="ioc", user="ioc", password=ioc_password
        )
        from ioc.storage.migrations import migrate

        asyncio.run(migrate(ioc_url))
        _run_psql(
            psql,
            {**server, "PGPASSWORD": ioc_password},
            "-v",
            "ON_ERROR_STOP=1",
            "-U",
            "ioc",
            "-d",
            "ioc",
            "-f",
            str(DEPLOY / "timescaledb" / "grafana-grants.sql"),
        )
        grafana_url = make_conninfo(
            "",
            host=admin["host"],
            port=admin["port"],
            dbname="ioc",
            user="ioc_grafana",
            password=grafana_password,
        )
        yield ProvisionedDatabase(layout, ioc_url, grafana_url, cluster.url_for("ioc"))
    finally:
        cluster.stop()


# ---------------------------------------------------------------- SQL: macros and variables
_DURATION = re.compile(r"^'?(\d+)(ms|s|m|h|d)'?$")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_SQL_VARIABLE = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\$(\w+)|\[\[(\w+)\]\]")


def _interval_s(arg: str, default_s: int) -> int:
    """A $__timeGroup interval argument: $__interval or a duration like '5m'."""
    arg = arg.strip()
    if arg in ("$__interval", "'$__interval'"):
        return default_s
    found = _DURATION.match(arg)
    assert found, f"unsupported interval {arg!r}"
    return max(1, int(int(found[1]) * _UNIT_S[found[2]]))


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def expand_macros(
    sql: str,
    *,
    start: datetime,
    end: datetime,
    checkpoints: Sequence[str] | None = None,
    variables: Mapping[str, Sequence[str]] | None = None,
    multi: frozenset[str] | set[str] = frozenset({"checkpoint"}),
    interval_s: int = 60,
) -> str:
    """Grafana's PostgreSQL macros and the dashboard's variables, as Grafana expands them.

    ``variables`` maps a template variable to its selected values (``checkpoints`` is
    short for the checkpoint dashboard's ``$checkpoint``). A multi-value variable (named
    in ``multi``) becomes a quoted, comma-separated list, as Grafana's SQL datasources
    write it for ``IN (...)``; a single-value one is put in as it is.
    """
    values: dict[str, Sequence[str]] = dict(variables or {})
    if checkpoints is not None:
        values["checkpoint"] = checkpoints
    frm, to = _sql_literal(start.isoformat()), _sql_literal(end.isoformat())

    def group(match: re.Match[str], alias: bool) -> str:
        column, *rest = [part.strip() for part in match[1].split(",")]
        seconds = _interval_s(rest[0], interval_s) if rest else interval_s
        expr = f"floor(extract(epoch from {column})/{seconds})*{seconds}"
        return f'{expr} AS "time"' if alias else expr

    sql = re.sub(r"\$__timeGroupAlias\(([^)]*)\)", lambda m: group(m, True), sql)
    sql = re.sub(r"\$__timeGroup\(([^)]*)\)", lambda m: group(m, False), sql)
    sql = re.sub(r"\$__timeFilter\(\s*([^)]+?)\s*\)", rf"\1 BETWEEN {frm} AND {to}", sql)
    sql = re.sub(r"\$__timeEpoch\(\s*([^)]+?)\s*\)", r'extract(epoch from \1) AS "time"', sql)
    sql = re.sub(r"\$__time\(\s*([^)]+?)\s*\)", r'\1 AS "time"', sql)
    sql = re.sub(
        r"\$__unixEpochFilter\(\s*([^)]+?)\s*\)",
        rf"\1 >= {int(start.timestamp())} AND \1 <= {int(end.timestamp())}",
        sql,
    )
    sql = sql.replace("$__timeFrom()", frm).replace("$__timeTo()", to)
    sql = sql.replace("$__unixEpochFrom()", str(int(start.timestamp())))
    sql = sql.replace("$__unixEpochTo()", str(int(end.timestamp())))
    sql = sql.replace("$__interval_ms", str(interval_s * 1000)).replace("$__interval", f"{interval_s}s")

    def variable(match: re.Match[str]) -> str:
        name = match[1] or match[3] or match[4]
        assert name in values, f"no value for the variable ${name}"
        chosen = list(values[name])
        assert chosen, f"the variable ${name} has no values"
        if name in multi or len(chosen) > 1 or match[2] == "sqlstring":
            return ", ".join(_sql_literal(v) for v in chosen)
        return chosen[0]

    sql = _SQL_VARIABLE.sub(variable, sql)
    assert "$" not in sql, f"unexpanded macro in {sql}"
    return sql


# ---------------------------------------------------------------- PromQL: variables
_PROMQL_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")


def expand_promql(
    expr: str,
    *,
    range_s: int,
    interval_s: int,
    scrape_interval_s: int,
    variables: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """Grafana's built-in variables and the dashboard's variables in a PromQL expression.

    ``$__rate_interval`` is Grafana's max(interval + scrape interval, 4 x scrape
    interval); a variable with several values becomes the regex alternation Grafana
    writes for ``=~`` matchers.
    """
    rate_interval_s = max(interval_s + scrape_interval_s, 4 * scrape_interval_s)
    builtins = {
        "__rate_interval_ms": str(rate_interval_s * 1000),
        "__rate_interval": f"{rate_interval_s}s",
        "__interval_ms": str(interval_s * 1000),
        "__interval": f"{interval_s}s",
        "__range_ms": str(range_s * 1000),
        "__range_s": str(range_s),
        "__range": f"{range_s}s",
    }
    values = dict(variables or {})

    def variable(match: re.Match[str]) -> str:
        name = match[1] or match[2] or match[3]
        if name in builtins:
            return builtins[name]
        assert name in values, f"no value for the variable ${name}"
        chosen = list(values[name])
        assert chosen, f"the variable ${name} has no values"
        if len(chosen) == 1:
            return chosen[0]
        return "(" + "|".join(re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\\\1", v) for v in chosen) + ")"

    expanded = _PROMQL_VARIABLE.sub(variable, expr)
    assert "$" not in expanded.replace("$labels", ""), f"unexpanded variable in {expanded}"
    return expanded
