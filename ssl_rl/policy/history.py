"""What a task's policy records for figures, reports and the noise test; kept in checkpoints."""

from __future__ import annotations

from typing import Any

History = dict[str, list[Any]]


def new_history() -> History:
    """An empty record; every key is a list that grows over training."""
    return {
        # one entry per validation
        "validation_steps": [],
        "errors": [],
        "permutation_errors": [],
        # one entry per finished episode
        "episode_steps": [],  # the step that closed it
        "episode_errors": [],  # [E_t, E_{t+1}]
        "rewards": [],
        "quantile_fractions": [],  # drawn permutations per validation-error quartile, 0 = hard
        # rl only, one entry per finished episode
        "group_fractions": [],
        "action_counts": [],
        "episode_states": [],  # ŝ_t
        "group_probs": [],  # π(· | ŝ_t) that chose the episode's actions
        "hard_mass": [],  # π(hard groups | ŝ_t)
        "neutral_hard_mass": [],  # the hard groups' share of the permutations
    }
