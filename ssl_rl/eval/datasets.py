"""The labelled datasets of the evaluation protocols, from finetune.yaml's ``datasets``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from ssl_rl.data.readers.hmdb51 import HMDB51Index
from ssl_rl.data.readers.image_folder import ImageFolderIndex
from ssl_rl.data.readers.imagenet_val import imagenet_val_index
from ssl_rl.data.readers.ucf101 import UCF101Index
from ssl_rl.data.readers.voc07 import VOC07Index, VOC07Split
from ssl_rl.data.readers.voc12_seg import VOC12SegIndex, VOC12SegSplit
from ssl_rl.eval.labelled_images import LabelledImages
from ssl_rl.eval.transforms import FixedResize, TransferTransform
from ssl_rl.eval.video_frames import VideoFramesDataset
from ssl_rl.eval.voc_crops import VOCCropDataset
from ssl_rl.eval.voc_detection import VOCDetectionDataset
from ssl_rl.eval.voc_images import VOCImageDataset
from ssl_rl.eval.voc_segmentation import SegmentationTransform, VOCSegmentationDataset

# (queries, gallery) of one retrieval protocol.
RetrievalSets = (
    tuple[VideoFramesDataset, VideoFramesDataset] | tuple[VOCCropDataset, VOCCropDataset]
)

Subset = Literal["train", "test"]


def video_samples(
    datasets: Mapping[str, Any], name: str, split: int, subset: Subset
) -> tuple[list[tuple[Path, int]], list[str]]:
    """(video or frame folder, label) pairs and class names of UCF-101 or HMDB-51."""
    spec = datasets[name]
    kwargs = {
        "video_root": spec["root"] if spec.get("frames_root") is None else None,
        "split_dir": spec["split_dir"],
        "split": split,
        "subset": subset,
        "frames_root": spec.get("frames_root"),
        "allow_missing": spec.get("allow_missing", False),
        "config_prefix": f"datasets.{name}",
    }
    if name == "ucf101":
        index: UCF101Index | HMDB51Index = UCF101Index(**kwargs)
    elif name == "hmdb51":
        index = HMDB51Index(**kwargs)
    else:
        raise ValueError(f"unknown video dataset {name!r}; use ucf101 or hmdb51")
    return list(index.samples), list(index.classes)


def video_frames(
    datasets: Mapping[str, Any],
    name: str,
    split: int,
    subset: Subset,
    input_cfg: Mapping[str, Any],
    mode: Literal["evenly", "random"],
    frames_per_video: int = 1,
) -> tuple[VideoFramesDataset, list[str]]:
    """Frames of one subset: evenly spaced stacks (retrieval, testing) or one random frame."""
    samples, classes = video_samples(datasets, name, split, subset)
    transform = TransferTransform(
        input_cfg["size"],
        input_cfg["resize"],
        train=mode == "random",
        normalization=input_cfg["normalization"],
    )
    return VideoFramesDataset(samples, transform, mode, frames_per_video), classes


def voc07_crops(
    datasets: Mapping[str, Any],
    split: VOC07Split,
    input_cfg: Mapping[str, Any],
    keep_difficult: bool,
) -> VOCCropDataset:
    """Object crops of one VOC07 split for retrieval, small ones dropped [paper]."""
    spec = datasets["voc07"]
    index = VOC07Index(spec["root"], split, config_prefix="datasets.voc07")
    crops = index.object_crops(min_area=spec["min_crop_area"], keep_difficult=keep_difficult)
    transform = FixedResize(spec["crop_size"], normalization=input_cfg["normalization"])
    return VOCCropDataset(crops, transform)


def voc07_images(
    datasets: Mapping[str, Any], split: VOC07Split, input_cfg: Mapping[str, Any], train: bool
) -> VOCImageDataset:
    """Whole VOC07 images with their 20-class target rows (1 / −1 / 0 = difficult only)."""
    index = VOC07Index(datasets["voc07"]["root"], split, config_prefix="datasets.voc07")
    transform = TransferTransform(
        input_cfg["size"],
        input_cfg["resize"],
        train=train,
        normalization=input_cfg["normalization"],
    )
    return VOCImageDataset(index, transform)


def voc07_detection(
    datasets: Mapping[str, Any], split: VOC07Split, input_cfg: Mapping[str, Any], train: bool
) -> VOCDetectionDataset:
    """Whole VOC07 images of one split with all their boxes (difficult ones flagged)."""
    index = VOC07Index(datasets["voc07"]["root"], split, config_prefix="datasets.voc07")
    return VOCDetectionDataset(index, train, normalization=input_cfg["normalization"])


def voc12_segmentation(
    datasets: Mapping[str, Any], split: VOC12SegSplit, input_cfg: Mapping[str, Any], train: bool
) -> VOCSegmentationDataset:
    """VOC 2012 images and label maps of one ``ImageSets/Segmentation`` split."""
    spec = datasets["voc12"]
    index = VOC12SegIndex(spec["root"], split, config_prefix="datasets.voc12")
    transform = SegmentationTransform(
        input_cfg["size"], train=train, normalization=input_cfg["normalization"]
    )
    return VOCSegmentationDataset(index, transform)


def imagenet_images(
    datasets: Mapping[str, Any], input_cfg: Mapping[str, Any]
) -> tuple[LabelledImages, LabelledImages, list[str]]:
    """ImageNet train (random crops) and val (centre crops) with the training class order."""
    spec = datasets["imagenet"]
    train_index = ImageFolderIndex.scan(Path(spec["train"]), config_key="datasets.imagenet.train")
    val_samples = imagenet_val_index(spec["val"], train_index.classes, spec.get("val_labels"))

    def transform(train: bool) -> TransferTransform:
        return TransferTransform(
            input_cfg["size"],
            input_cfg["resize"],
            train=train,
            normalization=input_cfg["normalization"],
        )

    return (
        LabelledImages(train_index.samples, transform(True)),
        LabelledImages(val_samples, transform(False)),
        train_index.classes,
    )


def retrieval_sets(
    datasets: Mapping[str, Any],
    input_cfg: Mapping[str, Any],
    protocol: str,
    split: int = 1,
    frames_per_video: int = 10,
    keep_difficult: bool = True,
) -> RetrievalSets:
    """(queries, gallery) of one retrieval protocol [paper]: UCF-101 test frames against
    training frames, or VOC07 test object crops against trainval crops."""
    if protocol == "ucf101":
        queries, _ = video_frames(
            datasets, "ucf101", split, "test", input_cfg, "evenly", frames_per_video
        )
        gallery, _ = video_frames(
            datasets, "ucf101", split, "train", input_cfg, "evenly", frames_per_video
        )
        return queries, gallery
    if protocol == "voc07":
        return (
            voc07_crops(datasets, "test", input_cfg, keep_difficult),
            voc07_crops(datasets, "trainval", input_cfg, keep_difficult),
        )
    raise ValueError(f"unknown retrieval protocol {protocol!r}; use ucf101 or voc07")
