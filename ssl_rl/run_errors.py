"""How a run can end other than completed, as exceptions that carry what ``summary.json`` needs."""

from __future__ import annotations

from collections.abc import Callable
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
