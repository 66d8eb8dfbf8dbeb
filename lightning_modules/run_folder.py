"""One stable folder per experiment: ``<save_dir>/<project>/<name>/`` (checkpoints, W&B run id).

Lightning puts checkpoints under ``<save_dir>/<project>/<W&B run id>/``, a new folder for every
run, so ``--ckpt_path last`` finds nothing to resume and a resumed run starts a new W&B run.
Here the experiment's name fixes the folder:

- ``checkpoints/`` — every ``ModelCheckpoint`` without an explicit ``dirpath`` writes here, so
  ``trainer.fit(ckpt_path="last")`` finds ``last.ckpt`` and the monitored callback gets its
  best-score state back (Lightning restores it only into the same ``dirpath``);
- ``wandb_id`` — the W&B run id, read back when a fit resumes so the same W&B run continues.

A fit that resumes (``--ckpt_path last``, a checkpoint inside a run folder, or a SLURM job
requeued by Lightning, which finds its ``hpc_ckpt_<n>.ckpt`` in the folder) continues that
folder; a fresh fit whose folder already holds checkpoints first moves the old run aside to
``<name>.<old W&B id>`` (nothing is deleted, nothing is mixed). The folder is also the trainer's
``default_root_dir`` unless the config sets one.

The name is the logger's ``name`` when set, else the last ``--config`` file's path below
``experiments/`` (``experiments/kinetics/dfb/table1_2d_gb.yaml`` → ``kinetics-dfb-table1_2d_gb``).
Only ``WandbLogger`` runs get a run folder; other loggers keep Lightning's own folders.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonargparse import Namespace
from lightning_fabric.plugins.environments import SLURMEnvironment
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.utilities import rank_zero_info
from pytorch_lightning.utilities.rank_zero import rank_zero_only

__all__ = ["RunFolder", "experiment_name", "prepare_run_folder"]

_ID_FILE = "wandb_id"


@dataclass(frozen=True)
class RunFolder:
    """``path`` holds ``checkpoints/`` and the ``wandb_id`` file of one experiment."""

    path: Path

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    def wandb_id(self) -> str | None:
        """The W&B run id this folder belongs to (``None`` before its first fit)."""
        file = self.path / _ID_FILE
        if not file.is_file():
            return None
        return file.read_text().strip() or None

    def remember(self, wandb_id: str) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / _ID_FILE).write_text(f"{wandb_id}\n")

    def has_hpc_checkpoint(self) -> bool:
        """Lightning's SLURM requeue saved here (``trainer.default_root_dir``): the requeued
        job resumes from it by itself, without ``--ckpt_path``."""
        return any(self.path.glob("hpc_ckpt_*.ckpt"))

    def has_checkpoints(self) -> bool:
        return self.checkpoints.is_dir() and any(self.checkpoints.glob("*.ckpt"))

    def holds(self, ckpt_path: str) -> bool:
        return Path(ckpt_path).resolve().parent == self.checkpoints.resolve()

    def archive(self) -> Path:
        """Move this folder to ``<name>.<W&B id>`` (a free name) and return where it went."""
        tag = self.wandb_id() or "previous"
        target = self.path.with_name(f"{self.path.name}.{tag}")
        n = 1
        while target.exists():
            n += 1
            target = self.path.with_name(f"{self.path.name}.{tag}-{n}")
        os.replace(self.path, target)
        return target


def experiment_name(config_files: Sequence[Any] | None) -> str:
    """Name of the experiment the last config file describes (``"run"`` without one)."""
    if not config_files:
        return "run"
    path = Path(os.path.abspath(str(config_files[-1])))
    parts = path.with_suffix("").parts
    if "experiments" in parts:
        below = parts[len(parts) - parts[::-1].index("experiments"):]
        return "-".join(below)
    return path.stem


def _class_of(item: Any) -> type | None:
    class_path = getattr(item, "class_path", None)
    if not isinstance(class_path, str) or "." not in class_path:
        return None
    module, _, name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


def _wandb_logger(logger: Any) -> Namespace | None:
    from pytorch_lightning.loggers import WandbLogger

    for item in logger if isinstance(logger, list) else [logger]:
        cls = _class_of(item)
        if cls is not None and issubclass(cls, WandbLogger):
            return item
    return None


def prepare_run_folder(config: Namespace, subcommand: str) -> RunFolder | None:
    """Point ``config``'s W&B logger and checkpoint callbacks at the experiment's run folder.

    ``config`` is one subcommand's parsed namespace (edited in place, before instantiation):
    the logger gets the experiment name (and, when a fit resumes, the stored W&B id with
    ``resume="allow"``); every ``ModelCheckpoint`` without a ``dirpath`` gets ``checkpoints/``.
    Only global rank 0 moves folders. Returns the run folder, or ``None`` without a W&B logger.
    """
    trainer = config.get("trainer")
    logger = _wandb_logger(trainer.get("logger")) if trainer is not None else None
    if logger is None:
        return None
    init = logger.init_args
    ckpt_path = config.get("ckpt_path")
    folder = None
    if subcommand == "fit" and ckpt_path not in (None, "last", "best", "hpc"):
        candidate = RunFolder(Path(ckpt_path).resolve().parent.parent)
        if candidate.wandb_id() is not None:
            folder = candidate  # resuming a checkpoint of a run folder continues that folder
            init.name = candidate.path.name
    if folder is None:
        init.name = init.get("name") or experiment_name(config.get("config"))
        root = Path(init.get("save_dir") or init.get("dir") or ".")
        folder = RunFolder(root / (init.get("project") or "lightning_logs") / init.name)
    if trainer.get("default_root_dir") is None:
        trainer.default_root_dir = str(folder.path)  # SLURM's hpc_ckpt_<n>.ckpt land here
    if subcommand == "fit":
        auto_hpc = ckpt_path in (None, "hpc") and SLURMEnvironment.detect() and \
            folder.has_hpc_checkpoint()
        resuming = auto_hpc or (
            ckpt_path == "last" and (folder.checkpoints / "last.ckpt").is_file()) or (
            ckpt_path not in (None, "last", "best", "hpc") and folder.holds(ckpt_path))
        if resuming and not (init.get("id") or init.get("version")) and folder.wandb_id():
            init.id = folder.wandb_id()
            init.resume = "allow"
        elif not resuming and folder.has_checkpoints() and rank_zero_only.rank == 0:
            moved = folder.archive()
            rank_zero_info(f"{folder.path} held an earlier run: moved to {moved} (a fresh fit; "
                           "--ckpt_path last resumes a run instead)")
    for callback in trainer.get("callbacks") or []:
        cls = _class_of(callback)
        if cls is not None and issubclass(cls, ModelCheckpoint) and \
                callback.init_args.get("dirpath") is None:
            callback.init_args.dirpath = str(folder.checkpoints)
    return folder
