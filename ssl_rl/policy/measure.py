"""The network's state on X_val: the ratio matrix s over every ψ, from one trunk pass."""

from __future__ import annotations

import torch
from torch import Tensor

from ssl_rl.policy.state import softmax_ratio


@torch.no_grad()
def measure_ratio_matrix(
    module: torch.nn.Module, task: str, parts: Tensor, chunk_size: int | None = None
) -> Tensor:
    """s (|Ψ|, |X_val|) for ``module`` (an ``OrderingPretrainer``) on the unpermuted ``parts``.

    The trunk and fc6 see each part once; only the order-dependent head runs per ψ, in chunks
    of orders, each reduced to softmax ratios at once so (V, |Ψ|, |Ψ|) logits never exist.
    Puts the module in eval mode (BN running statistics, no dropout) and restores its mode.
    """
    was_training = module.training
    module.eval()
    try:
        features = module.part_features(task, parts)
        head = module.heads[task]
        perms = module.permutations[task].perms
        num_perms, num_samples = perms.shape[0], parts.shape[0]
        s = torch.empty(num_perms, num_samples, device=parts.device)
        for indices, logits in head.iter_order_logits(features, perms, chunk_size):
            probs = logits.float().softmax(dim=-1)  # (V, Qc, C)
            target = indices.to(parts.device).repeat(num_samples)
            ratios = softmax_ratio(probs.flatten(0, 1), target).view(num_samples, -1)
            s[indices.to(parts.device)] = ratios.T
        return s
    finally:
        module.train(was_training)
