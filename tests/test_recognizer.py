"""VideoRecognizer: normalisation on the device, branch logging, multi-view test averaging."""

from __future__ import annotations

import dataclasses

import pytest
import pytorch_lightning as pl
import torch

from datamodules import SyntheticFineGrainedDataModule
from lightning_modules import VideoRecognizer
from lightning_modules.evaluation import average_views, unique_by_index
from models import GAPHead, VideoResNet
from tests.conftest import TINY_SYNTHETIC


def tiny_model(num_classes: int, temporal: str = "i3d") -> VideoRecognizer:
    backbone = VideoResNet(depth=18, temporal=temporal, width_multiplier=0.125)
    return VideoRecognizer(
        backbone, GAPHead, num_classes=num_classes,
        optimizer=lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9),
    )


def test_average_views() -> None:
    logits = torch.tensor([[[2.0, 0.0], [0.0, 1.0]]])  # one video, two views
    probs = logits.softmax(-1)
    torch.testing.assert_close(average_views(logits, "prob"), probs.mean(1))
    torch.testing.assert_close(average_views(logits, "score"), torch.tensor([[1.0, 0.5]]))
    torch.testing.assert_close(average_views(logits, "max"), probs.amax(1))
    with pytest.raises(ValueError, match="test_average"):
        average_views(logits, "median")


def test_unique_by_index_drops_padding_duplicates() -> None:
    index = torch.tensor([3, 0, 1, 2, 0])  # DistributedSampler repeats 0 to fill a rank
    values = torch.tensor([30, 0, 10, 20, 99])
    kept_index, kept = unique_by_index(index, values)
    assert kept_index.tolist() == [0, 1, 2, 3]
    assert kept.tolist() == [0, 10, 20, 30]


def test_uint8_is_normalised_on_the_device() -> None:
    model = tiny_model(4)
    batch = {"video": torch.full((1, 3, 2, 4, 4), 255, dtype=torch.uint8)}
    out = model.on_after_batch_transfer(batch, 0)["video"]
    assert out.dtype == torch.float32
    expected = (1.0 - torch.tensor(model.hparams.mean)) / torch.tensor(model.hparams.std)
    torch.testing.assert_close(out[0, :, 0, 0, 0], expected)


def test_fit_and_multiview_test_log_the_documented_metrics(synthetic_root, tmp_path) -> None:
    dm = SyntheticFineGrainedDataModule(
        data_dir=str(synthetic_root), **{**TINY_SYNTHETIC, "test_clips": 2, "test_crops": 3})
    model = tiny_model(dm.num_classes)
    trainer = pl.Trainer(
        max_epochs=1, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, default_root_dir=tmp_path, log_every_n_steps=1,
    )
    trainer.fit(model, dm)
    logged = trainer.logged_metrics
    for key in ("train/loss", "train/loss_avg", "val/acc1", "val/acc5", "val/acc1_avg"):
        assert key in logged, key
    (results,) = trainer.test(model, dm)
    for key in ("test/acc1_video", "test/acc5_video", "test/acc1_clip", "test/mean_class_acc"):
        assert 0.0 <= results[key] <= 1.0
    assert results["test/num_videos"] == 3 * dm.num_classes
    assert results["test/acc5_video"] >= results["test/acc1_video"]


def test_views_per_forward_does_not_change_results(synthetic_root) -> None:
    model = tiny_model(4).eval()
    views = torch.randn(2, 6, 3, 4, 32, 32)
    with torch.no_grad():
        whole, _ = model._view_logits(views)
        model.views_per_forward = 5
        chunked, _ = model._view_logits(views)
    torch.testing.assert_close(whole["avg"], chunked["avg"], rtol=1e-4, atol=1e-5)


class UnlabelledTestSplit(SyntheticFineGrainedDataModule):
    """An official test split without answers: every test label is -1."""

    def build_records(self, split):
        records = super().build_records(split)
        if split != "test":
            return records
        return [dataclasses.replace(r, label=-1) for r in records]


def test_unlabelled_test_split_counts_videos_without_accuracy(synthetic_root, tmp_path) -> None:
    dm = UnlabelledTestSplit(data_dir=str(synthetic_root), **TINY_SYNTHETIC)
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                         default_root_dir=tmp_path)
    with pytest.warns(UserWarning, match="no labels"):
        (results,) = trainer.test(tiny_model(dm.num_classes), dm)
    assert results == {"test/num_videos": 3 * dm.num_classes, "test/skipped_videos": 0}
