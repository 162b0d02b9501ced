"""Checks of a VOC devkit folder shared by the VOC 2007 and VOC 2012 readers."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from ssl_rl.data.errors import DatasetError


def require_folders(root: Path, folders: Sequence[str], release: str, config_key: str) -> None:
    """Every one of ``folders`` exists in ``root``, the ``release`` folder (``VOC2007``) of the
    devkit that ``config_key`` sets."""
    holding = ", ".join(f"{folder}/" for folder in folders[:-1]) + f" and {folders[-1]}/"
    for folder in folders:
        if not (root / folder).is_dir():
            raise DatasetError(
                f"{root / folder} does not exist; set {config_key} to the {release} folder of "
                f"the devkit (.../VOCdevkit/{release}, holding {holding})"
            )


class ListedFiles:
    """The files a listed image needs: ``<id><suffix>`` in each folder of ``suffixes``.

    Each folder is listed once; :meth:`require` checks one image id listed in ``split_file``,
    and ``remedy`` ends the error.
    """

    def __init__(
        self, root: Path, suffixes: Mapping[str, str], split_file: Path, remedy: str
    ) -> None:
        self.root = root
        self.suffixes = dict(suffixes)
        self.split_file = split_file
        self.remedy = remedy
        self.listings = {folder: set(os.listdir(root / folder)) for folder in self.suffixes}

    def require(self, image_id: str) -> None:
        for folder, suffix in self.suffixes.items():
            name = f"{image_id}{suffix}"
            if name not in self.listings[folder]:
                raise DatasetError(
                    f"{self.root / folder / name} is missing (image {image_id} is listed in "
                    f"{self.split_file}); {self.remedy}"
                )
