"""The reward r_t of an episode (Eq. 7): improvement over a linearly extrapolated error."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

# How E^BL_{t+1} extrapolates from E_{t-1} (the validation that preceded E_t) and E_t.
# paper: 2 E_t - E_{t-1} exactly as written [paper, Eq. 7].
# scaled: the trend E_t - E_{t-1} rescaled to the episode's length in steps [decision].
BASELINES = ("paper", "scaled")


def span_ratio(baseline: str, episode_steps: int, steps_before: int) -> float:
    """The factor on the trend E_t − E_{t−1} for the chosen ``baseline``.

    ``steps_before`` is the number of training steps from E_{t−1} to E_t, ``episode_steps``
    from E_t to E_{t+1}. With equal spans both baselines are 2 E_t − E_{t−1}.
    """
    if baseline not in BASELINES:
        raise ValueError(f"policy.reward_baseline must be one of {BASELINES}, got {baseline!r}")
    if baseline == "paper" or steps_before <= 0:
        return 1.0
    return episode_steps / steps_before


def extrapolated_baseline(
    error_now: float, error_before: float | None = None, span_ratio: float = 1.0
) -> float:
    """E^BL_{t+1} = E_t + (E_t - E_{t-1}) * span_ratio; 2 E_t - E_{t-1} at span_ratio 1.

    ``span_ratio`` is (steps from E_t to E_{t+1}) / (steps from E_{t-1} to E_t) for the
    scaled baseline, 1 for the paper's. Without an E_{t-1} it is E_t (no trend yet)
    [decision].
    """
    if error_before is None:
        return float(error_now)
    return float(error_now) + (float(error_now) - float(error_before)) * span_ratio


def extrapolated_reward(
    errors: Sequence[float] | Tensor, new_error: float | Tensor, span_ratio: float = 1.0
) -> float:
    """r_t = E^BL_{t+1} - E_{t+1} (Eq. 7).

    ``errors`` is the chronological error history up to and including E_t:
    ``errors[-1]`` is E_t, ``errors[-2]`` (if present) is E_{t-1}; older entries are ignored.
    ``new_error`` is E_{t+1}, measured after the episode's training. Positive reward means the
    error fell faster than the recent trend predicted.
    """
    history = [float(e) for e in (errors.flatten() if isinstance(errors, Tensor) else errors)]
    if not history:
        raise ValueError("errors must contain at least E_t (the error before the episode)")
    error_before = history[-2] if len(history) >= 2 else None
    error_next = float(new_error.item() if isinstance(new_error, Tensor) else new_error)
    return extrapolated_baseline(history[-1], error_before, span_ratio) - error_next
