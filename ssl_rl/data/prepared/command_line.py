"""The end of a preparation command line: parse it, run it, print what it did, exit code."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from ssl_rl.data.errors import DatasetError
from ssl_rl.data.prepared.runner import RunStats


def run_command(
    parser: argparse.ArgumentParser,
    argv: list[str] | None,
    prepare: Callable[..., RunStats],
    summary: Callable[[RunStats], str],
) -> int:
    """Adds ``--no-progress`` to ``parser`` (whose options are ``prepare``'s parameters), parses
    ``argv`` and runs ``prepare`` with INFO logging; prints its ``summary`` and each skipped
    source.

    Exit code 2: the preparation was refused (the error is printed); 1: some sources were
    skipped as unreadable; 0: everything is prepared.
    """
    parser.add_argument(
        "--no-progress", action="store_false", dest="progress", help="no progress bar"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        stats = prepare(**vars(args))
    except (DatasetError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(summary(stats))
    for source, reason in stats.skipped:
        print(f"FAILED {source}: {reason}", file=sys.stderr)
    return 1 if stats.skipped else 0
