"""Per-task data sources: the samples and transforms behind each ordering task."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from ssl_rl.data.pretext.clip_dataset import ClipDataset
from ssl_rl.data.pretext.clip_transform import ClipTransform
from ssl_rl.data.pretext.jigsaw_dataset import JigsawDataset
from ssl_rl.data.pretext.jigsaw_transform import JigsawTransform
from ssl_rl.data.readers.image_folder import ImageFolderIndex
from ssl_rl.data.readers.ucf101 import UCF101Index


@dataclass
class TaskSource:
    """Where one task's samples come from and how a sample becomes its unpermuted parts."""

    kind: str
    train_samples: list[Path]
    val_samples: list[Path]
    cfg: Mapping[str, Any]

    def dataset(
        self, samples: Sequence[Path], train: bool, seed: int, clips_per_video: int = 1
    ) -> Dataset:
        """A dataset of unpermuted parts; ``train=False`` is fixed, deterministic preprocessing.

        ``clips_per_video`` > 1 (videos, fixed preprocessing): that many fixed clips per video.
        """
        if self.kind == "images":
            if clips_per_video != 1:
                raise ValueError(f"clips_per_video={clips_per_video} needs videos, not images")
            transform = JigsawTransform(**self.cfg["transform"], train=train)
            return JigsawDataset(list(samples), transform, seed=seed)
        transform = ClipTransform(**self.cfg["transform"], train=train)
        return ClipDataset(
            list(samples),
            num_frames=self.cfg["num_frames"],
            transform=transform,
            seed=seed,
            clips_per_video=clips_per_video,
        )

    @property
    def val_clips_per_video(self) -> int:
        """Fixed clips per validation video (``val_clips_per_video``, videos only; default 1)."""
        return int(self.cfg.get("val_clips_per_video", 1)) if self.kind != "images" else 1


def build_source(task: str, cfg: Mapping[str, Any]) -> TaskSource:
    """Scan the dataset on disk that ``data.<task>`` points to."""
    kind = cfg["kind"]
    if kind == "images":
        train = ImageFolderIndex.scan(Path(cfg["train_root"]), config_key=f"data.{task}.train_root")
        val = ImageFolderIndex.scan(Path(cfg["val_root"]), config_key=f"data.{task}.val_root")
        return TaskSource(kind, _paths(train.samples), _paths(val.samples), cfg)
    if kind == "ucf101":
        frames = Path(cfg["frames_root"]) if cfg.get("frames_root") else None
        indices = {
            subset: UCF101Index(
                Path(cfg["root"]),
                Path(cfg["split_dir"]),
                split=cfg["split"],
                subset=subset,
                frames_root=frames,
                allow_missing=cfg.get("allow_missing", False),
                config_prefix=f"data.tasks.{task}",
            )
            for subset in ("train", "test")
        }
        return TaskSource(
            kind, _paths(indices["train"].samples), _paths(indices["test"].samples), cfg
        )
    raise ValueError(f"data.{task}.kind must be 'images' or 'ucf101', got {kind!r}")


def _paths(samples: Sequence[tuple[Path, int]]) -> list[Path]:
    return [path for path, _ in samples]
