"""What a datamodule says about its data: unreadable videos, missing ones, a summary per split.

Every message names the dataset and the file; each unreadable file is named once per run.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["UnreadableLog", "UnreadableVideoWarning", "missing_message", "split_summary"]

# warnings about unreadable videos point at the dataset, not at torch's fetch loop
_DATASET_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dataset.py")

# how many names a report shows: enough to recognise a pattern, short enough to read
SHOWN = 5


class UnreadableVideoWarning(UserWarning):
    """A video that cannot be decoded (skipped with ``on_error="warn"``)."""


class UnreadableLog:
    """Names each unreadable video once (path and reason) and remembers what it named.

    One log serves every split of a datamodule (so "once" means once per run). In the main
    process the dataset reports a failure as it happens; DataLoader workers hold copies of the
    log, so their failures travel in the batch (``collate_samples``) and the main process reports
    them with :meth:`report_batch` (``VideoDataModule.on_before_batch_transfer``).
    """

    def __init__(self) -> None:
        self.reasons: dict[str, str] = {}

    def report(self, path: str, reason: str) -> bool:
        """Warn about ``path`` unless already done; ``True`` when this call warned."""
        if path in self.reasons:
            return False
        self.reasons[path] = reason
        warnings.warn_explicit(f"unreadable video {path}: {reason}", UnreadableVideoWarning,
                               filename=_DATASET_FILE, lineno=1, module="datamodules.dataset")
        return True

    def report_batch(self, batch: Mapping[str, Any]) -> None:
        """Report the failures a collated batch carries (``unreadable_path``/``_reason``)."""
        paths = batch.get("unreadable_path") or ()
        for path, reason in zip(paths, batch.get("unreadable_reason") or (), strict=True):
            self.report(path, reason)

    def __len__(self) -> int:
        return len(self.reasons)


def missing_message(owner: str, split: str, what: str, root: str, total: int,
                    missing: Sequence[tuple[str, str]], ambiguous: Sequence[tuple[str, str]]
                    ) -> str:
    """One message for a split's videos that were not found, or found in several places.

    ``missing`` / ``ambiguous``: ``(name, where)`` pairs, ``where`` being the annotation's
    ``file:line`` (ambiguous ones carry the places found instead).
    """
    parts = []
    if missing:
        shown = ", ".join(f"{n} ({w})" if w else n for n, w in missing[:SHOWN])
        more = ", …" if len(missing) > SHOWN else ""
        parts.append(f"{len(missing)} of {total} {split} {what} under {root}; skipped. "
                     f"First: {shown}{more}")
    if ambiguous:
        shown = "; ".join(f"{n}: {w}" for n, w in ambiguous[:SHOWN])
        more = "; …" if len(ambiguous) > SHOWN else ""
        parts.append(f"{len(ambiguous)} {split} names found in more than one place (skipped; "
                     f"give paths, or keep one copy): {shown}{more}")
    return f"{owner}: " + " | ".join(parts)


def split_summary(owner: str, split: str, *, classes: int, videos: int, missing: int = 0,
                  ambiguous: int = 0, unreadable: int = 0) -> str:
    """``"UCF101DataModule train: 101 classes, 9537 videos, 0 missing, 0 unreadable so far"``."""
    extra = f", {ambiguous} found twice" if ambiguous else ""
    return (f"{owner} {split}: {classes} classes, {videos} videos, {missing} missing{extra}, "
            f"{unreadable} unreadable so far")
