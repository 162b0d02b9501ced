"""Discover the pretraining runs of one or more sweeps and load what the report needs.

A run is a directory holding a ``summary.json`` written by ``ssl_rl.run.training.train`` (it has an
``experiment`` key; the ``summary.json`` of a ``finetune/<task>/`` sub-run has none and is not a
run). Per run: the summary, the nearest-neighbour history (``nn_retrieval.json``, else the
monitor's state in the checkpoint) and, from ``checkpoints/last.ckpt``, the permutation-policy
callback's per-task history and the trunk's architecture.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ssl_rl.checkpoints.loading import CheckpointMismatchError, load_checkpoint

log = logging.getLogger(__name__)

SUMMARY_FILE = "summary.json"
NN_FILE = "nn_retrieval.json"
CHECKPOINT = Path("checkpoints") / "last.ckpt"
POLICY_CALLBACK_PREFIX = "PermutationPolicyCallback"
NN_CALLBACK_PREFIX = "NearestNeighbourMonitor"


@dataclass(frozen=True)
class PolicyHistory:
    """One task's record from the policy callback (modes rl / errprop / monitor)."""

    validation_steps: list[int]
    errors: list[float]
    permutation_errors: np.ndarray  # (validations, |Ψ|), per-permutation validation error
    episode_steps: list[int]
    group_fractions: np.ndarray  # (episodes, |C|), fraction of actions per difficulty group
    group_probs: np.ndarray  # (episodes, |C|), π's probabilities that chose the actions
    rewards: list[float]
    quantile_fractions: np.ndarray  # (episodes, 4), drawn permutations per error quartile
    episode_errors: np.ndarray  # (episodes, 2): E_t, E_{t+1}
    hard_mass: list[float]  # π(hard groups) per episode
    neutral_hard_mass: list[float]  # the hard groups' share of the permutations
    noise_test: dict[str, Any] | None = None  # ssl_rl.policy.replay.NoiseTest.as_dict()

    @classmethod
    def from_state(
        cls, history: Mapping[str, Any], noise_test: Mapping[str, Any] | None = None
    ) -> PolicyHistory:
        """From ``TaskPolicy.state_dict()``'s ``history`` (and ``noise_test``)."""
        errors = history.get("permutation_errors") or []
        return cls(
            validation_steps=[int(s) for s in history.get("validation_steps", [])],
            errors=[float(e) for e in history.get("errors", [])],
            permutation_errors=(
                torch.stack([torch.as_tensor(e) for e in errors]).float().numpy()
                if errors
                else np.zeros((0, 0), dtype=np.float32)
            ),
            episode_steps=[int(s) for s in history.get("episode_steps", [])],
            group_fractions=_matrix(history.get("group_fractions", [])),
            group_probs=_matrix(history.get("group_probs", [])),
            rewards=[float(r) for r in history.get("rewards", [])],
            quantile_fractions=_matrix(history.get("quantile_fractions", [])),
            episode_errors=_matrix(history.get("episode_errors", [])),
            hard_mass=[float(m) for m in history.get("hard_mass", [])],
            neutral_hard_mass=[float(m) for m in history.get("neutral_hard_mass", [])],
            noise_test=None if noise_test is None else dict(noise_test),
        )


@dataclass
class Run:
    """One pretraining job of a sweep."""

    path: Path
    experiment: str
    seed: int | None
    status: str  # completed, failed, running (killed or still going), unreadable
    summary: dict[str, Any]
    error: str | None = None
    nn_history: list[dict[str, Any]] = field(default_factory=list)
    policy: dict[str, PolicyHistory] = field(default_factory=dict)
    trunk_config: dict[str, Any] | None = None
    superseded_by: Path | None = None  # a newer run of the same experiment and seed
    finetune: dict[str, dict[str, float]] = field(default_factory=dict)  # task -> metrics
    finetune_errors: dict[str, str] = field(default_factory=dict)  # task -> first error line

    @property
    def completed(self) -> bool:
        return self.status == "completed" and self.superseded_by is None

    @property
    def error_line(self) -> str:
        """The first line of the recorded error (or why the run is not counted)."""
        if self.error:
            return self.error.strip().splitlines()[0] if self.error.strip() else ""
        if self.superseded_by is not None:
            return f"superseded by {self.superseded_by}"
        return ""

    @property
    def metrics(self) -> dict[str, dict[str, float]]:
        return dict(self.summary.get("metrics") or {})

    def nn_final(self, protocol: str, metric: str = "top1") -> float | None:
        """The protocol's metric at the last NN evaluation (the end of training)."""
        for entry in reversed(self.nn_history):
            if protocol in entry and metric in entry[protocol]:
                return float(entry[protocol][metric])
        return None

    def nn_initial(self, protocol: str, metric: str = "top1") -> float | None:
        """The protocol's metric at step 0 (the random initialisation)."""
        for entry in self.nn_history:
            if entry.get("step") == 0 and protocol in entry and metric in entry[protocol]:
                return float(entry[protocol][metric])
        return None

    def nn_series(self, protocol: str, metric: str = "top1") -> dict[int, float]:
        """``{step: value}`` over training."""
        return {
            int(entry["step"]): float(entry[protocol][metric])
            for entry in self.nn_history
            if protocol in entry and metric in entry[protocol]
        }

    def pretext_val_acc(self, task: str) -> float | None:
        value = self.metrics.get(task, {}).get("val_acc")
        return None if value is None else float(value)


@dataclass
class RunSet:
    """All runs found, split into the ones that count and the ones listed as excluded."""

    runs: list[Run]
    sources: list[Path]

    @property
    def completed(self) -> list[Run]:
        return [r for r in self.runs if r.completed]

    @property
    def excluded(self) -> list[Run]:
        return [r for r in self.runs if not r.completed]

    @property
    def task_names(self) -> list[str]:
        """The pretext tasks the completed runs trained, in order of first appearance."""
        names: dict[str, None] = {}
        for run in self.completed:
            names.update(dict.fromkeys(run.metrics))
        return list(names)

    def by_experiment(self) -> dict[str, list[Run]]:
        """Completed runs per experiment, sorted by seed."""
        grouped: dict[str, list[Run]] = {}
        for run in sorted(self.completed, key=_seed_key):
            grouped.setdefault(run.experiment, []).append(run)
        return grouped


def discover_run_dirs(paths: Iterable[str | Path]) -> list[Path]:
    """Every directory at or below ``paths`` holding a pretraining ``summary.json``."""
    found: list[Path] = []
    for root in map(Path, paths):
        if not root.exists():
            raise FileNotFoundError(f"{root}: no such directory; pass a multirun (sweep) directory")
        candidates = [root / SUMMARY_FILE] if (root / SUMMARY_FILE).is_file() else []
        candidates += sorted(p for p in root.rglob(SUMMARY_FILE) if p.parent != root)
        for summary in candidates:
            if _is_pretraining_summary(summary) and summary.parent not in found:
                found.append(summary.parent)
    return found


def load_runs(paths: Sequence[str | Path], with_checkpoints: bool = True) -> RunSet:
    """Load every run below ``paths``; of several runs with one experiment and seed only the
    newest completed one counts, the others are listed as superseded."""
    runs = [load_run(d, with_checkpoints) for d in discover_run_dirs(paths)]
    _mark_superseded(runs)
    log.info(
        "%d runs found below %s: %d completed, %d excluded",
        len(runs),
        ", ".join(map(str, paths)),
        sum(r.completed for r in runs),
        sum(not r.completed for r in runs),
    )
    return RunSet(runs=runs, sources=[Path(p) for p in paths])


def load_run(run_dir: str | Path, with_checkpoint: bool = True) -> Run:
    """One run directory; an unreadable summary becomes a run with status ``unreadable``."""
    run_dir = Path(run_dir)
    path = run_dir / SUMMARY_FILE
    try:
        summary = json.loads(path.read_text())
        if not isinstance(summary, dict) or "experiment" not in summary:
            raise ValueError("not a pretraining summary (no 'experiment' key)")
    except (OSError, ValueError) as read_error:
        log.warning("%s: cannot read (%s); listed as unreadable", path, read_error)
        return Run(run_dir, run_dir.name, None, "unreadable", {}, error=f"{path}: {read_error}")
    status = str(summary.get("status", "unknown"))
    error = summary.get("error")
    if status == "running":
        error = error or "summary says 'running': the job is still going or was killed"
    seed = _as_seed(summary.get("seed"))
    if seed is None and status == "completed":
        status, error = "unreadable", f"{path}: no integer 'seed' ({summary.get('seed')!r})"
    run = Run(
        path=run_dir,
        experiment=str(summary["experiment"]),
        seed=seed,
        status=status,
        summary=summary,
        error=None if error is None else str(error),
    )
    run.nn_history = _read_nn_file(run_dir / NN_FILE)
    if with_checkpoint and status == "completed":
        _read_checkpoint(run)
    return run


def checkpoint_path(run: Run) -> Path | None:
    """``<run>/checkpoints/last.ckpt``, else the path the summary recorded (if it exists)."""
    local = run.path / CHECKPOINT
    if local.is_file():
        return local
    recorded = run.summary.get("checkpoint")
    if recorded and Path(recorded).is_file():
        return Path(recorded)
    return None


def _read_checkpoint(run: Run) -> None:
    path = checkpoint_path(run)
    if path is None:
        log.warning("%s: no checkpoints/last.ckpt; no policy history for this run", run.path)
        return
    try:
        # mmap: the weights stay on disk, only the small callback states are read.
        checkpoint = load_checkpoint(path, mmap=True)
    except CheckpointMismatchError as error:  # truncated, foreign or unsafe (nothing ran)
        log.warning("%s; no policy history for this run", error)
        return
    run.trunk_config = checkpoint.get("trunk_config")
    callbacks: dict[str, Any] = checkpoint.get("callbacks") or {}
    for key, state in callbacks.items():
        if key.startswith(POLICY_CALLBACK_PREFIX):
            run.policy = {
                task: PolicyHistory.from_state(task_state["history"], task_state.get("noise_test"))
                for task, task_state in state.get("tasks", {}).items()
            }
        elif key.startswith(NN_CALLBACK_PREFIX) and not run.nn_history:
            run.nn_history = list(state.get("history", []))


def _read_nn_file(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    try:
        history = json.loads(path.read_text())
    except ValueError as error:
        log.warning("%s: not valid JSON (%s); NN history taken from the checkpoint", path, error)
        return []
    if not isinstance(history, list):
        log.warning("%s: expected a list of entries; NN history taken from the checkpoint", path)
        return []
    return history


def _is_pretraining_summary(path: Path) -> bool:
    """True unless the file is clearly another kind of summary (a finetune sub-run's)."""
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError):
        return True  # listed as unreadable, never silently dropped
    if isinstance(summary, dict) and "experiment" not in summary and "task" in summary:
        log.debug("%s: a finetune summary, not a pretraining run", path)
        return False
    return True


def _mark_superseded(runs: list[Run]) -> None:
    by_key: dict[tuple[str, int | None], list[Run]] = {}
    for run in runs:
        if run.status != "unreadable":
            by_key.setdefault((run.experiment, run.seed), []).append(run)
    for (experiment, seed), group in by_key.items():
        completed = [r for r in group if r.status == "completed"]
        if len(completed) < 2:
            continue
        newest = max(completed, key=lambda r: (r.path / SUMMARY_FILE).stat().st_mtime)
        for run in completed:
            if run is not newest:
                run.superseded_by = newest.path
        log.warning(
            "%s seed %s: %d completed runs; counting only the newest, %s",
            experiment,
            seed,
            len(completed),
            newest.path,
        )


def _matrix(rows: Sequence[Sequence[float]]) -> np.ndarray:
    if not rows:
        return np.zeros((0, 0), dtype=np.float64)
    return np.asarray(rows, dtype=np.float64)


def _as_seed(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _seed_key(run: Run) -> tuple[int, str]:
    return (run.seed if run.seed is not None else -1, str(run.path))
