"""Optional: fine-tune / evaluate every completed run with ``finetune.py``'s task configs.

Each run's trunk goes through ``ssl_rl.run.finetuning.finetune`` with ``ckpt=<run dir>``; the
results land in ``<run dir>/finetune/<task>/summary.json`` and become extra table columns.
The trunk's width and groups come from the checkpoint; the scale, a non-default data cache and
the demo generator settings from the run's ``.hydra/`` files, so a demo run is evaluated on the
data it was pretrained next to.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from ssl_rl.report.runs import Run, RunSet
from ssl_rl.report.table import Column
from ssl_rl.run.finetuning import finetune

log = logging.getLogger(__name__)

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
DEMO_GENERATORS = ("images", "videos", "voc07")


def finetune_dir(run: Run, task: str) -> Path:
    return run.path / "finetune" / task


def finetune_overrides(run: Run, task: str) -> list[str]:
    """The overrides that point ``finetune.yaml`` at this run (before the user's own)."""
    overrides = [
        f"eval={task}",
        f"ckpt={_quote(run.path.resolve())}",
        f"output_dir={_quote(finetune_dir(run, task).resolve())}",
        f"seed={run.seed}",
    ]
    if run.trunk_config:
        overrides += [
            f"trunk.{key}={run.trunk_config[key]}"
            for key in ("width", "groups")
            if key in run.trunk_config
        ]
    choices = _hydra_choices(run.path)
    if "scale" in choices:
        overrides.append(f"scale={choices['scale']}")
    config = _run_config(run.path)
    if config is not None:
        data_cache = OmegaConf.select(config, "paths.data_cache", throw_on_resolution_failure=False)
        raw = config.paths._get_node("data_cache") if "paths" in config else None
        if data_cache is not None and raw is not None and not raw._is_interpolation():
            overrides.append(f"paths.data_cache={_quote(data_cache)}")
        if choices.get("scale", "demo") == "demo":
            overrides += _generator_overrides(config)
    return overrides


def compose_finetune_config(overrides: Sequence[str]) -> DictConfig:
    """``conf/finetune.yaml`` composed as ``python finetune.py <overrides>`` would."""
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(
                config_name="finetune", overrides=list(overrides), return_hydra_config=True
            )
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            del cfg.hydra
    finally:
        GlobalHydra.instance().clear()
    return cfg


def finetune_run(
    run: Run, task: str, extra_overrides: Sequence[str] = (), force: bool = False
) -> dict[str, Any]:
    """Run (or, unless ``force``, reuse a completed) ``task`` on ``run``; record the result on
    the run (``run.finetune[task]`` or ``run.finetune_errors[task]``) and return the summary."""
    summary_path = finetune_dir(run, task) / "summary.json"
    summary: dict[str, Any] | None = None
    if not force and summary_path.is_file():
        previous = json.loads(summary_path.read_text())
        if previous.get("status") == "completed":
            log.info("%s: reusing %s (pass --force-finetune to redo it)", run.path, summary_path)
            summary = previous
    if summary is None:
        log.info("%s: fine-tuning %s", run.path, task)
        cfg = compose_finetune_config([*finetune_overrides(run, task), *extra_overrides])
        summary = finetune(cfg, reraise=False)
    if summary.get("status") == "completed":
        run.finetune[task] = flatten_metrics(summary.get("metrics") or {})
    else:
        error = str(summary.get("error") or f"status {summary.get('status')}")
        run.finetune_errors[task] = error.strip().splitlines()[0]
        log.warning("%s: %s failed: %s", run.path, task, run.finetune_errors[task])
    return summary


def finetune_runs(
    runs: RunSet, tasks: Sequence[str], extra_overrides: Sequence[str] = (), force: bool = False
) -> list[Column]:
    """Fine-tune every completed run on every task; return the table columns they fill."""
    columns: list[Column] = []
    for task in tasks:
        for run in runs.completed:
            finetune_run(run, task, extra_overrides, force)
        columns += finetune_columns(runs.completed, task)
    return columns


def finetune_columns(runs: Sequence[Run], task: str) -> list[Column]:
    """One column per reported metric of ``task`` (of retrieval's top-k only top-1)."""
    keys = sorted({key for run in runs for key in run.finetune.get(task, {})})
    if any(key.endswith("top1") for key in keys):
        keys = [key for key in keys if key.endswith("top1")]
    return [
        Column(
            key=f"finetune_{task}_{key.replace('/', '_')}",
            title=f"{task} {key.removeprefix('val/')} (%)",
            final=partial(_finetune_metric, task=task, key=key),
        )
        for key in keys
    ]


def _finetune_metric(run: Run, task: str, key: str) -> float | None:
    return run.finetune.get(task, {}).get(key)


def flatten_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """``{"voc07": {"top1": x}}`` -> ``{"voc07/top1": x}``; flat keys stay as they are."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_metrics(value, f"{name}/"))
        else:
            flat[name] = float(value)
    return flat


def _run_config(run_dir: Path) -> DictConfig | None:
    path = run_dir / ".hydra" / "config.yaml"
    return OmegaConf.load(path) if path.is_file() else None  # type: ignore[return-value]


def _hydra_choices(run_dir: Path) -> dict[str, str]:
    path = run_dir / ".hydra" / "hydra.yaml"
    if not path.is_file():
        return {}
    choices = OmegaConf.select(OmegaConf.load(path), "hydra.runtime.choices")
    return {} if choices is None else {str(k): str(v) for k, v in choices.items()}


def _generator_overrides(config: DictConfig) -> list[str]:
    """The run's demo generator settings (literal leaves only) as ``datasets.generate.*``
    overrides, so a demo checkpoint is evaluated on the data it was pretrained next to. Runs
    written before the shared config root kept them under ``data.demo``."""
    generate = OmegaConf.select(config, "datasets.generate")
    if generate is None:
        generate = OmegaConf.select(config, "data.demo")
    if generate is None:
        return []
    overrides = []
    for name in DEMO_GENERATORS:
        if name not in generate or not isinstance(generate[name], DictConfig):
            continue
        node = generate[name]
        for key in node:
            value = _literal(node[key]) if not node._get_node(key)._is_interpolation() else None
            if value is not None:
                overrides.append(f"datasets.generate.{name}.{key}={value}")
    return overrides


def _quote(value: Any) -> str:
    """A Hydra override value: plain when it is a simple path, else single-quoted."""
    text = str(value)
    if re.fullmatch(r"[\w./:+-]+", text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _literal(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if value is None:
        return "null"
    return None
