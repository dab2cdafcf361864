"""No secret in plain text anywhere under deploy/ or helm/: secrets are references
(${VAR}, $VAR, Secret names) to values kept outside the repository."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_files import CHART, DEPLOY

# A key that holds a secret value...
_SECRET_KEY = re.compile(
    r"(pass(word|wd|phrase)?|secret|token|api[_-]?key|private[_-]?key|credentials?)$", re.I
)
# ...unless it only names where the secret is.
_NAMING_KEY = re.compile(r"(name|ref|key|file|existingsecret)$", re.I)
# ${VAR...}, $VAR, and Grafana's $__file{...} / $__env{...} expansions.
_REFERENCE = re.compile(r"^\$(\{[A-Za-z_][A-Za-z0-9_]*[^}]*\}|[A-Za-z_][A-Za-z0-9_]*|__(file|env)\{[^}]+\})$")
_URL_CREDENTIALS = re.compile(r"\b[a-z][a-z0-9+.-]*://([^/\s:@'\"]+):([^@\s/'\"]+)@")
_SQL_PASSWORD_LITERAL = re.compile(r"PASSWORD\s+'[^']+'", re.I)
_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
_ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


def deployment_files() -> list[Path]:
    files = [p for root in (DEPLOY, CHART) for p in root.rglob("*") if p.is_file()]
    return sorted(p for p in files if ".pytest_cache" not in p.parts)


def _yaml_documents(path: Path) -> list[Any]:
    if path.suffix == ".json":
        return [json.loads(path.read_text())]
    return list(yaml.safe_load_all(path.read_text()))


def secret_values_in(node: Any, where: str = "") -> list[str]:
    """Keys that hold a literal secret value (not a reference) in parsed YAML/JSON."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{where}.{key}"
            if isinstance(value, (dict, list)):
                found += secret_values_in(value, path)
            elif (
                isinstance(key, str)
                and _SECRET_KEY.search(key)
                and not _NAMING_KEY.search(key)
                and value not in (None, "")
                and not _REFERENCE.match(str(value).strip())
            ):
                found.append(f"{path} = {value!r}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            found += secret_values_in(item, f"{where}[{index}]")
    return found


def secret_assignments_in_env(text: str) -> list[str]:
    """NAME=value lines of an env file where NAME is secret-like and value is not empty."""
    found = []
    for line in text.splitlines():
        match = _ENV_LINE.match(line)
        if not match or not _SECRET_KEY.search(match.group(1)):
            continue
        value = match.group(2).strip()
        if value not in ("", '""', "''") and not _REFERENCE.match(value):
            found.append(line)
    return found


def secrets_in_text(text: str) -> list[str]:
    """Credentials in URLs, SQL password literals, private keys: in any text file."""
    found = []
    for match in _URL_CREDENTIALS.finditer(text):
        password = match.group(2)
        if not (_REFERENCE.match(password) or password.startswith("$") or set(password) <= {".", "*"}):
            found.append(match.group(0))
    found += _SQL_PASSWORD_LITERAL.findall(text)
    found += _PRIVATE_KEY.findall(text)
    return found


def test_scanner_finds_planted_secrets() -> None:
    """The checks below can fail: each catches a planted secret and passes its reference form."""
    assert secret_values_in({"grafana": {"GF_SECURITY_ADMIN_PASSWORD": "hunter2"}})
    assert secret_values_in({"secureJsonData": {"password": "s3cr3t"}})
    assert secret_values_in({"env": {"IOC_AUTH_SECRET": "abc123"}})
    assert not secret_values_in({"env": {"IOC_AUTH_SECRET": "${IOC_AUTH_SECRET:?set it}", "password": "$PW"}})
    assert not secret_values_in(
        {"secrets": {"existingSecret": "ioc-secrets", "authSecret": {"key": "auth-secret"}}}
    )
    assert secret_assignments_in_env("IOC_AUTH_SECRET=abc\n")
    assert not secret_assignments_in_env("IOC_AUTH_SECRET=\n# POSTGRES_PASSWORD=x\n")
    assert secrets_in_text("url: postgresql://ioc:pa55@db:5432/ioc")
    assert not secrets_in_text("url: postgresql://ioc@db:5432/ioc and postgresql://ioc:${PW}@db/ioc")
    assert secrets_in_text("CREATE ROLE x LOGIN PASSWORD 'pa55';")
    assert not secrets_in_text("CREATE ROLE x LOGIN PASSWORD :'ioc_password';")


@pytest.mark.parametrize("path", deployment_files(), ids=lambda p: str(p.relative_to(DEPLOY.parent)))
def test_no_plain_text_secret(path: Path) -> None:
    text = path.read_text(errors="replace")
    problems = secrets_in_text(text)
    is_template = CHART / "templates" in path.parents
    if path.suffix in {".yaml", ".yml", ".json"} and not is_template:
        for document in _yaml_documents(path):
            problems += secret_values_in(document)
    if path.name.startswith(".env"):
        problems += secret_assignments_in_env(text)
    assert not problems, f"plain-text secret(s) in {path}: {problems}"


def test_no_secret_objects_in_chart_templates() -> None:
    """The chart references existing Secrets; it never creates one from values."""
    for template in (CHART / "templates").rglob("*"):
        if template.is_file():
            assert not re.search(r"^kind:\s*Secret\s*$", template.read_text(), re.MULTILINE), template
