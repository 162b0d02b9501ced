"""Keeps a running window of training metrics, for a run's final summary."""

from __future__ import annotations

from collections import defaultdict, deque
from typing import Any

import pytorch_lightning as pl


class TrainMetricWindow(pl.Callback):
    """Mean of each ``train/*`` metric over its last ``window`` logged values (one is too noisy).

    Reads the module's ``logged_train_metrics``, which holds only the tasks that trained at
    the logged step, so a finished S&T phase keeps its last values instead of stale repeats.
    """

    def __init__(self, window: int = 50) -> None:
        self.window = window
        self.values: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=self.window))

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, i: int
    ) -> None:
        logged = getattr(pl_module, "logged_train_metrics", {})
        for key, value in logged.items():
            self.values[key].append(value)
        logged.clear()

    def means(self) -> dict[str, float]:
        return {key: sum(v) / len(v) for key, v in self.values.items() if v}

    # In checkpoints, so a resumed run's summary equals the uninterrupted run's.
    def state_dict(self) -> dict[str, Any]:
        return {"window": self.window, "values": {k: list(v) for k, v in self.values.items()}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.window = state_dict["window"]
        self.values.clear()
        for key, values in state_dict["values"].items():
            self.values[key].extend(values)
