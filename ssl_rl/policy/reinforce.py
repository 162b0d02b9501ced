"""REINFORCE with a moving-average baseline and an entropy bonus (Eq. 9).

One update per episode t, ascending

    (G_t - b) · Σ_k log π(a_k | ŝ_t; θ) + β · H(π(· | ŝ_t; θ))

with G_t = Σ_{t'=t}^{t+horizon} γ^{t'-t} r_{t'}. With ``horizon > 0`` the update of episode t
waits in a buffer until r_{t+horizon} is known; :meth:`ReinforceLearner.flush` updates what is
left with the rewards available (truncated returns), e.g. at the end of training. The update
uses the current θ, which may be up to ``horizon`` updates newer than the θ that drew the
actions; with the small steps used here that lag is negligible.

Decisions:
- Σ_k log π is a sum over the K actions by default, as in Eq. 9. Its expected value does not
  depend on K: if the reward grows by c per unit fraction of actions in group j, the expected
  gradient on logit j is c·π_j(1-π_j) for any K, so α and β need no retuning when the batch
  size or episode length changes. (With the mean it would shrink as 1/K against the entropy
  bonus.) ``mean_over_actions=True`` switches to the mean.
- The baseline b is the exponential moving average of the returns, initialised with the
  first return (so the first update carries only the entropy term) rather than with 0,
  which would treat the first return's full size as advantage. b is moved after the update.
- ``normalize_advantage``: G_t - b is divided by the root of a moving average (same momentum)
  of the squared advantages, this one included. The rewards' scale (a few 0.01 of error at
  the demo, unknown at paper scale) then no longer sets the step size; α does.
- ``entropy="permutations"``: the bonus is the entropy of the distribution over
  *permutations* that π induces (a group, then a uniform member), up to the constant log|Ψ|:
  H(π) + Σ_j π_j log(|c_j| / |Ψ|) = -KL(π ‖ group sizes) + const. It is largest at the
  neutral start (every permutation equally likely), so it pulls π back to "no preference"
  rather than towards favouring small groups, as the entropy over groups does.
- With ``horizon = 0`` the return is the episode's own reward and γ has no effect.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ssl_rl.policy.network import PolicyNetwork, size_shares

ENTROPY_KINDS = ("groups", "permutations")


def discounted_return(rewards: Sequence[float], gamma: float) -> float:
    """Σ_i γ^i r_i over the given rewards, the first one being r_t."""
    return sum(gamma**i * float(r) for i, r in enumerate(rewards))


@dataclass
class PolicyUpdate:
    """What one REINFORCE update did, for logging."""

    episode: int  # index t of the episode that was credited
    loss: float
    episode_return: float  # G_t
    baseline: float  # b used for this update (before it was moved towards G_t)
    advantage: float  # G_t - b (before normalisation)
    entropy: float  # H(π(· | ŝ_t)) over the groups, before the step
    probs: Tensor  # π(· | ŝ_t) before the step, (|C|,) on the CPU

    def scalars(self) -> dict[str, float]:
        """The scalar fields, ready for a logger."""
        return {
            "episode": float(self.episode),
            "loss": self.loss,
            "return": self.episode_return,
            "baseline": self.baseline,
            "advantage": self.advantage,
            "entropy": self.entropy,
        }


class ReinforceLearner:
    """Learns a :class:`PolicyNetwork` from (ŝ_t, actions a_t, reward r_t) per episode.

    Defaults for α, β, γ and the baseline momentum are stand-ins (not given in the paper).
    """

    def __init__(
        self,
        policy: PolicyNetwork,
        lr: float = 1e-2,
        entropy_weight: float = 1e-2,
        baseline_momentum: float = 0.9,
        gamma: float = 0.99,
        horizon: int = 0,
        optimizer: str = "adam",
        mean_over_actions: bool = False,
        normalize_advantage: bool = False,
        entropy: str = "groups",
    ) -> None:
        if entropy not in ENTROPY_KINDS:
            raise ValueError(f"entropy must be one of {ENTROPY_KINDS}, got {entropy!r}")
        if horizon < 0:
            raise ValueError(f"horizon must be >= 0, got {horizon}")
        if not 0.0 <= baseline_momentum < 1.0:
            raise ValueError(f"baseline_momentum must be in [0, 1), got {baseline_momentum}")
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {gamma}")
        self.policy = policy
        self.entropy_weight = entropy_weight
        self.baseline_momentum = baseline_momentum
        self.gamma = gamma
        self.horizon = horizon
        self.mean_over_actions = mean_over_actions
        self.normalize_advantage = normalize_advantage
        self.entropy = entropy
        self.optimizer = _make_optimizer(optimizer, policy, lr)
        self.baseline: float | None = None
        self.advantage_scale: float | None = None  # moving mean of squared advantages
        self.episodes_recorded = 0
        self._buffer: list[dict[str, Any]] = []

    @property
    def pending(self) -> int:
        """Episodes recorded but not yet used for an update."""
        return len(self._buffer)

    def record(self, state: Tensor, actions: Tensor, reward: float) -> list[PolicyUpdate]:
        """Store episode t (ŝ_t, its K group actions, r_t); update every episode now complete."""
        expected = (self.policy.num_groups, self.policy.features_per_group)
        if tuple(state.shape) != expected:
            raise ValueError(f"state must have shape {expected}, got {tuple(state.shape)}")
        counts = self._action_counts(actions)
        self._buffer.append(
            {
                "episode": self.episodes_recorded,
                "state": state.detach().to("cpu", torch.float32).clone(),
                "counts": counts,
                "reward": float(reward),
            }
        )
        self.episodes_recorded += 1
        updates = []
        while len(self._buffer) > self.horizon:
            updates.append(self._update_oldest())
        return updates

    def flush(self) -> list[PolicyUpdate]:
        """Update all buffered episodes with truncated returns (end of training)."""
        return [self._update_oldest() for _ in range(len(self._buffer))]

    def _update_oldest(self) -> PolicyUpdate:
        rewards = [item["reward"] for item in self._buffer[: self.horizon + 1]]
        episode = self._buffer.pop(0)
        episode_return = discounted_return(rewards, self.gamma)
        baseline = episode_return if self.baseline is None else self.baseline
        advantage = episode_return - baseline

        device = next(self.policy.parameters()).device
        state = episode["state"].to(device)
        probs = self.policy.probabilities(state)
        # Clamped as torch's Categorical does: an empty group's 0 gives a finite log.
        log_probs = probs.clamp_min(torch.finfo(probs.dtype).eps).log()
        counts = episode["counts"].to(device=device, dtype=probs.dtype)
        log_prob = (counts * log_probs).sum()
        if self.mean_over_actions:
            log_prob = log_prob / counts.sum()
        entropy = -(probs * log_probs).sum()
        bonus = entropy
        if self.entropy == "permutations":
            shares = size_shares(state.to(probs.dtype))
            bonus = entropy + (probs * shares.clamp_min(torch.finfo(probs.dtype).tiny).log()).sum()
        loss = -(self._scaled(advantage) * log_prob + self.entropy_weight * bonus)

        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()

        if self.baseline is None:
            self.baseline = episode_return
        else:
            m = self.baseline_momentum
            self.baseline = m * self.baseline + (1.0 - m) * episode_return
        return PolicyUpdate(
            episode=episode["episode"],
            loss=loss.item(),
            episode_return=episode_return,
            baseline=baseline,
            advantage=advantage,
            entropy=entropy.item(),
            probs=probs.detach().cpu(),
        )

    def _scaled(self, advantage: float) -> float:
        """The advantage, divided by its running RMS when ``normalize_advantage`` is set."""
        if not self.normalize_advantage or advantage == 0.0:
            return advantage
        squared = advantage * advantage
        m = self.baseline_momentum
        previous = self.advantage_scale
        self.advantage_scale = squared if previous is None else m * previous + (1 - m) * squared
        rms: float = self.advantage_scale**0.5
        return advantage / rms

    def _action_counts(self, actions: Tensor) -> Tensor:
        num_groups = self.policy.num_groups
        if actions.ndim != 1 or actions.numel() == 0 or actions.dtype != torch.long:
            raise ValueError(
                "actions must be a non-empty 1-D long tensor of group indices (the a_k of the "
                f"episode), got {actions.dtype} of shape {tuple(actions.shape)}"
            )
        if int(actions.min()) < 0 or int(actions.max()) >= num_groups:
            raise ValueError(f"actions must lie in [0, {num_groups}), got {actions.tolist()[:8]}")
        return torch.bincount(actions.cpu(), minlength=num_groups)

    def state_dict(self) -> dict[str, Any]:
        """Policy, optimiser, baseline and buffer; a deep copy, safe to keep while training."""
        return copy.deepcopy(
            {
                "policy": self.policy.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "baseline": self.baseline,
                "advantage_scale": self.advantage_scale,
                "episodes_recorded": self.episodes_recorded,
                "buffer": self._buffer,
            }
        )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.baseline = state["baseline"]
        self.advantage_scale = state.get("advantage_scale")
        self.episodes_recorded = int(state["episodes_recorded"])
        self._buffer = copy.deepcopy(list(state["buffer"]))


def _make_optimizer(name: str, policy: PolicyNetwork, lr: float) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(policy.parameters(), lr=lr)
    if name == "sgd":
        return torch.optim.SGD(policy.parameters(), lr=lr)
    raise ValueError(f"optimizer must be 'adam' or 'sgd', got {name!r}")
