"""Runs you can trust: last.ckpt is the newest state, one run folder per experiment (W&B run and
best score kept on resume), resumed fits equal uninterrupted ones (epoch boundary, mid-epoch,
SIGTERM)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import wandb
import yaml
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from cli import main
from lightning_modules.callbacks import LastCheckpoint
from tests.conftest import TINY_SYNTHETIC
from tests.test_cli import DEMO

ROOT = Path(__file__).resolve().parents[1]


class StallingModel(pl.LightningModule):
    """A linear model whose ``val/acc1`` only gets worse after epoch 0."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        self.log("val/acc1", 1.0 / (self.current_epoch + 1))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def loader() -> DataLoader:
    return DataLoader(TensorDataset(torch.randn(10, 2)), batch_size=2)  # 5 steps per epoch


def epoch_and_step(path: Path) -> tuple[int, int]:
    checkpoint = torch.load(path, weights_only=True)
    return checkpoint["epoch"], checkpoint["global_step"]


def test_last_checkpoint_holds_the_final_epoch_when_the_monitor_stalls(tmp_path) -> None:
    best = pl.callbacks.ModelCheckpoint(dirpath=tmp_path, monitor="val/acc1", mode="max")
    trainer = pl.Trainer(max_epochs=3, callbacks=[best, LastCheckpoint(dirpath=str(tmp_path))],
                         logger=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(StallingModel(), loader(), loader())
    assert epoch_and_step(Path(best.best_model_path)) == (0, 5)  # never improved after epoch 0
    assert epoch_and_step(tmp_path / "last.ckpt") == (2, 15)  # the newest state nonetheless
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch=0-step=5.ckpt", "last.ckpt"]


class ReadLast(pl.Callback):
    """Reads last.ckpt at the end of step ``at_step`` (before the checkpoint callbacks, which
    Lightning runs last)."""

    def __init__(self, path: Path, at_step: int) -> None:
        self.path, self.at_step, self.seen = path, at_step, None

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step == self.at_step:
            self.seen = epoch_and_step(self.path)


def test_last_checkpoint_every_n_train_steps(tmp_path) -> None:
    reader = ReadLast(tmp_path / "last.ckpt", at_step=9)  # mid-epoch 1, one step after a save
    trainer = pl.Trainer(max_epochs=2, logger=False, enable_progress_bar=False,
                         callbacks=[LastCheckpoint(str(tmp_path), every_n_train_steps=4), reader])
    trainer.fit(StallingModel(), loader(), loader())
    assert reader.seen == (1, 8)
    assert epoch_and_step(tmp_path / "last.ckpt") == (1, 10)


def test_every_config_keeps_last_checkpoint_apart_from_the_monitored_one() -> None:
    def callbacks(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "callbacks" and isinstance(value, list):
                    yield from value
                else:
                    yield from callbacks(value)

    checked = 0
    for path in sorted((ROOT / "experiments").rglob("*.yaml")):
        items = [c for c in callbacks(yaml.safe_load(path.read_text())) if isinstance(c, dict)]
        monitored = [c for c in items if c.get("class_path", "").endswith(".ModelCheckpoint")]
        for callback in monitored:
            # save_last=True writes last.ckpt only when the monitor improves (Lightning 2.6)
            assert (callback.get("init_args") or {}).get("save_last") is not True, path
        # (save_last: false states that a config keeps no last.ckpt: the synthetic sweep)
        if any((c.get("init_args") or {}).get("monitor") and
               (c.get("init_args") or {}).get("save_last") is not False for c in monitored):
            names = [c.get("class_path") for c in items]
            assert "lightning_modules.callbacks.LastCheckpoint" in names, path
            checked += 1
    assert checked >= 10


# ---- the command line: run folder, exact resume ---------------------------------------------


class StepRecorder(pl.Callback):
    """Appends ``epoch step index…`` of every training batch to ``path``; sends SIGTERM to its
    own process after optimizer step ``sigterm_at`` (a cluster's preemption)."""

    def __init__(self, path: str, sigterm_at: int = 0) -> None:
        self.path, self.sigterm_at = Path(path), sigterm_at

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        with self.path.open("a") as file:
            indices = " ".join(str(i) for i in batch["index"].tolist())
            file.write(f"{trainer.current_epoch} {trainer.global_step} {indices}\n")
        if trainer.global_step == self.sigterm_at:
            os.kill(os.getpid(), signal.SIGTERM)


def config(tmp_path: Path, synthetic_root: Path, name: str, **recorder) -> Path:
    callbacks = yaml.safe_load(DEMO.read_text())["trainer"]["callbacks"]
    callbacks.append({"class_path": "tests.test_runs.StepRecorder",
                      "init_args": {"path": str(tmp_path / f"{name}.steps"), **recorder}})
    data = {**TINY_SYNTHETIC, "data_dir": str(synthetic_root), "num_workers": 0}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({
        "test_after_fit": False,
        "trainer": {"enable_progress_bar": False, "enable_model_summary": False,
                    "num_sanity_val_steps": 0, "callbacks": callbacks},
        # a schedule that does not follow max_epochs: the demo's cosine T_max is linked to it,
        # and the interrupted run here stops early by a lower max_epochs
        "model": {"init_args": {
            "backbone": {"init_args": {"width_multiplier": 0.125}},
            "lr_scheduler": {"class_path": "torch.optim.lr_scheduler.StepLR",
                             "init_args": {"step_size": 1, "gamma": 0.5}}}},
        "data": {"init_args": data},
    }))
    return path


def fit(path: Path, *args: str) -> None:
    """``cli.py fit`` in this process (a separate process per run costs seconds each)."""
    try:
        main(["fit", "--config", str(DEMO), "--config", str(path), *args])
    finally:
        wandb.finish()  # as at a process's exit: the next run is a new W&B run
        wandb.teardown()  # and no W&B service (WANDB_SERVICE) left for later subprocesses


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state_dict"]


def best_state(path: Path) -> dict:
    states = torch.load(path, weights_only=True)["callbacks"]
    (state,) = [v for k, v in states.items() if k.startswith("ModelCheckpoint{'monitor': 'val/")]
    return state


def assert_same_weights(a: Path, b: Path) -> None:
    one, two = weights(a), weights(b)
    assert one.keys() == two.keys()
    for key in one:
        torch.testing.assert_close(one[key], two[key], rtol=0, atol=1e-6, msg=key)


def steps(path: Path) -> list[tuple[int, int, list[int]]]:
    rows = [line.split() for line in path.read_text().splitlines()]
    return [(int(r[0]), int(r[1]), [int(i) for i in r[2:]]) for r in rows]


@pytest.mark.slow
def test_resume_at_epoch_boundary_and_after_sigterm_equals_an_uninterrupted_fit(
        tmp_path, synthetic_root, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    epochs = "--trainer.max_epochs=3"
    fit(config(tmp_path, synthetic_root, "straight"), epochs)
    straight = tmp_path / "runs" / "finegrain" / "straight"
    assert epoch_and_step(straight / "checkpoints" / "last.ckpt") == (2, 12)  # 4 steps/epoch

    # two epochs, then `--ckpt_path last` in the same run folder: the same W&B run goes on
    resumed_cfg = config(tmp_path, synthetic_root, "resumed")
    fit(resumed_cfg, "--trainer.max_epochs=2")
    folder = tmp_path / "runs" / "finegrain" / "resumed"
    wandb_id = (folder / "wandb_id").read_text().strip()
    fit(resumed_cfg, epochs, "--ckpt_path", "last")
    assert (folder / "wandb_id").read_text().strip() == wandb_id
    offline = sorted((tmp_path / "runs" / "wandb").glob(f"offline-run-*-{wandb_id}"))
    assert len(offline) == 2  # two processes, one W&B run id
    reference = straight / "checkpoints" / "last.ckpt"
    assert_same_weights(reference, folder / "checkpoints" / "last.ckpt")
    # the best-checkpoint state survives the resume: it equals the uninterrupted run's
    one, two = best_state(reference), best_state(folder / "checkpoints" / "last.ckpt")
    assert Path(one["best_model_path"]).name == Path(two["best_model_path"]).name
    assert float(one["best_model_score"]) == float(two["best_model_score"])
    # the same batches, epoch by epoch
    assert steps(tmp_path / "resumed.steps") == steps(tmp_path / "straight.steps")

    # SIGTERM after step 6 (mid-epoch 1): last.ckpt written at step 6; resuming it continues
    # with the batches of epoch 1 not yet seen, and ends with the same weights
    term_cfg = config(tmp_path, synthetic_root, "preempted", sigterm_at=6)
    with pytest.raises(SystemExit):
        fit(term_cfg, epochs)
    term = tmp_path / "runs" / "finegrain" / "preempted"
    assert epoch_and_step(term / "checkpoints" / "last.ckpt") == (1, 6)
    fit(config(tmp_path, synthetic_root, "preempted"), epochs, "--ckpt_path", "last")
    assert_same_weights(reference, term / "checkpoints" / "last.ckpt")
    assert steps(tmp_path / "preempted.steps") == steps(tmp_path / "straight.steps")

    # a fresh fit of an experiment that has a run moves the old run aside, deletes nothing
    fit(resumed_cfg, "--trainer.max_epochs=1")
    assert (tmp_path / "runs" / "finegrain" / f"resumed.{wandb_id}" / "checkpoints"
            / "last.ckpt").is_file()
    assert (folder / "wandb_id").read_text().strip() != wandb_id


def test_checkpoint_state_loads_with_weights_only_whatever_jsonargparse_typed(tmp_path) -> None:
    """The demo's loader state carried ``NonNegativeInt(2)``: ``weights_only`` refused it."""
    from jsonargparse.typing import NonNegativeInt, PositiveInt

    from lightning_modules import VideoRecognizer

    checkpoint = {"state_dict": {"w": torch.zeros(1)},
                  "loops": {"fit_loop": {"loader": [{"_num_workers": NonNegativeInt(2)}]}},
                  "datamodule_hyper_parameters": {"batch_size": PositiveInt(16)}}
    VideoRecognizer.on_save_checkpoint(None, checkpoint)  # uses no state of the module
    torch.save(checkpoint, tmp_path / "x.ckpt")
    loaded = torch.load(tmp_path / "x.ckpt", weights_only=True)
    assert loaded["loops"]["fit_loop"]["loader"][0]["_num_workers"] == 2
    assert type(loaded["datamodule_hyper_parameters"]["batch_size"]) is int
