"""The ImageNet validation set in the two layouts people have, labelled in the train class order.

(a) class folders ``val/<wnid>/*.JPEG`` (the "valprep" layout, read with ImageFolderIndex);
(b) flat ``val/ILSVRC2012_val_*.JPEG`` plus a labels file, either Kaggle's
    ``LOC_val_solution.csv`` (``ImageId,PredictionString``, the string starting with the wnid)
    or a ``<file> <wnid>`` list (``val_labels.txt`` style).

Labels are positions in ``classes`` (the training set's wnids in label order), never the
validation folder's own order. Integer-labelled lists (Caffe's ``val.txt``, the devkit's
``ILSVRC2012_validation_ground_truth.txt``) depend on a class order this reader cannot verify,
so they are rejected with an explanation.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Sequence
from pathlib import Path

from ssl_rl.data.errors import DatasetError
from ssl_rl.data.readers.image_folder import ImageFolderIndex, is_image_file

WNID_PATTERN = re.compile(r"^n\d{8}$")
_MAX_LISTED = 5


def imagenet_val_index(
    val_root: Path | str,
    classes: Sequence[str],
    labels_file: Path | str | None = None,
    config_prefix: str = "datasets.imagenet",
) -> list[tuple[Path, int]]:
    """``(path, label)`` of every validation image; label = index of its wnid in ``classes``.

    Without ``labels_file`` the class-folder layout is expected; with it, the flat layout.
    """
    val_root = Path(val_root).expanduser()
    label_of = {wnid: label for label, wnid in enumerate(classes)}
    if len(label_of) != len(classes):
        raise ValueError("classes contains a wnid twice")
    if not val_root.is_dir():
        raise DatasetError(
            f"ImageNet validation folder {val_root} does not exist; set {config_prefix}.val"
        )
    if labels_file is None:
        return _class_folder_samples(val_root, label_of, config_prefix)
    return _flat_samples(val_root, Path(labels_file).expanduser(), label_of, config_prefix)


def _class_folder_samples(
    val_root: Path, label_of: dict[str, int], config_prefix: str
) -> list[tuple[Path, int]]:
    has_folders = any(e.is_dir() and not e.name.startswith(".") for e in os.scandir(val_root))
    if not has_folders:
        raise DatasetError(
            f"{val_root} has no class folders: for the flat layout (ILSVRC2012_val_*.JPEG) set "
            f"{config_prefix}.val_labels to LOC_val_solution.csv or a '<file> <wnid>' list"
        )
    index = ImageFolderIndex.scan(val_root, config_key=f"{config_prefix}.val")
    unknown = [wnid for wnid in index.classes if wnid not in label_of]
    if unknown:
        raise DatasetError(
            f"class folder {val_root / unknown[0]} is not a class of the training set "
            f"({len(unknown)} such folders, e.g. {unknown[:_MAX_LISTED]}); the validation "
            f"folders must be named by the training set's wnids"
        )
    mapping = [label_of[wnid] for wnid in index.classes]
    return [(path, mapping[label]) for path, label in index.samples]


def _flat_samples(
    val_root: Path, labels_file: Path, label_of: dict[str, int], config_prefix: str
) -> list[tuple[Path, int]]:
    if not labels_file.is_file():
        raise DatasetError(
            f"labels file {labels_file} does not exist; set {config_prefix}.val_labels"
        )
    entries = _read_labels(labels_file)
    images = {e.name: e.name for e in os.scandir(val_root) if e.is_file() and is_image_file(e.name)}
    # Kaggle's ImageIds have no extension: match on the stem too.
    by_stem = {os.path.splitext(name)[0]: name for name in images}
    samples: dict[str, tuple[Path, int]] = {}
    missing = []
    for line_number, name, wnid in entries:
        label = label_of.get(wnid)
        if label is None:
            raise DatasetError(
                f"{labels_file}:{line_number}: wnid {wnid!r} is not a class of the training "
                f"set ({len(label_of)} classes); are the labels from the same ImageNet release?"
            )
        file = images.get(name) or by_stem.get(name)
        if file is None:
            missing.append(name)
            continue
        if file in samples:
            raise DatasetError(f"{labels_file}:{line_number}: image {name!r} labelled twice")
        samples[file] = (val_root / file, label)
    if missing:
        raise DatasetError(
            f"{len(missing)} image(s) listed in {labels_file} are not in {val_root} "
            f"(e.g. {missing[:_MAX_LISTED]}); set {config_prefix}.val to the folder "
            f"holding the ILSVRC2012_val_*.JPEG files"
        )
    unlabelled = sorted(set(images.values()) - set(samples))
    if unlabelled:
        raise DatasetError(
            f"{len(unlabelled)} image(s) in {val_root} have no label in {labels_file} "
            f"(e.g. {unlabelled[:_MAX_LISTED]}); use the labels file of this copy"
        )
    return [samples[name] for name in sorted(samples)]


def _read_labels(path: Path) -> list[tuple[int, str, str]]:
    """(line number, image name, wnid) of a Kaggle CSV or a ``<file> <wnid>`` list."""
    text = path.read_text(encoding="utf-8-sig")
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), "")
    entries = []
    if first.replace(" ", "").startswith("ImageId,PredictionString"):
        rows = csv.reader(lines)
        next(rows)
        for line_number, row in enumerate(rows, 2):
            if not row:
                continue
            if len(row) != 2 or not row[1].split():
                raise DatasetError(
                    f"{path}:{line_number}: expected 'ImageId,<wnid> <box> ...', got {row!r}"
                )
            entries.append((line_number, row[0].strip(), row[1].split()[0]))
    else:
        for line_number, line in enumerate(lines, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2:
                raise DatasetError(
                    f"{path}:{line_number}: expected '<file> <wnid>' or the Kaggle CSV header "
                    f"'ImageId,PredictionString', got {line.strip()!r}"
                )
            entries.append((line_number, fields[0], fields[1]))
    for line_number, _, wnid in entries:
        if not WNID_PATTERN.match(wnid):
            raise DatasetError(
                f"{path}:{line_number}: {wnid!r} is not a wnid (n########); integer labels "
                f"depend on a class order that cannot be checked, use a '<file> <wnid>' list "
                f"or LOC_val_solution.csv"
            )
    if not entries:
        raise DatasetError(f"{path} lists no images")
    return entries
