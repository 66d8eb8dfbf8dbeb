"""``last.ckpt`` that is really the newest training state, also on SIGTERM.

Lightning 2.6's ``ModelCheckpoint(monitor=..., save_last=True)`` writes ``last.ckpt`` only when
the same callback writes a top-k file ("saves a last.ckpt copy whenever a checkpoint file gets
saved", its docstring; ``on_train_epoch_end`` / ``on_validation_end`` skip it otherwise), and
``save_last="link"`` links it to the newest *top-k* file. When the monitored metric stalls,
``last.ckpt`` therefore keeps an old epoch, and a run resumed from it silently repeats epochs.
That is Lightning's documented behaviour, so the fix is in how the project uses it: the
monitored callback keeps the best files only, and this separate, unmonitored callback keeps
``last.ckpt``.

A resumed fit must also draw what the uninterrupted one would have drawn: the data's randomness
is a function of (seed, epoch, index) (``datamodules.randomness``), and the model's (dropout)
comes from the global generators, which Lightning does not checkpoint; this callback's state
carries them (in every checkpoint of the run, whichever callback writes it), each rank's own under
DDP: ranks whose streams differ (uneven draws, per-rank seeds) resume each with its own.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.distributed as dist
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.utilities import rank_zero_info
from pytorch_lightning.utilities.exceptions import SIGTERMException

__all__ = ["LastCheckpoint"]


class LastCheckpoint(ModelCheckpoint):
    """Overwrite ``<dirpath>/last.ckpt`` with the current state after every training epoch
    (after validation, whatever any monitor does), every ``every_n_train_steps`` optimizer steps
    when set, and when the job receives SIGTERM (a cluster's preemption signal).

    ``trainer.fit(ckpt_path="last")`` (``--ckpt_path last``) finds the file through Lightning's own
    lookup. List this callback after the monitored ``ModelCheckpoint``: ``ckpt_path="best"`` reads
    the first checkpoint callback.

    Args:
        dirpath: folder of ``last.ckpt`` (``None``: the logger's checkpoint folder, as
            ``ModelCheckpoint``; the CLI sets the run folder's ``checkpoints/``).
        every_n_train_steps: also save every this many optimizer steps (mid-epoch resume).
        train_time_interval: also save at this wall-clock interval.
        every_n_epochs: save at the end of every this many epochs (default: every epoch, also
            with a step or time trigger).
    """

    def __init__(
        self,
        dirpath: str | None = None,
        every_n_train_steps: int | None = None,
        train_time_interval: timedelta | None = None,
        every_n_epochs: int | None = None,
    ) -> None:
        super().__init__(
            dirpath=dirpath,
            filename=self.CHECKPOINT_NAME_LAST,
            monitor=None,
            save_top_k=1,
            save_last=False,
            every_n_train_steps=every_n_train_steps,
            train_time_interval=train_time_interval,
            every_n_epochs=every_n_epochs,
            # at the end of the training epoch, after validation: never before the epoch's
            # validation, and also in epochs that do not validate (check_val_every_n_epoch > 1)
            save_on_train_epoch_end=True,
            # one file that is overwritten, never last-v1.ckpt
            enable_version_counter=False,
        )

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        # ModelCheckpoint takes one trigger: with a step or time trigger it skips epoch ends
        if self._every_n_epochs == 0 and not self._should_skip_saving_checkpoint(trainer):
            self._save_topk_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        # Lightning turns SIGTERM into SIGTERMException after the running batch: the state is
        # consistent, and a stateful train loader resumes with the batches not yet seen
        if not isinstance(exception, SIGTERMException) or trainer.sanity_checking:
            return
        if self._last_global_step_saved == trainer.global_step:
            return
        self._save_topk_checkpoint(trainer, self._monitor_candidates(trainer))
        rank_zero_info(f"SIGTERM: saved {self.best_model_path} (step {trainer.global_step})")

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "rng_states": _every_ranks_rng_states()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        rng_states = state_dict.pop("rng_states", None)
        super().load_state_dict(state_dict)
        if rng_states is not None:
            _set_rng_states(_this_ranks(rng_states))


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _every_ranks_rng_states() -> list[dict[str, Any]]:
    """Every rank's global generators, in rank order. A collective under DDP: Lightning builds
    a checkpoint's contents on every rank (then rank 0 writes it)."""
    states = _rng_states()
    if not _distributed():
        return [states]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, states)
    return gathered


def _this_ranks(states: list[dict[str, Any]] | dict[str, Any]) -> dict[str, Any]:
    """This rank's entry (rank 0's when the run had fewer ranks; a checkpoint written before
    per-rank states holds one dict)."""
    if isinstance(states, dict):
        return states
    rank = dist.get_rank() if _distributed() else 0
    return states[rank] if rank < len(states) else states[0]


def _rng_states() -> dict[str, Any]:
    """The global generators, as tensors and plain values (loadable with weights_only)."""
    keys, position, has_gauss, gauss = np.random.get_state()[1:]
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": [torch.from_numpy(keys.astype(np.int64)), int(position), int(has_gauss),
                  float(gauss)],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    keys, position, has_gauss, gauss = states["numpy"]
    np.random.set_state(("MT19937", keys.numpy().astype(np.uint32), position, has_gauss, gauss))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
