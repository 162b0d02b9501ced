"""Reader for Pascal VOC 2007 as released: ``VOCdevkit/VOC2007/{JPEGImages,Annotations,ImageSets}``.

- ``ImageSets/Main/<split>.txt`` lists the image ids of a split (``trainval``, ``test``,
  ``train``, ``val``), one per line.
- ``Annotations/<id>.xml`` holds ``object/{name,difficult,bndbox/{xmin,ymin,xmax,ymax}}``;
  boxes are 1-based inclusive pixel coordinates. Nested ``part`` boxes (person layout) are not
  objects and are ignored.
- ``ImageSets/Main/<cls>_<split>.txt`` flags every image of the split ``1`` (an instance that is
  not difficult), ``-1`` (none) or ``0`` (only difficult instances); :meth:`VOC07Index.targets`
  computes the same matrix from the XML and :meth:`VOC07Index.check_against_class_lists`
  verifies that the two agree.

Split files are read with any line ending and an optional BOM. A missing ``<difficult>`` tag
counts as 0, as in the devkit and in py-faster-rcnn.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

import torch

from ssl_rl.data.errors import DatasetError
from ssl_rl.data.readers.list_files import read_image_ids, read_list_lines
from ssl_rl.data.readers.voc_devkit import ListedFiles, require_folders

# Canonical order [paper / devkit]; label i is VOC_CLASSES[i].
VOC_CLASSES: tuple[str, ...] = (
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
VOC_SPLITS = ("trainval", "test", "train", "val")
VOC07Split = Literal["trainval", "test", "train", "val"]
PAPER_MIN_CROP_AREA = 10_000  # [paper] crops under 10k pixels are discarded (NN protocol)
_LABEL_OF = {name: label for label, name in enumerate(VOC_CLASSES)}
_BOX_FIELDS = ("xmin", "ymin", "xmax", "ymax")

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class VOCObject:
    """One annotated object; ``box`` is (xmin, ymin, xmax, ymax), 1-based inclusive pixels."""

    name: str
    label: int
    difficult: bool
    box: Box
    truncated: bool = False

    @property
    def area(self) -> int:
        """Pixels covered by the inclusive box."""
        return box_area(self.box)


class ObjectCrop(NamedTuple):
    """One object of the NN-retrieval protocol: the image, its 1-based inclusive box, its label."""

    path: Path
    box: Box
    label: int


def box_area(box: Box) -> int:
    """Area of a 1-based inclusive box: (xmax - xmin + 1) * (ymax - ymin + 1)."""
    xmin, ymin, xmax, ymax = box
    return (xmax - xmin + 1) * (ymax - ymin + 1)


def _text(element: ET.Element, tag: str) -> str | None:
    child = element.find(tag)
    return None if child is None or child.text is None else child.text.strip()


def _coordinate(text: str | None, xml_path: Path, number: int, field: str) -> int:
    if not text:
        raise DatasetError(
            f"{xml_path}: object {number} has no bndbox/{field}; every object needs "
            f"bndbox/{{{','.join(_BOX_FIELDS)}}} (is this a VOC annotation file?)"
        )
    try:
        return round(float(text))  # VOC07 uses integers; other VOC years have a few ".5"
    except ValueError:
        raise DatasetError(
            f"{xml_path}: object {number} has bndbox/{field} = {text!r}, not a number"
        ) from None


def _flag(text: str | None, xml_path: Path, number: int, field: str) -> bool:
    if text is None:
        return False
    if text not in ("0", "1"):
        raise DatasetError(f"{xml_path}: object {number} has {field} = {text!r}, expected 0 or 1")
    return text == "1"


def parse_annotation(xml_path: Path | str) -> list[VOCObject]:
    """The objects of one ``Annotations/<id>.xml`` file, in file order."""
    xml_path = Path(xml_path)
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as error:
        raise DatasetError(
            f"{xml_path}: malformed XML ({error}); re-extract the annotation from the VOC tar"
        ) from None
    except FileNotFoundError:
        raise DatasetError(f"annotation file {xml_path} does not exist") from None
    if root.tag != "annotation":
        raise DatasetError(f"{xml_path}: root element is <{root.tag}>, expected <annotation>")
    objects = []
    for number, element in enumerate(root.findall("object"), 1):
        name = _text(element, "name")
        if name not in _LABEL_OF:
            raise DatasetError(
                f"{xml_path}: object {number} has class name {name!r}, which is not one of the "
                f"20 VOC classes {list(VOC_CLASSES)}"
            )
        bndbox = element.find("bndbox")
        if bndbox is None:
            raise DatasetError(f"{xml_path}: object {number} ({name}) has no <bndbox>")
        box = tuple(
            _coordinate(_text(bndbox, field), xml_path, number, field) for field in _BOX_FIELDS
        )
        if box[2] < box[0] or box[3] < box[1]:
            raise DatasetError(
                f"{xml_path}: object {number} ({name}) has an empty box {box} "
                f"(need xmin <= xmax and ymin <= ymax)"
            )
        objects.append(
            VOCObject(
                name=name,
                label=_LABEL_OF[name],
                difficult=_flag(_text(element, "difficult"), xml_path, number, "difficult"),
                box=box,  # type: ignore[arg-type]
                truncated=_flag(_text(element, "truncated"), xml_path, number, "truncated"),
            )
        )
    return objects


class VOC07Index:
    """Image paths and parsed annotations of one VOC 2007 split, in the split file's order.

    ``root`` is the ``VOC2007`` folder (``.../VOCdevkit/VOC2007``). ``config_prefix`` names the
    config keys in error messages (``<prefix>.root``).
    """

    def __init__(
        self,
        root: Path | str,
        split: VOC07Split = "trainval",
        config_prefix: str = "datasets.voc07",
    ) -> None:
        if split not in VOC_SPLITS:
            raise DatasetError(f"VOC07 split must be one of {VOC_SPLITS}, got {split!r}")
        self.root = Path(root).expanduser()
        self.split = split
        self._prefix = config_prefix
        self.main_dir = self.root / "ImageSets" / "Main"
        folders = ("JPEGImages", "Annotations", "ImageSets/Main")
        require_folders(self.root, folders, "VOC2007", f"{config_prefix}.root")
        self.ids = self._read_ids()
        files = ListedFiles(
            self.root,
            {"JPEGImages": ".jpg", "Annotations": ".xml"},
            self._split_file(),
            "the copy of VOC2007 is incomplete: extract both VOCtrainval_06-Nov-2007.tar and "
            "VOCtest_06-Nov-2007.tar into the same VOCdevkit folder",
        )
        self.images: list[Path] = []
        self.objects: list[list[VOCObject]] = []
        for image_id in self.ids:
            files.require(image_id)
            self.images.append(self.root / "JPEGImages" / f"{image_id}.jpg")
            self.objects.append(parse_annotation(self.root / "Annotations" / f"{image_id}.xml"))

    def _split_file(self, class_name: str | None = None) -> Path:
        name = self.split if class_name is None else f"{class_name}_{self.split}"
        return self.main_dir / f"{name}.txt"

    def _read_ids(self) -> list[str]:
        return read_image_ids(
            self._split_file(),
            f"the {self.split!r} split list. Check {self._prefix}.root (the VOC2007 folder); the "
            f"test split comes with VOCtest_06-Nov-2007.tar",
        )

    def __len__(self) -> int:
        return len(self.images)

    def targets(self) -> torch.Tensor:
        """int8 (N, 20): 1 some non-difficult instance, 0 only difficult ones, -1 absent."""
        targets = torch.full((len(self.images), len(VOC_CLASSES)), -1, dtype=torch.int8)
        for row, objects in enumerate(self.objects):
            for obj in objects:
                if not obj.difficult:
                    targets[row, obj.label] = 1
                elif targets[row, obj.label] == -1:
                    targets[row, obj.label] = 0
        return targets

    def check_against_class_lists(self) -> int:
        """Verify ``targets()`` against every ``<cls>_<split>.txt`` present; return how many.

        Raises :class:`DatasetError` at the first disagreement, naming the file and line.
        """
        targets = self.targets()
        row_of = {image_id: row for row, image_id in enumerate(self.ids)}
        checked = 0
        for label, class_name in enumerate(VOC_CLASSES):
            path = self._split_file(class_name)
            if not path.is_file():
                continue
            listed: set[str] = set()
            for line_number, line in read_list_lines(path):
                fields = line.split()
                if len(fields) != 2 or fields[1] not in ("1", "-1", "0"):
                    raise DatasetError(
                        f"{path}:{line_number}: expected '<image id> <1|-1|0>', got {line!r}"
                    )
                image_id, flag = fields[0], int(fields[1])
                row = row_of.get(image_id)
                if row is None:
                    raise DatasetError(
                        f"{path}:{line_number}: image {image_id} is not in {self._split_file()}"
                    )
                expected = int(targets[row, label])
                if flag != expected:
                    raise DatasetError(
                        f"{path}:{line_number}: image {image_id} is flagged {flag} for "
                        f"{class_name}, but {self.root / 'Annotations' / image_id}.xml gives "
                        f"{expected} (1 present, 0 only difficult, -1 absent)"
                    )
                listed.add(image_id)
            if len(listed) != len(self.ids):
                absent = [image_id for image_id in self.ids if image_id not in listed]
                raise DatasetError(
                    f"{path} does not list {len(absent)} image(s) of {self._split_file()} "
                    f"(e.g. {absent[:5]})"
                )
            checked += 1
        return checked

    def object_crops(
        self, min_area: int = PAPER_MIN_CROP_AREA, keep_difficult: bool = True
    ) -> list[ObjectCrop]:
        """Every object box with area >= ``min_area`` [paper: 10,000], in image then file order.

        ``keep_difficult``: the paper does not say whether difficult objects are used; keeping
        them is our default [decision].
        """
        return [
            ObjectCrop(path, obj.box, obj.label)
            for path, objects in zip(self.images, self.objects, strict=True)
            for obj in objects
            if obj.area >= min_area and (keep_difficult or not obj.difficult)
        ]
