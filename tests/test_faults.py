"""Broken videos never stop a run: named once, counted; in training replaced by a video that keeps
its own label and index, in evaluation left out (never substituted); or fatal on request."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from datamodules import SyntheticFineGrainedDataModule, VideoDataModule, VideoDataset, VideoRecord
from datamodules.dataset import collate_samples
from datamodules.decoders import DecodeError, get_decoder
from datamodules.transforms import TestViews, TrainTransform
from lightning_modules import VideoRecognizer
from models import GAPHead, VideoResNet
from tests.conftest import TINY_SYNTHETIC


def faulty_records(good: list[VideoRecord], folder: Path) -> list[VideoRecord]:
    """One record of each fault, then the good ones."""
    folder.mkdir(parents=True, exist_ok=True)
    empty = folder / "empty.mp4"
    empty.write_bytes(b"")
    not_video = folder / "notes.mp4"
    not_video.write_text("this is not a video\n" * 50)
    truncated = folder / "truncated.mp4"
    data = Path(good[0].path).read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    overclaimed = folder / "overclaimed.mp4"
    shutil.copy(good[1].path, overclaimed)
    return [
        VideoRecord(path=str(folder / "missing.mp4"), label=0),
        VideoRecord(path=str(empty), label=0),
        VideoRecord(path=str(not_video), label=1),
        VideoRecord(path=str(truncated), label=1),
        # the annotation claims far more frames than the file holds
        VideoRecord(path=str(overclaimed), label=1, num_frames=500),
        *good,
    ]


@pytest.fixture(scope="module")
def good_records(synthetic_root) -> list[VideoRecord]:
    dm = SyntheticFineGrainedDataModule(data_dir=str(synthetic_root), **TINY_SYNTHETIC)
    return dm.build_records("train")


def make_dataset(records, on_error: str) -> VideoDataset:
    return VideoDataset(
        records, get_decoder("pyav"), mode="train", sampling="dense", num_frames=4,
        frame_interval=2, train_transform=TrainTransform(32, 36), test_views=TestViews(32, 36, 1),
        on_error=on_error,
    )


def test_each_fault_is_skipped_warned_once_and_counted(good_records, tmp_path) -> None:
    records = faulty_records(good_records, tmp_path)
    dataset = make_dataset(records, "warn")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        samples = [dataset[i] for i in range(len(dataset))]
        again = [dataset[i] for i in range(5)]
    messages = [str(w.message) for w in caught if "unreadable" in str(w.message)]
    for name in ("missing", "empty", "notes", "truncated", "overclaimed"):
        assert sum(name in m for m in messages) == 1, (name, messages)
    # the first five samples each stood in for a broken record: the first good one (position
    # 5), with its own index and label
    assert [s["skipped"] for s in samples[:5]] == [5, 4, 3, 2, 1]
    assert [s["index"] for s in samples[:5]] == [5] * 5
    assert {s["label"] for s in samples[:5]} == {records[5].label}
    assert [len(s["unreadable"]) for s in samples[:5]] == [5, 4, 3, 2, 1]
    assert all(s["skipped"] == 0 for s in samples[5:])
    assert [s["index"] for s in samples[5:]] == list(range(5, len(records)))
    assert all(s["video"].shape == (3, 4, 32, 32) for s in samples + again)


@pytest.mark.parametrize("mode", ["val", "test"])
def test_evaluation_never_substitutes(good_records, tmp_path, mode) -> None:
    records = faulty_records(good_records, tmp_path)
    dataset = VideoDataset(records, get_decoder("pyav"), mode=mode, sampling="uniform",
                           num_frames=4, test_views=TestViews(32, 36, 1))
    with pytest.warns(UserWarning, match="unreadable") as caught:
        batch = collate_samples([dataset[i] for i in range(3, 8)])
    assert sum("excluded from" in str(w.message) for w in caught) == 2  # truncated, overclaimed
    assert batch["index"].tolist() == [5, 6, 7]
    assert batch["label"].tolist() == [r.label for r in records[5:8]]
    assert batch["unreadable_index"].tolist() == [3, 4]
    assert [Path(p).name for p in batch["unreadable_path"]] == ["truncated.mp4",
                                                                 "overclaimed.mp4"]
    empty = collate_samples([dataset[0], dataset[1]])
    assert empty["video"].shape[0] == 0 and empty["label"].numel() == 0
    assert empty["unreadable_index"].tolist() == [0, 1]


@pytest.mark.parametrize("position", range(5))
def test_on_error_raise_names_the_file(good_records, tmp_path, position) -> None:
    records = faulty_records(good_records, tmp_path)
    with pytest.raises(DecodeError, match=Path(records[position].path).name):
        make_dataset(records, "raise")[position]


class FaultyDataModule(VideoDataModule):
    def __init__(self, records: list[VideoRecord], **kwargs) -> None:
        super().__init__(data_dir="unused", **kwargs)
        self._records = records

    @property
    def classes(self) -> list[str]:
        return ["a", "b", "c", "d"]

    def build_records(self, split):
        return self._records


class TrainBatches(pl.Callback):
    """Keeps the host-side fields of every training batch."""

    def __init__(self) -> None:
        self.seen: list[dict] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.seen.append({"num_replaced": batch["num_replaced"]})


@pytest.mark.parametrize("length", [{"max_epochs": 1}, {"max_epochs": 1, "max_steps": 4}],
                         ids=["whole epoch", "epoch cut by max_steps"])
def test_short_fit_survives_broken_videos_and_logs_the_count(good_records, tmp_path,
                                                             length) -> None:
    dm = FaultyDataModule(
        faulty_records(good_records, tmp_path / "faults"), num_frames=4, batch_size=4,
        num_workers=0, train_crop_size=32, test_crop_size=32, short_side=36,
    )
    model = VideoRecognizer(VideoResNet(depth=18, temporal="i3d", width_multiplier=0.125),
                            GAPHead, num_classes=4,
                            optimizer=lambda p: torch.optim.SGD(p, lr=0.01))
    trainer = pl.Trainer(**length, accelerator="cpu", logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         limit_val_batches=1, default_root_dir=tmp_path)
    batches = TrainBatches()
    trainer.callbacks.append(batches)
    with pytest.warns(UserWarning, match="unreadable"):
        trainer.fit(model, dm)
    logged = trainer.logged_metrics["train/skipped_videos"]
    # written even when max_steps ends the epoch early: the samples replaced in its batches
    assert logged == sum(b["num_replaced"] for b in batches.seen)
    # a whole epoch: each of the 5 faulty records once, not the 5 + 4 + 3 + 2 + 1 records that
    # the chains of replacements pass over (they sit next to each other); 4 of 5 batches: fewer
    assert logged == 5 if "max_steps" not in length else 0 < logged < 5


def test_test_split_reports_and_counts_only_readable_videos(good_records, tmp_path) -> None:
    """Acceptance: a zero-byte video in the test split is named once and counted as skipped;
    ``test/num_videos`` and the predictions hold only the readable videos. One worker: the
    failure happens in a worker process and is named by the main process."""
    empty = tmp_path / "zero.mp4"
    empty.write_bytes(b"")
    records = [*good_records[:3], VideoRecord(path=str(empty), label=1), *good_records[3:6]]
    dm = FaultyDataModule(records, num_frames=4, batch_size=2, num_workers=1,
                          train_crop_size=32, test_crop_size=32, short_side=36)
    model = VideoRecognizer(VideoResNet(depth=18, temporal="i3d", width_multiplier=0.125),
                            GAPHead, num_classes=4)
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (metrics,) = trainer.test(model, dm, verbose=False)
    named = [str(w.message) for w in caught if "zero.mp4" in str(w.message)]
    assert len(named) == 1 and "empty file" in named[0] and "excluded from test" in named[0]
    assert metrics["test/skipped_videos"] == 1
    assert metrics["test/num_videos"] == len(records) - 1
    assert 3 not in model.test_results.index.tolist()
    predictions = trainer.predict(model, dm)
    indices = sorted(i for p in predictions if p is not None for i in p["index"].tolist())
    assert indices == [0, 1, 2, 4, 5, 6]
