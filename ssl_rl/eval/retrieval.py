"""Nearest-neighbour retrieval by cosine similarity (SPEC §3, Table 1 / Fig. 5).

Test samples are queries, training samples the gallery; a query is correct at k if its class
appears among its k nearest gallery samples [paper]. The query × gallery similarity matrix is
never built: queries and gallery are processed in blocks while a running top-k is kept per query.

Tie rule: neighbours are ordered by similarity (descending), equal similarities by gallery index
(ascending). The result is therefore deterministic and independent of the chunk sizes.

Similarities are computed in float32 whatever the feature dtype (half-precision features are cast
per block). On CUDA, ``torch.mm`` in float32 follows ``torch.backends.cuda.matmul.allow_tf32``;
set ``torch.set_float32_matmul_precision("highest")`` for full float32 products.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from torch import Tensor

log = logging.getLogger(__name__)

DEFAULT_KS: tuple[int, ...] = (1, 5, 10, 20, 50)
DEFAULT_QUERY_CHUNK = 1024
DEFAULT_GALLERY_CHUNK = 8192
_NORM_EPS = 1e-12  # as in torch.nn.functional.normalize


def _check_features(features: Tensor, name: str) -> None:
    if features.dim() < 2 or features.shape[0] == 0:
        raise ValueError(
            f"{name} must have shape (N, ...) with N >= 1 (flattened to (N, D)); "
            f"got {tuple(features.shape)}"
        )


def _check_chunk(chunk: int, name: str) -> None:
    if chunk < 1:
        raise ValueError(f"{name} must be >= 1, got {chunk}")


def _inverse_norms(features: Tensor, chunk: int, name: str) -> Tensor:
    """1 / ||x|| per sample in float32, computed blockwise so no full float32 copy is made."""
    norms = torch.empty(features.shape[0], dtype=torch.float32, device=features.device)
    for start in range(0, features.shape[0], chunk):
        block = features[start : start + chunk].flatten(1).float()
        if not torch.isfinite(block).all():
            raise ValueError(f"{name} contain NaN or infinite values (rows from {start})")
        norms[start : start + chunk] = block.norm(dim=1)
    zero_rows = int((norms <= _NORM_EPS).sum())
    if zero_rows:
        log.warning(
            "%d of %d %s are all-zero vectors: their cosine similarity is 0 to everything",
            zero_rows,
            features.shape[0],
            name,
        )
    return 1.0 / norms.clamp_min(_NORM_EPS)


def _block_top_k(similarities: Tensor, k: int, offset: int) -> tuple[Tensor, Tensor]:
    """The k best columns of a (q, g) block, ties towards the lower column, in column order.

    Returns (values, global gallery indices), each (q, min(k, g)), columns ascending per row.
    """
    num_rows, num_columns = similarities.shape
    if num_columns <= k:
        indices = torch.arange(num_columns, device=similarities.device)
        indices = indices.expand(num_rows, num_columns)
        return similarities, indices + offset
    # The k-th largest value is unique even though topk's choice among ties is not.
    kth = similarities.topk(k, dim=1, sorted=False).values.amin(dim=1, keepdim=True)
    take = similarities >= kth
    # Rows with more than k candidates have surplus ties at the k-th value: keep the first ones.
    surplus_rows = (take.sum(dim=1) > k).nonzero().flatten()
    if surplus_rows.numel():
        candidates = similarities[surplus_rows]
        tied = candidates == kth[surplus_rows]
        still_needed = k - (candidates > kth[surplus_rows]).sum(dim=1, keepdim=True)
        drop = tied & (tied.cumsum(dim=1) > still_needed)
        take[surplus_rows] &= ~drop
    # Exactly k entries per row are taken; nonzero() lists them row by row, columns ascending.
    columns_taken = take.nonzero()[:, 1].view(num_rows, k)
    return similarities.gather(1, columns_taken), columns_taken + offset


def _merge(
    best_values: Tensor, best_indices: Tensor, values: Tensor, indices: Tensor, k: int
) -> tuple[Tensor, Tensor]:
    # Running best is sorted (value desc, index asc) and all its indices are below the new block's,
    # which come in index order: a stable descending sort keeps equal values in index order.
    all_values = torch.cat([best_values, values], dim=1)
    all_indices = torch.cat([best_indices, indices], dim=1)
    order = all_values.sort(dim=1, descending=True, stable=True).indices[:, :k]
    return all_values.gather(1, order), all_indices.gather(1, order)


def nearest_neighbours(
    query_features: Tensor,
    gallery_features: Tensor,
    k: int,
    query_chunk: int = DEFAULT_QUERY_CHUNK,
    gallery_chunk: int = DEFAULT_GALLERY_CHUNK,
) -> tuple[Tensor, Tensor]:
    """The k most cosine-similar gallery samples per query.

    Features are (N, ...) and flattened to (N, D); any floating dtype. Returns
    (similarities (Q, k) float32, gallery indices (Q, k) int64), ordered by similarity
    descending, equal similarities by gallery index ascending. Runs on the inputs' device.
    """
    _check_features(query_features, "query features")
    _check_features(gallery_features, "gallery features")
    _check_chunk(query_chunk, "query_chunk")
    _check_chunk(gallery_chunk, "gallery_chunk")
    if query_features[0].numel() != gallery_features[0].numel():
        raise ValueError(
            f"query and gallery feature sizes differ: {tuple(query_features.shape[1:])} vs "
            f"{tuple(gallery_features.shape[1:])}"
        )
    if query_features.device != gallery_features.device:
        raise ValueError(
            f"query features on {query_features.device}, gallery on {gallery_features.device}"
        )
    num_gallery = gallery_features.shape[0]
    if not 1 <= k <= num_gallery:
        raise ValueError(f"k must be in [1, gallery size = {num_gallery}], got {k}")

    device = query_features.device
    query_scale = _inverse_norms(query_features, query_chunk, "query features")
    gallery_scale = _inverse_norms(gallery_features, gallery_chunk, "gallery features")
    out_values, out_indices = [], []
    for q_start in range(0, query_features.shape[0], query_chunk):
        queries = query_features[q_start : q_start + query_chunk].flatten(1).float()
        queries = queries * query_scale[q_start : q_start + query_chunk, None]
        best_values = torch.empty(queries.shape[0], 0, dtype=torch.float32, device=device)
        best_indices = torch.empty(queries.shape[0], 0, dtype=torch.long, device=device)
        for g_start in range(0, num_gallery, gallery_chunk):
            gallery = gallery_features[g_start : g_start + gallery_chunk].flatten(1).float()
            similarities = torch.mm(queries, gallery.t())
            similarities *= gallery_scale[None, g_start : g_start + gallery_chunk]
            values, indices = _block_top_k(similarities, k, g_start)
            best_values, best_indices = _merge(best_values, best_indices, values, indices, k)
        out_values.append(best_values)
        out_indices.append(best_indices)
    return torch.cat(out_values), torch.cat(out_indices)


def _check_ks(ks: Sequence[int]) -> list[int]:
    ks = [int(k) for k in ks]
    if not ks or min(ks) < 1 or len(set(ks)) != len(ks):
        raise ValueError(f"ks must be distinct positive integers, got {ks}")
    return ks


def _check_labels(labels: Tensor, features: Tensor, name: str) -> None:
    if labels.dim() != 1 or labels.shape[0] != features.shape[0]:
        raise ValueError(
            f"{name} labels must have shape ({features.shape[0]},), got {tuple(labels.shape)}"
        )
    if labels.is_floating_point() or labels.is_complex():
        raise ValueError(f"{name} labels must be integer class indices, got {labels.dtype}")


def knn_hits(
    query_features: Tensor,
    query_labels: Tensor,
    gallery_features: Tensor,
    gallery_labels: Tensor,
    ks: Sequence[int] = DEFAULT_KS,
    query_chunk: int = DEFAULT_QUERY_CHUNK,
    gallery_chunk: int = DEFAULT_GALLERY_CHUNK,
) -> Tensor:
    """(Q, len(ks)) bool: whether query i's class is among its ks[j] nearest gallery samples."""
    ks = _check_ks(ks)
    _check_labels(query_labels, query_features, "query")
    _check_labels(gallery_labels, gallery_features, "gallery")
    if max(ks) > gallery_features.shape[0]:
        raise ValueError(
            f"k = {max(ks)} exceeds the gallery size {gallery_features.shape[0]}; "
            "use smaller ks or a larger gallery"
        )
    _, indices = nearest_neighbours(
        query_features, gallery_features, max(ks), query_chunk, gallery_chunk
    )
    neighbour_labels = gallery_labels.to(indices.device)[indices]
    matches = neighbour_labels == query_labels.to(indices.device)[:, None]
    found_by_rank = matches.cumsum(dim=1) > 0
    return found_by_rank[:, [k - 1 for k in ks]]


def knn_topk_accuracy(
    query_features: Tensor,
    query_labels: Tensor,
    gallery_features: Tensor,
    gallery_labels: Tensor,
    ks: Sequence[int] = DEFAULT_KS,
    query_chunk: int = DEFAULT_QUERY_CHUNK,
    gallery_chunk: int = DEFAULT_GALLERY_CHUNK,
) -> dict[int, float]:
    """Fraction of queries whose class is among their k nearest gallery samples, per k."""
    hits = knn_hits(
        query_features,
        query_labels,
        gallery_features,
        gallery_labels,
        ks,
        query_chunk,
        gallery_chunk,
    )
    accuracy = hits.float().mean(dim=0).tolist()
    return {int(k): value for k, value in zip(ks, accuracy, strict=True)}
