"""Nearest-neighbour retrieval with pool5 features [paper, Table 1 / Fig. 5]."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

import torch
from torch.utils.data import Dataset

from ssl_rl.eval.features import extract_features
from ssl_rl.eval.retrieval import knn_topk_accuracy
from ssl_rl.nets.caffenet import CaffeNetTrunk

PAPER_KS: tuple[int, ...] = (1, 5, 10, 20, 50)


class _LoaderArgs(TypedDict):
    batch_size: int
    num_workers: int


def retrieval_topk(
    trunk: CaffeNetTrunk,
    queries: Dataset[tuple[torch.Tensor, int]],
    gallery: Dataset[tuple[torch.Tensor, int]],
    device: torch.device | str,
    ks: Sequence[int] = PAPER_KS,
    batch_size: int = 64,
    num_workers: int = 0,
    storage_dtype: torch.dtype = torch.float32,
) -> dict[str, float]:
    """Top-k accuracy (``{"top1": ..., "top5": ...}``) of every query frame / crop against the
    gallery, by cosine similarity of flattened pool5 features; mean over queries. A k larger
    than the gallery is a ValueError.
    """
    loader_args: _LoaderArgs = {"batch_size": batch_size, "num_workers": num_workers}
    gallery_set = extract_features(
        trunk, gallery, device, storage_dtype=storage_dtype, **loader_args
    )
    query_set = extract_features(trunk, queries, device, storage_dtype=storage_dtype, **loader_args)
    accuracy = knn_topk_accuracy(
        query_set.features,
        query_set.labels,
        gallery_set.features,
        gallery_set.labels,
        ks=tuple(ks),
    )
    return {f"top{k}": float(v) for k, v in accuracy.items()}
