"""A ``CSVLogger`` that adds to the run folder's ``metrics.csv`` instead of deleting it.

Lightning's CSV writer removes an existing ``metrics.csv`` when it starts. In a run folder that
holds one experiment across several commands (``fit``, a ``fit --ckpt_path last`` after a
preemption, ``test``, ``predict``), that would erase the epochs logged before: a resumed
200-epoch run would keep only its last part, and re-testing a checkpoint would wipe the fit's
history. Here the rows of every command are appended, under one header that grows when a later
command logs new keys (``test/…`` after ``train/…``).
"""

from __future__ import annotations

import csv

from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.utilities.rank_zero import rank_zero_only

__all__ = ["AppendingCSVLogger"]


class _AppendingWriter(ExperimentWriter):
    def __init__(self, log_dir: str) -> None:
        super().__init__(log_dir)
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                self.metrics_keys = list(csv.DictReader(file).fieldnames or [])

    def _check_log_dir_exists(self) -> None:
        pass  # keep the rows of earlier commands (the parent deletes them)


class AppendingCSVLogger(CSVLogger):
    """``CSVLogger`` whose ``metrics.csv`` keeps the rows of earlier runs in the same folder."""

    @property
    def experiment(self) -> ExperimentWriter:
        # only rank 0 writes; the other ranks get Lightning's dummy experiment from the parent
        if self._experiment is None and getattr(rank_zero_only, "rank", 0) == 0:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return super().experiment
