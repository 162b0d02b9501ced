"""When a task's policy validates: a fixed phase of ``interval`` steps, then an episode.

Steps repeat with period ``interval + episode_steps``. At the start of a period a validation
closes the running episode (E_{t+1}) and π is fixed for ``interval`` steps; after them a
validation opens the next episode (E_t, ŝ_t). With ``interval = 0`` episodes follow each other:
one validation closes an episode and opens the next (the paper's Fig. 4 protocol).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Phase:
    """What the validation at a step does."""

    closes: bool  # ends the running episode, if one is open
    opens: bool  # starts an episode; otherwise π is fixed until the next validation


@dataclass(frozen=True)
class EpisodeTiming:
    """The period of fixed π followed by an episode, in training steps."""

    interval: int
    episode_steps: int

    def __post_init__(self) -> None:
        if self.interval < 0 or self.episode_steps < 1:
            raise ValueError("policy.interval must be >= 0 and policy.episode_steps >= 1")

    @property
    def cycle(self) -> int:
        """Steps from one closing validation to the next."""
        return self.interval + self.episode_steps

    def phase(self, step: int) -> Phase | None:
        """The validation due at ``step``, or None when the step only trains."""
        position = step % self.cycle
        if position == 0:
            return Phase(closes=True, opens=self.interval == 0)
        if position == self.interval:
            return Phase(closes=False, opens=True)
        return None
