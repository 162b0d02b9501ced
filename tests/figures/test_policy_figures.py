"""The policy's figures (Fig. 4, Fig. 6) and logging them to W&B / TensorBoard / CSV."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import to_rgba
from PIL import Image
from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger

from ssl_rl.figures.image_logging import log_figure, to_rgb_array
from ssl_rl.figures.policy import (
    EmptyHistoryError,
    bin_fractions,
    bin_groups,
    figure_to_rgb,
    group_choice_figure,
    permutation_error_heatmap,
    policy_probability_figure,
    save_png,
    sort_by_mean_error,
)
from tests.fixtures.offline_wandb import use_offline_wandb

K = 10


def random_fractions(episodes: int, k: int = K, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.ones(k), size=episodes)


# --- binning --------------------------------------------------------------------------------


def test_bin_groups_paper_split_is_symmetric() -> None:
    assert bin_groups(10, 4) == [range(0, 3), range(3, 5), range(5, 7), range(7, 10)]
    assert bin_groups(10, 10) == [range(g, g + 1) for g in range(10)]
    assert bin_groups(10, 1) == [range(0, 10)]
    assert bin_groups(10, 3) == [range(0, 4), range(4, 7), range(7, 10)]


@pytest.mark.parametrize("bins", [0, 11])
def test_bin_groups_rejects_bad_bins(bins: int) -> None:
    with pytest.raises(ValueError, match="bins"):
        bin_groups(10, bins)


def test_bin_fractions_merge_the_right_groups_and_sum_to_one() -> None:
    fractions = random_fractions(7)
    binned = bin_fractions(fractions, 4)
    assert binned.shape == (7, 4)
    np.testing.assert_allclose(binned.sum(axis=1), 1.0)
    expected = np.stack(
        [fractions[:, [0, 1, 2]].sum(1), fractions[:, [3, 4]].sum(1),
         fractions[:, [5, 6]].sum(1), fractions[:, [7, 8, 9]].sum(1)],
        axis=1,
    )  # fmt: skip
    np.testing.assert_allclose(binned, expected)
    np.testing.assert_allclose(bin_fractions(fractions, K), fractions)


def test_bin_fractions_one_hot_episodes_land_in_their_bin() -> None:
    fractions = np.eye(K)  # episode g chose only group g
    binned = bin_fractions(fractions, 4)
    assert binned.argmax(axis=1).tolist() == [0, 0, 0, 1, 1, 2, 2, 3, 3, 3]


def test_bad_fractions_are_rejected_clearly() -> None:
    with pytest.raises(EmptyHistoryError, match="no episodes"):
        bin_fractions(np.zeros((0, K)), 4)
    with pytest.raises(ValueError, match="sum to 1"):
        bin_fractions(np.full((2, K), 3.0), 4)  # counts, not fractions
    with pytest.raises(ValueError, match="non-negative"):
        bin_fractions(np.array([[1.5, -0.5]]), 1)
    with pytest.raises(ValueError, match="episodes, k"):
        bin_fractions(np.ones(K) / K, 4)


# --- sorting --------------------------------------------------------------------------------


def test_sort_by_mean_error_puts_the_hardest_first() -> None:
    num_permutations, num_validations = 50, 3
    errors = np.tile(np.arange(num_permutations) / num_permutations, (num_validations, 1))
    sorted_errors, order = sort_by_mean_error(errors)
    np.testing.assert_array_equal(order, np.arange(num_permutations)[::-1])
    np.testing.assert_allclose(sorted_errors[0], np.arange(num_permutations)[::-1] / 50)


def test_sort_uses_the_mean_over_time_not_the_last_value_and_is_stable() -> None:
    errors = np.array([[0.9, 0.2, 0.0], [0.1, 0.6, 1.0]])  # means 0.5, 0.4, 0.5
    sorted_errors, order = sort_by_mean_error(errors)
    assert order.tolist() == [0, 2, 1]
    np.testing.assert_allclose(sorted_errors, errors[:, [0, 2, 1]])


def test_bad_errors_are_rejected_clearly() -> None:
    with pytest.raises(EmptyHistoryError, match="no validations"):
        sort_by_mean_error(np.zeros((0, 5)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        sort_by_mean_error(np.array([[0.5, 1.5]]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        sort_by_mean_error(np.array([[0.5, np.nan]]))


# --- figures --------------------------------------------------------------------------------


def test_heatmap_rows_are_sorted_hardest_on_top() -> None:
    num_permutations = 20
    errors = np.tile(np.arange(num_permutations) / num_permutations, (4, 1))
    fig = permutation_error_heatmap(errors, steps=[10, 20, 30, 40])
    image = fig.axes[0].images[0]
    data = np.asarray(image.get_array())
    assert data.shape == (num_permutations, 4)  # rows = permutations, columns = time
    np.testing.assert_allclose(data[:, 0], np.arange(num_permutations)[::-1] / num_permutations)
    assert image.origin == "upper"  # row 0 (the hardest) drawn on top
    assert image.get_clim() == (0.0, 1.0)
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["10", "20", "30", "40"]


def test_heatmap_handles_one_validation_and_paper_size(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    single = permutation_error_heatmap(rng.random((1, 7)), steps=[5])
    assert [t.get_text() for t in single.axes[0].get_xticklabels()] == ["5"]
    big = permutation_error_heatmap(rng.random((20, 1000)), steps=range(0, 2000, 100))
    assert np.asarray(big.axes[0].images[0].get_array()).shape == (1000, 20)
    assert len(big.axes[0].get_xticklabels()) <= 10
    path = save_png(big, tmp_path / "heatmap.png")
    with Image.open(path) as png:
        assert png.format == "PNG" and png.width > 300 and png.height > 200


def test_heatmap_rejects_mismatched_steps() -> None:
    with pytest.raises(ValueError, match="one training step per row"):
        permutation_error_heatmap(np.zeros((3, 4)), steps=[1, 2])


def test_group_choice_figure_stacks_hard_red_on_top_easy_purple_at_bottom() -> None:
    fractions = random_fractions(6)
    fig = group_choice_figure(fractions, episodes=range(6), bins=4)
    ax = fig.axes[0]
    binned = bin_fractions(fractions, 4)
    bottom_to_top = ax.containers  # drawn from the easiest up
    assert len(bottom_to_top) == 4
    for container, b in zip(bottom_to_top, [3, 2, 1, 0], strict=True):
        np.testing.assert_allclose([bar.get_height() for bar in container], binned[:, b])
    top_bar = bottom_to_top[-1][0]
    np.testing.assert_allclose(top_bar.get_y() + top_bar.get_height(), 1.0)
    red, _, blue, _ = to_rgba(top_bar.get_facecolor())
    assert red > 0.9 and blue < 0.1
    bottom_red, _, bottom_blue, _ = to_rgba(bottom_to_top[0][0].get_facecolor())
    assert bottom_blue > bottom_red  # purple
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[0].startswith("hard") and legend[-1].startswith("easy")
    assert ax.get_xlabel() == "episode" and ax.get_ylabel() == "fraction of actions"


def test_group_choice_figure_all_groups_and_single_episode(tmp_path: Path) -> None:
    fig = group_choice_figure(random_fractions(1), bins=K, title="spatial")
    assert len(fig.axes[0].containers) == K
    assert fig.axes[0].get_title() == "spatial"
    with pytest.raises(ValueError, match="one episode per row"):
        group_choice_figure(random_fractions(3), episodes=[1, 2])
    with pytest.raises(ValueError, match="strictly increasing"):
        group_choice_figure(random_fractions(3), episodes=[1, 1, 2])


def test_policy_probability_figure_draws_one_line_per_group() -> None:
    probs = random_fractions(5)
    fig = policy_probability_figure(probs)
    lines = fig.axes[0].get_lines()
    assert len(lines) == K
    np.testing.assert_allclose(lines[3].get_ydata(), probs[:, 3])
    np.testing.assert_array_equal(lines[0].get_xdata(), np.arange(1, 6))


def test_empty_histories_raise_empty_history_error() -> None:
    with pytest.raises(EmptyHistoryError):
        group_choice_figure(np.zeros((0, K)))
    with pytest.raises(EmptyHistoryError):
        policy_probability_figure(np.zeros((0, K)))
    with pytest.raises(EmptyHistoryError):
        permutation_error_heatmap(np.zeros((0, 100)), steps=[])


def test_save_png_creates_parent_dirs_and_writes_a_valid_png(tmp_path: Path) -> None:
    fig = group_choice_figure(random_fractions(4))
    path = save_png(fig, tmp_path / "a" / "b" / "choices.png")
    assert path.is_file() and path.stat().st_size > 5_000
    with Image.open(path) as png:
        png.verify()
    with Image.open(path) as png:
        assert png.format == "PNG" and png.width > 300 and png.height > 200
    assert not fig.axes  # closed: released after saving


# --- logging --------------------------------------------------------------------------------


def test_to_rgb_array_of_figure_and_png_agree(tmp_path: Path) -> None:
    rgb = figure_to_rgb(policy_probability_figure(random_fractions(3)))
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
    assert rgb.min() < 100 < 200 < rgb.max()  # not a blank canvas
    Image.fromarray(rgb).save(tmp_path / "x.png")
    np.testing.assert_array_equal(to_rgb_array(tmp_path / "x.png"), rgb)
    with pytest.raises(FileNotFoundError, match=r"missing\.png"):
        to_rgb_array(tmp_path / "missing.png")


def _tensorboard_images(log_dir: Path) -> dict[str, list]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir), size_guidance={"images": 0})
    events.Reload()
    return {tag: events.Images(tag) for tag in events.Tags()["images"]}


def test_log_figure_to_tensorboard_and_csv(tmp_path: Path) -> None:
    tensorboard = TensorBoardLogger(save_dir=tmp_path, name="tb", version="")
    csv = CSVLogger(save_dir=tmp_path, name="csv", version="")
    fig = permutation_error_heatmap(np.random.default_rng(0).random((3, 30)), steps=[1, 2, 3])
    height, width, _ = figure_to_rgb(fig).shape
    log_figure([csv, tensorboard], "spatial/error_heatmap", fig, step=7)
    png = save_png(group_choice_figure(random_fractions(2)), tmp_path / "choices.png")
    log_figure([tensorboard, csv], "spatial/group_choices", png, step=8)
    tensorboard.experiment.flush()

    assert list(Path(tensorboard.log_dir).glob("events.out.tfevents.*"))
    images = _tensorboard_images(Path(tensorboard.log_dir))
    assert set(images) == {"spatial/error_heatmap", "spatial/group_choices"}
    (heatmap,) = images["spatial/error_heatmap"]
    assert (heatmap.step, heatmap.height, heatmap.width) == (7, height, width)
    assert images["spatial/group_choices"][0].step == 8
    assert not list(tmp_path.joinpath("csv").rglob("*.png"))  # CSV has no images: skipped


def test_log_figure_skips_loggers_without_images(tmp_path: Path) -> None:
    csv = CSVLogger(save_dir=tmp_path, name="csv")
    log_figure([csv], "x", group_choice_figure(random_fractions(2)), step=0)
    log_figure([], "x", group_choice_figure(random_fractions(2)), step=0)


def test_log_figure_warns_and_continues_when_a_logger_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    broken = TensorBoardLogger(save_dir=tmp_path, name="broken")
    working = TensorBoardLogger(save_dir=tmp_path, name="working")

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(broken.experiment, "add_image", fail)
    with caplog.at_level(logging.WARNING, logger="ssl_rl.figures.image_logging"):
        log_figure([broken, working], "k", policy_probability_figure(random_fractions(2)), 1)
    assert "could not log image 'k' at step 1 to TensorBoardLogger" in caplog.text
    working.experiment.flush()
    assert "k" in _tensorboard_images(Path(working.log_dir))


def test_log_figure_to_wandb_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wandb = pytest.importorskip("wandb")
    use_offline_wandb(monkeypatch, tmp_path)
    from pytorch_lightning.loggers import WandbLogger

    logger = WandbLogger(save_dir=str(tmp_path), project="ssl_rl_test", offline=True)
    try:
        fig = group_choice_figure(random_fractions(3), title="spatial")
        log_figure([logger, CSVLogger(save_dir=tmp_path)], "spatial/group_choices", fig, step=5)
    finally:
        wandb.finish()
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    media = list((run_dir / "files" / "media" / "images").rglob("*.png"))
    assert len(media) == 1
    with Image.open(media[0]) as png:
        assert png.format == "PNG" and png.width > 300
