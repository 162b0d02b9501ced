"""Which ordering tasks train at a given step: S, T, S+T (parallel) or S&T (sequential)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class TaskSchedule:
    """The ablation's task schedule.

    ``parallel``: every listed task trains every step (S, T, S+T).
    ``sequential``: the tasks train one after the other (S&T); task k starts at
    ``switch_fractions[k-1] * max_steps`` and starts from the weights the earlier phase left.
    With ``reset_optimizer_per_phase`` each phase also starts its own training: fresh
    optimiser state and the learning-rate schedule from its beginning [paper: the temporal
    phase is initialised from the spatial weights].
    """

    tasks: tuple[str, ...]
    mode: str = "parallel"
    switch_fractions: tuple[float, ...] = ()
    max_steps: int = 0
    reset_optimizer_per_phase: bool = True

    def __post_init__(self) -> None:
        if not self.tasks:
            raise ValueError(
                "schedule.tasks names no task; an experiment composes its tasks under `tasks` "
                "(e.g. `- /task@tasks.spatial: spatial` in its defaults)"
            )
        if len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"schedule.tasks repeats a task: {list(self.tasks)}")
        if self.mode not in ("parallel", "sequential"):
            raise ValueError(f"schedule.mode must be 'parallel' or 'sequential', got {self.mode!r}")
        if self.mode == "sequential":
            if len(self.switch_fractions) != len(self.tasks) - 1:
                raise ValueError(
                    "schedule.switch_fractions needs one fraction per phase change "
                    f"({len(self.tasks) - 1} for tasks {list(self.tasks)})"
                )
            if list(self.switch_fractions) != sorted(self.switch_fractions) or not all(
                0.0 < f < 1.0 for f in self.switch_fractions
            ):
                raise ValueError("schedule.switch_fractions must be increasing and inside (0, 1)")

    @classmethod
    def build(
        cls,
        tasks: Sequence[str],
        mode: str = "parallel",
        switch_fractions: Sequence[float] = (),
        max_steps: int = 0,
        reset_optimizer_per_phase: bool = True,
    ) -> TaskSchedule:
        fractions = tuple(float(f) for f in switch_fractions)
        return cls(tuple(tasks), mode, fractions, int(max_steps), bool(reset_optimizer_per_phase))

    @property
    def switch_steps(self) -> tuple[int, ...]:
        return tuple(round(f * self.max_steps) for f in self.switch_fractions)

    def resets_optimizer_at(self, step: int) -> bool:
        """Whether optimiser step ``step`` starts a phase with a fresh optimiser and schedule."""
        return (
            self.mode == "sequential"
            and self.reset_optimizer_per_phase
            and step in self.switch_steps
        )

    def active(self, step: int) -> tuple[str, ...]:
        """The tasks that train at optimiser step ``step``."""
        if self.mode == "parallel":
            return self.tasks
        phase = sum(step >= s for s in self.switch_steps)
        return (self.tasks[phase],)

    def steps_active(self, task: str, until: int) -> int:
        """How many of the steps ``0 .. until-1`` train ``task``."""
        if task not in self.tasks:
            return 0
        if self.mode == "parallel":
            return until
        starts: tuple[int, ...] = (0, *self.switch_steps)
        ends: tuple[int | None, ...] = (*self.switch_steps, None)
        phase = self.tasks.index(task)
        begin, end = starts[phase], ends[phase]
        stop = until if end is None else min(until, end)
        return max(0, stop - begin)
