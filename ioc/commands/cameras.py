"""``ioc cameras``: the camera registry that workers check frames and reads against.

With ``IOC_REQUIRE_KNOWN_CAMERAS`` (the default) a camera's frames and reads are
dead-lettered until it is registered here, one camera at a time (``add``) or a file of
them (``import``: what ``list`` prints, or a CSV). Workers re-read the registry every few
seconds, so a camera added or changed is taken up without a restart.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from ioc.commands.anpr import add_look_closer_argument
from ioc.schemas import CameraRegistration, RegisteredCamera

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from pydantic_core import ErrorDetails

DEFAULT_INTERVAL_S: float = CameraRegistration.model_fields["expected_interval_s"].default


def checked_camera(
    camera_id: str, checkpoint_id: str, interval_s: float, look_closer: str | None
) -> RegisteredCamera:
    """The camera to register, or a ``ValueError`` naming every rule it breaks (the API's rules)."""
    try:
        return RegisteredCamera(camera_id=camera_id, checkpoint_id=checkpoint_id,
                                expected_interval_s=interval_s, look_closer=look_closer)  # fmt: skip
    except ValidationError as exc:
        raise ValueError("; ".join(_rule_broken(error) for error in exc.errors())) from None


def _rule_broken(error: ErrorDetails) -> str:
    pattern = error["type"] == "string_pattern_mismatch"
    rule = "printable, neither blank nor padded" if pattern else error["msg"].lower()
    return f"{error['loc'][0]} {error['input']!r}: {rule}"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("cameras", help="register cameras, one or a file of them, and list them")
    cameras = parser.add_subparsers(dest="action", required=True)
    add = cameras.add_parser("add", help="register a camera, or change a registered one")
    add.add_argument("camera_id")
    add.add_argument("--checkpoint", required=True, help="the checkpoint the camera watches")
    add.add_argument("--interval", type=float, default=DEFAULT_INTERVAL_S,
                     help="seconds of silence after which the camera counts as offline (default 60)")
    add_look_closer_argument(add, default=None)  # None: the worker's IOC_ANPR_LOOK_CLOSER
    add.set_defaults(func=run_add)
    bulk = cameras.add_parser("import", help="register or change the cameras listed in a file, all or none")
    bulk.add_argument("file", help="CSV or tab-separated, with a header: camera_id, checkpoint_id and "
                                   "optionally interval_s and look_closer (what `list` prints); '-': stdin")
    bulk.add_argument("--prune", action="store_true",
                      help="also unregister every camera the file does not list (in the same transaction)")
    bulk.set_defaults(func=run_import)
    remove = cameras.add_parser("remove", help="unregister a decommissioned camera (its reads stay; its "
                                               "frames are dead-lettered from then on)")
    remove.add_argument("camera_id")
    remove.set_defaults(func=run_remove)
    listing = cameras.add_parser("list", help="list registered cameras (tab-separated)")
    listing.add_argument("--checkpoint", default=None, help="only this checkpoint's cameras")
    listing.set_defaults(func=run_list)


def _conninfo() -> str:
    from ioc.config import get_settings

    return get_settings().database_conninfo()


def run_add(args: argparse.Namespace) -> int:
    try:
        camera = checked_camera(args.camera_id, args.checkpoint, args.interval, args.look_closer)
    except ValueError as exc:
        print(f"not registered: {exc}", file=sys.stderr)
        return 1
    _register([camera])
    closer = camera.look_closer or "the worker's setting"
    print(f"registered {camera.camera_id} at {camera.checkpoint_id} (offline after "
          f"{camera.expected_interval_s:g} s silent; look closer: {closer})")
    return 0


def run_import(args: argparse.Namespace) -> int:
    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"nothing registered: cannot read {args.file}: {exc}", file=sys.stderr)
        return 1
    cameras, errors = read_camera_file(text)
    for error in errors:
        print(f"{args.file}: {error}", file=sys.stderr)
    if errors or not cameras:
        print("nothing registered" + ("" if errors else ": the file lists no cameras"), file=sys.stderr)
        return 1
    removed = _register(cameras, prune=args.prune)
    print(f"registered or changed {len(cameras)} cameras")
    if args.prune:
        print(f"removed {len(removed)} cameras not listed" + "".join(f"\n  {camera}" for camera in removed))
    return 0


def read_camera_file(text: str) -> tuple[list[RegisteredCamera], list[str]]:
    """The cameras of a CSV or tab-separated ``text`` with a header line, and an error for
    each line that cannot be registered (other columns, like ``list``'s last_seen, are ignored)."""
    lines = text.splitlines()
    reader = csv.DictReader(lines, delimiter="\t" if lines and "\t" in lines[0] else ",")
    missing = {"camera_id", "checkpoint_id"} - {name.strip() for name in reader.fieldnames or ()}
    if missing:
        return [], [f"line 1: the header has no {' or '.join(sorted(missing))} column"]
    cameras: dict[str, RegisteredCamera] = {}
    errors = []
    for row in reader:
        line = reader.line_num
        try:
            camera = _camera_of_row({key.strip(): (value or "").strip() for key, value in row.items() if key})
        except ValueError as exc:
            errors.append(f"line {line}: {exc}")
            continue
        if camera.camera_id in cameras:
            errors.append(f"line {line}: {camera.camera_id} is listed more than once")
        cameras[camera.camera_id] = camera
    return list(cameras.values()), errors


def _camera_of_row(row: dict[str, str]) -> RegisteredCamera:
    interval = row.get("interval_s", "")
    try:
        interval_s = float(interval) if interval else DEFAULT_INTERVAL_S
    except ValueError:
        raise ValueError(f"interval_s {interval!r} is not a number") from None
    look_closer = row.get("look_closer", "").lower()
    return checked_camera(row["camera_id"], row["checkpoint_id"], interval_s,
                          None if look_closer in ("", "default") else look_closer)


def _register(cameras: list[RegisteredCamera], *, prune: bool = False) -> list[str]:
    """Register or change ``cameras`` in one transaction and, with ``prune``, unregister every
    other camera; returns the cameras removed."""
    from ioc.commands._audit import audit_command
    from ioc.storage.cameras import remove_cameras_except, upsert_camera
    from ioc.storage.database import run_committed

    async def register_all(conn: AsyncConnection) -> list[str]:
        for c in cameras:
            await upsert_camera(conn, c.camera_id, c.checkpoint_id,
                                expected_interval_s=c.expected_interval_s, look_closer=c.look_closer)
        removed = await remove_cameras_except(conn, [c.camera_id for c in cameras]) if prune else []
        if len(cameras) == 1 and not prune:
            (camera,) = cameras
            query = {"camera_id": camera.camera_id, "checkpoint_id": camera.checkpoint_id}
            await audit_command(conn, "camera.register", query)
        else:  # a registry imported whole: one record, not one per camera
            await audit_command(conn, "camera.import", {"cameras": len(cameras), "removed": removed},
                                result_count=len(cameras))
        return removed

    return run_committed(_conninfo(), register_all)


def run_remove(args: argparse.Namespace) -> int:
    from ioc.commands._audit import audit_command
    from ioc.storage.cameras import remove_camera
    from ioc.storage.database import run_committed

    async def remove(conn: AsyncConnection) -> bool:
        removed = await remove_camera(conn, args.camera_id)
        if removed:
            await audit_command(conn, "camera.remove", {"camera_id": args.camera_id})
        return removed

    if not run_committed(_conninfo(), remove):
        print(f"no camera {args.camera_id}", file=sys.stderr)
        return 1
    print(f"removed {args.camera_id}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from ioc.storage.cameras import list_cameras
    from ioc.storage.database import run_committed

    cameras = run_committed(_conninfo(), lambda conn: list_cameras(conn, checkpoint_id=args.checkpoint))
    print("camera_id\tcheckpoint_id\tinterval_s\tlook_closer\tlast_seen")
    for camera in cameras:
        seen = camera.last_seen.isoformat() if camera.last_seen else "never"
        print(f"{camera.camera_id}\t{camera.checkpoint_id}\t{camera.expected_interval_s:g}\t"
              f"{camera.look_closer or 'default'}\t{seen}")
    return 0
