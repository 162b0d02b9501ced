"""VOC07Index, the crop and image datasets: target semantics, crops, and errors naming files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torchvision.transforms import v2

from ssl_rl.data.errors import DatasetError
from ssl_rl.data.readers.image_folder import load_rgb
from ssl_rl.data.readers.voc07 import (
    VOC_CLASSES,
    ObjectCrop,
    VOC07Index,
    VOC07Split,
    box_area,
    parse_annotation,
)
from ssl_rl.eval.voc_crops import VOCCropDataset, crop_box
from ssl_rl.eval.voc_images import VOCImageDataset
from tests.fixtures.voc import FLAGS, SPLITS, make_voc_tree


@pytest.fixture(scope="module")
def voc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_voc_tree(tmp_path_factory.mktemp("voc"))


def at(path: Path, rest: str) -> str:
    """A regex matching the message ``<path><rest>``, the path taken literally."""
    return re.escape(str(path)) + rest


def expected_targets(split: str) -> torch.Tensor:
    rows = [[FLAGS[i].get(name, -1) for name in VOC_CLASSES] for i in SPLITS[split]]
    return torch.tensor(rows, dtype=torch.int8)


def test_canonical_class_order() -> None:
    spec_order = "aeroplane bicycle bird boat bottle bus car cat chair cow diningtable dog horse "
    spec_order += "motorbike person pottedplant sheep sofa train tvmonitor"  # SPEC §4
    assert tuple(spec_order.split(" ")) == VOC_CLASSES


def test_parse_annotation_reads_objects_and_ignores_part_boxes(voc: Path) -> None:
    objects = parse_annotation(voc / "Annotations" / "000007.xml")
    assert [(o.name, o.label, o.difficult, o.box) for o in objects] == [
        ("person", 14, False, (5, 5, 50, 140)),
        ("car", 6, False, (20, 30, 180, 140)),
        ("dog", 11, True, (100, 20, 150, 60)),
        ("dog", 11, False, (120, 70, 199, 149)),
    ]
    first = parse_annotation(voc / "Annotations" / "000005.xml")
    assert [o.truncated for o in first] == [True, False, False]


def test_missing_difficult_tag_means_not_difficult(voc: Path) -> None:
    [tv] = parse_annotation(voc / "Annotations" / "000012.xml")
    assert (tv.name, tv.difficult) == ("tvmonitor", False)


@pytest.mark.parametrize("split", list(SPLITS))
def test_ids_images_and_targets_follow_the_split_files(voc: Path, split: str) -> None:
    index = VOC07Index(voc, split)
    assert index.ids == SPLITS[split]
    assert index.images == [voc / "JPEGImages" / f"{i}.jpg" for i in SPLITS[split]]
    targets = index.targets()
    assert targets.dtype == torch.int8 and targets.shape == (len(SPLITS[split]), 20)
    assert torch.equal(targets, expected_targets(split))


def test_target_semantics_present_only_difficult_absent(voc: Path) -> None:
    targets = VOC07Index(voc, "test").targets()
    label = VOC_CLASSES.index
    assert targets[0, label("bird")] == 0, "only a difficult bird"
    assert targets[0, label("horse")] == 1
    assert targets[0, label("dog")] == -1
    trainval = VOC07Index(voc, "trainval").targets()
    assert trainval[0, label("person")] == 0
    assert trainval[1, label("dog")] == 1, "a non-difficult instance wins over a difficult one"


def test_class_lists_agree(voc: Path) -> None:
    for split in SPLITS:
        assert VOC07Index(voc, split).check_against_class_lists() == 20


def test_no_class_lists_checks_nothing(tmp_path: Path) -> None:
    voc = make_voc_tree(tmp_path, class_lists=False)
    assert VOC07Index(voc, "test").check_against_class_lists() == 0


def test_crlf_and_bom_split_files_read_the_same(tmp_path: Path) -> None:
    voc = make_voc_tree(tmp_path, crlf=True, bom=True)
    assert (voc / "ImageSets/Main/test.txt").read_bytes().startswith(b"\xef\xbb\xbf000009\r\n")
    index = VOC07Index(voc, "test")
    assert index.ids == SPLITS["test"]
    assert index.check_against_class_lists() == 20


def test_class_list_disagreement_names_file_and_line(tmp_path: Path) -> None:
    voc = make_voc_tree(tmp_path)
    dog_list = voc / "ImageSets/Main/dog_trainval.txt"
    dog_list.write_text("000005 -1\n000007  0\n")
    with pytest.raises(DatasetError, match=at(dog_list, r":2: image 000007 is flagged 0 for dog")):
        VOC07Index(voc, "trainval").check_against_class_lists()
    dog_list.write_text("000005 -1\n")
    with pytest.raises(DatasetError, match=at(dog_list, r" does not list 1 image")):
        VOC07Index(voc, "trainval").check_against_class_lists()
    dog_list.write_text("000005 -1\n000009 -1\n")
    with pytest.raises(DatasetError, match=at(dog_list, r":2: image 000009 is not in")):
        VOC07Index(voc, "trainval").check_against_class_lists()


def test_object_crops_drop_small_boxes_by_inclusive_area(voc: Path) -> None:
    assert box_area((1, 1, 100, 100)) == 10_000
    trainval = VOC07Index(voc, "trainval")
    # chair 100x100 kept, chair 100x99 (9,900 px) dropped, person and dog too small.
    assert [(p.stem, box, label) for p, box, label in trainval.object_crops()] == [
        ("000005", (1, 1, 100, 100), VOC_CLASSES.index("chair")),
        ("000007", (20, 30, 180, 140), VOC_CLASSES.index("car")),
    ]
    assert len(trainval.object_crops(min_area=1)) == 7
    test = VOC07Index(voc, "test")
    with_difficult = [(p.stem, VOC_CLASSES[y]) for p, _, y in test.object_crops()]
    assert with_difficult == [("000009", "chair"), ("000009", "horse"), ("000012", "tvmonitor")]
    without = [(p.stem, VOC_CLASSES[y]) for p, _, y in test.object_crops(keep_difficult=False)]
    assert without == [("000009", "horse"), ("000012", "tvmonitor")]


def test_crop_box_converts_one_based_inclusive_and_clamps() -> None:
    image = torch.arange(6 * 8).view(1, 6, 8)  # H=6, W=8, value = 8*y + x
    crop = crop_box(image, (2, 3, 4, 5))  # x 1..3, y 2..4 (0-based)
    assert torch.equal(crop, image[:, 2:5, 1:4])
    assert torch.equal(crop_box(image, (0, -3, 20, 6)), image)
    with pytest.raises(ValueError, match="outside"):
        crop_box(image, (9, 1, 12, 3))


def test_crop_dataset_returns_the_box_pixels_through_the_transform(voc: Path) -> None:
    crops = VOC07Index(voc, "trainval").object_crops()
    crop, label = VOCCropDataset(crops)[0]  # chair, box (1, 1, 100, 100)
    assert label == VOC_CLASSES.index("chair")
    assert torch.equal(crop, load_rgb(crops[0].path)[:, 0:100, 0:100])
    warp = v2.Compose([v2.Resize((227, 227)), v2.ToDtype(torch.float32, scale=True)])
    dataset = VOCCropDataset(crops, warp)
    crop, label = dataset[1]  # car, box (20, 30, 180, 140): 161 x 111, warped
    assert crop.shape == (3, 227, 227) and crop.dtype == torch.float32
    assert label == VOC_CLASSES.index("car")
    assert dataset.labels == [VOC_CLASSES.index("chair"), VOC_CLASSES.index("car")]
    assert len(dataset) == 2


def test_crop_outside_the_image_names_the_file(voc: Path) -> None:
    path = voc / "JPEGImages" / "000005.jpg"
    dataset = VOCCropDataset([ObjectCrop(path, (300, 1, 310, 10), 0)])
    with pytest.raises(DatasetError, match=at(path, ": box")):
        dataset[0]


def test_image_dataset_yields_transformed_image_and_target_row(voc: Path) -> None:
    index = VOC07Index(voc, "test")
    transform = v2.Compose([v2.Resize((64, 96)), v2.ToDtype(torch.float32, scale=True)])
    dataset = VOCImageDataset(index, transform)
    assert len(dataset) == 2
    image, target = dataset[1]
    assert image.shape == (3, 64, 96) and image.dtype == torch.float32
    assert torch.equal(target, expected_targets("test")[1])
    raw, _ = VOCImageDataset(index)[0]
    assert raw.dtype == torch.uint8 and raw.shape == (3, 150, 200)


# --- errors name the file ---------------------------------------------------------------------


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    ("split", "name", "old", "new", "error"),
    [
        pytest.param(
            "val", "000007.xml", "</annotation>", "", r": malformed XML", id="malformed_xml"
        ),
        pytest.param(
            "train",
            "000005.xml",
            "<name>person</name>",
            "<name>Person</name>",
            r": object 3 has class name 'Person'",
            id="unknown_class",
        ),
    ],
)
def test_bad_annotation_names_the_file(
    tmp_path: Path, split: VOC07Split, name: str, old: str, new: str, error: str
) -> None:
    voc = make_voc_tree(tmp_path)
    xml = voc / "Annotations" / name
    _replace(xml, old, new)
    with pytest.raises(DatasetError, match=at(xml, error)):
        VOC07Index(voc, split)


@pytest.mark.parametrize("field", ["xmin", "ymax"])
def test_missing_bndbox_field_names_the_file(tmp_path: Path, field: str) -> None:
    voc = make_voc_tree(tmp_path)
    xml = voc / "Annotations" / "000012.xml"
    text = xml.read_text()
    start = text.index(f"<{field}>")
    xml.write_text(text[:start] + text[text.index(f"</{field}>") + len(field) + 3 :])
    with pytest.raises(DatasetError, match=at(xml, f": object 1 has no bndbox/{field}")):
        parse_annotation(xml)


def test_inverted_box_and_bad_difficult_flag_name_the_file(tmp_path: Path) -> None:
    voc = make_voc_tree(tmp_path)
    xml = voc / "Annotations" / "000012.xml"
    _replace(xml, "<xmax>149</xmax>", "<xmax>20</xmax>")
    with pytest.raises(DatasetError, match=at(xml, r": object 1 \(tvmonitor\) has an empty box")):
        parse_annotation(xml)
    xml = voc / "Annotations" / "000009.xml"
    _replace(xml, "<difficult>1</difficult>", "<difficult>yes</difficult>")
    with pytest.raises(DatasetError, match=at(xml, r": object 1 has difficult = 'yes'")):
        parse_annotation(xml)


def test_missing_split_file_names_path_and_config_key(tmp_path: Path) -> None:
    voc = make_voc_tree(tmp_path)
    (voc / "ImageSets/Main/test.txt").unlink()
    with pytest.raises(DatasetError, match=r"test\.txt is missing.*eval\.voc\.root"):
        VOC07Index(voc, "test", config_prefix="eval.voc")


@pytest.mark.parametrize(
    ("folder", "name"), [("JPEGImages", "000009.jpg"), ("Annotations", "000012.xml")]
)
def test_missing_image_or_annotation_names_the_path(tmp_path: Path, folder: str, name: str) -> None:
    voc = make_voc_tree(tmp_path)
    (voc / folder / name).unlink()
    with pytest.raises(DatasetError, match=at(voc / folder / name, r" is missing")):
        VOC07Index(voc, "test")


def test_wrong_root_and_split_are_reported(tmp_path: Path) -> None:
    voc = make_voc_tree(tmp_path)
    with pytest.raises(DatasetError, match=r"JPEGImages does not exist.*datasets\.voc07\.root"):
        VOC07Index(voc.parent, "test")
    with pytest.raises(DatasetError, match=r"split must be one of .* got 'testing'"):
        VOC07Index(voc, "testing")  # type: ignore[arg-type]


def test_duplicate_id_in_split_file_is_an_error(tmp_path: Path) -> None:
    voc = make_voc_tree(tmp_path)
    split = voc / "ImageSets/Main/test.txt"
    split.write_text("000009\n000012\n000009\n")
    with pytest.raises(DatasetError, match=at(split, r":3: image id 000009 listed twice")):
        VOC07Index(voc, "test")
