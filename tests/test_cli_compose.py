"""Composing configs: package-root imports, callbacks appended by a second config, the LR
schedule's length following ``trainer.max_epochs``."""

from __future__ import annotations

from pathlib import Path

import torch
from pytorch_lightning.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint

import lightning_modules
import lightning_modules.callbacks
import models
import models.heads

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "experiments" / "demo.yaml"


def test_every_head_and_callback_is_importable_from_the_package_root() -> None:
    for name in models.heads.__all__:
        assert getattr(models, name) is getattr(models.heads, name)
    for name in lightning_modules.callbacks.__all__:
        assert getattr(lightning_modules, name) is getattr(lightning_modules.callbacks, name)
    assert models.DFBHead.__name__ == "DFBHead" and models.U2SHead.__name__ == "U2SHead"


def test_second_config_appends_callbacks(tmp_path) -> None:
    from cli import main

    extra = tmp_path / "extra.yaml"
    extra.write_text("trainer:\n  callbacks+:\n"
                     "    - class_path: pytorch_lightning.callbacks.EarlyStopping\n"
                     "      init_args: {monitor: val/acc1, mode: max}\n")
    cli = main(["--config", str(DEMO), "--config", str(extra), "--trainer.logger=false"],
               run=False)
    kinds = [type(c) for c in cli.trainer.callbacks]
    # the demo's own callbacks stay, the second config's one comes after them (Lightning
    # itself moves checkpoint callbacks last)
    for kind in (ModelCheckpoint, LearningRateMonitor, EarlyStopping):
        assert kind in kinds
    assert kinds.index(EarlyStopping) > kinds.index(LearningRateMonitor)
    assert cli.trainer.checkpoint_callback.monitor == "val/acc1"


def test_cosine_schedule_length_follows_max_epochs() -> None:
    from cli import main

    cli = main(["--config", str(DEMO), "--trainer.max_epochs=3", "--trainer.logger=false"],
               run=False)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    assert cli.model.scheduler_factory(optimizer).T_max == 3
