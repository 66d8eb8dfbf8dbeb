"""dfb §4.2's 3D test (whole resized frames, 10 clips, alternate flips) and s3d §3.2's test view
(square resize, centre crop) on videos of two frame sizes, and the clip-level metric reading the
middle clip."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from datamodules import VideoFolderDataModule
from datamodules.transforms import FullFrameViews, TestViews
from lightning_modules import VideoRecognizer
from models import GAPHead, HeadOutput, VideoResNet
from models.heads import DFBHead
from tests.videos import pattern, write_video

SIZES = [(48, 64), (48, 96)]  # (height, width): two aspect ratios, one short side


def two_size_folder(root: Path) -> Path:
    """``train/`` and ``val/`` class folders; in each class one video per frame size."""
    for split in ("train", "val"):
        for label, name in enumerate(["left", "right"]):
            for i, (h, w) in enumerate(SIZES):
                path = root / split / name / f"{h}x{w}.mp4"
                path.parent.mkdir(parents=True, exist_ok=True)
                write_video(path, frames=pattern(20, w, h, seed=10 * label + i), fps=25)
    return root


def tiny_3d(head, num_classes: int = 2, **head_options) -> VideoRecognizer:
    backbone = VideoResNet(depth=18, temporal="i3d", width_multiplier=0.125)
    return VideoRecognizer(backbone, partial(head, **head_options), num_classes=num_classes,
                           optimizer=lambda p: torch.optim.SGD(p, lr=0.01))


def full_frame_datamodule(root: Path, test_clips: int = 4) -> VideoFolderDataModule:
    return VideoFolderDataModule(
        data_dir=str(root), sampling="dense", num_frames=4, frame_interval=2,
        test_clips=test_clips, train_crop_size=32, test_crop_size=32, short_side=32,
        test_views=FullFrameViews(short_side=32), batch_size=4, num_workers=0)


def test_full_frame_test_runs_on_two_frame_sizes(tmp_path: Path) -> None:
    dm = full_frame_datamodule(two_size_folder(tmp_path / "videos"))
    dm.setup("test")
    batches = list(dm.test_dataloader())
    # one video per batch (views of different widths do not stack), whole resized frames
    assert {tuple(b["video"].shape) for b in batches} == {
        (1, 4, 3, 4, 32, round(w * 32 / h)) for h, w in SIZES}
    first = batches[0]["video"][0]  # [V, C, T, H, W], clips 1 and 3 mirrored
    assert first.shape[0] == dm.num_test_views == 4
    assert batches[0]["clip_view"].tolist() == [2]  # the middle clip's (only) view
    for head, options in [(GAPHead, {}), (DFBHead, {"filters_per_class": 2})]:
        model = tiny_3d(head, **options)
        trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False,
                             enable_checkpointing=False, enable_progress_bar=False,
                             default_root_dir=tmp_path)
        (results,) = trainer.test(model, dm)
        assert results["test/num_videos"] == 4
        assert 0.0 <= results["test/acc1_video"] <= 1.0


def test_clip_level_accuracy_reads_the_middle_clip() -> None:
    """3 clips × 2 crops: the clip-level view is view 2 (centre crop of clip 1), not view 0."""
    model = tiny_3d(GAPHead, num_classes=6)

    def view_number(clips: torch.Tensor) -> HeadOutput:
        # every view's pixels hold its own view number: predict that number
        number = clips.flatten(1).mean(1).round().long()
        return HeadOutput(logits={"avg": F.one_hot(number, 6).float()}, final="avg",
                          extras={})

    model.forward = view_number
    views = torch.arange(6.0).view(1, 6, 1, 1, 1, 1).expand(2, 6, 3, 2, 4, 4)
    batch = {"video": views, "label": torch.tensor([2, 0]), "index": torch.tensor([0, 1]),
             "clip_view": torch.tensor([2, 2])}
    model.on_test_epoch_start()
    model.test_step(batch, 0)
    results = model.collect_test_results()
    assert results.clip["avg"].argmax(-1).tolist() == [2, 2]


def test_s3d_test_view_stacks_videos_of_two_aspect_ratios(tmp_path: Path) -> None:
    """s3d §3.2's test view (frames resized to a square, centre crop) through a datamodule:
    videos of both aspect ratios give the same view shape, so they share a batch, and
    validation takes the same view of the centre clip."""
    root = two_size_folder(tmp_path / "videos")
    dm = VideoFolderDataModule(
        data_dir=str(root), sampling="dense", num_frames=4, frame_interval=2, test_clips=2,
        test_crop_size=28, test_views=TestViews(size=(32, 32)), batch_size=4, num_workers=0)
    dm.setup("test")
    (batch,) = list(dm.test_dataloader())  # all four videos in one batch
    assert batch["video"].shape == (4, 2, 3, 4, 28, 28)
    assert dm.make_test_views().crop_size == 28  # from test_crop_size
    val = dm.make_val_views()
    assert (val.size, val.crop_size, val.num_crops) == ((32, 32), 28, 1)
    dm.setup("fit")
    (val_batch,) = list(dm.val_dataloader())
    assert val_batch["video"].shape == (4, 3, 4, 28, 28)
