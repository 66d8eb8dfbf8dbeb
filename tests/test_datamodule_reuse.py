"""The datamodules in another project, as the README shows them: a plain LightningModule gets
normalised float video (the datamodule normalises on the device), or raw uint8 on request."""

from __future__ import annotations

import re
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch import nn

from datamodules import UCF101DataModule
from datamodules.normalize import IMAGENET, Normalization
from tests.fixtures_datasets import build_ucf101

README = Path(__file__).resolve().parents[1] / "README.md"


class ThreeLayerModel(pl.LightningModule):
    """What a user of another project writes: conv → pool → linear, nothing Finegrain."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv3d(3, 4, 3, padding=1), nn.ReLU(),
                                 nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(4, num_classes))
        self.seen: list[tuple[torch.dtype, float]] = []

    def training_step(self, batch, batch_idx):
        video = batch["video"]  # [B, C, T, H, W]
        self.seen.append((video.dtype, float(video.float().mean())))
        return nn.functional.cross_entropy(self.net(video), batch["label"])

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", nn.functional.cross_entropy(self.net(batch["video"]),
                                                         batch["label"]))

    def test_step(self, batch, batch_idx):
        views = batch["video"]  # [B, V, C, T, H, W]: every test view of each video
        logits = self.net(views.flatten(0, 1)).unflatten(0, views.shape[:2]).mean(1)
        self.log("test_acc", (logits.argmax(-1) == batch["label"]).float().mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def readme_snippet() -> str:
    """The README's python block that uses ``UCF101DataModule``, verbatim."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    return next(b for b in blocks if "from datamodules import UCF101DataModule" in b)


def test_readme_snippet_runs_with_a_plain_model(tmp_path, monkeypatch) -> None:
    fixture = build_ucf101(tmp_path / "ucf101")
    code = readme_snippet()
    # the only changes: where the data is, and sizes that fit a test (six tiny training
    # videos, one epoch, no worker processes); the code itself runs as printed
    for printed, here in [('"~/data/ucf101"', repr(str(fixture.annotation_dir))),
                          ("max_epochs=30", "max_epochs=1, logger=False, "
                                            "enable_checkpointing=False"),
                          ("num_workers=8", "num_workers=0"), ("batch_size=16", "batch_size=2"),
                          ("train_crop_size=224", "train_crop_size=32")]:
        assert printed in code, f"README snippet changed: {printed} not in it"
        code = code.replace(printed, here)
    monkeypatch.chdir(tmp_path)
    scope = {"YourVideoModel": ThreeLayerModel}
    exec(compile(code, str(README), "exec"), scope)
    model, dm = scope["model"], scope["dm"]
    assert dm.num_classes == len(fixture.classes)
    dtype, mean = model.seen[0]
    assert dtype == torch.float32
    assert -3.0 < mean < 3.0  # normalised, not 0..255
    assert "test_acc" in scope["trainer"].callback_metrics


def test_batches_are_normalised_once_with_the_chosen_statistics(tmp_path) -> None:
    fixture = build_ucf101(tmp_path / "ucf101")
    raw = torch.full((2, 3, 4, 8, 8), 255, dtype=torch.uint8)
    batch = {"video": raw, "label": torch.tensor([0, 1])}
    dm = UCF101DataModule(str(fixture.annotation_dir))
    out = dm.on_after_batch_transfer(batch, 0)
    expected = (1 - torch.tensor(IMAGENET.mean)) / torch.tensor(IMAGENET.std)
    torch.testing.assert_close(out["video"][0, :, 0, 0, 0], expected)
    # float input (already normalised) passes through: no second normalisation
    assert dm.on_after_batch_transfer(out, 0)["video"] is out["video"]
    half = UCF101DataModule(str(fixture.annotation_dir), normalize=Normalization((0.5,) * 3,
                                                                                  (0.5,) * 3))
    assert float(half.on_after_batch_transfer(batch, 0)["video"].max()) == 1.0
    untouched = UCF101DataModule(str(fixture.annotation_dir), normalize=None)
    assert untouched.on_after_batch_transfer(batch, 0)["video"].dtype == torch.uint8
