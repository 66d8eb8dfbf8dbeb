"""The job ``tests/test_ddp_resume.py`` launches with torchrun (2 CPU processes, gloo).

Every process runs three fits of the same tiny model through Lightning's DDP, each in its own
folder under ``OUT``: ``straight`` (2 epochs), ``preempted`` (SIGTERM on every rank after
optimizer step ``SIGTERM_AT``, mid-epoch 1: Lightning broadcasts it and ``LastCheckpoint``
writes ``last.ckpt``) and, in the same folder, the resume of that ``last.ckpt``. Each rank appends
``rank epoch step index…`` per training batch to ``<folder>/steps.<rank>``.

Usage: ``torchrun --standalone --nproc_per_node=2 tests/ddp_resume_job.py DATA_DIR OUT``.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytorch_lightning as pl
import torch

from datamodules import SyntheticFineGrainedDataModule
from lightning_modules import LastCheckpoint, VideoRecognizer
from models import GAPHead, VideoResNet
from tests.conftest import TINY_SYNTHETIC

#: the interrupted run stops after this optimizer step: 4 steps per epoch (16 videos, 2 ranks,
#: batches of 2), so step 6 is the middle of epoch 1
SIGTERM_AT = 6
EPOCHS = 2


class StepLog(pl.Callback):
    """Appends ``rank epoch step index…`` of every training batch; SIGTERMs its own process after
    optimizer step ``sigterm_at`` (every rank does, as a cluster signals every task)."""

    def __init__(self, folder: Path, sigterm_at: int = 0) -> None:
        self.folder, self.sigterm_at = folder, sigterm_at

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        with (self.folder / f"steps.{trainer.global_rank}").open("a") as file:
            indices = " ".join(str(i) for i in batch["index"].tolist())
            file.write(f"{trainer.global_rank} {trainer.current_epoch} {trainer.global_step} "
                       f"{indices}\n")
        if trainer.global_step == self.sigterm_at:
            os.kill(os.getpid(), signal.SIGTERM)


def fit(data_dir: str, folder: Path, sigterm_at: int = 0, ckpt_path: str | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(0, verbose=False)
    model = VideoRecognizer(
        VideoResNet(depth=18, temporal="i3d", width_multiplier=0.125),
        head=lambda backbone, k: GAPHead(backbone, k, dropout=0.2), num_classes=4,
        optimizer=lambda p: torch.optim.AdamW(p, lr=3e-3),
        lr_scheduler=lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=1, gamma=0.5))
    data = SyntheticFineGrainedDataModule(data_dir=data_dir, **{**TINY_SYNTHETIC,
                                                                "batch_size": 2})
    trainer = pl.Trainer(
        accelerator="cpu", devices=2, strategy="ddp", max_epochs=EPOCHS, logger=False,
        default_root_dir=str(folder), enable_progress_bar=False, enable_model_summary=False,
        num_sanity_val_steps=0, limit_val_batches=1,
        callbacks=[LastCheckpoint(dirpath=str(folder)), StepLog(folder, sigterm_at)])
    trainer.fit(model, datamodule=data, ckpt_path=ckpt_path)


def main(data_dir: str, out: str) -> None:
    root = Path(out)
    fit(data_dir, root / "straight")
    try:
        fit(data_dir, root / "preempted", sigterm_at=SIGTERM_AT)
    except SystemExit:  # Lightning's SIGTERMException, after last.ckpt was written
        pass
    else:
        raise RuntimeError("the preempted fit ran to its end")
    fit(data_dir, root / "preempted", ckpt_path=str(root / "preempted" / "last.ckpt"))


if __name__ == "__main__":
    main(*sys.argv[1:])
