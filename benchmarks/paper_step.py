"""One S+T training step at the paper's shapes on synthetic in-memory batches (no loaders)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import torch
from omegaconf import DictConfig

from benchmarks.config import compose_train
from ssl_rl.module import OrderingPretrainer
from ssl_rl.run.training import build_data_and_model


def paper_model(overrides: list[str]) -> tuple[DictConfig, OrderingPretrainer, torch.device]:
    """``experiment=st_policy scale=paper`` with ``overrides``, on the GPU when there is one."""
    cfg = compose_train(
        ["experiment=st_policy", "scale=paper", *overrides], Path(tempfile.mkdtemp())
    )
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cudnn.benchmark = bool(cfg.trainer.benchmark)
    return cfg, build_data_and_model(cfg)[1].to(device), device


def random_parts(model: OrderingPretrainer, count: int, device: torch.device) -> dict:
    """Standardised-looking parts (B, n, 3, s, s) per task."""
    return {
        name: torch.randn(count, task.num_parts, 3, task.part_size, task.part_size, device=device)
        for name, task in model.tasks.items()
    }


def training_step(
    model: OrderingPretrainer, parts: dict, device: torch.device, check_loss: bool = False
) -> Callable[[], None]:
    """One optimiser step as training runs it (bf16 autocast on CUDA); ``check_loss`` adds a
    host synchronisation per step (reading whether the loss is finite)."""
    optimizer = model.configure_optimizers()
    if isinstance(optimizer, dict):
        optimizer = optimizer["optimizer"]
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    )

    def step() -> None:
        with autocast:
            loss = sum(
                model._task_loss(t, p, model.samplers[t].draw(len(p), device))[0]
                for t, p in parts.items()
            )
        if check_loss and not bool(torch.isfinite(loss)):
            raise FloatingPointError("non-finite loss")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step
