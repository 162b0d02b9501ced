"""The network state s (Eq. 3-4) and the validation error E (Eq. 6), as pure tensor functions.

Layout: ``probs[v, i, c]`` is the softmax output for class c when validation sample v is
permuted by ψ_i, so the true class of ``probs[v, i]`` is i. The state ``s`` has one row per
permutation: ``s[i, v] = (y*_l + 1) / (y*_p + 1)`` with l = i and p the highest class other
than l. That single rule covers both cases of the paper: when l is the argmax, p is the second
highest class; when l is misclassified, the highest class is not l, so p is the highest class.

Ties: ``y*_l == y*_p`` gives ``s == 1`` and counts as an error. Eq. 6 asks for
``argmax == l``, which is ambiguous under a tie; counting it as correct would reward a
degenerate network (e.g. constant outputs at initialisation would be "correct" for whichever
class the argmax tie-break favours). ``s > 1`` is the paper's own criterion for "correct".
The ratio is computed in the input's float precision, so margins below its resolution
(~1e-7 for float32) read as ties.
"""

from __future__ import annotations

import torch
from torch import Tensor

_PROB_TOLERANCE = 1e-3


def softmax_ratio(probs: Tensor, target: Tensor) -> Tensor:
    """Eq. 3 for a batch: ``(y*_target + 1) / (max_{c != target} y*_c + 1)``.

    ``probs`` is (N, C) softmax output, ``target`` is (N,) true class indices; returns (N,).
    Uses top-2 instead of masking so no copy of ``probs`` is made.
    """
    if probs.ndim != 2 or target.shape != probs.shape[:1]:
        raise ValueError(
            f"softmax_ratio expects probs (N, C) and target (N,), got {tuple(probs.shape)} "
            f"and {tuple(target.shape)}"
        )
    if probs.shape[1] < 2:
        raise ValueError(f"need at least 2 classes for a ratio, got {probs.shape[1]}")
    probs = _as_float(probs)
    target = target.to(device=probs.device, dtype=torch.long)
    true_prob = probs.gather(1, target[:, None]).squeeze(1)
    top_values, top_indices = probs.topk(2, dim=1)
    # If the top class is the true one, the competitor is the runner-up; otherwise the top.
    # Under a tie topk may put either index first; both branches then give y_p == y_l.
    competitor = torch.where(top_indices[:, 0] == target, top_values[:, 1], top_values[:, 0])
    return (true_prob + 1.0) / (competitor + 1.0)


def ratio_matrix(probs: Tensor) -> Tensor:
    """The state s (Eq. 4) of shape (Q, V) from softmax outputs of shape (V, Q, Q).

    ``probs[v, i]`` is the softmax over the Q permutation classes for sample v permuted by ψ_i.
    Row i of the result holds the ratios of ψ_i on all validation samples.
    """
    _check_square_stack(probs, "probs")
    _check_probabilities(probs)
    num_samples, num_perms, _ = probs.shape
    targets = torch.arange(num_perms, device=probs.device).repeat(num_samples)
    ratios = softmax_ratio(probs.reshape(num_samples * num_perms, num_perms), targets)
    return ratios.reshape(num_samples, num_perms).transpose(0, 1).contiguous()


def ratio_matrix_from_logits(logits: Tensor) -> Tensor:
    """Like :func:`ratio_matrix`, from classifier logits (V, Q, Q); softmax over the last dim."""
    _check_square_stack(logits, "logits")
    return ratio_matrix(_as_float(logits).softmax(dim=-1))


def correct_mask(s: Tensor) -> Tensor:
    """Boolean (Q, V): True where the true permutation is the strict argmax (``s > 1``)."""
    if s.ndim != 2:
        raise ValueError(f"state s must be 2-D (|Ψ|, |X_val|), got shape {tuple(s.shape)}")
    return s > 1.0


def error_rate(s: Tensor) -> Tensor:
    """E (Eq. 6): the fraction of (ψ, x) pairs not classified correctly; a 0-dim tensor."""
    return 1.0 - correct_mask(s).float().mean()


def per_permutation_error(s: Tensor) -> Tensor:
    """Fraction of validation samples misclassified for each permutation, shape (Q,)."""
    return 1.0 - correct_mask(s).float().mean(dim=1)


def _as_float(x: Tensor) -> Tensor:
    # Half precision cannot resolve the small margins of a 1000-way softmax.
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def _check_square_stack(x: Tensor, name: str) -> None:
    if x.ndim != 3 or x.shape[1] != x.shape[2]:
        raise ValueError(
            f"{name} must have shape (|X_val|, |Ψ|, |Ψ|) with {name}[v, i] the output for "
            f"sample v permuted by ψ_i; got {tuple(x.shape)}"
        )


def _check_probabilities(probs: Tensor) -> None:
    if probs.numel() == 0:
        raise ValueError("probs is empty: need at least one validation sample and permutation")
    low, high = probs.min().item(), probs.max().item()
    sums = probs.sum(dim=-1, dtype=torch.float64)
    worst = (sums - 1.0).abs().max().item()
    if low < -_PROB_TOLERANCE or high > 1.0 + _PROB_TOLERANCE or worst > _PROB_TOLERANCE:
        raise ValueError(
            f"probs must be softmax outputs (range [{low:.3g}, {high:.3g}], rows summing to 1 "
            f"within {worst:.3g}); pass logits to ratio_matrix_from_logits instead"
        )
