"""Training throughput: a real Lightning fit epoch against a hand-written PyTorch loop, interleaved.

Both sides train the same model (a ``VideoRecognizer``: I3D-ResNet18 at ``--width`` channels, GAP
head with dropout) from the same initial weights, with the same optimizer and schedule (AdamW,
cosine over the epochs), on the same loader: each side has its own datamodule with the same
settings, whose ``train_dataloader()`` is torchdata's ``StatefulDataLoader`` (decoding,
sampling and augmentation in persistent workers, the same (seed, epoch, index) keys), and the
same device-side normalisation (the datamodule's ``on_after_batch_transfer``). Each epoch of
each side ends by writing its state (model and optimizer) to disk, as ``last.ckpt`` does.

The plain loop is: ``next(loader)``, normalise, forward, the head's loss, ``zero_grad``,
``backward``, ``step``. The fit side is ``Trainer.fit`` of the project's ``VideoRecognizer``
(its ``training_step`` with its per-step ``self.log`` calls) with, by default, what the demo
config runs (``--fit demo``): the W&B logger (offline) every ``log_every_n_steps=4``, the
progress bar, ``EpochSummary``, ``LastCheckpoint`` and ``LearningRateMonitor``; ``--fit
bare`` leaves logger, progress bar and callbacks out (Lightning's loop and the module only).
Validation is off on both sides (``limit_val_batches=0``).

Interleaved in one process: the fit's ``on_train_epoch_start`` runs one whole plain epoch, then
the fit's epoch runs; so the order is plain₀ fit₀ plain₁ fit₁ …, and the load of the shared
machine is about the same for the two epochs of a pair. Epoch 0 of both sides is a warm-up and
is not counted (workers start, allocator and caches warm up; Lightning also starts its first
iterator before the epoch-start hook). The fit epoch is timed from the end of the plain epoch
to the next epoch start (or the end of training): everything Lightning does per epoch,
checkpoint writing included. While one side runs, the other's workers are idle (neither has an
iterator open: Lightning opens its epoch's iterator after ``on_train_epoch_start``).

Printed per ``--workers`` count: each side's best and median clips/s, the fit/plain time ratio
of every pair (``overhead`` = ratio − 1, the goal is ≤ 3 %; its median is the figure), and the
plain loop's share of the epoch spent in ``next(loader)`` (waiting for workers).

Usage (repo root): ``python -m benchmarks.train_throughput [--workers 1 2] [--rounds 5]
[--fit demo|bare]``.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from datamodules import SyntheticFineGrainedDataModule
from lightning_modules import EpochSummary, LastCheckpoint, VideoRecognizer
from models import GAPHead, VideoResNet

LR = 3e-3


def make_model(width: float, num_classes: int) -> VideoRecognizer:
    backbone = VideoResNet(depth=18, temporal="i3d", width_multiplier=width)
    return VideoRecognizer(
        backbone, head=lambda b, k: GAPHead(b, k, dropout=0.2), num_classes=num_classes,
        optimizer=lambda p: torch.optim.AdamW(p, lr=LR, weight_decay=1e-4),
        lr_scheduler=lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10))


class PlainLoop:
    """The hand-written loop on its own copy of the model and its own loader, driven one step
    (or one epoch) at a time; it keeps the time of each epoch and of its ``next(loader)``."""

    def __init__(self, model: VideoRecognizer, datamodule: SyntheticFineGrainedDataModule,
                 checkpoint: Path) -> None:
        self.model, self.datamodule, self.checkpoint = model, datamodule, checkpoint
        datamodule.setup("fit")
        self.loader = datamodule.train_dataloader()
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=1e-4)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=10)
        model.train()
        self.iterator = None
        self.clips = 0
        #: per epoch: wall seconds, seconds in ``next(loader)``, this process's CPU seconds
        self.times: list[float] = []
        self.waits: list[float] = []
        self.cpu: list[float] = []

    def start_epoch(self, epoch: int) -> None:
        start, cpu = time.perf_counter(), time.process_time()
        self.loader.sampler.set_epoch(epoch)
        self.iterator = iter(self.loader)
        self.times.append(time.perf_counter() - start)
        self.cpu.append(time.process_time() - cpu)
        self.waits.append(0.0)
        self.clips = 0

    def step(self) -> bool:
        """One training step; ``False`` (after ending the epoch) when the loader is exhausted."""
        start, cpu = time.perf_counter(), time.process_time()
        try:
            batch = next(self.iterator)
        except StopIteration:
            self._end_epoch()
            self.times[-1] += time.perf_counter() - start
            self.cpu[-1] += time.process_time() - cpu
            return False
        self.waits[-1] += time.perf_counter() - start
        model, optimizer = self.model, self.optimizer
        batch = self.datamodule.on_after_batch_transfer(batch, 0)  # [B, C, T, H, W] float
        loss = model.head.loss(model(batch["video"]), batch["label"])["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        self.clips += batch["label"].shape[0]
        self.times[-1] += time.perf_counter() - start
        self.cpu[-1] += time.process_time() - cpu
        return True

    def _end_epoch(self) -> None:
        self.iterator = None
        self.scheduler.step()
        torch.save({"state_dict": self.model.state_dict(),
                    "optimizer": self.optimizer.state_dict()}, self.checkpoint)

    def epoch(self, epoch: int) -> None:
        self.start_epoch(epoch)
        while self.step():
            pass


class Interleave(pl.Callback):
    """Runs the plain loop inside the fit: a whole plain epoch at every fit epoch start
    (``epoch``), or a plain step at every fit batch start (``step``). A fit epoch is timed from
    one epoch start to the next (or to the end of training), less the plain loop's time in it."""

    def __init__(self, plain: PlainLoop, granularity: str) -> None:
        self.plain, self.granularity = plain, granularity
        self.fit_times: list[float] = []
        self.fit_cpu: list[float] = []
        self._start: tuple[float, float] | None = None  # wall, CPU
        self._inside = (0.0, 0.0)  # the plain loop's wall and CPU seconds in the fit epoch

    def _close_fit_epoch(self) -> None:
        if self._start is not None:
            self.fit_times.append(time.perf_counter() - self._start[0] - self._inside[0])
            self.fit_cpu.append(time.process_time() - self._start[1] - self._inside[1])

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._close_fit_epoch()
        if self.granularity == "epoch":
            self.plain.epoch(trainer.current_epoch)
        else:
            # the plain epoch's end (StopIteration, schedule, checkpoint), then the next one
            if self.plain.iterator is not None and self.plain.step():
                raise RuntimeError("the plain loop has more batches than the fit")
            self.plain.start_epoch(trainer.current_epoch)
        self._inside = (0.0, 0.0)
        self._start = (time.perf_counter(), time.process_time())

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                             batch: Any, batch_idx: int) -> None:
        if self.granularity == "step":
            start, cpu = time.perf_counter(), time.process_time()
            if not self.plain.step():
                raise RuntimeError("the plain loop has fewer batches than the fit")
            self._inside = (self._inside[0] + time.perf_counter() - start,
                            self._inside[1] + time.process_time() - cpu)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._close_fit_epoch()
        if self.plain.iterator is not None and self.plain.step():
            raise RuntimeError("the plain loop has more batches than the fit")


def fit_trainer(kind: str, epochs: int, folder: Path, interleave: Interleave) -> pl.Trainer:
    common = dict(accelerator="cpu", devices=1, max_epochs=epochs, limit_val_batches=0,
                  num_sanity_val_steps=0, default_root_dir=str(folder))
    if kind == "bare":
        return pl.Trainer(**common, logger=False, enable_checkpointing=False,
                          enable_progress_bar=False, enable_model_summary=False,
                          callbacks=[interleave])
    from pytorch_lightning.loggers import WandbLogger

    logger = WandbLogger(project="throughput", save_dir=str(folder), offline=True)
    return pl.Trainer(
        **common, logger=logger, log_every_n_steps=4,
        callbacks=[interleave, EpochSummary(), LastCheckpoint(dirpath=str(folder / "ckpt")),
                   pl.callbacks.LearningRateMonitor(logging_interval="epoch")])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=5, help="timed epochs per side")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--train-per-class", type=int, default=16, help="epoch length")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads of the step")
    parser.add_argument("--fit", choices=["demo", "bare"], default="demo",
                        help="the fit's logger, progress bar and callbacks (see above)")
    parser.add_argument("--interleave", choices=["epoch", "step"], default="epoch",
                        help="alternate the sides every epoch or every step (see above)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    root = Path(tempfile.mkdtemp(prefix="train_throughput_"))
    common = dict(num_contexts=2, train_per_class=args.train_per_class, val_per_class=1,
                  test_per_class=1, size=64, frames_per_video=16, num_frames=8,
                  train_crop_size=56, test_crop_size=56, short_side=64,
                  batch_size=args.batch_size)
    SyntheticFineGrainedDataModule(data_dir=str(root / "data"), **common).prepare_data()
    rows = []
    for workers in args.workers:
        pl.seed_everything(0, verbose=False)
        reference = make_model(args.width, 8)
        data = dict(data_dir=str(root / "data"), num_workers=workers, **common)
        plain = PlainLoop(copy.deepcopy(reference), SyntheticFineGrainedDataModule(**data),
                          root / f"plain{workers}.ckpt")
        interleave = Interleave(plain, args.interleave)
        trainer = fit_trainer(args.fit, args.rounds + 1, root / f"run{workers}", interleave)
        trainer.fit(copy.deepcopy(reference), datamodule=SyntheticFineGrainedDataModule(**data))
        # epoch 0 of both sides is the warm-up
        loop, fitted = plain.times[1:], interleave.fit_times[1:]
        waits = [w / t for w, t in zip(plain.waits[1:], loop, strict=True)]
        wall = [f / p for f, p in zip(fitted, loop, strict=True)]
        cpu = [f / p for f, p in zip(interleave.fit_cpu[1:], plain.cpu[1:], strict=True)]
        rows.append((workers, plain.clips, loop, fitted, wall, cpu, waits))
        print(f"\n{workers} worker(s), pairs (plain s, fit s, wall overhead, CPU overhead): "
              + ", ".join(f"({p:.2f}, {f:.2f}, {w - 1:+.1%}, {c - 1:+.1%})"
                          for p, f, w, c in zip(loop, fitted, wall, cpu, strict=True)),
              flush=True)

    print(f"\nI3D-ResNet18 x{args.width}, batch {args.batch_size}, 8x56x56 clips, "
          f"{rows[0][1]} clips per epoch, {args.threads} step thread(s), fit: {args.fit}, "
          f"interleaved every {args.interleave}, {args.rounds} pairs of epochs after a warm-up")
    print("workers | plain clips/s best / median | fit clips/s best / median | "
          "overhead, wall: median (min .. max) | overhead, CPU: median | data wait")

    def spread(ratios: list[float]) -> str:
        return (f"{statistics.median(ratios) - 1:+.1%} ({min(ratios) - 1:+.1%} .. "
                f"{max(ratios) - 1:+.1%})")

    for workers, clips, loop, fitted, wall, cpu, waits in rows:
        plain_rate = f"{clips / min(loop):.1f} / {clips / statistics.median(loop):.1f}"
        fit_rate = f"{clips / min(fitted):.1f} / {clips / statistics.median(fitted):.1f}"
        print(f"{workers:>7} | {plain_rate:>27} | {fit_rate:>25} | {spread(wall):>35} | "
              f"{statistics.median(cpu) - 1:>+21.1%} | {statistics.median(waits):>9.1%}")

if __name__ == "__main__":
    main()
