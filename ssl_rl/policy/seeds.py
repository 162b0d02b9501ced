"""The seeds of one task's policy, derived from the run's seed and the task's position."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskSeeds:
    """Seeds of the sampler, the learner's initial weights, k-means and the noise test."""

    sampler: int
    learner: int
    kmeans: int
    noise: int

    @classmethod
    def derive(cls, seed: int, offset: int, rank: int = 0) -> TaskSeeds:
        """Seeds for the task at ``offset`` of the schedule on ``rank``.

        Only the sampler's seed depends on the rank: ranks draw different permutations, while
        groups and π must stay identical on every rank.
        """
        return cls(
            sampler=seed + 104_729 * (offset + 1) + 7 * rank,
            learner=seed + offset,
            kmeans=seed + 15_485_863 * (offset + 1),
            noise=seed + offset,
        )
