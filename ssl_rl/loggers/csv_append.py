"""A CSV logger whose ``metrics.csv`` continues when a run resumes in its own directory."""

from __future__ import annotations

import csv

from lightning_fabric.loggers.logger import rank_zero_experiment
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter


class AppendingExperimentWriter(ExperimentWriter):
    """Lightning's writer deletes an existing ``metrics.csv``; this one keeps its rows and
    header and appends (a new metric still rewrites the file with the wider header)."""

    def _check_log_dir_exists(self) -> None:
        if not self._fs.isfile(self.metrics_file_path):
            return
        with self._fs.open(self.metrics_file_path, "r", newline="") as file:
            header = next(csv.reader(file), [])
        self.metrics_keys = sorted(header)


class AppendingCSVLogger(CSVLogger):
    """:class:`~pytorch_lightning.loggers.CSVLogger` with :class:`AppendingExperimentWriter`."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if not isinstance(self._experiment, ExperimentWriter):
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = AppendingExperimentWriter(log_dir=self.log_dir)
        return self._experiment
