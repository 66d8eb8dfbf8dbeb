"""Datamodules over a published dataset's annotation files: entries → located records."""

from __future__ import annotations

import os
from abc import abstractmethod
from collections import Counter
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from pytorch_lightning.utilities import rank_zero_warn

from datamodules.annotations import (
    AnnotationError,
    ClassIndex,
    Entry,
    EntryTable,
    gc_paused,
)
from datamodules.base import Split, VideoDataModule
from datamodules.decoders import DecodeError
from datamodules.locate import VideoLocator
from datamodules.records import RecordTable, VideoRecord
from datamodules.reports import missing_message
from datamodules.subsets import (
    ClassesSubset,
    MaxPerClass,
    cap_per_class,
    check_subset_arguments,
    choose_classes,
)

__all__ = ["AnnotatedVideoDataModule"]


class AnnotatedVideoDataModule(VideoDataModule):
    """Base of the datamodules that read a published dataset's annotation files.

    A subclass says what its annotation files contain:

    - ``read_classes()``: the full class list, in the published index order;
    - ``read_entries(split)``: the videos of a split as ``Entry(name, label, where)`` (or as
      columns, an ``EntryTable``);
    - optionally ``source_of(split)``: which list a split reads (``test`` → ``val``, …);

    and this class does the rest, identically for every dataset: class subsets and per-class
    caps (``datamodules.subsets``), locating each video (``datamodules.locate``: a listed
    relative path is that file or missing; a bare id is found by name anywhere under
    ``data_dir``), counting the frames of frame folders once, and reporting missing or
    ambiguous videos once per split (a count and the first few names) before skipping them.

    Args:
        data_dir: the videos or frame folders, laid out as the official archive unpacks (or
            below one more folder; bare ids may sit anywhere below).
        annotation_dir: the official annotation / split files (default ``data_dir``); they may
            sit in a sub-folder up to two levels down, as the archives ship them.
        classes_subset: train on some classes only: a list of class names, a file with one name
            per line (a relative path is also looked up in ``annotation_dir``), the name of a
            published list shipped with the package (``mini_kinetics400``, ``mini_ssv2``:
            ``datamodules.class_lists``), or an int ``N`` for ``N`` classes drawn with
            ``subset_seed``. Kept classes keep the dataset's class
            order and are relabelled ``0..N-1``.
        max_per_class: keep at most this many (present) videos per class: an int for every
            split or ``{split: n}`` (e.g. ``{"train": 400, "val": 25}``); drawn with
            ``subset_seed``, listed order kept.
        subset_seed: seed of the two draws above (the same seed gives the same subset).
        on_missing: ``"warn"`` (default) reports missing videos once and skips them;
            ``"raise"`` stops with the same report.
        **kwargs: the common arguments of ``VideoDataModule``.
    """

    def __init__(
        self,
        data_dir: str,
        annotation_dir: str | None = None,
        classes_subset: ClassesSubset = None,
        max_per_class: MaxPerClass = None,
        subset_seed: int = 0,
        on_missing: Literal["warn", "raise"] = "warn",
        **kwargs: Any,
    ) -> None:
        super().__init__(data_dir=data_dir, **kwargs)
        if on_missing not in ("warn", "raise"):
            raise ValueError(f"on_missing must be 'warn' or 'raise', got {on_missing!r}")
        check_subset_arguments(classes_subset, max_per_class)
        self.annotation_dir = os.path.expanduser(str(annotation_dir or self.data_dir))
        self.classes_subset = classes_subset
        self.max_per_class = max_per_class
        self.subset_seed = subset_seed
        self.on_missing = on_missing
        self.missing: dict[str, list[str]] = {}  # source list -> names of videos not found
        self.ambiguous: dict[str, dict[str, tuple[str, ...]]] = {}  # source -> name -> places
        self._all_classes: ClassIndex | None = None
        self._subset: tuple[list[str], dict[int, int]] | None = None
        self._locator: VideoLocator | None = None
        self._located: dict[str, list[VideoRecord]] = {}  # source -> records before the cap

    # ---- what a dataset must say ----------------------------------------------------------
    @abstractmethod
    def read_classes(self) -> list[str]:
        """The dataset's full class list; position = label in ``read_entries``."""

    @abstractmethod
    def read_entries(self, split: Split) -> list[Entry] | EntryTable:
        """The videos the annotation lists for ``split`` (labels index ``read_classes()``);
        an :class:`EntryTable` for lists of 100Ks of videos."""

    # ---- classes ----------------------------------------------------------------------------
    @property
    def class_index(self) -> ClassIndex:
        """Every class of the dataset (before ``classes_subset``) as a lookup; read once."""
        if self._all_classes is None:
            with gc_paused():  # the classes may come from a CSV of 100Ks of rows
                names = self.read_classes()
            if not names:
                raise AnnotationError(f"{type(self).__name__}: the class list is empty "
                                      f"(annotation_dir={self.annotation_dir})")
            twice = sorted(name for name, count in Counter(names).items() if count > 1)
            if twice:
                raise AnnotationError(f"{type(self).__name__}: class names listed twice: "
                                      f"{twice[:5]}")
            self._all_classes = ClassIndex(names)
        return self._all_classes

    @property
    def all_classes(self) -> list[str]:
        """Every class of the dataset (before ``classes_subset``)."""
        return self.class_index.names

    @property
    def classes(self) -> list[str]:
        """Class names (index = label id), after ``classes_subset``; available before
        ``setup()`` (only the class list is read), so LightningCLI can link ``num_classes``."""
        return self._class_subset()[0]

    def _class_subset(self) -> tuple[list[str], dict[int, int]]:
        """``(kept names, {full label: new label})``."""
        if self._subset is None:
            full = self.all_classes
            chosen = choose_classes(full, self.classes_subset, seed=self.subset_seed,
                                    search_dir=self.annotation_dir)
            self._subset = ([full[i] for i in chosen],
                            {old: new for new, old in enumerate(chosen)})
        return self._subset

    # ---- locating videos --------------------------------------------------------------------
    @property
    def locator(self) -> VideoLocator:
        """Resolves annotation names under ``data_dir`` (frame folders for ``frames``)."""
        if self._locator is None:
            self._locator = VideoLocator(self.data_dir, frames=self.folders)
        return self._locator

    def locate_entries(self, entries: EntryTable
                       ) -> tuple[list[str | tuple[str, ...] | None], np.ndarray]:
        """Where each entry's video is, and whether its record reads the entry's time window.

        Returns ``(places, windowed)``: per entry the path, the places found when its name is
        ambiguous (a tuple), or ``None`` when it is missing; and a boolean ``[N]`` (here: every
        record keeps its entry's window). Subclasses override this for datasets whose file
        names need more than the locator (Kinetics: trimmed clip or untrimmed source).
        """
        return ([self.locator.resolve(name) for name in entries.names],
                np.ones(len(entries), dtype=bool))

    # ---- records ------------------------------------------------------------------------------
    def source_of(self, split: Split) -> Split:
        """The list ``split`` reads. Splits with the same source (UCF101's ``val`` and ``test``
        are both its test list) share one set of records and one missing-video report."""
        return split

    def build_records(self, split: Split) -> list[VideoRecord]:
        """Entries → class subset → located records (missing reported) → per-class cap."""
        source = self.source_of(split)
        if source not in self._located:
            # compact columns: this cache outlives setup, in every forked worker too
            with gc_paused():
                self._located[source] = self._locate_all(source)
        cap = self.max_per_class
        if isinstance(cap, Mapping):
            cap = cap.get(split)
        return cap_per_class(self._located[source], cap, key=f"{self.subset_seed}-{source}")

    def split_counts(self, split: Split) -> dict[str, int]:
        source = self.source_of(split)
        return {"missing": len(self.missing.get(source, ())),
                "ambiguous": len(self.ambiguous.get(source, ()))}

    def _locate_all(self, split: Split) -> RecordTable:
        entries = self.read_entries(split)
        if not isinstance(entries, EntryTable):
            entries = EntryTable.from_entries(entries)
        listed = len(entries)
        _, relabel = self._class_subset()
        # full label -> kept label; -2: a class left out (unlabelled entries, -1, stay)
        new_label = np.full(len(self.all_classes) + 1, -2, dtype=np.int64)
        new_label[list(relabel)] = list(relabel.values())
        new_label[-1] = -1
        labels = new_label[entries.labels]
        if self.classes_subset is not None:
            entries, labels = entries.select(labels != -2), labels[labels != -2]
        places, windowed = self.locate_entries(entries)
        found: list[int] = []
        missing: list[int] = []
        ambiguous: dict[str, tuple[str, ...]] = {}
        for i, place in enumerate(places):
            if isinstance(place, str):
                found.append(i)
            elif place:
                ambiguous[entries.names[i]] = place
            else:
                missing.append(i)
        paths = [places[i] for i in found]
        frames = None
        if self.folders:  # counted now (one listing each), so training never probes a folder
            paths, found, frames, empty = self._count_frames(paths, found)
            missing = sorted(missing + empty)
        rows = np.asarray(found, dtype=np.int64)
        window = windowed[rows]
        records = RecordTable.from_columns(
            paths, labels[rows], num_frames=frames,
            start_sec=np.where(window, entries.start_sec[rows], np.nan),
            end_sec=np.where(window, entries.end_sec[rows], np.nan))
        if missing:
            self.missing[split] = [entries.names[i] for i in missing]
        if ambiguous:
            self.ambiguous[split] = ambiguous
        if missing or ambiguous:
            what = ("frame folders not found or empty" if self.folders
                    else "videos not found")
            message = missing_message(
                type(self).__name__, split, what, self.data_dir, len(entries),
                [(entries.names[i], entries.where(i)) for i in missing],
                [(name, ", ".join(places)) for name, places in ambiguous.items()])
            if self.on_missing == "raise":
                raise FileNotFoundError(message)
            # rank zero only: under DDP every rank builds the same records
            rank_zero_warn(message, stacklevel=6)  # points at the caller of build_records
        if not len(records):
            first = entries.where(0) if len(entries) else ""
            where = f" (first: {first})" if first else ""
            raise ValueError(
                f"{type(self).__name__}: the {split!r} split is empty: {listed} videos listed"
                f"{where}, {len(entries)} in the kept classes, none found under "
                f"{self.data_dir} (annotations: {self.annotation_dir})")
        return records

    def _count_frames(self, paths: list[str], rows: list[int]
                      ) -> tuple[list[str], list[int], list[int], list[int]]:
        """Frame folders' frame counts: ``(paths, rows, counts)`` of the folders holding
        frames, and the rows of those that hold none."""
        counter = self.make_decoder()
        kept: tuple[list[str], list[int], list[int]] = ([], [], [])
        empty: list[int] = []
        for path, row in zip(paths, rows, strict=True):
            try:
                count = counter.num_frames(VideoRecord(path=path, label=-1))
            except DecodeError:
                empty.append(row)
                continue
            for column, value in zip(kept, (path, row, count), strict=True):
                column.append(value)
        return (*kept, empty)
