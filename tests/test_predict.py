"""``cli.py predict`` on new videos: a folder, a glob or a list, with every datamodule; one CSV
row per video named by its path (not its stem), written to the run folder by default."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

from datamodules import UCF101DataModule, VideoFolderDataModule
from datamodules.predict import find_predict_videos, predict_records
from tests.conftest import TINY_SYNTHETIC
from tests.fixtures_datasets import build_folder, build_ucf101, tiny_video

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "experiments" / "demo.yaml"


def new_videos(root: Path) -> list[str]:
    """Three unlabelled videos, two of them named alike in different folders."""
    for rel, seed in [("street/006.mp4", 1), ("park/006.mp4", 2), ("park/evening.avi", 3)]:
        tiny_video(root / rel, seed=seed, codec="mpeg4" if rel.endswith(".avi") else "libx264")
    (root / "notes.txt").write_text("not a video\n")
    return ["park/006.mp4", "park/evening.avi", "street/006.mp4"]


def test_folder_glob_and_list_name_the_same_videos(tmp_path) -> None:
    expected = new_videos(tmp_path / "new")
    root, records = predict_records(str(tmp_path / "new"))
    assert root == str(tmp_path / "new")
    assert [Path(r.path).relative_to(root).as_posix() for r in records] == expected
    assert all(r.label == -1 for r in records)
    assert find_predict_videos(str(tmp_path / "new" / "**" / "*.mp4")) == [
        str(tmp_path / "new" / p) for p in expected if p.endswith(".mp4")]
    listing = tmp_path / "new" / "list.txt"
    listing.write_text("street/006.mp4\npark/evening.avi\n")
    assert find_predict_videos(str(listing)) == [str(tmp_path / "new" / "street/006.mp4"),
                                                 str(tmp_path / "new" / "park/evening.avi")]
    assert find_predict_videos([str(tmp_path / "new" / "park"), str(listing)])[:2] == [
        str(tmp_path / "new" / "park/006.mp4"), str(tmp_path / "new" / "park/evening.avi")]
    with pytest.raises(FileNotFoundError, match="no videos"):
        find_predict_videos(str(tmp_path / "empty*"))


@pytest.mark.parametrize("build", ["ucf101", "folder"])
def test_every_datamodule_predicts_given_paths(tmp_path, build) -> None:
    expected = new_videos(tmp_path / "new")
    if build == "ucf101":
        fixture = build_ucf101(tmp_path / "ucf")
        dm = UCF101DataModule(str(fixture.annotation_dir), predict_paths=str(tmp_path / "new"),
                              test_crops=3, num_workers=0)
    else:
        fixture = build_folder(tmp_path / "folder")
        dm = VideoFolderDataModule(str(fixture.data_dir), predict_paths=str(tmp_path / "new"),
                                   test_crops=3, num_workers=0)
    dm.setup("predict")
    dataset = dm.predict_dataloader().dataset
    assert [Path(r.path).relative_to(dm.video_root("predict")).as_posix()
            for r in dataset.records] == expected
    assert dataset[0]["video"].shape[0] == 3  # every test view, as in `test`
    assert dm.num_classes == len(fixture.classes)  # the model's classes, as in training


@pytest.mark.slow
def test_predict_on_a_folder_writes_one_row_per_video(tmp_path, synthetic_root,
                                                      monkeypatch) -> None:
    from cli import main

    monkeypatch.chdir(tmp_path)
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text(yaml.safe_dump({
        "trainer": {"max_epochs": 1, "limit_train_batches": 1, "limit_val_batches": 1,
                    "enable_progress_bar": False},
        "model": {"init_args": {"backbone": {"init_args": {"width_multiplier": 0.125}}}},
        "data": {"init_args": {**TINY_SYNTHETIC, "data_dir": str(synthetic_root),
                               "test_clips": 1, "test_crops": 1}},
    }))
    main(["fit", "--config", str(DEMO), "--config", str(tiny), "--test_after_fit=false"])
    checkpoint = next(tmp_path.rglob("last.ckpt"))
    # beside W&B, every logged metric also lands in a plain CSV next to the checkpoints
    with (checkpoint.parent.parent / "metrics.csv").open() as handle:
        assert "val/acc1" in next(csv.reader(handle))
    expected = new_videos(tmp_path / "new")
    main(["predict", "--config", str(DEMO), "--config", str(tiny), "--ckpt_path",
          str(checkpoint), f"--data.init_args.predict_paths={tmp_path / 'new'}"])
    written = next(tmp_path.rglob("predictions.csv"))  # in the run's folder (W&B offline)
    with written.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["path"] for row in rows] == expected
    classes = {f"{c}-mark_{m}-{t}" for c in ["stripes"] for m in ("top", "bottom")
               for t in ("grow", "shrink")}
    for row in rows:
        assert row["true_class"] == ""  # unlabelled
        assert {row[f"class_{i}"] for i in range(1, 5)} == classes  # top-5 of 4 classes
        probs = [float(row[f"prob_{i}"]) for i in range(1, 5)]
        assert probs == sorted(probs, reverse=True) and sum(probs) == pytest.approx(1, abs=1e-4)
        assert row["top1_avg"] == row["class_1"]  # the GAP head's one branch
