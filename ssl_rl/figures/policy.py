"""The policy's figures: group choices per episode (Fig. 4) and per-permutation error (Fig. 6).

Figures are built with ``matplotlib.figure.Figure`` on the Agg canvas, never through pyplot:
no display is needed and no global figure registry can leak figures in a long run.

Empty histories raise ``EmptyHistoryError`` (a ``ValueError``); the policy callback checks for
an empty history and skips plotting instead.

Group convention (see ``ssl_rl.policy.groups``): group 0 holds the hardest permutations (lowest
median ratio), group k-1 the easiest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.ticker import MaxNLocator

from ssl_rl.policy.difficulty import bin_groups

# Hard = red, easy = purple, as in the paper's Fig. 4.
DIFFICULTY_COLORMAP = "rainbow"
ERROR_COLORMAP = "viridis"
MAX_X_TICKS = 10
SUM_TOLERANCE = 1e-3


class EmptyHistoryError(ValueError):
    """Raised when a figure is asked for before anything was recorded."""


def bin_fractions(fractions: np.ndarray, bins: int) -> np.ndarray:
    """Sum the per-group fractions (episodes, k) into (episodes, bins), see ``bin_groups``."""
    fractions = _check_distributions(fractions, "fractions")
    groups = bin_groups(fractions.shape[1], bins)
    return np.stack([fractions[:, g].sum(axis=1) for g in groups], axis=1)


def sort_by_mean_error(errors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reorder the permutations (columns) by their mean error over time, highest first.

    Returns ``(errors[:, order], order)``; ties keep the original permutation order.
    """
    errors = _check_errors(errors)
    order = np.argsort(-errors.mean(axis=0), kind="stable")
    return errors[:, order], order


def group_choice_figure(
    fractions: np.ndarray,
    episodes: Sequence[int] | None = None,
    bins: int = 4,
    title: str = "",
) -> Figure:
    """Fig. 4: per episode, the fraction of actions per difficulty bin as stacked bars.

    ``fractions`` is (episodes, k), each row summing to 1; ``episodes`` labels the x axis
    (default 1..episodes). The hardest bin is on top in red, the easiest at the bottom in purple.
    """
    fig = _new_figure()
    ax = fig.add_subplot()
    draw_group_choices(ax, fractions, episodes, bins)
    ax.set_title(title or "permutations chosen by the policy")
    return fig


def draw_group_choices(
    ax: Axes,
    fractions: np.ndarray,
    episodes: Sequence[int] | None = None,
    bins: int = 4,
    overlay: Mapping[str, Sequence[float] | np.ndarray] | None = None,
) -> None:
    """Draw :func:`group_choice_figure`'s stacked bars (and legend) into ``ax``.

    ``overlay`` maps labels to a hardest-bin share per episode (e.g. a no-learning control,
    or the share group sizes alone would give); each is drawn as a line where the top bin of
    such an episode would begin (1 − share).
    """
    binned = bin_fractions(fractions, bins)
    groups = bin_groups(np.asarray(fractions).shape[1], bins)
    labels = [_bin_label(b, groups) for b in range(bins)]
    _stacked_bars(ax, binned, episodes, labels, overlay)
    ax.set_ylabel("fraction of actions")


def draw_quantile_choices(
    ax: Axes,
    fractions: np.ndarray,
    episodes: Sequence[int] | None = None,
    overlay: Mapping[str, Sequence[float] | np.ndarray] | None = None,
) -> None:
    """Fig. 4 by the drawn permutations' own validation error: (episodes, quantiles) shares,
    hardest quantile on top; dotted lines mark what uniform sampling gives (1 / quantiles)."""
    fractions = _check_distributions(fractions, "quantile fractions")
    bins = fractions.shape[1]
    labels = [f"{_QUANTILE_NAMES.get(bins, 'quantile')} {b + 1} by error" for b in range(bins)]
    labels[0] += " (hardest)"
    labels[-1] += " (easiest)"
    _stacked_bars(ax, fractions, episodes, labels, overlay)
    for level in np.arange(1, bins) / bins:
        ax.axhline(level, color="black", linestyle=":", linewidth=0.8)
    ax.set_ylabel("fraction of drawn permutations")


_QUANTILE_NAMES = {4: "quartile", 5: "quintile", 10: "decile"}


def _stacked_bars(
    ax: Axes,
    binned: np.ndarray,
    episodes: Sequence[int] | None,
    labels: Sequence[str],
    overlay: Mapping[str, Sequence[float] | np.ndarray] | None,
) -> None:
    bins = binned.shape[1]
    x = _x_values(episodes, binned.shape[0], "episodes")
    colors = _difficulty_colors(bins)
    width = 0.8 * (float(np.min(np.diff(x))) if len(x) > 1 else 1.0)
    bottom = np.zeros(len(x))
    # Stack from the easiest (bottom) to the hardest (top).
    for b in reversed(range(bins)):
        ax.bar(x, binned[:, b], width, bottom=bottom, color=colors[b], label=labels[b])
        bottom += binned[:, b]
    for (name, share), style in zip((overlay or {}).items(), ("-", "--", "-."), strict=False):
        values = np.asarray(share, dtype=np.float64)
        if values.shape != (len(x),):
            raise ValueError(f"overlay {name!r} needs one value per episode ({len(x)})")
        ax.plot(x, 1.0 - values, color="black", linestyle=style, linewidth=1.2, label=name)
    ax.set_xlabel("episode")
    ax.set_ylim(0, 1)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=MAX_X_TICKS, integer=True))
    handles, names = ax.get_legend_handles_labels()
    # Legend reads top-down like the stack: hard ... easy (lines first).
    ax.legend(handles[::-1], names[::-1], loc="center left", bbox_to_anchor=(1.01, 0.5))


def draw_hard_mass(
    ax: Axes,
    hard_mass: Sequence[float],
    neutral_mass: Sequence[float],
    noise: Mapping[str, Any] | None = None,
    episodes: Sequence[int] | None = None,
) -> None:
    """π's probability of the hardest groups per episode, the share their size alone gives
    (the neutral start), and the 5-95 % band of shuffled-reward replays (noise)."""
    mass = np.asarray(hard_mass, dtype=np.float64)
    x = _x_values(episodes, len(mass), "episodes")
    if noise is not None and len(noise.get("band_low", [])) == len(x):
        band = f"shuffled rewards, 5-95 % ({noise['shuffles']} replays)"
        ax.fill_between(
            x, noise["band_low"], noise["band_high"], color="gray", alpha=0.3, label=band
        )
    neutral = np.asarray(neutral_mass[: len(x)])
    ax.plot(x, neutral, color="black", linestyle="--", label="neutral (share of permutations)")
    label = "π(hard groups)"
    if noise is not None:
        label += f", p = {noise['p_value']:.3f} vs noise"
    ax.plot(x, mass, color=_difficulty_colors(2)[0], label=label)
    ax.set_xlabel("episode")
    ax.set_ylabel("probability of the hardest groups")
    ax.set_ylim(0, 1)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=MAX_X_TICKS, integer=True))
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize="small")


def fig4_figure(
    history: Mapping[str, Sequence[Any]],
    noise: Mapping[str, Any] | None = None,
    title: str = "",
    bins: int = 4,
) -> Figure:
    """Fig. 4 from a policy history: drawn permutations by error quartile; with a policy also
    its groups (with the share group sizes alone give) and π's hard mass against noise."""
    quantiles = np.asarray(history["quantile_fractions"], dtype=np.float64)
    with_policy = len(history.get("group_fractions", [])) > 0
    panels = 3 if with_policy else 1
    fig = Figure(figsize=(10, 3.6 * panels), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(panels, 1, 1)
    draw_quantile_choices(ax, quantiles)
    ax.set_title(f"{title}: drawn permutations per episode, by validation-error quartile")
    if with_policy:
        episodes = len(history["group_fractions"])
        neutral = list(history["neutral_hard_mass"][:episodes])
        ax = fig.add_subplot(panels, 1, 2)
        draw_group_choices(
            ax,
            np.asarray(history["group_fractions"]),
            bins=bins,
            overlay={"1 − hard share from group sizes alone": neutral},
        )
        ax.set_title(f"{title}: actions per episode, by the policy's groups (0 = hardest)")
        ax = fig.add_subplot(panels, 1, 3)
        draw_hard_mass(ax, history["hard_mass"][:episodes], neutral, noise)
        ax.set_title(f"{title}: the policy's mass on the hardest groups")
    return fig


def permutation_error_heatmap(errors: np.ndarray, steps: Sequence[int], title: str = "") -> Figure:
    """Fig. 6: validation error per permutation (rows, sorted by mean error, hardest on top)
    over time (columns, one per validation, labelled with the training step)."""
    fig = _new_figure()
    ax = fig.add_subplot()
    image = draw_permutation_errors(ax, errors, steps)
    fig.colorbar(image, ax=ax, label="validation error")
    ax.set_title(title or "validation error per permutation over time")
    return fig


def draw_permutation_errors(ax: Axes, errors: np.ndarray, steps: Sequence[int]) -> AxesImage:
    """Draw :func:`permutation_error_heatmap`'s heatmap into ``ax`` (colour scale fixed to
    [0, 1], so panels side by side compare); returns the image for a colorbar."""
    sorted_errors, _ = sort_by_mean_error(errors)
    steps = list(steps)
    if len(steps) != sorted_errors.shape[0]:
        raise ValueError(
            f"got {len(steps)} steps for {sorted_errors.shape[0]} validations; "
            "pass one training step per row of errors"
        )
    num_validations, num_permutations = sorted_errors.shape
    image = ax.imshow(
        sorted_errors.T,
        aspect="auto",
        interpolation="nearest",
        cmap=ERROR_COLORMAP,
        vmin=0.0,
        vmax=1.0,
        origin="upper",
    )
    ticks = range(0, num_validations, -(-num_validations // MAX_X_TICKS))
    ax.set_xticks(list(ticks), [str(steps[i]) for i in ticks])
    ax.yaxis.set_major_locator(MaxNLocator(nbins=MAX_X_TICKS, integer=True))
    ax.set_xlabel("training step")
    ax.set_ylabel(f"{num_permutations} permutations by mean error (hardest on top)")
    return image


def policy_probability_figure(
    probs: np.ndarray, episodes: Sequence[int] | None = None, title: str = ""
) -> Figure:
    """The policy's probability of each group (0 = hardest, red) per episode, as lines."""
    probs = _check_distributions(probs, "probs")
    x = _x_values(episodes, probs.shape[0], "episodes")
    k = probs.shape[1]
    colors = _difficulty_colors(k)

    fig = _new_figure()
    ax = fig.add_subplot()
    for group in range(k):
        marker = "." if len(x) < 50 else None
        label = _bin_label(group, [range(g, g + 1) for g in range(k)])
        ax.plot(x, probs[:, group], color=colors[group], marker=marker, label=label)
    ax.set_xlabel("episode")
    ax.set_ylabel("policy probability")
    ax.set_ylim(0, 1)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=MAX_X_TICKS, integer=True))
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize="small")
    ax.set_title(title or "policy's group probabilities")
    return fig


def figure_to_rgb(fig: Figure) -> np.ndarray:
    """Render the figure on the Agg canvas to an (H, W, 3) uint8 array."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def save_png(fig: Figure, path: str | Path, dpi: int = 100) -> Path:
    """Write the figure as PNG (creating parent dirs), then close it: it must not be reused."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, format="png", dpi=dpi, bbox_inches="tight")
    fig.clear()
    return path


def _new_figure() -> Figure:
    fig = Figure(figsize=(9, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _difficulty_colors(n: int) -> list[tuple[float, float, float, float]]:
    """Index 0 (hardest) red ... index n-1 (easiest) purple."""
    cmap = colormaps[DIFFICULTY_COLORMAP]
    return [cmap(1.0 - i / max(n - 1, 1)) for i in range(n)]


def _bin_label(b: int, groups: list[range]) -> str:
    g = groups[b]
    members = f"group {g[0]}" if len(g) == 1 else f"groups {g[0]}-{g[-1]}"
    if b == 0 and len(groups) > 1:
        return f"hard ({members})"
    if b == len(groups) - 1 and len(groups) > 1:
        return f"easy ({members})"
    return members


def _x_values(episodes: Sequence[int] | None, n: int, name: str) -> np.ndarray:
    if episodes is None:
        return np.arange(1, n + 1)
    x = np.asarray(list(episodes))
    if x.shape != (n,):
        raise ValueError(f"got {x.size} {name} for {n} rows; pass one {name[:-1]} per row")
    if np.any(np.diff(x) <= 0):
        raise ValueError(f"{name} must be strictly increasing, got {x.tolist()}")
    return x


def _check_distributions(values: np.ndarray, name: str) -> np.ndarray:
    """(episodes, k) rows of non-negative values summing to 1."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"{name} must be (episodes, k), got shape {values.shape}")
    if values.shape[0] == 0:
        raise EmptyHistoryError(f"{name} has no episodes yet; nothing to plot")
    if values.shape[1] == 0:
        raise ValueError(f"{name} must have at least one group, got shape {values.shape}")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError(f"{name} must be finite and non-negative")
    sums = values.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > SUM_TOLERANCE)
    if bad.size:
        raise ValueError(
            f"each row of {name} must sum to 1 (fractions, not counts); "
            f"row {bad[0]} sums to {sums[bad[0]]:.4f}"
        )
    return values


def _check_errors(errors: np.ndarray) -> np.ndarray:
    """(validations, |Ψ|) errors in [0, 1]."""
    errors = np.asarray(errors, dtype=np.float64)
    if errors.ndim != 2:
        raise ValueError(f"errors must be (validations, permutations), got shape {errors.shape}")
    if errors.shape[0] == 0:
        raise EmptyHistoryError("errors has no validations yet; nothing to plot")
    if errors.shape[1] == 0:
        raise ValueError(f"errors must have at least one permutation, got shape {errors.shape}")
    if not np.all(np.isfinite(errors)) or errors.min() < 0 or errors.max() > 1:
        raise ValueError("errors must be finite and in [0, 1]")
    return errors
