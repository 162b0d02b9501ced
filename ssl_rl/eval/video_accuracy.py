"""TSN-style video accuracy (SPEC §3): a video's prediction averages its frames' predictions.

Frames are averaged as softmax probabilities by default (``average="probabilities"``);
``average="logits"`` averages the raw scores instead, as TSN's test script does. The predicted
class is the argmax of the average, ties going to the lower class index (``torch.argmax``).
Averages are computed in at least float32. On CUDA ``index_add_`` sums in a nondeterministic
order, so near-tied videos may differ in the last bit between runs.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

Average = Literal["probabilities", "logits"]


def _check_integer(tensor: Tensor, name: str) -> None:
    if tensor.dim() != 1 or tensor.is_floating_point() or tensor.is_complex():
        raise ValueError(
            f"{name} must be a 1-D integer tensor, got {tensor.dtype} {tuple(tensor.shape)}"
        )


def average_by_video(
    frame_logits: Tensor,
    video_ids: Tensor,
    num_videos: int,
    average: Average = "probabilities",
) -> Tensor:
    """(num_videos, C) mean frame prediction per video; every video needs at least one frame."""
    if frame_logits.dim() != 2 or frame_logits.shape[0] == 0:
        raise ValueError(f"frame_logits must have shape (N, C), got {tuple(frame_logits.shape)}")
    if not frame_logits.is_floating_point() or not torch.isfinite(frame_logits).all():
        raise ValueError("frame_logits must be finite floating-point values")
    _check_integer(video_ids, "video_ids")
    if video_ids.shape[0] != frame_logits.shape[0]:
        raise ValueError(
            f"{video_ids.shape[0]} video ids for {frame_logits.shape[0]} frames: need one per frame"
        )
    if int(video_ids.min()) < 0 or int(video_ids.max()) >= num_videos:
        raise ValueError(f"video_ids must lie in [0, {num_videos}), got {video_ids.min()}..")
    if average not in ("probabilities", "logits"):
        raise ValueError(f"average must be 'probabilities' or 'logits', got {average!r}")

    dtype = torch.promote_types(frame_logits.dtype, torch.float32)
    scores = frame_logits.to(dtype)
    if average == "probabilities":
        scores = scores.softmax(dim=1)
    video_ids = video_ids.to(device=frame_logits.device, dtype=torch.long)
    sums = scores.new_zeros(num_videos, scores.shape[1]).index_add_(0, video_ids, scores)
    counts = torch.bincount(video_ids, minlength=num_videos)
    if not (counts > 0).all():
        empty = (counts == 0).nonzero().flatten()
        raise ValueError(
            f"{empty.numel()} of {num_videos} videos have no frames "
            f"(first ids: {empty[:10].tolist()}); every video needs at least one frame"
        )
    return sums / counts[:, None].to(dtype)


def video_accuracy(
    frame_logits: Tensor,
    video_ids: Tensor,
    video_labels: Tensor,
    average: Average = "probabilities",
) -> float:
    """Top-1 accuracy over videos of the frame-averaged prediction (video_labels: (V,))."""
    _check_integer(video_labels, "video_labels")
    if video_labels.numel() == 0:
        raise ValueError("video_labels is empty: need one label per video")
    num_classes = frame_logits.shape[-1]
    if int(video_labels.min()) < 0 or int(video_labels.max()) >= num_classes:
        raise ValueError(f"video_labels must lie in [0, {num_classes}) (the number of classes)")
    averaged = average_by_video(frame_logits, video_ids, video_labels.shape[0], average)
    predicted = averaged.argmax(dim=1)
    return float((predicted == video_labels.to(predicted.device)).float().mean())
