"""``python -m ssl_rl.report``: runs found and loaded, Table 5 statistics, figures, failures."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ssl_rl.report.__main__ import main
from ssl_rl.report.evaluate import compose_finetune_config, finetune_overrides
from ssl_rl.report.figures import (
    group_choices_figure,
    mean_std_curve,
    permutation_error_comparison,
    pick_comparison,
    pick_control,
    pick_policy_run,
)
from ssl_rl.report.runs import Run, RunSet, load_runs
from ssl_rl.report.table import (
    RANDOM_INIT,
    aggregate,
    build_table,
    default_columns,
    experiment_order,
    format_stat,
    random_init_row,
)
from ssl_rl.run.training import train
from tests.conftest import FINETUNE_TINY_OVERRIDES

# One episode per policy run: validations at steps 0, 2, 3; NN retrieval at steps 0, 2, 4.
STEPS = "trainer.max_steps=4"
# (run directory, overrides): the st runs measure without acting (policy=monitor).
SWEEP = {
    "0_st_seed1": ["experiment=st", "policy=monitor", "seed=1"],
    "1_st_policy_seed1": ["experiment=st_policy", "seed=1"],
    "2_st_seed2": ["experiment=st", "policy=monitor", "seed=2"],
}
FAILED_ERROR = "RuntimeError('CUDA out of memory')\nsecond line"


def _write_failed_run(run_dir: Path, experiment: str = "s", seed: int = 1) -> None:
    run_dir.mkdir(parents=True)
    summary = {"experiment": experiment, "seed": seed, "tags": ["S"], "status": "failed",
               "error": FAILED_ERROR, "traceback": "Traceback ...", "wall_time_s": 1.0}  # fmt: skip
    (run_dir / "summary.json").write_text(json.dumps(summary))


@pytest.fixture(scope="module")
def sweep_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sweep")


@pytest.fixture
def sweep(compose_train, sweep_root: Path) -> Path:
    """A real tiny multirun: three trained runs and one failed job (trained once per module)."""
    for name, overrides in SWEEP.items():
        run_dir = sweep_root / name
        if not (run_dir / "summary.json").is_file():
            assert train(compose_train([*overrides, STEPS], output_dir=run_dir))["status"] == (
                "completed"
            )
    if not (sweep_root / "3_s_seed1").exists():
        _write_failed_run(sweep_root / "3_s_seed1")
    return sweep_root


# --- aggregation and formatting, by hand ---------------------------------------------------


def test_aggregate_uses_the_sample_std() -> None:
    stat = aggregate({3: 0.6, 1: 0.5, 2: 0.7})
    assert stat.n == 3 and list(stat.per_seed) == [1, 2, 3]
    assert stat.mean == pytest.approx(0.6)
    assert stat.std == pytest.approx(0.1)  # ddof=1; the population std would be 0.0816
    assert aggregate({1: 0.25}).std is None
    assert aggregate({}).mean is None


def test_format_stat() -> None:
    assert format_stat(aggregate({1: 0.5, 2: 0.7, 3: 0.6}), row_n=3) == "60.0 ± 10.0"
    assert format_stat(aggregate({1: 0.5, 2: 0.7}), row_n=3) == "60.0 ± 14.1 (n=2)"
    assert format_stat(aggregate({7: 0.1234})) == "12.3 (n=1)"
    assert format_stat(aggregate({})) == "–"
    assert format_stat(aggregate({1: 2.0, 2: 4.0}), scale=1.0, digits=2) == "3.00 ± 1.41"


def test_experiment_order_is_the_papers_then_unknown_by_name() -> None:
    names = ["st_policy", "zeta", "t", "st_errprop", "s", "s_then_t", "st", "t_policy"]
    assert experiment_order(names) == [
        "s", "t", "t_policy", "s_then_t", "st", "st_policy", "st_errprop", "zeta",
    ]  # fmt: skip


def _fake_run(experiment: str, seed: int, voc: list[tuple[int, float]]) -> Run:
    history = [{"step": s, "voc07": {"top1": v}} for s, v in voc]
    summary = {"experiment": experiment, "seed": seed, "status": "completed",
               "metrics": {"spatial": {"val_acc": 0.1 * seed}}}  # fmt: skip
    return Run(Path(f"/runs/{experiment}{seed}"), experiment, seed, "completed", summary,
               nn_history=history)  # fmt: skip


def test_random_init_is_one_value_per_seed_and_rows_follow_the_runs() -> None:
    runs = [
        _fake_run("st", 1, [(0, 0.20), (10, 0.50)]),
        _fake_run("s", 1, [(0, 0.30), (10, 0.40)]),  # seed 1 again: averaged with st's 0.20
        _fake_run("st", 2, [(0, 0.40), (10, 0.70)]),
    ]
    run_set = RunSet(runs, [])
    assert run_set.task_names == ["spatial"]  # discovered from the runs' metrics
    columns = default_columns(run_set.task_names)
    assert "pretext_temporal_val_acc" not in [c.key for c in columns]
    initial = random_init_row(runs, columns)
    assert initial.seeds == [1, 2]
    assert initial.cells["nn_voc07_top1"].per_seed == pytest.approx({1: 0.25, 2: 0.40})
    assert initial.cells["pretext_spatial_val_acc"].n == 0
    table = build_table(RunSet(runs, []), columns)
    assert [row.label for row in table.rows] == [RANDOM_INIT, "S", "S+T"]
    st = table.rows[2].cells
    assert st["nn_voc07_top1"].mean == pytest.approx(0.6)
    assert st["nn_voc07_top1"].std == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert st["pretext_spatial_val_acc"].per_seed == pytest.approx({1: 0.1, 2: 0.2})
    assert st["nn_ucf101_top1"].n == 0


def test_mean_std_curve_over_uneven_seeds() -> None:
    steps, mean, std, counts = mean_std_curve([{0: 0.1, 5: 0.3}, {0: 0.3, 5: 0.5, 9: 0.6}])
    assert steps.tolist() == [0, 5, 9]
    np.testing.assert_allclose(mean, [0.2, 0.4, 0.6])
    np.testing.assert_allclose(std[:2], [np.sqrt(0.02)] * 2)
    assert np.isnan(std[2]) and counts.tolist() == [2, 2, 1]


# --- a real sweep ---------------------------------------------------------------------------


def _expected(values: list[float | None]) -> tuple[float, float | None, int]:
    present = [v for v in values if v is not None]
    std = float(np.std(present, ddof=1)) if len(present) > 1 else None
    return float(np.mean(present)), std, len(present)


def test_report_on_a_real_sweep(sweep: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "report"
    assert main([str(sweep), "--out", str(out)]) == 0
    printed = capsys.readouterr().out

    runs = load_runs([sweep])
    assert len(runs.runs) == 4 and len(runs.completed) == 3
    (failed,) = runs.excluded
    assert (failed.experiment, failed.seed, failed.status) == ("s", 1, "failed")
    assert failed.error_line == "RuntimeError('CUDA out of memory')"
    for run in runs.completed:
        assert [e["step"] for e in run.nn_history] == [0, 2, 4]
        assert set(run.policy) == {"spatial", "temporal"}
        assert run.policy["spatial"].validation_steps == [0, 2, 3]
        assert run.policy["spatial"].permutation_errors.shape == (3, 12)

    results = json.loads((out / "results.json").read_text())
    rows = {row["ablation"]: row for row in results["rows"]}
    assert list(rows) == [RANDOM_INIT, "S", "S+T", "S+T+P"]
    assert (rows["S"]["n"], rows["S+T"]["n"], rows["S+T+P"]["n"]) == (0, 2, 1)
    assert rows["S+T"]["seeds"] == [1, 2]
    by_experiment = runs.by_experiment()
    for experiment, label in (("st", "S+T"), ("st_policy", "S+T+P")):
        members = by_experiment[experiment]
        extract = {
            "nn_voc07_top1": lambda r: r.nn_final("voc07"),
            "nn_ucf101_top1": lambda r: r.nn_final("ucf101"),
            "pretext_spatial_val_acc": lambda r: r.metrics["spatial"]["val_acc"],
            "pretext_temporal_val_acc": lambda r: r.metrics["temporal"]["val_acc"],
        }
        for key, read in extract.items():
            mean, std, n = _expected([read(r) for r in members])
            cell = rows[label]["values"][key]
            assert cell["mean"] == pytest.approx(mean) and cell["n"] == n
            assert cell["std"] == (None if std is None else pytest.approx(std))
            assert cell["per_seed"] == pytest.approx({str(r.seed): read(r) for r in members})
    # Random init: the step-0 value of each seed (seed 1: two runs from the same init).
    seed1 = [r.nn_initial("voc07") for r in runs.completed if r.seed == 1]
    seed2 = [r.nn_initial("voc07") for r in runs.completed if r.seed == 2]
    initial = rows[RANDOM_INIT]["values"]["nn_voc07_top1"]
    assert initial["per_seed"] == pytest.approx({"1": np.mean(seed1), "2": np.mean(seed2)})
    assert rows[RANDOM_INIT]["values"]["pretext_spatial_val_acc"]["n"] == 0
    assert results["excluded"][0]["error"] == "RuntimeError('CUDA out of memory')"

    report = (out / "report.md").read_text()
    st_row = next(line for line in report.splitlines() if line.startswith("| S+T | st |"))
    voc = rows["S+T"]["values"]["nn_voc07_top1"]
    assert f"{100 * voc['mean']:.1f} ± {100 * voc['std']:.1f}" in st_row
    assert st_row.endswith("| 2 |")
    assert "| S | s | – | – | – | – | 0 |" in report
    assert "| s | 1 | failed | RuntimeError('CUDA out of memory') |" in report
    assert "74.2" in report and "not comparable" in report
    assert st_row in printed and "s seed 1: failed" in printed

    for name in ("fig4_group_choices", "fig5_nn_top1", "fig6_permutation_error"):
        path = out / f"{name}.png"
        assert path.stat().st_size > 1000, name
        with Image.open(path) as image:
            assert image.format == "PNG" and min(image.size) > 100
        assert f"({name}.png)" in report


def test_figure_choices_and_fig6_panels_share_one_scale(sweep: Path) -> None:
    runs = load_runs([sweep])
    policy_run = pick_policy_run(runs)
    assert policy_run is not None and policy_run.experiment == "st_policy"
    assert policy_run.policy["spatial"].group_fractions.shape == (1, 10)
    # Fig. 4: the same seed's run without policy is overlaid on the quartile view.
    control = pick_control(runs, policy_run)
    assert control is not None and (control.experiment, control.seed) == ("st", 1)
    figure = group_choices_figure(policy_run, control)
    quartile_axes = figure.axes[0::2]
    assert all(any("hardest-quartile" in line.get_label() for line in ax.lines)
               for ax in quartile_axes)  # fmt: skip
    pair = pick_comparison(runs)
    assert pair is not None
    with_policy, without_policy = pair
    assert (with_policy.experiment, without_policy.experiment) == ("st_policy", "st")
    assert with_policy.seed == without_policy.seed == 1
    figure = permutation_error_comparison(with_policy, without_policy, "spatial")
    images = [ax.images[0] for ax in figure.axes if ax.images]
    assert len(images) == 2 and all(image.get_clim() == (0.0, 1.0) for image in images)
    # Rows sorted by mean error, hardest on top.
    data = np.asarray(images[1].get_array())
    assert np.all(np.diff(data.mean(axis=1)) <= 1e-6)


def test_two_sweeps_a_rerun_supersedes_the_older_run(sweep: Path, tmp_path: Path) -> None:
    rerun = tmp_path / "rerun"
    shutil.copytree(sweep / "2_st_seed2", rerun / "0_st_seed2")
    newer = (sweep / "2_st_seed2" / "summary.json").stat().st_mtime + 10
    os.utime(rerun / "0_st_seed2" / "summary.json", (newer, newer))
    runs = load_runs([sweep, rerun])
    assert len(runs.runs) == 5
    counted = [r for r in runs.completed if r.experiment == "st"]
    assert sorted(r.seed for r in counted) == [1, 2]
    assert any(r.path == rerun / "0_st_seed2" for r in counted)
    superseded = [r for r in runs.excluded if r.superseded_by is not None]
    assert [r.path for r in superseded] == [sweep / "2_st_seed2"]


def test_missing_runs_skip_figures_with_a_warning(tmp_path: Path, caplog) -> None:
    _write_failed_run(tmp_path / "sweep" / "0_st_policy_seed3", "st_policy", 3)
    (tmp_path / "sweep" / "1_broken").mkdir()
    (tmp_path / "sweep" / "1_broken" / "summary.json").write_text("{not json")
    with caplog.at_level(logging.WARNING):
        assert main([str(tmp_path / "sweep")]) == 0
    out = tmp_path / "sweep" / "report"
    assert sorted(p.name for p in out.iterdir()) == ["report.md", "results.json"]
    for figure in ("fig4", "fig5", "fig6"):
        assert any(r.message.startswith(f"{figure}:") for r in caplog.records), figure
    report = (out / "report.md").read_text()
    # No completed run: no task to give a pretext column, the NN columns stay.
    assert "| S+T+P | st_policy | – | – | 0 |" in report
    assert "unreadable" in report and "1_broken" in report


def test_no_runs_is_a_clear_error(tmp_path: Path, capsys) -> None:
    assert main([str(tmp_path)]) == 2
    assert "no summary.json" in capsys.readouterr().err


def test_finetune_overrides_follow_the_run(tmp_path: Path) -> None:
    # A run written before train.py and finetune.py shared conf/: generators under data.demo.
    run_dir = tmp_path / "0_st_seed4"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text(
        "paths:\n  data_cache: /cache/here\ndata:\n  demo:\n    root: ${paths.data_cache}/demo\n"
        "    images: {num_classes: 3, train_per_class: 8}\n    videos: {num_frames: 16}\n"
    )
    (run_dir / ".hydra" / "hydra.yaml").write_text(
        "hydra:\n  runtime:\n    choices:\n      scale: demo\n"
    )
    run = Run(run_dir, "st", 4, "completed", {}, trunk_config={"width": 0.125, "groups": 1})
    overrides = finetune_overrides(run, "nn_demo")
    assert overrides == [
        "eval=nn_demo",
        f"ckpt={run_dir.resolve()}",
        f"output_dir={run_dir.resolve() / 'finetune' / 'nn_demo'}",
        "seed=4",
        "trunk.width=0.125",
        "trunk.groups=1",
        "scale=demo",
        "paths.data_cache=/cache/here",
        "datasets.generate.images.num_classes=3",
        "datasets.generate.images.train_per_class=8",
        "datasets.generate.videos.num_frames=16",
    ]
    cfg = compose_finetune_config(overrides)
    assert cfg.trunk.width == 0.125
    assert cfg.output_dir == str(run_dir.resolve() / "finetune" / "nn_demo")
    assert cfg.datasets.generate.images.num_classes == 3
    assert cfg.datasets.generate.images.val_per_class == 20  # the defaults stay
    assert cfg.paths.data_cache == "/cache/here"


@pytest.mark.slow
def test_finetune_columns(sweep: Path, tmp_path: Path, data_cache: Path) -> None:
    tiny = [*FINETUNE_TINY_OVERRIDES, f"paths.data_cache={data_cache}", "eval.ks=[1,5]"]
    out = tmp_path / "report"
    argv = [str(sweep), "--out", str(out), "--finetune", "nn_demo"]
    argv += [f"--finetune-override={override}" for override in tiny]
    assert main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    keys = [c["key"] for c in results["columns"]]
    assert "finetune_nn_demo_voc07_top1" in keys and "finetune_nn_demo_ucf101_top1" in keys
    rows = {row["experiment"]: row for row in results["rows"]}
    for name, overrides_ in SWEEP.items():
        seed = next(o for o in overrides_ if o.startswith("seed=")).removeprefix("seed=")
        experiment = overrides_[0].removeprefix("experiment=")
        summary = json.loads((sweep / name / "finetune" / "nn_demo" / "summary.json").read_text())
        assert summary["status"] == "completed", summary.get("traceback")
        value = rows[experiment]["values"]["finetune_nn_demo_voc07_top1"]["per_seed"][seed]
        assert value == pytest.approx(summary["metrics"]["voc07"]["top1"])
