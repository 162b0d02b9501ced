"""The policy's rank hooks (``ssl_rl.policy.communicator``) on a Lightning trainer's strategy."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import Tensor

from ssl_rl.policy.communicator import Communicator


class LightningCommunicator(Communicator):
    """Broadcast and gather through ``trainer.strategy``; a single process without a trainer."""

    def __init__(self, trainer: pl.Trainer | None = None) -> None:
        self.trainer = trainer  # set at train start: the hooks act on the running trainer

    def _distributed(self) -> pl.Trainer | None:
        trainer = self.trainer
        return trainer if trainer is not None and trainer.world_size > 1 else None

    def broadcast(self, tensor: Tensor) -> Tensor:
        trainer = self._distributed()
        if trainer is None:
            return tensor
        return trainer.strategy.broadcast(tensor, src=0)

    def gather(self, values: Tensor) -> Tensor:
        trainer = self._distributed()
        if trainer is None:
            return values
        strategy = trainer.strategy
        return strategy.all_gather(values.to(strategy.root_device)).flatten().cpu()

    def agree(self, fingerprint: Tensor) -> bool:
        trainer = self._distributed()
        if trainer is None:
            return True
        strategy = trainer.strategy
        gathered = strategy.all_gather(fingerprint.to(strategy.root_device))
        return torch.equal(gathered.min(dim=0).values, gathered.max(dim=0).values)
