"""Frozen-trunk features of a whole dataset, on the device."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from ssl_rl.nets.caffenet import CaffeNetTrunk


@dataclass
class FeatureSet:
    """Features (N, D), labels (N,) and the dataset item each row came from (N,)."""

    features: Tensor
    labels: Tensor
    item_ids: Tensor


@torch.no_grad()
def extract_features(
    trunk: CaffeNetTrunk,
    dataset: Dataset[tuple[Tensor, int]],
    device: torch.device | str,
    layer: str = "pool5",
    batch_size: int = 64,
    num_workers: int = 0,
    storage_dtype: torch.dtype = torch.float32,
) -> FeatureSet:
    """Flattened ``layer`` activations of every sample of ``dataset`` (items ``(x, label)``).

    ``x`` is one image (3, h, w) or several frames of one item (F, 3, h, w); every frame
    becomes a row and keeps its item's label and id. The trunk runs in eval mode (batch-norm
    running statistics) and is put back in its previous mode. ``storage_dtype`` (e.g. float16)
    halves the memory of a large gallery; retrieval accumulates in float32 anyway.
    """
    device = torch.device(device)
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, shuffle=False)
    was_training = trunk.training
    trunk.eval()
    features, labels, item_ids = [], [], []
    offset = 0
    try:
        for inputs, targets in loader:
            per_item = 1 if inputs.dim() == 4 else inputs.shape[1]
            flat = inputs.flatten(0, 1) if inputs.dim() == 5 else inputs
            out = trunk.forward_until(flat.to(device, non_blocking=True), layer).flatten(1)
            features.append(out.to(storage_dtype))
            ids = torch.arange(offset, offset + len(targets))
            labels.append(torch.as_tensor(targets).repeat_interleave(per_item))
            item_ids.append(ids.repeat_interleave(per_item))
            offset += len(targets)
    finally:
        trunk.train(was_training)
    if not features:
        raise ValueError("extract_features got an empty dataset")
    return FeatureSet(
        torch.cat(features),
        torch.cat(labels).to(device),
        torch.cat(item_ids).to(device),
    )
