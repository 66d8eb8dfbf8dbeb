"""Two DDP checks (2 CPU processes, gloo), each against one process on the same data and weights:

* the U2S category similarity matrix computed by ``CategorySimilarityCallback`` over an odd
  number of training videos (DistributedSampler pads one rank with a repeat) is the CSM of every
  training video counted exactly once, and the same on both ranks;
* ``cli.py predict`` with ``VideoPredictionWriter`` on an odd number of videos writes one file
  holding every video once, with the single-process probabilities.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
import yaml
from torch.utils.data import default_collate

from cli import main
from datamodules import SyntheticFineGrainedDataModule, VideoRecord
from lightning_modules.analysis import load_predictions
from models.heads.u2s import binarize_similarity, category_similarity, channel_sparsity
from tests.conftest import TINY_SYNTHETIC
from tests.test_cli import DEMO, run_cli

NUM_TRAIN = 15  # odd (4 classes × 4 videos, one cut): the sampler repeats a video on rank 1
NUM_PREDICT = 11  # odd
NUM_CONFUSING = 2
# the CSM statistics must not depend on augmentation: a full-frame "random" crop (area 1, any
# aspect ratio other than ~1 does not fit and falls back to the full frame), no flip, and dense
# sampling whose span (13 frames) exceeds the 12-frame videos, so every clip starts at frame 0
DETERMINISTIC_TRAIN = {"train_scale": [1.0, 1.0], "flip": False, "sampling": "dense",
                       "frame_interval": 4}


class OddSplitsSyntheticDataModule(SyntheticFineGrainedDataModule):
    """The synthetic benchmark with its train / test splits cut to any count (odd included)."""

    def __init__(self, max_train_videos: int | None = None, max_test_videos: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_videos = {"train": max_train_videos, "test": max_test_videos}

    def build_records(self, split: str) -> list[VideoRecord]:
        records = super().build_records(split)
        limit = self.max_videos.get(split)
        return records if limit is None else records[:limit]


class CSMRecorder(pl.Callback):
    """After the CSM callback (listed after it): save, per rank, the head's CSM buffers and a
    reference CSM computed here from every training video exactly once (straight from the
    dataset, no sampler), with this rank's weights."""

    def __init__(self, dirpath: str) -> None:
        super().__init__()
        self.dirpath = Path(dirpath)

    @torch.no_grad()
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        head = pl_module.head
        dataset = trainer.train_dataloader.dataset
        sums = torch.zeros_like(head.csm_sparsity_sum)
        counts = torch.zeros_like(head.csm_count)
        was_training = pl_module.training
        pl_module.eval()
        for start in range(0, len(dataset), 4):
            batch = default_collate([dataset[i] for i in range(start, min(start + 4,
                                                                          len(dataset)))])
            batch = pl_module._apply_batch_transfer_handler(batch)
            features = pl_module.backbone(batch["video"])[head.feature_stage]
            sums.index_add_(0, batch["label"], channel_sparsity(features).double())
            counts.index_add_(0, batch["label"], torch.ones_like(counts[batch["label"]]))
        pl_module.train(was_training)
        mean = (sums / counts.clamp(min=1).unsqueeze(1)).float()
        similarity = category_similarity(mean, head.distance)
        csm, alpha = binarize_similarity(similarity, head.num_confusing, counts > 0)
        self.dirpath.mkdir(parents=True, exist_ok=True)
        torch.save({
            "is_set": bool(head.csm_is_set), "csm": head.csm.clone(),
            "similarity": head.csm_similarity.clone(), "threshold": float(head.csm_threshold),
            "ref_csm": csm, "ref_similarity": similarity, "ref_threshold": alpha,
            "ref_count": counts, "world_size": trainer.world_size,
        }, self.dirpath / f"csm_rank{trainer.global_rank}.pt")


def overrides(tmp_path: Path, synthetic_root: Path, name: str, **data: Any) -> Path:
    """A second --config for the demo: a tiny stage-2 U2S model on the cut synthetic data."""
    out = tmp_path / name
    callbacks = (
        [{"class_path": "lightning_modules.callbacks.CategorySimilarityCallback"},
         {"class_path": "tests.test_ddp_u2s_predict.CSMRecorder",
          "init_args": {"dirpath": str(out)}}]
        if "max_train_videos" in data else
        [{"class_path": "lightning_modules.callbacks.VideoPredictionWriter",
          "init_args": {"output": str(out / "predictions.pt")}}]
    )
    config = {
        "test_after_fit": False,
        "trainer": {
            "logger": False,
            "enable_checkpointing": False,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "default_root_dir": str(out),  # the CSM heat map PNG lands here
            "max_steps": 1,
            "limit_val_batches": 0,
            "num_sanity_val_steps": 0,
            "callbacks": callbacks,
        },
        "model": {"init_args": {
            "backbone": {"init_args": {"width_multiplier": 0.125}},
            "head": {"class_path": "models.heads.U2SHead",
                     "init_args": {"stage": 2, "num_confusing": NUM_CONFUSING}},
        }},
        "data": {"class_path": "tests.test_ddp_u2s_predict.OddSplitsSyntheticDataModule",
                 "init_args": {**TINY_SYNTHETIC, "data_dir": str(synthetic_root), **data}},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


DDP = ("--trainer.accelerator=cpu", "--trainer.devices=2", "--trainer.strategy=ddp")


@pytest.mark.slow
def test_ddp_u2s_csm_counts_every_training_video_once(tmp_path, synthetic_root,
                                                      caplog) -> None:
    data = {**DETERMINISTIC_TRAIN, "max_train_videos": NUM_TRAIN, "batch_size": 4}
    # the premise: a training sample is the same clip whenever it is drawn
    dm = OddSplitsSyntheticDataModule(data_dir=str(synthetic_root),
                                      **{**TINY_SYNTHETIC, **data})
    dm.prepare_data()
    dm.setup("fit")
    train = dm.datasets["train"]
    assert len(train) == NUM_TRAIN
    for i in (0, NUM_TRAIN - 1):
        torch.manual_seed(i)
        first = train[i]["video"]
        torch.manual_seed(100 + i)
        assert torch.equal(first, train[i]["video"])

    # the same seed (demo.yaml) gives both runs the same randomly initialised model
    single = overrides(tmp_path, synthetic_root, "single", **data)
    main(["fit", "--config", str(DEMO), "--config", str(single), "--trainer.devices=1"])
    ddp = overrides(tmp_path, synthetic_root, "ddp", **data)
    result = run_cli("fit", "--config", str(DEMO), "--config", str(ddp), *DDP, cwd=tmp_path)
    # every training video counted once: not 12 (drop_last), not 16 (DistributedSampler padding)
    counted = f"CategorySimilarityCallback: CSM over {NUM_TRAIN} clips"
    assert counted in caplog.text
    assert counted in result.stdout + result.stderr

    one = torch.load(tmp_path / "single" / "csm_rank0.pt", weights_only=True)
    ranks = [torch.load(tmp_path / "ddp" / f"csm_rank{r}.pt", weights_only=True)
             for r in (0, 1)]
    assert one["world_size"] == 1 and all(r["world_size"] == 2 for r in ranks)
    # the reference: same weights and clips in both runs, every class counted in full
    assert one["ref_count"].tolist() == [4.0, 4.0, 4.0, 3.0]
    for other in ranks:
        assert torch.equal(other["ref_count"], one["ref_count"])
        torch.testing.assert_close(other["ref_similarity"], one["ref_similarity"])
        assert torch.equal(other["ref_csm"], one["ref_csm"])
    # both ranks hold the very same CSM
    assert torch.equal(ranks[0]["csm"], ranks[1]["csm"])
    assert torch.equal(ranks[0]["similarity"], ranks[1]["similarity"])
    assert ranks[0]["threshold"] == ranks[1]["threshold"]
    # and it is the single-process one, which is the every-video-once reference
    for run in (one, *ranks):
        assert run["is_set"]
        torch.testing.assert_close(run["similarity"], run["ref_similarity"], rtol=0, atol=1e-6)
        assert torch.equal(run["csm"], run["ref_csm"])
        assert run["threshold"] == pytest.approx(run["ref_threshold"], abs=1e-6)
        assert run["csm"].sum(0).mean().item() == pytest.approx(NUM_CONFUSING)
    torch.testing.assert_close(ranks[0]["similarity"], one["similarity"], rtol=0, atol=1e-6)
    assert torch.equal(ranks[0]["csm"], one["csm"])


@pytest.mark.slow
def test_ddp_predict_writes_every_video_once(tmp_path, synthetic_root) -> None:
    data = {"max_test_videos": NUM_PREDICT, "test_clips": 2, "test_crops": 3, "batch_size": 2}
    single = overrides(tmp_path, synthetic_root, "single", **data)
    main(["predict", "--config", str(DEMO), "--config", str(single), "--trainer.devices=1"])
    ddp = overrides(tmp_path, synthetic_root, "ddp", **data)
    run_cli("predict", "--config", str(DEMO), "--config", str(ddp), *DDP, cwd=tmp_path)

    one, two = (load_predictions(tmp_path / n / "predictions.pt") for n in ("single", "ddp"))
    dm = OddSplitsSyntheticDataModule(data_dir=str(synthetic_root),
                                      **{**TINY_SYNTHETIC, **data})
    records = dm.build_records("test")
    assert len(records) == NUM_PREDICT
    for predictions in (one, two):
        assert predictions["index"].tolist() == list(range(NUM_PREDICT))  # each video once
        assert predictions["video_ids"] == [
            Path(r.path).relative_to(dm.data_root).as_posix() for r in records]
        assert predictions["labels"].tolist() == [r.label for r in records]
        assert predictions["final"] == "fused"
        assert set(predictions["probs"]) == {"universal", "bridge", "specific", "fused"}
        for probs in predictions["probs"].values():
            assert probs.shape == (NUM_PREDICT, dm.num_classes)
            torch.testing.assert_close(probs.sum(1), torch.ones(NUM_PREDICT))
    assert one["class_names"] == two["class_names"] == list(dm.classes)
    for branch, probs in one["probs"].items():
        torch.testing.assert_close(two["probs"][branch], probs, rtol=1e-4, atol=1e-5)
    # written by rank 0 only: the configured file and the CLI's default CSV, one row per video
    written = sorted(p.relative_to(tmp_path / "ddp").as_posix()
                     for p in (tmp_path / "ddp").rglob("*") if p.is_file())
    assert written == ["analysis/predictions.csv", "predictions.pt"]
    csv_rows = (tmp_path / "ddp" / "analysis" / "predictions.csv").read_text().splitlines()
    assert len(csv_rows) == 1 + NUM_PREDICT
