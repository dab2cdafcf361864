"""``ioc cameras``: the camera registry that workers check frames and reads against.

With ``IOC_REQUIRE_KNOWN_CAMERAS`` (the default) a camera's frames and reads are
dead-lettered until it is registered here. Workers re-read the registry every few
seconds, so a camera added or changed is taken up without a restart.
"""

from __future__ import annotations

import argparse
import sys

from ioc.commands.anpr import add_look_closer_argument


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("cameras", help="register cameras and list them")
    cameras = parser.add_subparsers(dest="action", required=True)
    add = cameras.add_parser("add", help="register a camera, or change a registered one")
    add.add_argument("camera_id")
    add.add_argument("--checkpoint", required=True, help="the checkpoint the camera watches")
    add.add_argument("--interval", type=float, default=60.0,
                     help="seconds of silence after which the camera counts as offline (default 60)")
    add_look_closer_argument(add, default=None)  # None: the worker's IOC_ANPR_LOOK_CLOSER
    add.set_defaults(func=run_add)
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
    from ioc.storage.cameras import upsert_camera
    from ioc.storage.database import run_committed

    if not args.camera_id.strip() or not args.checkpoint.strip():
        print("not registered: a camera id and a checkpoint id are needed", file=sys.stderr)
        return 1
    if not args.interval > 0:
        print("not registered: --interval must be above 0", file=sys.stderr)
        return 1

    run_committed(_conninfo(), lambda conn: upsert_camera(
        conn, args.camera_id, args.checkpoint, expected_interval_s=args.interval, look_closer=args.look_closer
    ))
    closer = args.look_closer or "the worker's setting"
    print(f"registered {args.camera_id} at {args.checkpoint} (offline after {args.interval:g} s silent; "
          f"look closer: {closer})")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    from ioc.storage.cameras import remove_camera
    from ioc.storage.database import run_committed

    if not run_committed(_conninfo(), lambda conn: remove_camera(conn, args.camera_id)):
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
