"""The host-synchronisation report: counted per training step, located, wired into the run."""

from __future__ import annotations

import traceback
import warnings

from ssl_rl.callbacks import host_syncs
from ssl_rl.callbacks.host_syncs import SYNC_MESSAGE, HostSyncReport
from ssl_rl.policy import samplers
from ssl_rl.run.end_report import end_report
from ssl_rl.run.training import train


def test_a_run_counts_the_synchronisations_of_its_steps(compose_train, monkeypatch) -> None:
    """Each permutation draw is made to warn as CUDA's sync debug mode does: two a step."""
    emitted = []
    original = samplers.to_device_async

    def synchronising_copy(tensor, device):
        emitted.append(1)
        warnings.warn(SYNC_MESSAGE, UserWarning, stacklevel=1)
        return original(tensor, device)

    monkeypatch.setattr(samplers, "to_device_async", synchronising_copy)
    cfg = compose_train(
        [
            "experiment=st",
            "trainer.max_steps=5",
            "callbacks.host_syncs.start_step=1",
            "callbacks.host_syncs.steps=3",
            "callbacks.host_syncs.device_types=[cpu]",
        ]
    )
    summary = train(cfg)
    report = summary["host_syncs"]
    assert report["steps"] == 3 and report["per_step"] == 2.0
    (where,) = report["locations"]
    assert where.startswith("tests/test_host_syncs.py:") and "synchronising_copy" in where
    assert len(emitted) == 10  # 5 steps x 2 tasks: only the window's steps were counted
    assert "host synchronisations: 2.00 per training step" in end_report(summary, "summary.json")


def test_off_by_default_and_nothing_to_count_on_a_cpu(compose_train) -> None:
    summary = train(compose_train(["experiment=s", "trainer.max_steps=2"]))
    assert "host_syncs" not in summary
    cfg = compose_train(
        ["experiment=s", "trainer.max_steps=2", "callbacks.host_syncs.start_step=0",
         "callbacks.host_syncs.steps=2"]
    )  # fmt: skip
    assert "host_syncs" not in train(cfg)  # the default device_types is cuda


def test_evaluations_inside_training_are_not_counted() -> None:
    report = HostSyncReport(start_step=0, steps=2, device_types=("cpu",))
    report._start()
    try:
        warnings.warn(SYNC_MESSAGE, UserWarning, stacklevel=1)
        report.on_evaluation_start(None)
        warnings.warn(SYNC_MESSAGE, UserWarning, stacklevel=1)
        warnings.warn("something else", UserWarning, stacklevel=1)  # shown as usual
        report.on_evaluation_end(None)
        report.counted_steps = 1
    finally:
        report._stop()
    assert sum(report.locations.values()) == 1
    assert report.summary()["per_step"] == 1.0


def test_a_synchronisation_is_placed_at_the_innermost_project_line() -> None:
    frames = [
        traceback.FrameSummary("/x/ssl_rl/module.py", 10, "training_step"),
        traceback.FrameSummary("/x/ssl_rl/policy/samplers.py", 61, "_emit"),
        traceback.FrameSummary("/venv/site-packages/torch/nn/modules/module.py", 5, "_call"),
        traceback.FrameSummary("/usr/lib/python3.11/warnings.py", 1, "_showwarnmsg"),
    ]
    stack = traceback.StackSummary.from_list(frames)
    where = host_syncs._project_line(stack, "/elsewhere.py", 1)
    assert where == "ssl_rl/policy/samplers.py:61 (_emit)"
