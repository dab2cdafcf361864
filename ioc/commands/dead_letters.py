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
from collections.abc import Callable

from ioc.config import get_settings
from ioc.schemas import DeadLetter

REASONS = typing.get_args(DeadLetter.model_fields["reason"].annotation)
ERROR_SHOWN = 160  # characters of a letter's error that `list` prints
HEADER = "dead_at\tsource_topic\treason\tkey\terror"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("dead-letters", help="list dead-lettered messages, or send them back")
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="the dead letters, oldest first per partition (tab-separated)")
    replay = actions.add_parser("replay", help="send chosen letters' original messages back to their topics")
    for action, required in ((listing, False), (replay, True)):
        action.add_argument("--reason", action="append", choices=REASONS, required=required,
                            help="only letters dead-lettered for this reason (repeatable)")
        action.add_argument("--key", default=None, help="only letters with this original key (a camera id)")
    listing.set_defaults(func=run_list)
    replay.set_defaults(func=run_replay)


def _chooser(args: argparse.Namespace) -> Callable[[DeadLetter], bool]:
    """Whether a letter is one ``--reason`` and ``--key`` choose."""
    key = args.key.encode() if args.key is not None else None

    def chosen(letter: DeadLetter) -> bool:
        return (not args.reason or letter.reason in args.reason) and (key is None or letter.key == key)

    return chosen


def _unreadable_note(unreadable: int) -> None:
    if unreadable:
        print(f"{unreadable} messages on the topic were not dead letters (skipped)", file=sys.stderr)


def run_list(args: argparse.Namespace) -> int:
    from ioc.dead_letter_replay import dead_letters

    chosen = _chooser(args)
    headed = False

    def header() -> None:
        """The header, once the topic is read: not before an error (no broker, no setting)."""
        nonlocal headed
        if not headed:
            print(HEADER)
            headed = True

    async def print_chosen() -> int:
        unreadable = 0
        async for letter in dead_letters(get_settings()):
            header()
            if letter is None:
                unreadable += 1
            elif chosen(letter):
                key = letter.key.decode(errors="replace") if letter.key is not None else ""
                error = " ".join(letter.error.split())[:ERROR_SHOWN]
                print(f"{letter.dead_at.isoformat()}\t{letter.source_topic}\t{letter.reason}\t{key}\t{error}")
        header()  # an empty listing too
        return unreadable

    from ioc.dead_letter_replay import UnfinishedRead

    try:
        _unreadable_note(asyncio.run(print_chosen()))
    except UnfinishedRead as exc:
        header()
        print(f"incomplete: {exc}", file=sys.stderr)
        return 1
    return 0


def run_replay(args: argparse.Namespace) -> int:
    from ioc.dead_letter_replay import replay

    done = asyncio.run(replay(get_settings(), _chooser(args)))
    _unreadable_note(done.unreadable)
    print(f"sent {done.sent} of {done.chosen} chosen letters' messages back to their topics")
    if done.truncated:
        print(f"not sent: {done.truncated} letters whose payload was cut to IOC_DEAD_LETTER_MAX_PAYLOAD",
              file=sys.stderr)
    if done.elsewhere:
        print(f"not sent: {done.elsewhere} letters from topics no worker here reads", file=sys.stderr)
    if done.unfinished:
        print(f"incomplete: {done.unfinished}; run the replay again (a message replayed twice is "
              "stored once)", file=sys.stderr)
        return 1
    return 0 if done.sent == done.chosen else 1
