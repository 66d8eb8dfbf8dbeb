"""Evaluation callbacks in-process: result files, predictions, confusion analysis, accuracy vs
clips, reversed frame order, visualisations; CSV logger files and images."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from PIL import Image
from pytorch_lightning.loggers import CSVLogger

from datamodules import SyntheticFineGrainedDataModule
from lightning_modules import VideoRecognizer
from lightning_modules.analysis import load_predictions
from lightning_modules.callbacks import (
    AccuracyVsClips,
    ConfusionAnalysis,
    FilterResponseVisualizer,
    ReversedTimeEvaluation,
    TestPredictionsWriter,
    U2SMaskVisualizer,
    VideoPredictionWriter,
    WeightSimilarityVisualizer,
)
from models import GAPHead, VideoResNet
from models.heads import DFBHead, U2SHead
from tests.conftest import TINY_SYNTHETIC


def tiny_model(num_classes: int, head=GAPHead, temporal: str = "i3d",
               **head_options) -> VideoRecognizer:
    backbone = VideoResNet(depth=18, temporal=temporal, width_multiplier=0.125)
    return VideoRecognizer(backbone, partial(head, **head_options), num_classes=num_classes,
                           optimizer=lambda p: torch.optim.SGD(p, lr=0.01))


def datamodule(root: Path, **overrides) -> SyntheticFineGrainedDataModule:
    settings = {**TINY_SYNTHETIC, "test_clips": 3, "test_crops": 3, **overrides}
    return SyntheticFineGrainedDataModule(data_dir=str(root), **settings)


def trainer(tmp_path: Path, callbacks: list, logger=None) -> pl.Trainer:
    return pl.Trainer(accelerator="cpu", devices=1, logger=logger if logger is not None else False,
                      callbacks=callbacks, enable_progress_bar=False, enable_checkpointing=False,
                      default_root_dir=tmp_path, enable_model_summary=False)


def assert_image(path: Path, min_side: int = 100) -> np.ndarray:
    assert path.is_file(), path
    image = np.asarray(Image.open(path).convert("RGB"))
    assert min(image.shape[:2]) >= min_side, image.shape
    assert image.std() > 5, f"{path} looks blank"  # not a single flat colour
    return image


def test_test_callbacks_write_metrics_tables_and_images(synthetic_root, tmp_path) -> None:
    dm = datamodule(synthetic_root)
    torch.manual_seed(0)
    model = tiny_model(dm.num_classes)
    out = tmp_path / "analysis"
    callbacks = [ConfusionAnalysis(top_pairs=5, dirpath=str(out)),
                 AccuracyVsClips(dirpath=str(out)), ReversedTimeEvaluation(),
                 TestPredictionsWriter(dirpath=str(out))]
    logger = CSVLogger(tmp_path, name="csv")
    (results,) = trainer(tmp_path, callbacks, logger).test(model, dm)
    n = TINY_SYNTHETIC["test_per_class"] * dm.num_classes
    assert results["test/num_videos"] == n
    # all 3 clips = the full multi-view average: the same number as the recognizer's
    assert results["test/acc1_video_clips3"] == pytest.approx(results["test/acc1_video"])
    assert results["test/acc5_video_clips3"] == pytest.approx(results["test/acc5_video"])
    for key in ("test/acc1_video_clips1", "test/acc1_video_reversed",
                "test/acc5_video_reversed", "test/mean_class_acc_reversed"):
        assert 0.0 <= results[key] <= 1.0, key
    assert any(k.startswith("test/group_acc1/context:") for k in results)
    # confusion analysis: counts add up, pairs sorted
    confusion = callbacks[0]
    assert int(confusion.matrix.sum()) == n
    counts = [p.count for p in confusion.pairs]
    assert counts == sorted(counts, reverse=True)
    # files: PNG and CSV for a CSV logger, result files for Φ/Ψ and comparisons
    assert_image(out / "test_confusion_matrix.png")
    assert_image(out / "test_accuracy_vs_clips.png")
    for name in ("test_most_confused_pairs", "test_per_class_accuracy", "test_per_group_accuracy",
                 "test_accuracy_vs_clips"):
        assert (out / f"{name}.csv").read_text().count("\n") >= 2, name
    predictions = load_predictions(out / "test_predictions.pt")
    assert len(predictions["video_ids"]) == n
    assert predictions["class_names"] == dm.classes
    assert predictions["probs"]["avg"].shape == (n, dm.num_classes)
    metrics = json.loads((out / "test_predictions_metrics.json").read_text())
    assert metrics["metrics"]["test/acc1_video"] == pytest.approx(results["test/acc1_video"])
    assert metrics["num_videos"] == n
    # logged to the CSV logger too
    logged = (Path(logger.log_dir) / "metrics.csv").read_text()
    assert "test/acc1_video_reversed" in logged and "test/acc1_video_clips1" in logged


def test_baseline_comparison_from_a_predictions_file(synthetic_root, tmp_path) -> None:
    dm = datamodule(synthetic_root, test_clips=1, test_crops=1)
    torch.manual_seed(0)
    baseline_out = tmp_path / "baseline"
    trainer(tmp_path, [TestPredictionsWriter(dirpath=str(baseline_out))]).test(
        tiny_model(dm.num_classes), dm)
    torch.manual_seed(1)
    analysis = ConfusionAnalysis(baseline=str(baseline_out / "test_predictions.pt"),
                                 dirpath=str(tmp_path / "model"))
    (results,) = trainer(tmp_path, [analysis]).test(
        tiny_model(dm.num_classes, temporal="none"), dm)
    assert set(analysis.comparison) == {"improved", "worsened", "groups"}
    for group, before, after, gain in analysis.comparison["groups"]:  # dfb Table 2
        assert gain == pytest.approx(after - before)
        assert results[f"test/group_gain/{group}"] == pytest.approx(gain)
    for row in analysis.comparison["improved"]:
        assert row.model < row.baseline
    assert_image(tmp_path / "model" / "test_confusion_vs_baseline.png")
    assert (tmp_path / "model" / "test_group_accuracy_vs_baseline.csv").is_file()


def test_2d_model_does_not_see_the_arrow_of_time(synthetic_root, tmp_path) -> None:
    """s3d Table 1: a TSN-style model (2D convs, average over time) scores the same reversed."""
    dm = datamodule(synthetic_root, test_clips=1, test_crops=1)
    torch.manual_seed(0)
    reversed_eval = ReversedTimeEvaluation()
    (results,) = trainer(tmp_path, [reversed_eval]).test(
        tiny_model(dm.num_classes, temporal="none"), dm)
    assert results["test/acc1_video_reversed"] == pytest.approx(results["test/acc1_video"])
    assert results["test/acc5_video_reversed"] == pytest.approx(results["test/acc5_video"])


def test_predict_writes_per_video_probabilities_of_all_branches(synthetic_root, tmp_path) -> None:
    dm = datamodule(synthetic_root, test_clips=2, test_crops=1)
    torch.manual_seed(0)
    model = tiny_model(dm.num_classes, head=DFBHead, filters_per_class=2)
    for name in ("p.pt", "p.npz"):
        writer = VideoPredictionWriter(output=str(tmp_path / name))
        trainer(tmp_path, [writer]).predict(model, dm, return_predictions=False)
        predictions = load_predictions(writer.path)
        n = TINY_SYNTHETIC["test_per_class"] * dm.num_classes
        records = dm.datasets["test"].records
        # paths relative to the data root: unique even where file names repeat across classes
        assert predictions["video_ids"] == [
            Path(r.path).relative_to(dm.data_root).as_posix() for r in records]
        assert predictions["labels"].tolist() == [r.label for r in records]
        assert predictions["class_names"] == dm.classes
        assert set(predictions["probs"]) == {"avg", "xchannel", "max", "comb"}
        assert predictions["final"] == "comb"
        for probs in predictions["probs"].values():
            assert probs.shape == (n, dm.num_classes)
            torch.testing.assert_close(probs.sum(1), torch.ones(n))


def test_visualisations_draw_filters_masks_and_similarity(synthetic_root, tmp_path) -> None:
    dm = datamodule(synthetic_root, test_clips=1, test_crops=1)
    torch.manual_seed(0)
    filters = FilterResponseVisualizer(classes=[dm.classes[0], 1], videos_per_class=2,
                                       dirpath=str(tmp_path / "dfb"))
    trainer(tmp_path, [filters]).test(
        tiny_model(dm.num_classes, head=DFBHead, filters_per_class=3), dm)
    image = assert_image(tmp_path / "dfb" / "test_filter_responses.png")
    assert image.shape[0] > image.shape[1]  # 4 videos (rows) × 3 filters (columns)
    masks = U2SMaskVisualizer(videos_per_class=1, frames=4, dirpath=str(tmp_path / "u2s"))
    similarity = WeightSimilarityVisualizer(dirpath=str(tmp_path / "u2s"))
    trainer(tmp_path, [masks, similarity]).test(
        tiny_model(dm.num_classes, head=U2SHead, num_confusing=2, stage=3), dm)
    assert_image(tmp_path / "u2s" / "test_u2s_masks.png")
    assert_image(tmp_path / "u2s" / "u2s_weight_similarity.png")
    # a head without the extras: skipped cleanly, nothing written
    skipped = [FilterResponseVisualizer(dirpath=str(tmp_path / "gap")),
               U2SMaskVisualizer(dirpath=str(tmp_path / "gap")),
               WeightSimilarityVisualizer(dirpath=str(tmp_path / "gap"))]
    trainer(tmp_path, skipped).test(tiny_model(dm.num_classes), dm)
    assert all(cb.image is None for cb in skipped)
    assert not list((tmp_path / "gap").glob("*.png"))


def test_wandb_logger_gets_images_and_tables(synthetic_root, tmp_path) -> None:
    import wandb
    from pytorch_lightning.loggers import WandbLogger

    dm = datamodule(synthetic_root, test_clips=1, test_crops=1)
    logger = WandbLogger(project="finegrain-test", save_dir=str(tmp_path), offline=True)
    try:
        trainer(tmp_path, [ConfusionAnalysis()], logger).test(tiny_model(dm.num_classes), dm)
        files = Path(logger.experiment.dir)
        logger.experiment.finish()
    finally:
        # stop this process's W&B service and drop WANDB_SERVICE from os.environ: CLI
        # subprocesses of later tests would otherwise attach to it instead of their own
        wandb.teardown()
    # the PNG/CSV copies sit in the run's own files folder (uploaded with it)
    assert_image(files / "analysis" / "test_confusion_matrix.png")
    media = list(files.rglob("*.table.json")) + list(files.rglob("media/images/*.png"))
    assert media, "W&B got no table/image"


def test_views_are_rechunked_after_out_of_memory(monkeypatch) -> None:
    model = tiny_model(4).eval()
    views = torch.randn(2, 6, 3, 4, 32, 32)  # 12 clips
    with torch.no_grad():
        expected = model.view_logits(views)
    real = model._chunked_logits
    tried: list[int] = []

    def small_memory(clips, chunk):
        tried.append(chunk)
        if chunk > 3:  # pretend the accelerator only fits 3 clips at a time
            raise torch.OutOfMemoryError("out of memory")
        return real(clips, chunk)

    monkeypatch.setattr(model, "_chunked_logits", small_memory)
    with torch.no_grad(), pytest.warns(UserWarning, match="views_per_forward"):
        logits = model.view_logits(views)
    assert tried == [12, 6, 3] and model.views_per_forward == 3  # kept for the next batches
    torch.testing.assert_close(logits["avg"], expected["avg"], rtol=1e-4, atol=1e-5)
