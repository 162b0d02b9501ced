"""The pretraining module: permutation on the device, per-head learning rates, schedules."""

from __future__ import annotations

import pytest
import torch

from ssl_rl.permutations import apply_permutation
from ssl_rl.run.training import build_data_and_model
from ssl_rl.schedule import TaskSchedule


@pytest.fixture
def model(compose_train):
    cfg = compose_train(["experiment=st", "tasks.temporal.lr_scale=10"])
    return build_data_and_model(cfg)[1]


def test_heads_get_their_learning_rate_scale(model) -> None:
    optimizer = model.configure_optimizers()["optimizer"]
    rates = {group["name"]: group["lr"] for group in optimizer.param_groups}
    assert rates == {"trunk": 0.01, "head_spatial": 0.01, "head_temporal": pytest.approx(0.1)}
    counted = sum(p.numel() for g in optimizer.param_groups for p in g["params"])
    assert counted == sum(p.numel() for p in model.parameters())


def test_training_loss_uses_the_drawn_permutation_as_label(model) -> None:
    parts = torch.randn(4, 9, 3, 36, 36)
    idx = torch.tensor([0, 3, 5, 11])
    model.eval()
    loss, _ = model._task_loss("spatial", parts, idx)
    orders = model.permutations["spatial"].perms[idx]
    logits = model("spatial", apply_permutation(parts, orders))
    expected = torch.nn.functional.cross_entropy(logits, idx).item()
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_score_all_permutations_matches_shuffled_forward(model) -> None:
    model.eval()
    parts = torch.randn(2, 8, 3, 36, 36)
    scores = model.score_all_permutations("temporal", parts, chunk_size=5)
    perms = model.permutations["temporal"].perms
    for q in (0, 7):
        shuffled = apply_permutation(parts, perms[q].expand(2, -1))
        torch.testing.assert_close(scores[:, q], model("temporal", shuffled), atol=1e-4, rtol=0)


def test_sequential_schedule_counts_active_steps() -> None:
    schedule = TaskSchedule.build(["spatial", "temporal"], "sequential", [0.5], max_steps=10)
    assert [schedule.active(s) for s in (0, 4, 5, 9)] == [
        ("spatial",),
        ("spatial",),
        ("temporal",),
        ("temporal",),
    ]
    for until in range(12):
        for task in ("spatial", "temporal"):
            expected = sum(task in schedule.active(s) for s in range(until))
            assert schedule.steps_active(task, until) == expected
    with pytest.raises(ValueError, match="switch_fractions"):
        TaskSchedule.build(["spatial", "temporal"], "sequential", [])


def test_validation_ratios_of_a_task_without_order_shortcut(compose_train) -> None:
    """Rotation: one forward pass per class gives the same s as scoring each class alone."""
    _, model = build_data_and_model(compose_train(["experiment=str"]))
    assert list(model.tasks) == ["spatial", "temporal", "rotation"]
    size = model.tasks["rotation"].part_size
    parts = torch.randn(3, 1, 3, size, size)
    s = model.validation_ratios("rotation", parts)
    assert s.shape == (4, 3) and model.training
    model.eval()
    for k in range(4):
        idx = torch.full((3,), k)
        probs = model("rotation", model.permutations["rotation"].transform(parts, idx)).softmax(-1)
        others = probs.clone()
        others[torch.arange(3), k] = -1
        expected = (probs[torch.arange(3), k] + 1) / (others.max(dim=1).values + 1)  # Eq. 3
        torch.testing.assert_close(s[k], expected, atol=1e-5, rtol=1e-4)


def test_a_scheduled_task_the_config_does_not_define_is_named(compose_train) -> None:
    cfg = compose_train(["experiment=s", "schedule.tasks=[spatial,jigsaw4]"])
    with pytest.raises(ValueError, match=r"names task\(s\) \['jigsaw4'\].*conf/task/<name>.yaml"):
        build_data_and_model(cfg)
