"""``ioc dead-letters list|replay``: what workers could not process, and sending it again.

Once a dead letter's cause is fixed (the camera registered with ``ioc cameras``, the workers
upgraded past a producer's schema version, the database back), ``replay`` sends the original
messages back to their topics; stored reads are idempotent, so replaying twice stores once.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import typing

from ioc.config import get_settings
from ioc.schemas import DeadLetter

REASONS = typing.get_args(DeadLetter.model_fields["reason"].annotation)
ERROR_SHOWN = 160  # characters of a letter's error that `list` prints


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("dead-letters", help="list dead-lettered messages, or send them back")
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="the dead letters, oldest first per partition (tab-separated)")
    replay = actions.add_parser("replay", help="send chosen letters' original messages back to their topics")
    for action, required in ((listing, False), (replay, True)):
        action.add_argument("--reason", action="append", choices=REASONS, required=required,
                            help="only letters dead-lettered for this reason (repeatable)")
        action.add_argument("--key", default=None, help="only letters with this original key (a camera id)")
    replay.add_argument("--dry-run", action="store_true", help="count what would be sent, send nothing")
    listing.set_defaults(func=run_list)
    replay.set_defaults(func=run_replay)


def _chosen(args: argparse.Namespace) -> tuple[list[DeadLetter], int]:
    from ioc.dead_letter_replay import read_dead_letters

    key = args.key.encode() if args.key is not None else None

    def keep(letter: DeadLetter) -> bool:
        return (not args.reason or letter.reason in args.reason) and (key is None or letter.key == key)

    return asyncio.run(read_dead_letters(get_settings(), keep))


def _unreadable_note(unreadable: int) -> None:
    if unreadable:
        print(f"{unreadable} messages on the topic were not dead letters (skipped)", file=sys.stderr)


def run_list(args: argparse.Namespace) -> int:
    letters, unreadable = _chosen(args)
    print("dead_at\tsource_topic\treason\tkey\terror")
    for letter in letters:
        key = letter.key.decode(errors="replace") if letter.key is not None else ""
        error = " ".join(letter.error.split())[:ERROR_SHOWN]
        print(f"{letter.dead_at.isoformat()}\t{letter.source_topic}\t{letter.reason}\t{key}\t{error}")
    _unreadable_note(unreadable)
    return 0


def run_replay(args: argparse.Namespace) -> int:
    from ioc.dead_letter_replay import replay

    letters, unreadable = _chosen(args)
    _unreadable_note(unreadable)
    if args.dry_run:
        print(f"would send {len(letters)} messages back (dry run)")
        return 0
    done = asyncio.run(replay(get_settings(), letters))
    print(f"sent {done.sent} messages back to their topics")
    if done.truncated:
        print(f"not sent: {done.truncated} letters whose payload was cut to IOC_DEAD_LETTER_MAX_PAYLOAD",
              file=sys.stderr)
    if done.elsewhere:
        print(f"not sent: {done.elsewhere} letters from topics no worker here reads", file=sys.stderr)
    return 0 if done.sent == len(letters) else 1
