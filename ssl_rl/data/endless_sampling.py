"""Endless, rank-sharded, resumable sampling of training data with per-draw seeds."""

from __future__ import annotations

import random
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler


class EndlessShuffleSampler(Sampler[tuple[int, int]]):
    """Yields ``(index, draw_seed)`` forever: a fresh shuffle every pass, one shard per rank.

    Every draw carries its own seed, so a sample's augmentation depends on the draw alone,
    not on the worker that loads it; with ``start`` draws skipped, a resumed run sees exactly
    the data the uninterrupted run would have seen.
    """

    def __init__(self, size: int, seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        if size < world_size:
            raise ValueError(f"dataset of {size} samples cannot be sharded over {world_size} ranks")
        self.size = size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.start = 0

    def __iter__(self) -> Iterator[tuple[int, int]]:
        shard = len(range(self.rank, self.size, self.world_size))
        epoch, offset = divmod(self.start, shard)
        draw = self.start
        while True:
            order = torch.randperm(self.size, generator=self._epoch_generator(epoch))
            for index in order[self.rank :: self.world_size][offset:].tolist():
                yield index, self._draw_seed(draw)
                draw += 1
            epoch, offset = epoch + 1, 0

    def _epoch_generator(self, epoch: int) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)

    def _draw_seed(self, draw: int) -> int:
        return (self.seed * 2_654_435_761 + self.rank * 97_531 + draw * 40_503) % 2**63


class SeededDraws(Dataset[object]):
    """Wraps a dataset so that ``dataset[(index, seed)]`` seeds the RNGs before loading."""

    def __init__(self, dataset: Dataset[object]) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, item: tuple[int, int]) -> object:
        index, seed = item
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        random.seed(seed)
        return self.dataset[index]
