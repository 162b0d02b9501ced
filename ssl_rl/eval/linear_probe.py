"""ImageNet linear probes on frozen conv1…conv5 (Zhang et al.'s protocol) [paper]."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssl_rl.nets.caffenet import CONV_LAYERS, CaffeNetTrunk
from ssl_rl.optimization import with_step_scheduler


def pooled_side(channels: int, spatial: int, target_dim: int) -> int:
    """Side s of the average-pooled map so that channels·s² is closest to ``target_dim``."""
    best = min(range(1, spatial + 1), key=lambda s: (abs(channels * s * s - target_dim), -s))
    return best


class LinearProbes(pl.LightningModule):
    """One linear classifier per conv layer on the frozen trunk, trained side by side.

    Each layer's activation is average-pooled to about ``target_dim`` features (≈9k [paper]),
    flattened, batch-normalised without affine parameters, and fed to a linear layer. The
    trunk is frozen and stays in eval mode (its batch-norm statistics are not updated).
    """

    def __init__(
        self,
        trunk: CaffeNetTrunk,
        num_classes: int,
        input_size: int,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        layers: Sequence[str] = CONV_LAYERS,
        target_dim: int = 9000,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["trunk", "optimizer", "scheduler"])
        self.trunk = trunk.requires_grad_(False)
        self.layers = list(layers)
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        sizes = trunk.layer_sizes(input_size)
        channels = dict(zip(CONV_LAYERS, trunk.channels, strict=True))
        self.pools = nn.ModuleDict()
        self.probes = nn.ModuleDict()
        self.feature_dims: dict[str, int] = {}
        for layer in self.layers:
            side = pooled_side(channels[layer], min(sizes[layer]), target_dim)
            dim = channels[layer] * side * side
            self.feature_dims[layer] = dim
            self.pools[layer] = nn.AdaptiveAvgPool2d(side)
            self.probes[layer] = nn.Sequential(
                nn.Flatten(), nn.BatchNorm1d(dim, affine=False), nn.Linear(dim, num_classes)
            )
        self._correct: dict[str, Tensor] = {}
        self._count = 0
        self.last_metrics: dict[str, float] = {}

    def train(self, mode: bool = True) -> LinearProbes:
        super().train(mode)
        self.trunk.eval()  # frozen features: batch-norm uses its pretrained statistics
        return self

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        with torch.no_grad():
            acts = self.trunk.forward_layers(images, self.layers)
        return {name: self.probes[name](self.pools[name](acts[name])) for name in self.layers}

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        images, labels = batch
        logits = self(images)
        losses = {name: F.cross_entropy(out, labels) for name, out in logits.items()}
        for name, loss in losses.items():
            self.log(f"train/{name}/loss", loss, batch_size=len(images))
        return torch.stack(list(losses.values())).sum()

    def on_validation_epoch_start(self) -> None:
        self._correct = {name: torch.zeros((), device=self.device) for name in self.layers}
        self._count = 0

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        images, labels = batch
        for name, out in self(images).items():
            self._correct[name] += (out.argmax(dim=1) == labels).sum()
        self._count += len(labels)

    def on_validation_epoch_end(self) -> None:
        count = max(self._count, 1)
        self.last_metrics = {
            f"val/{name}/top1": self._correct[name].item() / count for name in self.layers
        }
        self.log_dict(self.last_metrics)

    def configure_optimizers(self) -> Any:
        params = [p for p in self.parameters() if p.requires_grad]
        return with_step_scheduler(self.optimizer_factory(params), self.scheduler_factory)
