"""The run folder's metrics.csv keeps every command's rows (fit, a resumed fit, test)."""

from __future__ import annotations

import csv

import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_modules.csv_metrics import AppendingCSVLogger


class LoggingModel(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        loss = self.layer(batch[0]).pow(2).mean()
        self.log("train/loss", loss, on_step=False, on_epoch=True)
        return loss

    def test_step(self, batch, batch_idx):
        self.log("test/acc1", 0.5)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _loader() -> DataLoader:
    return DataLoader(TensorDataset(torch.randn(8, 2)), batch_size=4)


def _trainer(folder, max_epochs: int = 2) -> pl.Trainer:
    return pl.Trainer(max_epochs=max_epochs, logger=AppendingCSVLogger(folder, name="", version=""),
                      enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, accelerator="cpu")


def test_a_later_command_appends_to_the_run_folders_metrics_csv(tmp_path) -> None:
    model = LoggingModel()
    _trainer(tmp_path).fit(model, _loader())  # epochs 0, 1
    _trainer(tmp_path, max_epochs=3).fit(model, _loader())  # "resumed": a third epoch of rows
    _trainer(tmp_path).test(model, _loader())  # a key the header does not have yet
    with (tmp_path / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["epoch"] for row in rows if row["train/loss"]] == ["0", "1", "0", "1", "2"]
    assert [row["test/acc1"] for row in rows if row["test/acc1"]] == ["0.5"]
    assert set(rows[0]) == {"epoch", "step", "train/loss", "test/acc1"}
