"""Under DDP (2 CPU processes, gloo), a rank whose validation, test and predict videos are all
unreadable (every one of its batches is empty after ``collate_samples``) still joins every
gather and epoch-end reduction: the other rank's videos are reported, with the numbers one
process gets on the same data and weights.

The DDP side runs this module as a script (``python -m tests.test_ddp_empty_rank``), which
Lightning's launcher starts once more for rank 1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from datamodules import SyntheticFineGrainedDataModule, VideoRecord
from lightning_modules.callbacks import ReversedTimeEvaluation
from tests.conftest import TINY_SYNTHETIC
from tests.test_evaluation import tiny_model
from tests.test_faults import FaultyDataModule

ROOT = Path(__file__).resolve().parents[1]
NUM_VIDEOS = 6  # even: no sampler padding; rank r evaluates positions r, r + 2, r + 4


def records_with_unreadable_odd_positions(good: list[VideoRecord],
                                          folder: Path) -> list[VideoRecord]:
    """Good videos at even positions, zero-byte files at odd ones: all of rank 1's share."""
    records = []
    for position in range(NUM_VIDEOS):
        if position % 2:
            empty = folder / f"empty{position}.mp4"
            empty.write_bytes(b"")
            records.append(VideoRecord(path=str(empty), label=position % 4))
        else:
            records.append(good[position])
    return records


def evaluate(records: list[VideoRecord], out: Path, devices: int) -> dict | None:
    """validate, test and predict one seeded tiny model; the results (global-zero rank only)."""
    pl.seed_everything(0)
    dm = FaultyDataModule(records, num_frames=4, batch_size=1, num_workers=0,
                          train_crop_size=32, test_crop_size=32, short_side=36, test_clips=2)
    model = tiny_model(4)
    trainer = pl.Trainer(accelerator="cpu", devices=devices,
                         strategy="ddp" if devices > 1 else "auto", logger=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[ReversedTimeEvaluation()], default_root_dir=out)
    (val,) = trainer.validate(model, dm, verbose=False)
    (test,) = trainer.test(model, dm, verbose=False)
    trainer.predict(model, dm, return_predictions=False)
    predicted = model.collect_predict_results()
    if not trainer.is_global_zero:
        return None
    return {"val": val, "test": test, "test_index": model.test_results.index.tolist(),
            "predict_index": predicted.index.tolist(),
            "predict_probs": predicted.video[predicted.final].tolist()}


@pytest.mark.slow
def test_a_rank_without_readable_videos_still_reports_the_others(synthetic_root,
                                                                  tmp_path) -> None:
    good = SyntheticFineGrainedDataModule(data_dir=str(synthetic_root),
                                          **TINY_SYNTHETIC).build_records("test")
    records = records_with_unreadable_odd_positions(good, tmp_path)
    (tmp_path / "records.json").write_text(json.dumps([[r.path, r.label] for r in records]))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "tests.test_ddp_empty_rank", str(tmp_path)],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    two = json.loads((tmp_path / "ddp.json").read_text())
    one = evaluate(records, tmp_path / "single", devices=1)

    readable = [0, 2, 4]
    for results in (one, two):
        assert results["test_index"] == readable
        assert results["predict_index"] == readable
        assert results["test"]["test/num_videos"] == len(readable)
        assert results["test"]["test/skipped_videos"] == NUM_VIDEOS - len(readable)
        assert results["val"]["val/skipped_videos"] == NUM_VIDEOS - len(readable)
    # the metrics of the three readable videos, as one process computes them
    for stage in ("val", "test"):
        assert set(two[stage]) == set(one[stage])
        for key, value in one[stage].items():
            assert two[stage][key] == pytest.approx(value, abs=1e-5), key
    assert "test/acc1_video_reversed" in two["test"]
    torch.testing.assert_close(torch.tensor(two["predict_probs"]),
                               torch.tensor(one["predict_probs"]), rtol=1e-4, atol=1e-5)


if __name__ == "__main__":  # the DDP side: both ranks run this
    folder = Path(sys.argv[1])
    rows = json.loads((folder / "records.json").read_text())
    results = evaluate([VideoRecord(path=p, label=label) for p, label in rows],
                       folder / "ddp", devices=2)
    if results is not None:
        (folder / "ddp.json").write_text(json.dumps(results))
