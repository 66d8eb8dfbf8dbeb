"""A dataset datamodule trains a model, parses from a config, and stays free of models."""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

import pytest

import datamodules
from datamodules import UCF101DataModule, VideoDataModule
from tests import fixtures_datasets as fx
from tests.test_datasets_formats import SMALL


def test_short_fit_and_multi_view_test_on_ucf101(tmp_path) -> None:
    import pytorch_lightning as pl

    import models
    from lightning_modules import VideoRecognizer

    f = fx.build_ucf101(tmp_path / "ucf")
    dm = UCF101DataModule(str(f.data_dir), annotation_dir=str(f.annotation_dir), split=1,
                          **{**SMALL, "test_clips": 2, "test_crops": 3})
    model = VideoRecognizer(models.VideoResNet(depth=18, temporal="i3d", width_multiplier=0.125),
                            models.GAPHead, num_classes=dm.num_classes)
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=2, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu",
                         limit_val_batches=1, num_sanity_val_steps=0,
                         default_root_dir=str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Lightning's advice about workers on a tiny run
        trainer.fit(model, datamodule=dm)
        results = trainer.test(model, datamodule=dm, verbose=False)
    assert trainer.state.finished
    assert 0.0 <= results[0]["test/acc1_video"] <= 1.0


def test_config_reaches_every_argument_through_the_subclass() -> None:
    from jsonargparse import ArgumentParser

    parser = ArgumentParser()
    parser.add_subclass_arguments(VideoDataModule, "data")
    config = parser.parse_args([
        "--data", "datamodules.SomethingSomethingV2DataModule", "--data.data_dir", "/ssv2",
        "--data.sampling", "dense", "--data.classes_subset", "87",
        "--data.max_per_class", '{"train": 400, "val": 25}', "--data.flip_label_map", "auto",
    ])
    args = config.data.init_args
    assert (args.sampling, args.classes_subset, args.flip) == ("dense", 87, False)
    assert args.max_per_class == {"train": 400, "val": 25}


def test_datamodules_never_import_models_or_lightning_modules() -> None:
    # static, so it holds whatever other tests have imported into this process
    root = Path(datamodules.__file__).parent
    for file in root.rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in ("models", "lightning_modules"), file


@pytest.mark.parametrize("name", datamodules.__all__)
def test_exports_resolve(name) -> None:
    assert getattr(datamodules, name) is not None


def test_summary_is_mean_and_std_over_splits() -> None:
    from experiments.run_splits import summarise

    summary = summarise({1: {"acc": 0.5, "only1": 1.0}, 2: {"acc": 0.7}, 3: {"acc": 0.9}})
    assert list(summary) == ["acc"]  # a metric some split lacks is left out
    assert summary["acc"]["mean"] == pytest.approx(0.7)
    assert summary["acc"]["std"] == pytest.approx((0.08 / 3) ** 0.5)


def test_run_splits_end_to_end(tmp_path) -> None:
    # one split keeps it quick; the loop over splits is the same code path
    import yaml

    from experiments.run_splits import main as run_splits

    f = fx.build_ucf101(tmp_path / "ucf")
    config = {
        "seed_everything": 0,
        "trainer": {"accelerator": "cpu", "devices": 1, "max_epochs": 1,
                    "limit_train_batches": 1, "limit_val_batches": 1, "logger": False,
                    "enable_checkpointing": False, "enable_progress_bar": False,
                    "enable_model_summary": False, "num_sanity_val_steps": 0,
                    "default_root_dir": str(tmp_path)},
        "model": {"class_path": "lightning_modules.VideoRecognizer", "init_args": {
            "backbone": {"class_path": "models.VideoResNet",
                         "init_args": {"depth": 18, "temporal": "i3d",
                                       "width_multiplier": 0.125}},
            "head": {"class_path": "models.GAPHead"}}},
        "data": {"class_path": "datamodules.UCF101DataModule", "init_args": {
            **SMALL, "data_dir": str(f.data_dir), "annotation_dir": str(f.annotation_dir)}},
    }
    path = tmp_path / "ucf.yaml"
    path.write_text(yaml.safe_dump(config))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = run_splits(["--config", str(path), "--splits", "3",
                              "--output", str(tmp_path / "out.json"), "--",
                              "--trainer.limit_test_batches=1"])
    row = summary["test/acc1_video"]
    assert set(row) == {"split3", "mean", "std"}
    assert row["mean"] == row["split3"] and row["std"] == 0.0
    assert (tmp_path / "out.json").exists()
