"""The audit trail of the operator commands: the changes ``ioc users`` and ``ioc cameras`` make
are recorded as the API records the same changes, in the same transaction, so a change made
with a shell on a server (an account re-activated, a token issued for an officer) leaves a trace.

The actor is ``cli:<the operating-system user>``: the commands have no API account to name.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from typing import Any

from psycopg import AsyncConnection

from ioc.storage.audit import append_audit

__all__ = ["audit_command"]

PURPOSE = "command line administration"


def command_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - a container's user may have no name at all
        return f"cli:uid {os.getuid()}"


async def audit_command(
    conn: AsyncConnection, action: str, query: Mapping[str, Any], *, purpose: str = PURPOSE,
    result_count: int = 1,
) -> None:
    """Append the audit row of one command's change (``action`` as the API names it)."""
    await append_audit(conn, actor=command_actor(), role="admin", action=action, query=query, purpose=purpose,
                       result_count=result_count)
