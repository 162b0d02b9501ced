"""Base of the modes that draw k-means groups of s (``rl``, ``credit``)."""

from __future__ import annotations

import torch
from torch import Tensor

from ssl_rl.policy.groups import GroupAssignment, group_permutations
from ssl_rl.policy.modes.base import PolicyMode
from ssl_rl.policy.samplers import GroupPolicySampler
from ssl_rl.policy.seeds import TaskSeeds


class GroupedMode(PolicyMode):
    """Regroups the permutations on every new state and draws groups with given probabilities;
    subclasses say where the probabilities come from."""

    sampler: GroupPolicySampler

    def init_state(self, num_perms: int, seeds: TaskSeeds) -> None:
        super().init_state(num_perms, seeds)
        self.kmeans_generator = torch.Generator().manual_seed(seeds.kmeans)

    def make_sampler(self, num_perms: int, seed: int) -> GroupPolicySampler:
        return GroupPolicySampler(
            num_perms,
            self.settings.num_groups,
            seed=seed,
            record_actions=False,  # until an episode opens
            samples_per_action=self.settings.samples_per_action,
        )

    def group(self, s: Tensor) -> GroupAssignment:
        """k-means groups of the rows of ``s``, sorted by difficulty, and the policy input ŝ."""
        settings = self.settings
        return group_permutations(
            s.cpu(),
            k=settings.num_groups,
            generator=self.kmeans_generator,
            n_iter=settings.kmeans_iters,
            n_init=settings.kmeans_inits,
            normalize_counts=settings.normalize_counts,
        )

    def draw_from(self, labels: Tensor, probs: Tensor, opening: bool) -> None:
        """Sample groups ``probs`` of ``labels`` from now on; in an episode, record the actions."""
        self.sampler.set_groups(labels)
        self.sampler.set_group_probs(probs)
        if opening:
            self.sampler.pop_actions()
            self.sampler.record_actions = True
