"""VOC 2012 segmentation: the reader on release-format fixtures, IoU by hand, the FCN's scoring."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ssl_rl.data.errors import DatasetError
from ssl_rl.data.readers.voc12_seg import VOC12SegIndex, load_label_map
from ssl_rl.data.synthetic.voc import voc_palette
from ssl_rl.eval.fcn import FCNSegmenter
from ssl_rl.eval.segmentation_iou import SegmentationIoU, iou_per_class, mean_iou
from ssl_rl.eval.voc_segmentation import (
    SegmentationTransform,
    VOCSegmentationDataset,
    collate_segmentation,
)
from ssl_rl.nets.caffenet import CaffeNetTrunk


def _write_png(path: Path, labels: np.ndarray, mode: str = "P") -> None:
    image = Image.fromarray(labels.astype(np.uint8), mode="P")
    image.putpalette(voc_palette())  # as the release: palette indices, the devkit's colours
    (image.convert("RGB") if mode == "RGB" else image).save(path)


def _voc2012(root: Path, maps: dict[str, np.ndarray], splits: dict[str, list[str]]) -> Path:
    voc = root / "VOCdevkit" / "VOC2012"
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (voc / folder).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for image_id, labels in maps.items():
        pixels = rng.integers(0, 255, (*labels.shape, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(voc / "JPEGImages" / f"{image_id}.jpg")
        _write_png(voc / "SegmentationClass" / f"{image_id}.png", labels)
    for split, ids in splits.items():
        # The release's lists end in LF; CRLF must work as well.
        (voc / "ImageSets" / "Segmentation" / f"{split}.txt").write_bytes(
            "".join(f"{i}\r\n" for i in ids).encode()
        )
    return voc


@pytest.fixture
def voc(tmp_path: Path) -> Path:
    a = np.zeros((30, 40), dtype=np.uint8)
    a[5:20, 10:30] = 15  # person
    a[5, 10:30] = 255  # void border
    b = np.full((24, 32), 0, dtype=np.uint8)
    b[:, 16:] = 1
    return _voc2012(
        tmp_path,
        {"2007_000032": a, "2007_000039": b},
        {"train": ["2007_000032"], "val": ["2007_000039", "2007_000032"]},
    )


def test_reader_reads_ids_and_palette_indices(voc: Path) -> None:
    index = VOC12SegIndex(voc, "val")
    assert index.ids == ["2007_000039", "2007_000032"]
    labels = load_label_map(index.label_maps[1])
    assert labels.dtype == torch.int64 and labels.shape == (30, 40)
    assert set(labels.unique().tolist()) == {0, 15, 255}


def test_reader_bad_input_names_the_file(voc: Path) -> None:
    png = voc / "SegmentationClass" / "2007_000039.png"
    _write_png(png, np.zeros((24, 32)), mode="RGB")
    with pytest.raises(DatasetError, match=r"2007_000039\.png is a 'RGB' image.*palette"):
        load_label_map(png)
    _write_png(png, np.full((24, 32), 21))
    with pytest.raises(DatasetError, match=r"2007_000039\.png holds pixel values \[21\]"):
        load_label_map(png)
    png.unlink()
    with pytest.raises(DatasetError, match=r"SegmentationClass/2007_000039\.png is missing"):
        VOC12SegIndex(voc, "val")
    with pytest.raises(DatasetError, match=r"trainval\.txt is missing.*datasets\.voc12\.root"):
        VOC12SegIndex(voc, "trainval")
    with pytest.raises(DatasetError, match=r"set datasets\.voc12\.root"):
        VOC12SegIndex(voc.parent, "val")


def test_label_map_of_another_size_than_its_image_is_refused(voc: Path) -> None:
    _write_png(voc / "SegmentationClass" / "2007_000039.png", np.zeros((10, 10)))
    dataset = VOCSegmentationDataset(
        VOC12SegIndex(voc, "val"), SegmentationTransform(16, train=False)
    )
    with pytest.raises(DatasetError, match=r"2007_000039\.png is \(10, 10\).*must match"):
        dataset[0]


def test_transforms_keep_labels_aligned_and_collate_pads_with_void(voc: Path) -> None:
    train = VOCSegmentationDataset(VOC12SegIndex(voc, "train"), SegmentationTransform(16, True))
    image, labels = train[0]
    assert image.shape == (3, 16, 16) and labels.shape == (16, 16)
    assert set(labels.unique().tolist()) <= {0, 15, 255}  # nearest neighbour: no new values
    val = VOCSegmentationDataset(VOC12SegIndex(voc, "val"), SegmentationTransform(16, False))
    images, padded, sizes = collate_segmentation([val[0], val[1]])
    assert images.shape == (2, 3, 16, 16) and padded.shape == (2, 30, 40)
    assert sizes.tolist() == [[24, 32], [30, 40]]
    assert (padded[0, 24:] == 255).all() and (padded[0, :, 32:] == 255).all()
    assert torch.equal(padded[1], load_label_map(voc / "SegmentationClass" / "2007_000032.png"))


def test_iou_by_hand_with_void_pixels_and_absent_classes() -> None:
    # 5 classes; class 3 is predicted only on a void pixel (ignored: no IoU at all), class 4 is
    # predicted once but never labelled (IoU 0).
    targets = [torch.tensor([[0, 0, 1], [1, 255, 2]]), torch.tensor([[0, 0], [2, 2]])]
    preds = [torch.tensor([[0, 1, 1], [1, 3, 2]]), torch.tensor([[0, 0], [2, 4]])]
    metric = SegmentationIoU(5)
    for pred, target in zip(preds, targets, strict=True):
        metric.update(pred[None], target[None])
    per_class = metric.compute().double()
    # class 0: |T| 4, |P| 3, |T∩P| 3 → 3/4; class 1: 2, 3, 2 → 2/3; class 2: 3, 2, 2 → 2/3.
    expected = [3 / 4, 2 / 3, 2 / 3, float("nan"), 0.0]
    assert torch.allclose(per_class, torch.tensor(expected, dtype=torch.float64), equal_nan=True)
    assert mean_iou(per_class) == pytest.approx((3 / 4 + 2 / 3 + 2 / 3 + 0) / 4)
    named = iou_per_class(per_class, ["bg", "a", "b", "c", "d"])
    assert named["c"] is None and named["d"] == 0.0 and named["bg"] == pytest.approx(0.75)


def test_fcn_scores_each_label_map_at_its_own_size() -> None:
    model = FCNSegmenter(
        CaffeNetTrunk(width=0.125, conv1_stride=4),
        ["bg", "a", "b"],
        functools.partial(torch.optim.SGD, lr=0.01),
    )
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 3, 64, 64)
    # Fixed scores at a 4×4 input: class 1 on the left half, class 2 on the right half.
    scores = torch.zeros(2, 3, 4, 4)
    scores[:, 1, :, :2] = 1.0
    scores[:, 2, :, 2:] = 1.0
    model.forward = lambda images: scores  # type: ignore[method-assign]
    model.log = lambda *args, **kwargs: None  # type: ignore[method-assign]
    # Map 0 is 4×4; map 1 is 2×2 (padded with void): its prediction is [[1, 2], [1, 2]].
    labels = torch.full((2, 4, 4), 255)
    labels[0] = torch.tensor([[1, 1, 2, 2], [1, 1, 2, 2], [1, 1, 1, 1], [0, 0, 0, 0]])
    labels[1, :2, :2] = torch.tensor([[1, 2], [2, 2]])
    model.on_validation_epoch_start()
    model.validation_step((torch.zeros(2, 3, 4, 4), labels, torch.tensor([[4, 4], [2, 2]])), 0)
    model.on_validation_epoch_end()
    # class 0: 4 labelled, never predicted → 0. class 1: labelled 8 + 1, predicted 8 + 2,
    # overlap 6 + 1 → 7 / 12. class 2: labelled 4 + 3, predicted 8 + 2, overlap 4 + 2 → 6 / 11.
    iou = model.last_metrics["iou_per_class"]
    assert iou["bg"] == 0.0
    assert iou["a"] == pytest.approx(7 / 12)
    assert iou["b"] == pytest.approx(6 / 11)
    assert model.last_metrics["miou"] == pytest.approx((7 / 12 + 6 / 11) / 3)
