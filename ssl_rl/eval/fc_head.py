"""The fresh fully connected layers put on a transferred trunk (CaffeNet's fc6 → fc7 → fc8)."""

from __future__ import annotations

from torch import nn


def fc_layers(in_dim: int, fc6_dim: int, fc7_dim: int, dropout: float) -> nn.Sequential:
    """Flatten → fc6 → ReLU → dropout → fc7 → ReLU → dropout (fc7 features, no classifier)."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(in_dim, fc6_dim),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(fc6_dim, fc7_dim),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
    )


def fc_classifier(
    in_dim: int, num_classes: int, fc6_dim: int, fc7_dim: int, dropout: float
) -> nn.Sequential:
    """:func:`fc_layers` followed by fc8, a linear layer to ``num_classes`` logits."""
    layers = fc_layers(in_dim, fc6_dim, fc7_dim, dropout)
    layers.append(nn.Linear(fc7_dim, num_classes))
    return layers
