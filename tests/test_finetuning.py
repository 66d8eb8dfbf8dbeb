"""Fine-tuning: ``VideoRecognizer(init_weights=…)`` from a Finegrain checkpoint of another class
count (through the CLI), from torchvision's video weights; partial BN, frozen stages, LR mult."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
import yaml
from torch import nn

from lightning_modules import VideoRecognizer
from models import GAPHead, WeightLoadError, create_backbone, video_resnet
from models.heads import U2SHead
from tests import fixtures_datasets as fx

TINY = {"depth": 18, "temporal": "i3d", "width_multiplier": 0.125}


def recognizer(num_classes: int, head=GAPHead, **options) -> VideoRecognizer:
    return VideoRecognizer(video_resnet(**TINY), head, num_classes=num_classes, **options)


def save_checkpoint(model: nn.Module, path: Path) -> Path:
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5)  # distinct from any fresh initialisation
    torch.save({"state_dict": model.state_dict(), "epoch": 7}, path)
    return path


def test_an_8_class_checkpoint_fine_tunes_on_3_classes_from_the_cli(tmp_path, caplog) -> None:
    from cli import main

    source = recognizer(8)
    ckpt = save_checkpoint(source, tmp_path / "eight.ckpt")
    folder = fx.build_folder(tmp_path / "folder")  # 3 classes
    config = {
        "trainer": {"accelerator": "cpu", "devices": 1, "max_steps": 2, "logger": False,
                    "enable_checkpointing": False, "enable_progress_bar": False,
                    "num_sanity_val_steps": 0, "limit_val_batches": 1},
        "model": {"class_path": "lightning_modules.VideoRecognizer", "init_args": {
            "backbone": {"class_path": "models.video_resnet", "init_args": TINY},
            "head": {"class_path": "models.GAPHead"},
            # lr 0: the weights after fit are the ones init_weights gave
            "optimizer": {"class_path": "torch.optim.SGD", "init_args": {"lr": 0.0}}}},
        "data": {"class_path": "datamodules.VideoFolderDataModule", "init_args": {
            "data_dir": str(folder.data_dir), "num_frames": 4, "train_crop_size": 32,
            "test_crop_size": 32, "short_side": 36, "batch_size": 3, "num_workers": 0}},
    }
    path = tmp_path / "finetune.yaml"
    path.write_text(yaml.safe_dump(config))
    cli = main(["fit", "--config", str(path), f"--model.init_args.init_weights={ckpt}"])
    model = cli.model
    assert model.num_classes == 3 and model.head.fc.weight.shape == (3, 64)
    theirs = dict(source.backbone.named_parameters())
    for name, p in model.backbone.named_parameters():
        assert torch.equal(p, theirs[name]), name
    assert not torch.equal(model.head.fc.weight, source.head.fc.weight[:3])
    assert model.head.fc.weight.std() < 0.05  # the fresh classifier's N(0, 0.01)
    assert f"weights from checkpoint {ckpt}" in caplog.text
    assert "classifier re-initialised" in caplog.text


def test_same_class_count_keeps_the_classifier_and_u2s_copies_the_loaded_stages(tmp_path) -> None:
    source = recognizer(4)
    ckpt = save_checkpoint(source, tmp_path / "gap.ckpt")
    same = recognizer(4, init_weights=str(ckpt))
    same.setup("fit")
    assert torch.equal(same.head.fc.weight, source.head.fc.weight)
    # u2s §IV-B: the category-specific net starts from the universal net's (Kinetics) weights
    def u2s(backbone, num_classes):
        return U2SHead(backbone, num_classes, stage=1, num_confusing=2, csn_init="backbone")

    model = recognizer(4, head=u2s, init_weights=str(ckpt))
    model.setup("fit")
    for stage in ("stage4", "stage5"):
        ours = model.head.csn.stages[stage].state_dict()
        for key, value in getattr(source.backbone, stage).state_dict().items():
            assert torch.equal(ours[key], value), f"{stage}.{key}"


@torch.no_grad()
def test_torchvision_video_weights_start_the_whole_model(tmp_path) -> None:
    torch.manual_seed(0)
    r3d = torchvision.models.video.r3d_18(weights=None).eval()
    path = tmp_path / "r3d_18.pth"
    torch.save(r3d.state_dict(), path)
    kinetics = VideoRecognizer(create_backbone("r3d_18"), GAPHead, num_classes=400,
                               init_weights=str(path)).eval()
    kinetics.setup("test")
    x = torch.randn(1, 3, 4, 32, 32)
    assert torch.allclose(kinetics(x).logits["avg"], r3d(x), atol=1e-4)  # the fc too
    five = VideoRecognizer(create_backbone("r3d_18"), GAPHead, num_classes=5,
                           init_weights=str(path))
    five.setup("fit")
    assert five.head.fc.weight.shape == (5, 512)


def test_init_weights_from_a_wrong_file_says_what_it_expected(tmp_path) -> None:
    text = tmp_path / "weights.txt"
    text.write_text("not weights")
    model = recognizer(3, init_weights=str(text))
    with pytest.raises(WeightLoadError, match="not a PyTorch weights file"):
        model.setup("fit")


def test_partial_bn_frozen_stages_and_backbone_lr_mult() -> None:
    model = recognizer(3, batch_norm="partial", frozen_stages=["stage1", "stage2"],
                       backbone_lr_mult=0.1,
                       optimizer=lambda params: torch.optim.SGD(params, lr=0.5))
    model.train()
    bns = [m for m in model.backbone.modules() if isinstance(m, nn.BatchNorm3d)]
    assert bns[0].training is False  # in stage1, which is frozen
    assert all(not m.training for m in bns[1:])  # partial BN: statistics fixed after the first
    assert not any(p.requires_grad for p in model.backbone.stage2.parameters())
    optimizer = model.configure_optimizers()
    lrs = sorted(g["lr"] for g in optimizer.param_groups)
    assert lrs == pytest.approx([0.05, 0.5])
    trainable = sum(len(g["params"]) for g in optimizer.param_groups)
    assert trainable == sum(p.requires_grad for p in model.parameters())
    partial = recognizer(3, batch_norm="partial").train()
    first = next(m for m in partial.backbone.modules() if isinstance(m, nn.BatchNorm3d))
    assert first.training  # TSN §3.2: the first BN layer keeps adapting


def test_init_weights_callback_not_strict_skips_a_classifier_of_another_class_count(
        tmp_path, caplog) -> None:
    from lightning_modules.callbacks import InitWeightsFromCheckpoint

    source = recognizer(8)
    ckpt = save_checkpoint(source, tmp_path / "eight.ckpt")
    target = recognizer(3)
    fresh_fc = target.head.fc.weight.clone()
    with caplog.at_level("INFO"):
        InitWeightsFromCheckpoint(str(ckpt), strict=False).setup(None, target, "fit")
    theirs = dict(source.backbone.named_parameters())
    for name, p in target.backbone.named_parameters():
        assert torch.equal(p, theirs[name]), name
    assert torch.equal(target.head.fc.weight, fresh_fc)  # 3 classes: left as initialised
    assert "other shape, left as initialised ['head.fc.weight', 'head.fc.bias']" in caplog.text
    with pytest.raises(RuntimeError, match="size mismatch"):
        InitWeightsFromCheckpoint(str(ckpt)).setup(None, recognizer(3), "fit")
