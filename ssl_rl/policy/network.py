"""The policy π(c | ŝ; θ): two fully connected layers over the flattened group state [paper]."""

from __future__ import annotations

import torch
from torch import Tensor, nn

_ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh}


def size_shares(state: Tensor) -> Tensor:
    """|c_j| / Σ|c| per group from ŝ (..., |C|, 2), whose column 0 is the group size.

    Column 0 holds |c_j| or |c_j| / |Ψ| (``normalize_counts``); the share is the same.
    """
    sizes = state[..., 0].clamp_min(0.0)
    return sizes / sizes.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(sizes.dtype).tiny)


class PolicyNetwork(nn.Module):
    """2·|C| → hidden → |C| scores, one per permutation group.

    ``neutral_start`` [decision]: the group logits are the network's scores plus log of the
    group's share of permutations, and the output layer starts at zero, so the untrained π
    draws groups in proportion to their size, i.e. every permutation equally often, whatever
    the state. Any preference for hard or easy permutations must then be learned; a π uniform
    over *groups* would favour the permutations of small groups before learning anything.
    Without it the output layer still starts at zero (π uniform over groups).

    ``floor`` [decision]: π is mixed with that neutral distribution,
    (1 − floor) · softmax(logits) + floor · |c_j| / |Ψ|, so no permutation's probability falls
    below ``floor`` / |Ψ| and π cannot collapse onto one group.

    The hidden activation is not given in the paper [stand-in: tanh]: with 16 units and a
    small, fixed-range input, ReLU units died in toy runs and left only the output bias.
    """

    def __init__(
        self,
        num_groups: int = 10,
        hidden: int = 16,
        features_per_group: int = 2,
        activation: str = "tanh",
        zero_init_output: bool = True,
        neutral_start: bool = False,
        floor: float = 0.0,
    ) -> None:
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation}")
        if not 0.0 <= floor < 1.0:
            raise ValueError(f"policy floor must be in [0, 1), got {floor}")
        self.num_groups = num_groups
        self.features_per_group = features_per_group
        self.neutral_start = neutral_start
        self.floor = floor
        self.hidden = nn.Linear(num_groups * features_per_group, hidden)
        self.activation = _ACTIVATIONS[activation]()
        self.output = nn.Linear(hidden, num_groups)
        if zero_init_output or neutral_start:
            nn.init.zeros_(self.output.weight)
            nn.init.zeros_(self.output.bias)

    def forward(self, state: Tensor) -> Tensor:
        """Scores (|C|,) for a state (|C|, 2), or (B, |C|) for a batch (B, |C|, 2)."""
        flat = self._checked(state).flatten(start_dim=-2)
        scores: Tensor = self.output(self.activation(self.hidden(flat)))
        return scores

    def probabilities(self, state: Tensor) -> Tensor:
        """π(· | ŝ) over the groups, (|C|,) or (B, |C|); empty groups get 0 under the prior."""
        state = self._checked(state)
        scores: Tensor = self(state)
        if not (self.neutral_start or self.floor > 0.0):
            return scores.softmax(dim=-1)
        shares = size_shares(state)
        if self.neutral_start:
            # log 0 = -inf: an empty group gets no probability, and no NaN from 0 · inf.
            scores = scores + torch.log(shares)
        probs = scores.softmax(dim=-1)
        if self.floor > 0.0:
            probs = (1.0 - self.floor) * probs + self.floor * shares
        return probs

    def distribution(self, state: Tensor) -> torch.distributions.Categorical:
        """π(· | ŝ) as a categorical distribution over the groups."""
        return torch.distributions.Categorical(probs=self.probabilities(state), validate_args=False)

    def _checked(self, state: Tensor) -> Tensor:
        expected = (self.num_groups, self.features_per_group)
        if state.ndim not in (2, 3) or tuple(state.shape[-2:]) != expected:
            raise ValueError(
                f"policy state must have shape {expected} or (B, *{expected}), "
                f"got {tuple(state.shape)}"
            )
        weight = self.hidden.weight
        return state.to(device=weight.device, dtype=weight.dtype)
