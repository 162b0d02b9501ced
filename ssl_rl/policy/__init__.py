"""The permutation policy: state, reward, grouping, network, learner, samplers, modes and the
per-task episode logic (:class:`TaskPolicy`).

Pure tensor functions and small plain classes; no Lightning. The callback that wires them into
training lives in ``ssl_rl.callbacks``.
"""

from ssl_rl.policy.communicator import Communicator
from ssl_rl.policy.episodes import StepReport, TaskPolicy
from ssl_rl.policy.groups import (
    GroupAssignment,
    group_medians,
    group_permutations,
    group_state,
    sort_groups_by_median,
)
from ssl_rl.policy.kmeans import KMeansResult, kmeans
from ssl_rl.policy.modes import (
    MODES,
    ErrorProportionalMode,
    ModeSettings,
    PolicyMode,
    RLMode,
    UniformMode,
    make_mode,
)
from ssl_rl.policy.network import PolicyNetwork
from ssl_rl.policy.reinforce import PolicyUpdate, ReinforceLearner, discounted_return
from ssl_rl.policy.reward import extrapolated_baseline, extrapolated_reward
from ssl_rl.policy.samplers import (
    ErrorProportionalSampler,
    GroupPolicySampler,
    PermutationSampler,
    RecordingSampler,
    UniformSampler,
)
from ssl_rl.policy.seeds import TaskSeeds
from ssl_rl.policy.state import (
    correct_mask,
    error_rate,
    per_permutation_error,
    ratio_matrix,
    ratio_matrix_from_logits,
    softmax_ratio,
)
from ssl_rl.policy.timing import EpisodeTiming, Phase

__all__ = [
    "MODES",
    "Communicator",
    "EpisodeTiming",
    "ErrorProportionalMode",
    "ErrorProportionalSampler",
    "GroupAssignment",
    "GroupPolicySampler",
    "KMeansResult",
    "ModeSettings",
    "PermutationSampler",
    "Phase",
    "PolicyMode",
    "PolicyNetwork",
    "PolicyUpdate",
    "RLMode",
    "RecordingSampler",
    "ReinforceLearner",
    "StepReport",
    "TaskPolicy",
    "TaskSeeds",
    "UniformMode",
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
    "make_mode",
    "per_permutation_error",
    "ratio_matrix",
    "ratio_matrix_from_logits",
    "softmax_ratio",
    "sort_groups_by_median",
]
