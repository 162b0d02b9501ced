"""The offline demo data: generated once, in the real on-disk formats, into a cache folder."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ssl_rl.data.prepare_frames import extract_all
from ssl_rl.data.synthetic.hmdb import ensure_hmdb_dataset
from ssl_rl.data.synthetic.images import ensure_image_dataset
from ssl_rl.data.synthetic.videos import ensure_video_dataset
from ssl_rl.data.synthetic.voc import ensure_voc_dataset

log = logging.getLogger(__name__)


def ensure_demo_data(
    root: str | Path,
    images: Mapping[str, Any],
    videos: Mapping[str, Any],
    voc07: Mapping[str, Any] | None = None,
    extract_frames: Mapping[str, Any] | None = None,
    hmdb51: bool = False,
) -> Path:
    """Generate what is missing of the demo datasets under ``root``; return the root.

    Layout: ``imagenet/{train,val}/<wnid>/*.JPEG`` (ImageFolder), ``ucf101/UCF-101/<Class>/*.avi``
    with ``ucf101/ucfTrainTestlist/`` (the official release), and, when ``extract_frames`` is
    set, the videos' frames pre-extracted to ``ucf101/frames/<Class>/<video>/img_00001.jpg``;
    with ``voc07``, ``voc/VOCdevkit/VOC2007`` (retrieval, classification and detection transfer)
    and ``voc/VOCdevkit/VOC2012`` (segmentation); with ``hmdb51``, the videos again in HMDB-51's
    layout under ``hmdb51/`` (``videos/<class>/*.avi``, ``testTrainMulti_7030_splits/``).
    """
    root = Path(root)
    ensure_image_dataset(root / "imagenet", **images)
    ensure_video_dataset(root / "ucf101", **videos)
    frames = extract_frames
    if frames:
        extract_all(
            root / "ucf101" / "UCF-101",
            root / "ucf101" / "frames",
            workers=frames.get("workers", 2),
            short_side=frames.get("short_side"),
        )
    if voc07:
        ensure_voc_dataset(root / "voc", **voc07)
    if hmdb51:
        ensure_hmdb_dataset(root / "hmdb51", root / "ucf101")
    log.info("demo data ready under %s", root)
    return root
