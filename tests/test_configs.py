"""Every config composes and resolves at both scales, for train.py and finetune.py."""

from __future__ import annotations

from pathlib import Path

import hydra
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from ssl_rl.nets.caffenet import CaffeNetTrunk
from ssl_rl.run.config_resolvers import RUN_DIR_PLACEHOLDER
from tests.conftest import CONF_DIR, EXPERIMENTS, FINETUNE_TASKS, config_names

SCALES = ("demo", "paper")
TASKS = config_names("task")


def _compose(config_name: str, overrides: list[str]) -> DictConfig:
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(config_name=config_name, overrides=overrides)
    finally:
        GlobalHydra.instance().clear()
    # Hydra's runtime (the run directory) only exists under @hydra.main.
    OmegaConf.update(cfg, "paths.output_dir", "/tmp/run", force_add=True)
    if config_name == "finetune":
        cfg.output_dir = "/tmp/run"
    return cfg


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_resolves_and_builds_its_parts(experiment: str, scale: str) -> None:
    cfg = _compose("train", [f"experiment={experiment}", f"scale={scale}", "init_from=/x"])
    resolved = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    assert resolved["scale_name"] == scale
    assert list(cfg.schedule.tasks) == list(cfg.tasks), "the schedule trains the composed tasks"
    trunk = hydra.utils.instantiate(cfg.model.trunk)
    for name, task in cfg.tasks.items():
        # Everything but the classes (at paper scale they are 1000 generated permutations).
        pretext = hydra.utils.instantiate(task.pretext)
        hydra.utils.instantiate(task.reader)
        head = hydra.utils.instantiate(task.head)(
            in_dim=trunk.output_dim(task.part_size), num_parts=task.num_parts, num_classes=4
        )
        assert pretext.val_views >= 1 and head is not None, name
    expected_width = 1.0 if scale == "paper" else 0.25
    assert isinstance(trunk, CaffeNetTrunk) and cfg.model.trunk.width == expected_width
    if scale == "paper":
        assert cfg.datasets.generate is None and cfg.data.prepare is None
        assert cfg.trainer.precision == "bf16-mixed"


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("task", FINETUNE_TASKS)
def test_every_finetune_task_resolves(task: str, scale: str) -> None:
    cfg = _compose("finetune", [f"eval={task}", f"scale={scale}"])
    resolved = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    assert resolved["eval"]["name"] == task
    # One definition of the datasets, shared with train.py.
    train = _compose("train", [f"scale={scale}"])
    assert resolved["datasets"]["ucf101"]["root"] == train.datasets.ucf101.root
    assert resolved["trunk"]["width"] == (1.0 if scale == "paper" else 0.25)


def _printed(config_name: str, overrides: list[str]) -> str:
    """What ``python <script>.py <overrides> --cfg job --resolve`` prints: Hydra's ``show_cfg``
    composes with the Hydra config (no run directory yet), drops it, resolves, dumps."""
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    OmegaConf.resolve(cfg)
    return OmegaConf.to_yaml(cfg)


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize(
    ("config_name", "choice"),
    [("train", f"experiment={e}") for e in EXPERIMENTS]
    + [("finetune", f"eval={t}") for t in FINETUNE_TASKS],
)
def test_every_config_prints_resolved(config_name: str, choice: str, scale: str) -> None:
    printed = _printed(config_name, [choice, f"scale={scale}"])
    assert "None/" not in printed
    cfg = OmegaConf.create(printed)
    output_dir = cfg.paths.output_dir if config_name == "train" else cfg.output_dir
    assert output_dir == RUN_DIR_PLACEHOLDER, "the run directory does not exist yet"
    if choice == "eval=voc07_det":  # a list from ${by_scale:...}
        expected = [32, 64, 128] if scale == "demo" else [128, 256, 512]
        assert list(cfg.eval.anchor_sizes) == expected
    if config_name == "train":
        assert cfg.callbacks.nn_retrieval.output_file == f"{RUN_DIR_PLACEHOLDER}/nn_retrieval.json"


@pytest.mark.parametrize("task", TASKS)
def test_each_task_is_one_file_an_experiment_can_add(task: str) -> None:
    other = "t" if task == "spatial" else "s"  # an experiment without the task
    cfg = _compose("train", [f"+task@tasks.{task}={task}", f"experiment={other}"])
    assert task in cfg.schedule.tasks
    node = OmegaConf.load(CONF_DIR / "task" / f"{task}.yaml")
    assert node._target_ == "ssl_rl.tasks.PretextTask"
    assert {"classes", "reader", "pretext", "head", "loss_weight", "policy"} <= set(node)


def test_by_scale_names_the_missing_scale() -> None:
    cfg = OmegaConf.create({"scale_name": "huge", "x": "${by_scale:{demo: 1, paper: 2}}"})
    with pytest.raises(Exception, match="no value for scale_name='huge'"):
        _ = cfg.x


def test_layout_has_no_second_config_root() -> None:
    assert not (CONF_DIR / "finetune").exists()
    assert Path(CONF_DIR / "finetune.yaml").is_file()
