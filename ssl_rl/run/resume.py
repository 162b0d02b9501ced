"""``python train.py resume=<run dir>``: the same run, continued in its directory.

The run's saved overrides (``.hydra/overrides.yaml``) are replayed, so nothing has to be typed
again; overrides on the command line come after them and may only extend
``trainer.max_steps`` or change logging: any other difference to the saved configuration
(``.hydra/config.yaml``) is refused with the list of differences, before Hydra writes anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from ssl_rl.checkpoints.atomic_io import check_complete
from ssl_rl.run.errors import ConfigRefused

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
# Keys a resumed run may change: how far it trains, and how it reports.
ALLOWED_PREFIXES = (
    "trainer.max_steps",
    "trainer.log_every_n_steps",
    "trainer.enable_progress_bar",
    "logger",
    "callbacks.progress_bar",
    "resume",
    "ckpt_path",
    "init_from",
    "trust_checkpoint",
    # The run directory, which a resume sets (hydra.run.dir); runs before ${run_dir:} saved
    # it as ${hydra:runtime.output_dir}.
    "paths.output_dir",
    # How fast it runs and how that is reported: the same model and data (a run saved before
    # these settings existed, or resumed on another device, may set them).
    "callbacks.throughput",
    "callbacks.host_syncs",
    "model.channels_last",
    "model.compile_mode",
    "model.optimizer.fused",
    "trainer.benchmark",
    "divergence_check_every_n_steps",
)


def run_dir_of(value: str) -> Path:
    """A run directory, or a checkpoint inside one (``<run>/checkpoints/x.ckpt``)."""
    path = Path(value).expanduser().resolve()
    if path.is_file() and path.parent.name == "checkpoints":
        return path.parent.parent
    return path


def resume_arguments(argv: Sequence[str]) -> list[str]:
    """``argv`` with ``resume=<dir>`` expanded into the run's saved overrides, the new ones,
    and the run directory; unchanged without ``resume=``. Raises :class:`ConfigRefused`."""
    values = [a.split("=", 1)[1] for a in argv if a.lstrip("+").startswith("resume=")]
    if not values or values[-1] in ("", "null"):
        return list(argv)
    run_dir = run_dir_of(values[-1])
    last = run_dir / "checkpoints" / "last.ckpt"
    if last.is_file():
        check_complete(last, "resume")  # before Hydra writes into the run directory
    # The checkpoint supersedes how the run started (an earlier resume, init_from).
    saved_overrides = [
        o
        for o in _load(run_dir / ".hydra" / "overrides.yaml", run_dir)
        if _key(o) not in ("resume", "ckpt_path", "init_from")
    ]
    new = [a for a in argv if not a.lstrip("+").startswith("resume=")]
    task_overrides = [a for a in new if not a.startswith(("hydra.", "hydra/", "-"))]
    merged = merge_overrides(saved_overrides, task_overrides)
    check_same_run(run_dir, merged)
    flags = [a for a in new if a.startswith("-")]
    hydra_args = [a for a in new if a.startswith(("hydra.", "hydra/")) and "run.dir" not in a]
    return [*flags, *merged, *hydra_args, f"hydra.run.dir={run_dir}", f"resume={run_dir}"]


def merge_overrides(saved: list[str], new: list[str]) -> list[str]:
    """``saved`` with each key that ``new`` sets replaced by ``new``'s value."""
    keys = {_key(o) for o in new}
    return [o for o in saved if _key(o) not in keys] + new


def check_same_run(run_dir: Path, overrides: list[str]) -> None:
    """Refuse overrides that change the saved run beyond :data:`ALLOWED_PREFIXES`."""
    saved = _load(run_dir / ".hydra" / "config.yaml", run_dir)
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(config_name="train", overrides=overrides)
    finally:
        GlobalHydra.instance().clear()
    old, new = _flat(OmegaConf.to_container(saved)), _flat(OmegaConf.to_container(cfg))
    changed: list[str] = []
    for key in sorted(set(old) | set(new)):
        if old.get(key, _ABSENT) == new.get(key, _ABSENT) or _allowed(key):
            continue
        line = _subtree_change(key, old, new) or f"  {key}: {old.get(key)} -> {new.get(key)}"
        if line not in changed:
            changed.append(line)
    max_old, max_new = old.get("trainer.max_steps"), new.get("trainer.max_steps")
    if isinstance(max_old, int) and isinstance(max_new, int) and max_new < max_old:
        changed.append(f"  trainer.max_steps: {max_old} -> {max_new} (a resume may only extend it)")
    if changed:
        raise ConfigRefused(
            f"resume={run_dir}: the command line changes the run's model or data, which a "
            "resumed run cannot (only trainer.max_steps may grow, and logging change):\n"
            + "\n".join(changed)
            + "\nStart a new run instead, or `init_from=<run dir>` to start from its weights."
        )


_ABSENT = object()


def _subtree_change(key: str, old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """``  tasks.temporal: added`` when the whole branch above ``key`` is new (or gone)."""
    parts = key.split(".")
    for n in range(1, len(parts) + 1):
        prefix = ".".join(parts[:n])
        for side, what in ((old, "added"), (new, "removed")):
            if not any(k == prefix or k.startswith(prefix + ".") for k in side):
                return f"  {prefix}: {what}"
    return None


def _allowed(key: str) -> bool:
    return any(key == p or key.startswith(p + ".") for p in ALLOWED_PREFIXES)


def _key(override: str) -> str:
    return override.lstrip("~+").split("=", 1)[0]


def _load(path: Path, run_dir: Path) -> Any:
    if not path.is_file():
        raise ConfigRefused(
            f"resume={run_dir}: {path} does not exist, so this is not a train.py run directory "
            "(outputs/<experiment>/<time>/ holds .hydra/, checkpoints/ and summary.json)"
        )
    return OmegaConf.load(path)


def _flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, Mapping):
        flat: dict[str, Any] = {}
        for key, value in tree.items():
            flat.update(_flat(value, f"{prefix}{key}."))
        return flat if flat or not prefix else {prefix[:-1]: {}}
    return {prefix[:-1]: tree}
