"""How a run can end other than completed, as exceptions that carry what ``summary.json`` needs."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class RunStopped(Exception):
    """A run stopped on purpose; ``status`` and ``fields`` go into ``summary.json``."""

    status = "stopped"

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.fields = fields


class RunDiverged(RunStopped):
    """A non-finite loss or policy state: training cannot go on from this step."""

    status = "diverged"


class RunInterrupted(RunStopped):
    """A stop signal (SIGTERM, SIGINT, the scheduler's requeue signal) at a step boundary.

    ``then`` runs once the summary is written: the handler that was installed before ours
    (submitit's, which requeues the job and exits).
    """

    status = "interrupted"

    def __init__(
        self, message: str, signum: int, then: Callable[[], None] | None = None, **fields: Any
    ) -> None:
        super().__init__(message, **fields)
        self.signum = signum
        self.then = then

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as a shell reports a process ended by that signal."""
        return 128 + self.signum


class ConfigRefused(ValueError):
    """A run asked for something its configuration or checkpoint cannot give; says what to fix."""


class CheckpointNotFound(ConfigRefused, FileNotFoundError):
    """A checkpoint setting (ckpt, ckpt_path, init_from) names no checkpoint file or run dir."""


@contextmanager
def exit_quietly_on(expected: tuple[type[BaseException], ...]) -> Iterator[None]:
    """A script's ``main``: an ``expected`` error (already logged once, with what to fix) ends
    the process with status 1 and no traceback; ``HYDRA_FULL_ERROR=1`` shows it, as for Hydra's
    own errors."""
    try:
        yield
    except expected:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        sys.exit(1)
