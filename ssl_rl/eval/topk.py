"""Top-k classification accuracy as a pure tensor function."""

from __future__ import annotations

from torch import Tensor


def topk_correct(logits: Tensor, labels: Tensor, k: int) -> Tensor:
    """(N,) bool: the label is among the ``k`` highest logits (all of them if k >= C).

    Ties are broken by ``torch.topk``'s order; with continuous scores they do not occur.
    """
    if logits.dim() != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(
            f"expected logits (N, C) and labels (N,), got {tuple(logits.shape)} and "
            f"{tuple(labels.shape)}"
        )
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    top = logits.topk(min(k, logits.shape[1]), dim=1).indices
    return (top == labels[:, None]).any(dim=1)
