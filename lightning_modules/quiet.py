"""Messages from dependencies that say nothing about a Finegrain run, silenced by the CLI.

Each is filtered by its exact text, so everything else those libraries say still shows:

- Lightning's "💡 Tip: ... litlogger / litmodels" advertisements on every ``Trainer``;
- torch's ``isinstance(treespec, LeafSpec)`` deprecation, triggered inside Lightning's own
  ``_pytree`` helper (not by project code);
- wandb's "The anonymous setting has no effect", which Lightning's ``WandbLogger`` triggers by
  always passing ``anonymous`` (even ``None``) to ``wandb.init``: :func:`drop_wandb_anonymous`.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable
from typing import Any

__all__ = ["drop_wandb_anonymous", "quiet_dependencies"]

_TIP_LOGGERS = ("pytorch_lightning.utilities.rank_zero", "lightning_fabric.utilities.rank_zero")


def _not_a_tip(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("💡 Tip:")


def quiet_dependencies() -> None:
    """Install the filters (idempotent)."""
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
                            category=FutureWarning)
    for name in _TIP_LOGGERS:
        logger = logging.getLogger(name)
        if _not_a_tip not in logger.filters:
            logger.addFilter(_not_a_tip)


def drop_wandb_anonymous(loggers: Iterable[Any]) -> None:
    """Remove the unset ``anonymous`` setting from each ``WandbLogger``'s pending
    ``wandb.init`` arguments (before the run starts; a set value is kept)."""
    from pytorch_lightning.loggers import WandbLogger

    for logger in loggers:
        init = getattr(logger, "_wandb_init", None) if isinstance(logger, WandbLogger) else None
        if isinstance(init, dict) and init.get("anonymous") is None:
            init.pop("anonymous", None)
