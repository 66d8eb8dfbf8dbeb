"""VideoRecognizer: normalisation on the device, branch logging, multi-view test averaging."""

from __future__ import annotations

import dataclasses

import pytest
import pytorch_lightning as pl
import torch

from datamodules import SyntheticFineGrainedDataModule
from lightning_modules import VideoRecognizer
from lightning_modules.evaluation import (
    ResultAccumulator,
    average_views,
    group_rows,
    unique_by_index,
)
from lightning_modules.metrics import METRICS, score, video_metric_names
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


def test_uint8_input_is_normalised_once() -> None:
    model = tiny_model(4).eval()
    raw = torch.randint(0, 256, (1, 3, 4, 32, 32), dtype=torch.uint8)
    normalised = model.normalization(raw)
    expected = (1.0 - torch.tensor(model.hparams.mean)) / torch.tensor(model.hparams.std)
    torch.testing.assert_close(model.normalization(torch.full_like(raw, 255))[0, :, 0, 0, 0],
                               expected)
    with torch.no_grad():  # raw uint8 and already-normalised float give the same output
        torch.testing.assert_close(model(raw).final_logits, model(normalised).final_logits)


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
        whole = model.view_logits(views)
        model.views_per_forward = 5
        chunked = model.view_logits(views)
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


def test_result_accumulator_keeps_one_row_per_video_and_gathers_once() -> None:
    rows = ResultAccumulator()
    # two batches; video 0 comes again at the end (a DistributedSampler's padding)
    rows.append(torch.tensor([2, 0]), label=torch.tensor([1, 0]),
                video={"avg": torch.tensor([[0.2, 0.8], [0.9, 0.1]])})
    rows.append(torch.tensor([1, 0]), label=torch.tensor([1, 0]),
                video={"avg": torch.tensor([[0.4, 0.6], [0.0, 1.0]])})
    gathered = rows.gather(None)  # no trainer: this process's rows
    assert gathered["index"].tolist() == [0, 1, 2]
    assert gathered["label"].tolist() == [0, 1, 1]
    torch.testing.assert_close(group_rows(gathered, "video")["avg"],
                               torch.tensor([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8]]))
    assert rows.gather(None) is gathered  # cached: callbacks and the module share one gather
    with pytest.raises(RuntimeError, match="reset"):
        rows.append(torch.tensor([3]))
    rows.reset()
    with pytest.raises(RuntimeError, match="no evaluation outputs"):
        rows.gather(None)


def test_one_metric_definition_scores_video_rows() -> None:
    # 4 labelled videos of 3 classes and one unlabelled (-1) video that is left out
    scores = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.2, 0.7], [0.2, 0.5, 0.3], [0.6, 0.3, 0.1],
                           [0.0, 0.0, 1.0]])
    label = torch.tensor([0, 1, 1, 2, -1])
    metrics = score(scores, label)
    assert set(metrics) == set(METRICS)
    assert metrics["acc1"] == pytest.approx(2 / 4)  # videos 0 and 2
    assert metrics["acc5"] == 1.0  # top-3 of 3 classes
    # per-class recall: class 0 1/1, class 1 1/2, class 2 0/1
    assert metrics["mean_class_acc"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert score(scores[:1], torch.tensor([-1])) == {}
    assert video_metric_names("_reversed")["acc1"] == "test/acc1_video_reversed"
    assert video_metric_names()["mean_class_acc"] == "test/mean_class_acc"


def test_test_and_predict_batches_always_have_a_view_axis() -> None:
    model = tiny_model(4)
    clips = torch.zeros(2, 3, 2, 8, 8, dtype=torch.uint8)  # a single-view loader's batch
    for stage, expected in (("testing", (2, 1, 3, 2, 8, 8)), ("predicting", (2, 1, 3, 2, 8, 8)),
                            ("training", (2, 3, 2, 8, 8))):
        model.trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False)
        setattr(model.trainer, stage, True)  # the trainer's stage flags
        out = model.on_after_batch_transfer({"video": clips.clone()}, 0)["video"]
        assert tuple(out.shape) == expected, stage


class StepValues(pl.Callback):
    """Keeps every step's ``train/loss`` as the module logged it."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, *args) -> None:
        self.losses.append(float(trainer.callback_metrics["train/loss"]))


def test_training_logs_per_step_values_every_step_and_branch_losses_at_log_steps(
        synthetic_root, tmp_path) -> None:
    from lightning_modules import EpochSummary

    dm = SyntheticFineGrainedDataModule(data_dir=str(synthetic_root), **TINY_SYNTHETIC)
    summary, steps = EpochSummary(when="always"), StepValues()
    trainer = pl.Trainer(
        max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
        log_every_n_steps=3, num_sanity_val_steps=0, callbacks=[summary, steps])
    trainer.fit(tiny_model(dm.num_classes), dm)
    assert len(steps.losses) == 4  # 16 videos, batches of 4
    logged = trainer.logged_metrics
    # the branch losses are written on the log step (step 3 of 4), the replaced videos once
    assert "train/loss_avg" in logged and logged["train/skipped_videos"] == 0
    # EpochSummary: the mean of every step's loss, not of the logged steps only
    (line,) = summary.lines
    assert f"train/loss {sum(steps.losses) / 4:.4g}" in line and "train/skipped_videos 0" in line
