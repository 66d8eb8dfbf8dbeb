"""``cli.py test`` under DDP (2 CPU processes) on an odd number of videos counts every video once
and gives the single-process numbers; the evaluation callbacks' collectives work there; only
rank 0 creates a W&B run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from cli import main
from datamodules import SyntheticFineGrainedDataModule, VideoRecord
from lightning_modules.analysis import load_predictions
from tests.conftest import TINY_SYNTHETIC
from tests.test_cli import DEMO, run_cli

NUM_VIDEOS = 11  # odd: DistributedSampler pads rank 1 with a repeat of the first video


class OddSyntheticDataModule(SyntheticFineGrainedDataModule):
    """The synthetic benchmark with its test split cut to ``max_test_videos`` (any count, odd
    included: 4 classes × videos per class is always even)."""

    def __init__(self, max_test_videos: int = NUM_VIDEOS, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_test_videos = max_test_videos

    def build_records(self, split: str) -> list[VideoRecord]:
        records = super().build_records(split)
        return records[: self.max_test_videos] if split == "test" else records


def overrides(tmp_path: Path, synthetic_root: Path, name: str) -> Path:
    data = {**TINY_SYNTHETIC, "data_dir": str(synthetic_root), "test_clips": 2, "test_crops": 3,
            "max_test_videos": NUM_VIDEOS, "batch_size": 2}
    out = str(tmp_path / name)
    config = {
        "trainer": {
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "callbacks": [
                {"class_path": "lightning_modules.callbacks.TestPredictionsWriter",
                 "init_args": {"dirpath": out}},
                {"class_path": "lightning_modules.callbacks.AccuracyVsClips",
                 "init_args": {"dirpath": out}},
                {"class_path": "lightning_modules.callbacks.ConfusionAnalysis",
                 "init_args": {"dirpath": out}},
                {"class_path": "lightning_modules.callbacks.ReversedTimeEvaluation"},
            ],
        },
        "model": {"init_args": {"backbone": {"init_args": {"width_multiplier": 0.125}}}},
        "data": {"class_path": "tests.test_ddp.OddSyntheticDataModule", "init_args": data},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slow
def test_ddp_multiview_test_counts_every_video_once(tmp_path, synthetic_root) -> None:
    # the same seed (demo.yaml) gives both runs the same randomly initialised model
    # the single-process reference runs the same CLI in this process (saves a Python start-up)
    single = overrides(tmp_path, synthetic_root, "single")
    main(["test", "--config", str(DEMO), "--config", str(single), "--trainer.logger=false",
          "--trainer.devices=1"])
    ddp = overrides(tmp_path, synthetic_root, "ddp")
    result = run_cli("test", "--config", str(DEMO), "--config", str(ddp),
                     "--trainer.accelerator=cpu", "--trainer.devices=2",
                     "--trainer.strategy=ddp", cwd=tmp_path)
    assert "test/num_videos" in result.stdout

    one, two = (load_predictions(tmp_path / n / "test_predictions.pt") for n in ("single", "ddp"))
    for predictions in (one, two):
        assert predictions["metrics"]["test/num_videos"] == NUM_VIDEOS
        assert predictions["index"].tolist() == list(range(NUM_VIDEOS))  # each video once
    assert one["video_ids"] == two["video_ids"]
    # per video, the same views averaged on whichever rank loaded them
    torch.testing.assert_close(one["probs"]["avg"], two["probs"]["avg"], rtol=1e-4, atol=1e-5)
    for key in ("test/acc1_video", "test/acc5_video", "test/acc1_clip", "test/mean_class_acc",
                "test/acc1_video_clips1", "test/acc1_video_reversed"):
        assert two["metrics"][key] == pytest.approx(one["metrics"][key], abs=1e-6), key
    # the confusion matrix counts 11 videos, not the 12 the sampler handed out
    rows = (tmp_path / "ddp" / "test_per_class_accuracy.csv").read_text().splitlines()[1:]
    assert sum(int(r.rsplit(",", 1)[1]) for r in rows) == NUM_VIDEOS
    # W&B: one offline run, created by rank 0 only (Lightning #11380)
    runs = list((tmp_path / "runs" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, runs
