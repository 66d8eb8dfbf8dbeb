"""Send analysis images and tables to whatever loggers a run has, and write them as files.

W&B gets ``log_image`` / ``log_table``; TensorBoard gets ``add_image`` / ``add_text`` (a markdown
table); every run also gets PNG/CSV files (in the W&B run's own ``files`` folder, uploaded with
it, or in the CSV/TensorBoard logger's versioned folder), so nothing depends on a W&B account.
Only the global-zero rank reports; under DDP the other ranks' ``WandbLogger.experiment`` is a
dummy and no second W&B run is created.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
from pytorch_lightning.loggers import TensorBoardLogger, WandbLogger


def _file_stem(key: str) -> str:
    # "test/confusion:pairs" → "test_confusion_pairs": one flat, portable file name per key
    return re.sub(r"[^A-Za-z0-9._-]+", "_", key).strip("_")


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 6)
    return value


class AnalysisReporter:
    """Images and tables of one trainer's analyses → loggers + files (global-zero rank only).

    Args:
        trainer: the running trainer.
        dirpath: where PNG/CSV files go; default: the W&B run's ``files/analysis`` folder with a
            ``WandbLogger``, else ``<trainer.log_dir>/analysis``, else
            ``<default_root_dir>/analysis``.
        write_files: also write files when a W&B logger already took the picture (default on:
            the files are uploaded with the run and readable offline).
    """

    def __init__(self, trainer: pl.Trainer, dirpath: str | Path | None = None,
                 write_files: bool = True) -> None:
        self.trainer = trainer
        self.enabled = trainer.is_global_zero
        self.write_files = write_files
        self._dirpath = Path(dirpath) if dirpath is not None else None
        self.written: list[Path] = []

    @property
    def directory(self) -> Path:
        if self._dirpath is None:
            wandb = next((lg for lg in self.trainer.loggers if isinstance(lg, WandbLogger)), None)
            if wandb is not None:
                root = Path(wandb.experiment.dir)
            else:
                # trainer.log_dir would broadcast (a collective) and only the global-zero rank
                # reports: read the first logger's folder directly
                loggers = self.trainer.loggers
                log_dir = getattr(loggers[0], "log_dir", None) if loggers else None
                root = Path(log_dir or self.trainer.default_root_dir)
            self._dirpath = root / "analysis"
        self._dirpath.mkdir(parents=True, exist_ok=True)
        return self._dirpath

    def image(self, key: str, image: np.ndarray, caption: str | None = None) -> Path | None:
        """Log ``image`` ``uint8 [H, W, 3]`` under ``key``; returns the PNG written (if any)."""
        if not self.enabled:
            return None
        if image.ndim != 3 or image.shape[-1] != 3 or image.size == 0:
            raise ValueError(f"expected a non-empty uint8 [H, W, 3] image, got {image.shape}")
        step = self.trainer.global_step
        for logger in self.trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(key=key, images=[image],
                                 **({"caption": [caption]} if caption else {}))
            elif isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image(key, image, step, dataformats="HWC")
        if not self.write_files and any(isinstance(lg, WandbLogger) for lg in self.trainer.loggers):
            return None
        from PIL import Image

        path = self.directory / f"{_file_stem(key)}.png"
        Image.fromarray(image).save(path)
        self.written.append(path)
        return path

    def table(self, key: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path | None:
        """Log a table (``rows`` of ``len(columns)`` cells); returns the CSV written (if any)."""
        if not self.enabled:
            return None
        data = [[_cell(v) for v in row] for row in rows]
        for logger in self.trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_table(key=key, columns=list(columns), data=data)
            elif isinstance(logger, TensorBoardLogger):
                header = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
                body = "".join("| " + " | ".join(str(v) for v in row) + " |\n" for row in data)
                logger.experiment.add_text(key, header + body, self.trainer.global_step)
        if not self.write_files and any(isinstance(lg, WandbLogger) for lg in self.trainer.loggers):
            return None
        path = self.directory / f"{_file_stem(key)}.csv"
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            writer.writerows(data)
        self.written.append(path)
        return path


def write_table(path: str | Path, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    """Write a CSV outside a trainer (the analysis subcommands)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows([[_cell(v) for v in row] for row in rows])
    return path


def write_image(path: str | Path, image: np.ndarray) -> Path:
    """Write ``uint8 [H, W, 3]`` as PNG outside a trainer."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    return path


__all__ = ["AnalysisReporter", "write_image", "write_table"]
