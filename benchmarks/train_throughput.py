"""Training throughput: a real Lightning fit epoch against a hand-written PyTorch loop.

Both train the same model (a ``VideoRecognizer``: I3D-ResNet18 at ``--width`` channels, GAP
head) from the same initial weights, with the same optimizer (AdamW), on the same loader (the
synthetic benchmark's ``train_dataloader()``: decoding, sampling and augmentation in workers
included) and batch size. Per setting, printed:

* ``clips/s`` of a whole training epoch, for ``Trainer.fit`` (no validation, no checkpoint, no
  logger, no progress bar: the framework's own loop, optimizer step and hooks) and for the plain
  loop (``next(loader)``, normalise, forward, loss, backward, step);
* ``overhead``: Lightning's epoch time over the loop's, minus one (the goal is ≤ 3 %);
* ``data wait``: the plain loop's share of the epoch spent in ``next(loader)`` (waiting for
  workers), at each ``--workers`` count.

The two run interleaved, ``--rounds`` times each, after one warm-up epoch each (workers start,
allocator warms up); the median epoch is reported, because the shared machine's load varies.
Times are wall clock (the loader's workers run in parallel with the step).

Usage (repo root): ``python -m benchmarks.train_throughput [--workers 1 2] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
import warnings

import pytorch_lightning as pl
import torch

from datamodules import SyntheticFineGrainedDataModule
from datamodules.transforms import normalize
from lightning_modules import VideoRecognizer
from models import GAPHead, VideoResNet


class EpochTimer(pl.Callback):
    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.times.append(time.perf_counter() - self._start)


def make_model(width: float, num_classes: int) -> VideoRecognizer:
    backbone = VideoResNet(depth=18, temporal="i3d", width_multiplier=width)
    return VideoRecognizer(backbone, head=GAPHead, num_classes=num_classes,
                           optimizer=lambda p: torch.optim.AdamW(p, lr=1e-3))


def lightning_epochs(model: VideoRecognizer, dm: SyntheticFineGrainedDataModule,
                     epochs: int) -> list[float]:
    timer = EpochTimer()
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_epochs=epochs, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, limit_val_batches=0,
                         num_sanity_val_steps=0, callbacks=[timer])
    trainer.fit(model, datamodule=dm)
    return timer.times


def plain_epochs(model: VideoRecognizer, dm: SyntheticFineGrainedDataModule,
                 epochs: int) -> tuple[list[float], list[float]]:
    """Epoch times and the time spent in ``next(loader)`` per epoch."""
    loader = dm.train_dataloader()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    times, waits = [], []
    for epoch in range(epochs):
        loader.sampler.set_epoch(epoch)
        start = time.perf_counter()
        wait = 0.0
        iterator = iter(loader)
        while True:
            before = time.perf_counter()
            try:
                batch = next(iterator)
            except StopIteration:
                break
            wait += time.perf_counter() - before
            video = normalize(batch["video"], model.mean, model.std)  # [B, C, T, H, W]
            output = model(video)
            loss = model.head.loss(output, batch["label"])["loss"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        times.append(time.perf_counter() - start)
        waits.append(wait)
    return times, waits


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads of the step")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    root = tempfile.mkdtemp(prefix="train_throughput_")
    common = dict(num_contexts=2, train_per_class=16, val_per_class=1, test_per_class=1,
                  size=64, frames_per_video=16, num_frames=8, train_crop_size=56,
                  test_crop_size=56, short_side=64, batch_size=args.batch_size)
    SyntheticFineGrainedDataModule(data_dir=root, **common).prepare_data()
    print(f"I3D-ResNet18 x{args.width}, batch {args.batch_size}, 8x56x56 clips, "
          f"{args.threads} step thread(s), median of {args.rounds} epochs after a warm-up")
    print(f"{'workers':>7} | {'fit clips/s':>11} | {'loop clips/s':>12} | {'overhead':>8} | "
          f"{'data wait':>9}")
    for workers in args.workers:
        torch.manual_seed(0)
        reference = make_model(args.width, 8)
        fit_times, loop_times, wait_shares = [], [], []
        clips = None
        for _ in range(args.rounds):
            dm = SyntheticFineGrainedDataModule(data_dir=root, num_workers=workers, **common)
            fit_times.append(lightning_epochs(copy.deepcopy(reference), dm, 2)[-1])
            dm = SyntheticFineGrainedDataModule(data_dir=root, num_workers=workers, **common)
            dm.setup("fit")
            clips = len(dm.train_dataloader()) * args.batch_size
            times, waits = plain_epochs(copy.deepcopy(reference), dm, 2)
            loop_times.append(times[-1])
            wait_shares.append(waits[-1] / times[-1])
        fit, loop = statistics.median(fit_times), statistics.median(loop_times)
        print(f"{workers:>7} | {clips / fit:>11.1f} | {clips / loop:>12.1f} | "
              f"{fit / loop - 1:>+7.1%} | {statistics.median(wait_shares):>8.1%}")


if __name__ == "__main__":
    main()
