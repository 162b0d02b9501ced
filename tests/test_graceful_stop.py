"""Stop signals in-process: submitit's requeue signal checkpoints, then hands over to submitit."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import torch

from ssl_rl.module import OrderingPretrainer
from ssl_rl.run.errors import RunInterrupted
from ssl_rl.run.training import train


def test_submitit_signal_saves_then_calls_submitits_handler(
    compose_train, monkeypatch: pytest.MonkeyPatch
) -> None:
    received: list[int] = []

    def submitit_handler(signum: int, frame: Any) -> None:
        received.append(signum)

    previous = signal.signal(signal.SIGUSR2, submitit_handler)
    original = OrderingPretrainer.training_step

    def signal_at_step_1(self: OrderingPretrainer, batch: Any, batch_idx: int) -> Any:
        if self.trainer.global_step == 1:
            os.kill(os.getpid(), signal.SIGUSR2)  # mid-step, as SLURM would
        return original(self, batch, batch_idx)

    monkeypatch.setattr(OrderingPretrainer, "training_step", signal_at_step_1)
    cfg = compose_train(["experiment=s", "trainer.max_steps=6"])
    try:
        with pytest.raises(RunInterrupted) as stop:
            train(cfg, reraise=False)  # a sweep job: the stop still ends it
        assert received == []  # submitit's handler runs only after the summary is written
        summary = json.loads((Path(cfg.paths.output_dir) / "summary.json").read_text())
        assert summary["status"] == "interrupted" and summary["signal"] == "SIGUSR2"
        assert summary["steps"] == 2  # step 1 finished, then the boundary
        checkpoint = torch.load(summary["checkpoint"], weights_only=False)
        assert checkpoint["global_step"] == 2
        assert stop.value.then is not None
        stop.value.then()
        assert received == [signal.SIGUSR2]
        assert signal.getsignal(signal.SIGUSR2) is submitit_handler  # ours is gone again
    finally:
        signal.signal(signal.SIGUSR2, previous)
