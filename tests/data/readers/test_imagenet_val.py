"""imagenet_val_index: both layouts, labels in the training order, and the errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ssl_rl.data.errors import DatasetError
from ssl_rl.data.readers.imagenet_val import imagenet_val_index
from tests.fixtures.imagenet_val import make_flat_val, val_name
from tests.fixtures.images import make_image_folder

# The training set's order, deliberately not sorted: labels must follow it.
TRAIN_CLASSES = ["n01484850", "n01440764", "n01443537"]
VAL_WNIDS = ["n01440764", "n01484850", "n01443537", "n01440764", "n01484850"]


def at(path: Path, rest: str) -> str:
    return re.escape(str(path)) + rest


def test_class_folder_layout_uses_the_training_order(tmp_path: Path) -> None:
    val = make_image_folder(tmp_path / "val", classes=["n01440764", "n01443537"], per_class=2)
    samples = imagenet_val_index(val, TRAIN_CLASSES)
    assert [(p.parent.name, label) for p, label in samples] == [
        ("n01440764", 1),
        ("n01440764", 1),
        ("n01443537", 2),
        ("n01443537", 2),
    ]
    assert all(p.is_file() for p, _ in samples)


def test_class_folder_with_unknown_wnid(tmp_path: Path) -> None:
    val = make_image_folder(tmp_path / "val", classes=["n01440764", "n09999999"], per_class=1)
    with pytest.raises(DatasetError, match=at(val / "n09999999", " is not a class")):
        imagenet_val_index(val, TRAIN_CLASSES)


@pytest.mark.parametrize("labels", ["solution_csv", "labels_txt"])
@pytest.mark.parametrize("crlf", [False, True])
def test_flat_layout_with_either_labels_file(tmp_path: Path, labels: str, crlf: bool) -> None:
    flat = make_flat_val(tmp_path, VAL_WNIDS, crlf=crlf)
    samples = imagenet_val_index(flat.val_root, TRAIN_CLASSES, getattr(flat, labels))
    assert [(p.name, label) for p, label in samples] == [
        (val_name(1), 1),
        (val_name(2), 0),
        (val_name(3), 2),
        (val_name(4), 1),
        (val_name(5), 0),
    ]
    assert all(p.parent == flat.val_root and p.is_file() for p, _ in samples)


def test_unknown_wnid_names_file_and_line(tmp_path: Path) -> None:
    flat = make_flat_val(tmp_path, VAL_WNIDS)
    lines = flat.labels_txt.read_text().splitlines()
    lines[2] = f"{val_name(3)} n09999999"
    flat.labels_txt.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=at(flat.labels_txt, ":3: wnid 'n09999999'")):
        imagenet_val_index(flat.val_root, TRAIN_CLASSES, flat.labels_txt)
    # In the CSV the header is line 1 and rows run in reverse: image 5 is on line 2.
    csv_text = flat.solution_csv.read_text().replace("n01484850", "n07777777", 1)
    flat.solution_csv.write_text(csv_text)
    with pytest.raises(DatasetError, match=at(flat.solution_csv, ":2: wnid 'n07777777'")):
        imagenet_val_index(flat.val_root, TRAIN_CLASSES, flat.solution_csv)


def test_integer_labels_are_rejected_with_a_reason(tmp_path: Path) -> None:
    flat = make_flat_val(tmp_path, VAL_WNIDS)
    flat.labels_txt.write_text(f"{val_name(1)} 65\n")
    with pytest.raises(DatasetError, match=at(flat.labels_txt, ":1: '65' is not a wnid")):
        imagenet_val_index(flat.val_root, TRAIN_CLASSES, flat.labels_txt)


def test_flat_layout_mismatches(tmp_path: Path) -> None:
    flat = make_flat_val(tmp_path, VAL_WNIDS)
    (flat.val_root / val_name(2)).unlink()
    with pytest.raises(DatasetError, match=r"1 image\(s\) listed in .* are not in"):
        imagenet_val_index(flat.val_root, TRAIN_CLASSES, flat.solution_csv)
    flat.labels_txt.write_text(f"{val_name(1)} n01440764\n")
    with pytest.raises(DatasetError, match=r"3 image\(s\) in .* have no label"):
        imagenet_val_index(flat.val_root, TRAIN_CLASSES, flat.labels_txt)
    flat.labels_txt.write_text(f"{val_name(1)} n01440764\n{val_name(1)} n01440764\n")
    with pytest.raises(DatasetError, match=at(flat.labels_txt, ":2: image .* labelled twice")):
        imagenet_val_index(flat.val_root, TRAIN_CLASSES, flat.labels_txt)


def test_flat_layout_without_labels_file_says_what_to_set(tmp_path: Path) -> None:
    flat = make_flat_val(tmp_path, VAL_WNIDS)
    with pytest.raises(DatasetError, match=r"no class folders.*datasets\.imagenet\.val_labels"):
        imagenet_val_index(flat.val_root, TRAIN_CLASSES)
    with pytest.raises(DatasetError, match=at(tmp_path / "nope.csv", " does not exist")):
        imagenet_val_index(flat.val_root, TRAIN_CLASSES, tmp_path / "nope.csv")
    with pytest.raises(DatasetError, match=r"does not exist; set x\.val"):
        imagenet_val_index(tmp_path / "missing", TRAIN_CLASSES, config_prefix="x")
