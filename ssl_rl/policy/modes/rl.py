"""The paper's policy (``rl``): k-means groups of s, π over them, REINFORCE per episode."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from ssl_rl.policy.modes.base import GroupedPolicy, PolicyStep
from ssl_rl.policy.modes.grouped import GroupedMode
from ssl_rl.policy.network import PolicyNetwork
from ssl_rl.policy.reinforce import ReinforceLearner
from ssl_rl.policy.seeds import TaskSeeds


class RLMode(GroupedMode):
    """Groups the permutations on every new state and draws groups from π(· | ŝ) [paper]."""

    name = "rl"

    def init_state(self, num_perms: int, seeds: TaskSeeds) -> None:
        super().init_state(num_perms, seeds)
        self._learner_seed = seeds.learner
        self.learner = self.new_learner()
        self.initial_learner: dict[str, Any] | None = self.learner.state_dict()

    def new_learner(self) -> ReinforceLearner:
        """A fresh learner: the same weights on every rank and at every call."""
        settings = self.settings
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self._learner_seed)
            policy = PolicyNetwork(
                num_groups=settings.num_groups,
                hidden=settings.hidden,
                activation=settings.activation,
                neutral_start=settings.neutral_start,
                floor=settings.floor,
            )
        return ReinforceLearner(policy, **settings.learner)

    def on_validation(self, permutation_errors: Tensor) -> None:
        pass

    def act(self, s: Tensor, opening: bool) -> GroupedPolicy:
        """Regroup the permutations on ``s`` and sample groups from π(· | ŝ)."""
        groups = self.group(s)
        with torch.no_grad():
            probs = self.learner.policy.probabilities(groups.state).cpu()
        labels = groups.labels.cpu()
        self.draw_from(labels, probs, opening)
        weights = [p.detach().flatten().cpu().double() for p in self.learner.policy.parameters()]
        fingerprint = torch.cat([labels.double(), probs.double(), *weights])
        return GroupedPolicy(groups=groups, probs=probs, fingerprint=fingerprint)

    def update(self, state: Tensor | None, reward: float) -> PolicyStep:
        """REINFORCE on the episode's actions (all ranks') and reward (Eq. 9)."""
        if state is None:
            raise ValueError("the rl mode needs the episode's group state ŝ_t to update π")
        actions = self.comm.gather(self.sampler.pop_actions())
        self.sampler.record_actions = False
        counts = torch.bincount(actions, minlength=self.settings.num_groups)
        return PolicyStep(counts=counts, updates=self.learner.record(state, actions, reward))

    def replay_learner(self) -> Callable[[], ReinforceLearner] | None:
        initial = self.initial_learner
        if initial is None:
            return None

        def fresh() -> ReinforceLearner:
            learner = self.new_learner()
            learner.load_state_dict(initial)
            return learner

        return fresh

    def state_dict(self) -> dict[str, Any]:
        return {
            "sampler": self.sampler.state_dict(),
            "learner": self.learner.state_dict(),
            "kmeans_generator": self.kmeans_generator.get_state(),
            "initial_learner": copy.deepcopy(self.initial_learner),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.sampler.load_state_dict(state["sampler"])
        if state["learner"] is not None:
            self.learner.load_state_dict(state["learner"])
        self.kmeans_generator.set_state(state["kmeans_generator"])
        self.initial_learner = state["initial_learner"]
