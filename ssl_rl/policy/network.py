"""The policy π(c | ŝ; θ): two fully connected layers over the flattened group state [paper]."""

from __future__ import annotations

import torch
from torch import Tensor, nn

_ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh}


class PolicyNetwork(nn.Module):
    """2·|C| → hidden → |C| logits, one per permutation group.

    The output layer starts at zero [decision], so the initial policy is exactly uniform over
    the groups whatever the state (the paper observes near-uniform choices in the first
    episodes); the first updates then move it away only as far as the rewards justify.
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
    ) -> None:
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation}")
        self.num_groups = num_groups
        self.features_per_group = features_per_group
        self.hidden = nn.Linear(num_groups * features_per_group, hidden)
        self.activation = _ACTIVATIONS[activation]()
        self.output = nn.Linear(hidden, num_groups)
        if zero_init_output:
            nn.init.zeros_(self.output.weight)
            nn.init.zeros_(self.output.bias)

    def forward(self, state: Tensor) -> Tensor:
        """Logits (|C|,) for a state (|C|, 2), or (B, |C|) for a batch (B, |C|, 2)."""
        expected = (self.num_groups, self.features_per_group)
        if state.ndim not in (2, 3) or tuple(state.shape[-2:]) != expected:
            raise ValueError(
                f"policy state must have shape {expected} or (B, *{expected}), "
                f"got {tuple(state.shape)}"
            )
        weight = self.hidden.weight
        flat = state.to(device=weight.device, dtype=weight.dtype).flatten(start_dim=-2)
        return self.output(self.activation(self.hidden(flat)))

    def distribution(self, state: Tensor) -> torch.distributions.Categorical:
        """π(· | ŝ) as a categorical distribution over the groups."""
        return torch.distributions.Categorical(logits=self(state))
