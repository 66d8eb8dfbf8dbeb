"""Short fits of DFBHead and U2SHead on the synthetic benchmark; the U2S three-stage chain."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from datamodules import SyntheticFineGrainedDataModule
from lightning_modules import VideoRecognizer
from lightning_modules.callbacks import CategorySimilarityCallback, U2SStageFreezing
from lightning_modules.callbacks.csm import choose_num_confusing, top_n_accuracy
from models import VideoResNet
from models.heads import DFBHead, U2SHead
from tests.conftest import TINY_SYNTHETIC


def make_model(head, num_classes: int) -> VideoRecognizer:
    torch.manual_seed(0)
    backbone = VideoResNet(depth=18, temporal="i3d", width_multiplier=0.125)
    return VideoRecognizer(
        backbone,
        head,
        num_classes=num_classes,
        optimizer=lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9),
    )


def fit(model: VideoRecognizer, dm, root: Path, callbacks=()) -> pl.Trainer:
    trainer = pl.Trainer(
        max_epochs=1,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root,
        log_every_n_steps=1,
        callbacks=list(callbacks),
    )
    trainer.fit(model, dm)
    return trainer


@pytest.fixture
def dm(synthetic_root) -> SyntheticFineGrainedDataModule:
    return SyntheticFineGrainedDataModule(data_dir=str(synthetic_root), **TINY_SYNTHETIC)


def test_dfb_short_fit_logs_every_branch(dm, tmp_path):
    model = make_model(partial(DFBHead, filters_per_class=2), dm.num_classes)
    trainer = fit(model, dm, tmp_path)
    logged = trainer.logged_metrics
    for branch in ("avg", "xchannel", "max", "comb"):
        assert f"val/acc1_{branch}" in logged and f"train/loss_{branch}" in logged, branch
    assert torch.isfinite(logged["train/loss"])
    assert "val/acc1" in logged


def test_u2s_three_stage_chain(dm, tmp_path):
    """Stage 1 → (CSM by the callback) stage 2 → stage 3, each from the previous weights."""
    n_cls = dm.num_classes  # 4: num_confusing=2 gives exactly 2 positives per column

    # stage 1: universal network only
    model = make_model(partial(U2SHead, num_confusing=2, stage=1), n_cls)
    trainer = fit(model, dm, tmp_path / "s1", [U2SStageFreezing(), CategorySimilarityCallback()])
    assert "val/acc1_universal" in trainer.logged_metrics
    assert not bool(model.head.csm_is_set)  # stage 1 leaves the CSM to stage 2
    ckpt1 = tmp_path / "stage1.ckpt"
    trainer.save_checkpoint(ckpt1)

    # stage 2: CSN + MN with the CSM; the universal network stays as stage 1 left it
    model = make_model(partial(U2SHead, num_confusing=2, stage=2), n_cls)
    model.load_state_dict(torch.load(ckpt1, weights_only=True)["state_dict"])
    universal = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    # N from the stage-1 network's top-N validation accuracy (u2s §IV-B), here at 60 %
    callback = CategorySimilarityCallback(top_n_standard=0.6)
    trainer = fit(model, dm, tmp_path / "s2", [U2SStageFreezing(), callback])
    head = model.head
    assert bool(head.csm_is_set)
    assert torch.equal(head.csm, head.csm.T) and torch.equal(head.csm.diagonal(), torch.ones(4))
    top_n = callback.top_n  # over every validation video, top-M is always right
    assert top_n is not None and top_n.shape == (n_cls,) and top_n[-1] == 1.0
    assert torch.all(top_n[1:] >= top_n[:-1])
    assert head.num_confusing == choose_num_confusing(top_n, 0.6)
    # the CSM's mean positives per column is N (exact for even M·(N − 1), else ± 1/M)
    assert abs(head.csm.sum(0).mean().item() - head.num_confusing) <= 1 / n_cls + 1e-6
    assert callback.image_path is not None and Path(callback.image_path).is_file()
    for key, value in model.backbone.state_dict().items():  # frozen: weights and BN stats
        assert torch.equal(value, universal[key]), key
    logged = trainer.logged_metrics
    for branch in ("universal", "bridge", "specific", "fused"):
        assert f"val/acc1_{branch}" in logged, branch
    for term in ("universal", "specific", "bridge", "regular"):
        assert f"train/loss_{term}" in logged, term
    ckpt2 = tmp_path / "stage2.ckpt"
    trainer.save_checkpoint(ckpt2)
    state = torch.load(ckpt2, weights_only=True)["state_dict"]
    assert bool(state["head.csm_is_set"]) and torch.equal(state["head.csm"], head.csm)

    # stage 3: joint; the checkpoint's CSM is kept, not recomputed
    model = make_model(partial(U2SHead, num_confusing=2, stage=3), n_cls)
    model.load_state_dict(state)
    before = model.head.csm_similarity.clone()
    fit(model, dm, tmp_path / "s3", [U2SStageFreezing(), CategorySimilarityCallback()])
    assert torch.equal(model.head.csm_similarity, before)
    assert all(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_u2s_stage_configs_build(stage, tmp_path, monkeypatch):
    """experiments/u2s/synthetic_stage{1,2,3}.yaml build the intended model and callbacks."""
    from cli import main

    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(tmp_path)  # the configs write runs/ relative to the working directory
    config = root / "experiments" / "u2s" / f"synthetic_stage{stage}.yaml"
    cli = main(
        [
            "--config",
            str(config),
            f"--data.init_args.data_dir={tmp_path}",
            "--trainer.logger=false",
        ],
        run=False,
    )
    head = cli.model.head
    assert isinstance(head, U2SHead) and head.stage == stage
    assert head.num_confusing == 3 and head.reg_weight == 0.5
    kinds = {type(c).__name__ for c in cli.trainer.callbacks}
    if stage > 1:
        assert {"CategorySimilarityCallback", "InitWeightsFromCheckpoint"} <= kinds
        init = next(c for c in cli.trainer.callbacks if type(c).__name__.startswith("Init"))
        assert init.path == f"runs/u2s/stage{stage - 1}/last.ckpt"
    freezing = next(c for c in cli.trainer.callbacks if isinstance(c, U2SStageFreezing))
    freezing.freeze_before_training(cli.model)  # what Lightning's setup does
    trainable = {n.split(".")[0] for n, p in cli.model.named_parameters() if p.requires_grad}
    assert trainable == {1: {"backbone", "head"}, 2: {"head"}, 3: {"backbone", "head"}}[stage]


def test_num_confusing_is_the_smallest_n_reaching_the_standard():
    """u2s §IV-B on a synthetic top-N table (85 % SSv2, 95 % UCF101, 90 % HMDB51)."""
    table = [0.52, 0.71, 0.83, 0.86, 0.91, 0.94, 0.96, 1.0]  # top-1 … top-8 accuracy
    assert choose_num_confusing(table, 0.85) == 4
    assert choose_num_confusing(table, 0.90) == 5
    assert choose_num_confusing(table, 0.95) == 7
    assert choose_num_confusing(table, 0.52) == 1
    assert choose_num_confusing(table[:3], 0.95) == 3  # never reached: every class
    # top-N accuracy from scores: ranks 0, 2, 1, 0 of the true class among 3 classes
    scores = torch.tensor([[3.0, 1.0, 0.0], [3.0, 2.0, 1.0], [1.0, 2.0, 0.0], [0.0, 1.0, 2.0]])
    label = torch.tensor([0, 2, 0, 2])
    torch.testing.assert_close(top_n_accuracy(scores, label),
                               torch.tensor([0.5, 0.75, 1.0], dtype=torch.float64))
    callback = CategorySimilarityCallback(top_n_standard="something_v2")
    assert callback.top_n_standard == 0.85
    assert CategorySimilarityCallback(top_n_standard="UCF101").top_n_standard == 0.95
    assert CategorySimilarityCallback(top_n_standard="hmdb51").top_n_standard == 0.90
    with pytest.raises(ValueError, match="kinetics"):
        CategorySimilarityCallback(top_n_standard="kinetics")
