"""The permutation policy's building blocks: state, reward, grouping, network, learner, samplers.

Pure tensor functions and small plain classes; no Lightning. The callback that drives them
lives in ``ssl_rl.callbacks``.
"""

from ssl_rl.policy.groups import (
    GroupAssignment,
    group_medians,
    group_permutations,
    group_state,
    sort_groups_by_median,
)
from ssl_rl.policy.kmeans import KMeansResult, kmeans
from ssl_rl.policy.network import PolicyNetwork
from ssl_rl.policy.reinforce import PolicyUpdate, ReinforceLearner, discounted_return
from ssl_rl.policy.reward import extrapolated_baseline, extrapolated_reward
from ssl_rl.policy.samplers import (
    ErrorProportionalSampler,
    GroupPolicySampler,
    PermutationSampler,
    UniformSampler,
)
from ssl_rl.policy.state import (
    correct_mask,
    error_rate,
    per_permutation_error,
    ratio_matrix,
    ratio_matrix_from_logits,
    softmax_ratio,
)

__all__ = [
    "ErrorProportionalSampler",
    "GroupAssignment",
    "GroupPolicySampler",
    "KMeansResult",
    "PermutationSampler",
    "PolicyNetwork",
    "PolicyUpdate",
    "ReinforceLearner",
    "UniformSampler",
    "correct_mask",
    "discounted_return",
    "error_rate",
    "extrapolated_baseline",
    "extrapolated_reward",
    "group_medians",
    "group_permutations",
    "group_state",
    "kmeans",
    "per_permutation_error",
    "ratio_matrix",
    "ratio_matrix_from_logits",
    "softmax_ratio",
    "sort_groups_by_median",
]
