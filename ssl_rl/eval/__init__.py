"""Evaluation protocols (SPEC §3): metrics as pure tensor functions and the transfer tasks."""

from ssl_rl.eval.retrieval import knn_hits, knn_topk_accuracy, nearest_neighbours
from ssl_rl.eval.video_accuracy import average_by_video, video_accuracy
from ssl_rl.eval.voc_ap import (
    average_precision_stepwise,
    average_precision_voc07,
    mean_average_precision,
)

__all__ = [
    "average_by_video",
    "average_precision_stepwise",
    "average_precision_voc07",
    "knn_hits",
    "knn_topk_accuracy",
    "mean_average_precision",
    "nearest_neighbours",
    "video_accuracy",
]
