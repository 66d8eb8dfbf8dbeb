"""One plain line of metrics per epoch, for logs that are files (``nohup``, SLURM, CI).

A progress bar redraws one terminal line; written to a file it leaves a single line at the end
and no per-epoch record. This callback prints, on the global-zero rank, after every training
epoch (validation included)::

    epoch 3/20  12.4 s  train/loss 1.234  train/acc1 0.512  val/loss 1.101  val/acc1 0.625 ...
"""

from __future__ import annotations

import sys
import time
from typing import Any, Literal

import pytorch_lightning as pl
import torch

__all__ = ["EpochSummary"]

# epoch-level values worth a log line; per-branch accuracies stay in the loggers
_SHOWN = ("val/loss", "val/acc1", "val/acc5", "train/skipped_videos")


class EpochSummary(pl.Callback):
    """Print one line per training epoch: epoch, seconds, mean training loss and accuracy
    over the epoch, the validation metrics, the learning rate.

    Args:
        when: ``"auto"`` prints only when stdout is not a terminal (where the progress bar
            already shows the numbers), ``"always"``, or ``"never"``.
    """

    def __init__(self, when: Literal["auto", "always", "never"] = "auto") -> None:
        super().__init__()
        self.when = when
        self._sums: dict[str, torch.Tensor] = {}
        self._count = 0
        self._start = 0.0
        self._lr: float | None = None
        #: the lines printed so far (what a test or a wrapper script can read back)
        self.lines: list[str] = []

    @property
    def enabled(self) -> bool:
        if self.when == "auto":
            return not sys.stdout.isatty()
        return self.when == "always"

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._sums, self._count, self._start = {}, 0, time.perf_counter()
        optimizers = trainer.optimizers
        # the rate this epoch trains with (the scheduler steps before on_train_epoch_end)
        self._lr = optimizers[0].param_groups[0]["lr"] if optimizers else None

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        if not (self.enabled and trainer.is_global_zero):
            return
        # the step values the module logged (train/loss, train/acc1), averaged over the epoch;
        # summed as tensors on their device, read once at the epoch's end: a float() per step
        # would wait for the accelerator at every step
        for key in ("train/loss", "train/acc1"):
            value = trainer.callback_metrics.get(key)
            if isinstance(value, torch.Tensor) and value.numel() == 1:
                self._sums[key] = self._sums.get(key, 0.0) + value.detach()
        self._count += 1

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not (self.enabled and trainer.is_global_zero):
            return
        epochs = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else "?"
        parts = [f"epoch {trainer.current_epoch + 1}/{epochs}",
                 f"{time.perf_counter() - self._start:.1f} s"]
        parts += [f"{k} {float(v) / max(self._count, 1):.4g}" for k, v in self._sums.items()]
        metrics = trainer.callback_metrics
        parts += [f"{k} {float(metrics[k]):.4g}" for k in _SHOWN if k in metrics]
        if self._lr is not None:
            parts.append(f"lr {self._lr:.3g}")
        line = "  ".join(parts)
        self.lines.append(line)
        print(line, flush=True)
